//! `holdfast-load`: parse the flags, run, print the report (Markdown, or JSON with `--json`)
//! on stdout; progress goes to stderr. The exit code is 1 when the run could not be carried
//! out or its audit found a violation (or could not run); `idle` exits 1 only when it could
//! not measure.

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser as _;
use holdfast_load_tests::cli::{Cli, Command};
use holdfast_load_tests::idle::{self, IdleArgs};
use holdfast_load_tests::{RunArgs, describe, output, run};

fn main() -> ExitCode {
    let Cli { command } = Cli::parse();
    let threads = match &command {
        Command::Run(args) => usize::from(args.threads),
        Command::Idle(_) => 2,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build();
    let outcome = match runtime {
        Ok(runtime) => runtime.block_on(async {
            match &command {
                Command::Run(args) => run_and_print(args).await,
                Command::Idle(args) => idle_and_print(args).await,
            }
        }),
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

/// Prints `text` on stdout.
fn print(text: &str) -> Result<(), String> {
    std::io::stdout().lock().write_all(text.as_bytes()).map_err(|e| format!("cannot print the report: {e}"))
}

/// Runs until the schedule ends or ctrl-c/SIGTERM, then prints the report.
async fn run_and_print(args: &RunArgs) -> Result<(), String> {
    let report = run(args, stop_signal()).await.map_err(|e| describe(&e))?;
    let text = if args.json {
        serde_json::to_string_pretty(&report).map_err(|e| e.to_string())? + "\n"
    } else {
        report.to_markdown()
    };
    print(&text)?;
    let out = output::results_dir(args.out.as_deref(), &report.summary.run_id);
    eprintln!("results in {}", out.display());
    if report.passed() {
        Ok(())
    } else {
        Err(match (&report.audit, &report.audit_error) {
            (_, Some(error)) => format!("the audit could not run: {error}"),
            (Some(audit), None) => format!("the audit found {} violations", audit.violation_count()),
            (None, None) => "the run failed".to_owned(),
        })
    }
}

/// Measures idle CPU (cut short by ctrl-c/SIGTERM), then prints the report.
async fn idle_and_print(args: &IdleArgs) -> Result<(), String> {
    let report = idle::run(args, stop_signal()).await.map_err(|e| describe(&e))?;
    let text = if args.json {
        serde_json::to_string_pretty(&report).map_err(|e| e.to_string())? + "\n"
    } else {
        report.to_markdown()
    };
    print(&text)
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
