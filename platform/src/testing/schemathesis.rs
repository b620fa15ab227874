//! Runs schemathesis against a running service and its OpenAPI document: requests generated
//! from the document (schema examples, boundary values, random valid and invalid data), every
//! answer checked (`--checks all`: no 5xx beyond what the settings allow, only documented
//! status codes, content types and bodies that match the document).
//!
//! schemathesis comes from PyPI into a venv of its own (`infra/fuzz/install-schemathesis`); a
//! missing venv fails the caller with that hint. `HOLDFAST_FUZZ_EXAMPLES` raises the examples
//! per operation (`make fuzz-api`), `HOLDFAST_FUZZ_SEED` replays a run (its seed is printed),
//! `HOLDFAST_FUZZ_ARGS` adds schemathesis options (e.g. `--report har --report-dir /tmp/st`).

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

/// Examples per operation and phase by default: enough to cover every operation and its error
/// answers in well under a minute on two shared cores.
pub const EXAMPLES: u32 = 12;
/// Bound on one run, whatever `HOLDFAST_FUZZ_EXAMPLES` asks for.
const RUN_LIMIT: Duration = Duration::from_secs(1800);

/// The schemathesis that `infra/fuzz/install-schemathesis` installs.
///
/// # Panics
/// When it is not installed.
#[must_use]
pub fn binary() -> PathBuf {
    let tools = std::env::var_os("HOLDFAST_TOOLS_DIR").map_or_else(
        || PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/holdfast/tools"),
        PathBuf::from,
    );
    let binary = tools.join("venv-schemathesis/bin/schemathesis");
    assert!(
        binary.is_file(),
        "schemathesis is not installed ({} is missing): run infra/fuzz/install-schemathesis",
        binary.display()
    );
    binary
}

/// How a service is fuzzed beyond what every service shares.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Run the stateful phase (sequences along the links schemathesis infers).
    pub stateful: bool,
    /// Read a live stream up to this many events, checking each against the document.
    pub stream_events: Option<u32>,
}

impl Options {
    /// The settings file. Every service: a 503 is an answer the documents promise (with
    /// `Retry-After`), not a crash, and any other 5xx fails the run; a schema-valid request
    /// may still be refused (401, 403, 404, 409, 422, 429) for rules the documents state in
    /// words but no schema can.
    fn toml(self) -> String {
        let mut toml = String::from("request-timeout = 20\n");
        if let Some(events) = self.stream_events {
            toml += &format!("max-stream-events = {events}\n");
        }
        if !self.stateful {
            toml += "[phases.stateful]\nenabled = false\n";
        }
        toml + r#"[generation]
database = "none"
[checks.not_a_server_error]
expected-statuses = ["2xx", "3xx", "4xx", "503"]
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "422", "429", "503"]
"#
    }
}

/// Runs schemathesis with every check and `options` against the service at `base_url`,
/// described by `document`, as the administrator; whether it found nothing to complain
/// about. Its report goes to stderr (shown when the test fails).
///
/// # Panics
/// When schemathesis is missing, cannot run, or outlives its bound.
pub async fn run(document: &Value, base_url: &str, options: Options) -> bool {
    let schemathesis = binary();
    let examples = env_number("HOLDFAST_FUZZ_EXAMPLES").unwrap_or(EXAMPLES);
    let seed = env_number("HOLDFAST_FUZZ_SEED").unwrap_or_else(|| uuid::Uuid::new_v4().as_fields().0);
    let dir = std::env::temp_dir().join(super::unique("holdfast-schemathesis"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let spec = dir.join("openapi.json");
    std::fs::write(&spec, serde_json::to_vec_pretty(document).expect("json")).expect("document written");
    let settings = dir.join("schemathesis.toml");
    std::fs::write(&settings, options.toml()).expect("settings written");
    let mut command = tokio::process::Command::new(schemathesis);
    command
        .current_dir(&dir)
        .arg("--config-file")
        .arg(&settings)
        .arg("run")
        .arg(&spec)
        .args(["--url", base_url])
        .args(["--checks", "all"])
        .args(["--max-examples", &examples.to_string()])
        .args(["--seed", &seed.to_string()])
        .args(["--header", &format!("Authorization: Bearer {}", super::admin_token())])
        .args(["--workers", "1", "--no-color"])
        .args(std::env::var("HOLDFAST_FUZZ_ARGS").unwrap_or_default().split_whitespace())
        .kill_on_drop(true);
    eprintln!("schemathesis: {examples} examples per operation, seed {seed}");
    let output = tokio::time::timeout(RUN_LIMIT, command.output())
        .await
        .expect("schemathesis finished in time")
        .expect("schemathesis runs");
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    output.status.success()
}

/// A whole number from the environment variable `name`, if set.
fn env_number(name: &str) -> Option<u32> {
    let raw = std::env::var(name).ok()?;
    Some(raw.trim().parse().unwrap_or_else(|_| panic!("{name} must be a whole number, got {raw:?}")))
}
