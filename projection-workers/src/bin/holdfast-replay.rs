//! `holdfast-replay`: parse configuration, initialise logging (stderr), run the command.

use std::process::ExitCode;

use clap::Parser;
use holdfast_platform::{Shutdown, shutdown, telemetry};
use holdfast_projection_workers::replay::{Outcome, ReplayConfig, run};

/// How long a command may take to stop after Ctrl-C or SIGTERM.
const INTERRUPT_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

#[tokio::main]
async fn main() -> ExitCode {
    let config = ReplayConfig::parse();
    telemetry::init(&config.telemetry);
    let stop = Shutdown::new();
    let signalled = {
        let stop = stop.clone();
        let signal = shutdown::signal();
        async move {
            signal.await;
            stop.cancel();
        }
    };
    let mut out = std::io::stdout();
    let work = run(config, &mut out, stop);
    tokio::pin!(work);
    let result = tokio::select! {
        result = &mut work => result,
        () = signalled => {
            // Everything a command writes is resumable, so after a short wait for the current
            // step (a rebuild stops at its next chunk of events) the process may just end.
            match tokio::time::timeout(INTERRUPT_GRACE, work).await {
                Ok(result) => result,
                Err(_) => Ok(Outcome::Interrupted),
            }
        }
    };
    match result {
        Ok(outcome) => outcome.exit_code(),
        Err(error) => {
            tracing::error!(%error, "holdfast-replay failed");
            eprintln!("holdfast-replay: {error}");
            ExitCode::from(2)
        }
    }
}
