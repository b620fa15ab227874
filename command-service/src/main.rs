//! `command-service`: parse configuration, initialise telemetry, run the service.

use std::process::ExitCode;

use clap::Parser;
use holdfast_command_service::{Config, run};
use holdfast_platform::{service, telemetry};

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    telemetry::init(&config.telemetry);
    let (listen, grace) = (config.listen, config.telemetry.shutdown_grace);
    service::main("command-service", listen, grace, |listener, shutdown| run(config, listener, shutdown))
        .await
}
