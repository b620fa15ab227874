//! `holdfast-load`: parse the flags, run, print the report (Markdown tables, or JSON with
//! `--json`) on stdout; progress goes to stderr.

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser as _;
use holdfast_load_tests::cli::{Cli, Command};
use holdfast_load_tests::{LoadError, RunArgs, run};

fn main() -> ExitCode {
    let Cli { command: Command::Run(args) } = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(usize::from(args.threads))
        .enable_all()
        .build();
    let outcome = match runtime {
        Ok(runtime) => runtime.block_on(run_and_print(&args)),
        Err(error) => Err(format!("cannot start the runtime: {error}")),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("holdfast-load: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Runs until the schedule ends or ctrl-c/SIGTERM, then prints the report.
async fn run_and_print(args: &RunArgs) -> Result<(), String> {
    let report = run(args, stop_signal()).await.map_err(|e| describe(&e))?;
    let text = if args.json {
        serde_json::to_string_pretty(&report.summary).map_err(|e| e.to_string())? + "\n"
    } else {
        report.summary.to_markdown()
    };
    std::io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .map_err(|e| format!("cannot print the report: {e}"))?;
    eprintln!("results in {}", report.out_dir.display());
    Ok(())
}

/// The error with its causes.
fn describe(error: &LoadError) -> String {
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    message
}

/// Completes on ctrl-c or SIGTERM; never when the signals cannot be listened to.
async fn stop_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => eprintln!("stopping: no new requests; waiting for those in flight"),
        () = terminate => eprintln!("stopping on SIGTERM: waiting for requests in flight"),
    }
}
