//! The one place the `tracing` subscriber is built. Services call [`init`] from `main`;
//! tests call [`init_for_tests`], which stays silent unless `TEST_LOG` is set.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

use crate::config::{LogFormat, TelemetryArgs};

/// Installs the global subscriber. `RUST_LOG`, when set, wins over the configured filter.
/// A second call (several services in one process) leaves the first subscriber in place.
pub fn init(args: &TelemetryArgs) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&args.filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_span_events(FmtSpan::NONE)
        .with_writer(std::io::stderr);
    let _ = match args.log_format {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).try_init(),
        LogFormat::Pretty => builder.compact().try_init(),
    };
}

/// Logs to the test output only when `TEST_LOG` is set (e.g. `TEST_LOG=debug cargo test`).
pub fn init_for_tests() {
    let Ok(level) = std::env::var("TEST_LOG") else {
        return;
    };
    let filter = EnvFilter::try_new(if level.is_empty() || level == "1" { "info" } else { &level })
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().compact().try_init();
}
