//! `query-service`: parse configuration, initialise telemetry, run the service.

use std::process::ExitCode;

use clap::Parser;
use holdfast_platform::{service, telemetry};
use holdfast_query_service::{Config, run};

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    telemetry::init(&config.telemetry);
    let (listen, grace) = (config.listen, config.telemetry.shutdown_grace);
    service::main("query-service", listen, grace, |listener, shutdown| run(config, listener, shutdown)).await
}
