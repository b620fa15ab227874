//! The command line of `holdfast-load`: typed, validated settings of a run.
//!
//! This module owns flag names, defaults and the parsers of the compact flag values (steps,
//! rates, prefixes). It must not do I/O: turning settings into a workload happens in
//! [`crate::driver`].

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgGroup, Args, Parser, Subcommand};
use holdfast_platform::config::parse_duration;
use secrecy::SecretString;

use crate::schedule::Phase;
use crate::workload::Mix;

/// Longest resource-id prefix: leaves room for `-r<index>` within the 128-character limit.
pub const MAX_PREFIX_CHARS: usize = 64;

/// `holdfast-load`: benchmark and exercise the Holdfast command and query APIs.
#[derive(Debug, Parser)]
#[command(name = "holdfast-load", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Drive the command (and query) API with an open-model workload and report latency and
    /// throughput.
    Run(Box<RunArgs>),
    /// Measure the CPU the broker and the services use with no load (share of one core).
    Idle(Box<crate::idle::IdleArgs>),
}

/// Settings of `holdfast-load run`.
#[derive(Debug, Clone, Args)]
#[command(group(ArgGroup::new("load").required(true).args(["rate", "steps"])))]
pub struct RunArgs {
    /// Base URL of the command service.
    #[arg(long, env = "HOLDFAST_LOAD_TARGET", default_value = "http://127.0.0.1:8080")]
    pub target: String,
    /// Base URL of the query service (the `read` and `ryw` operations of --mix).
    #[arg(long, env = "HOLDFAST_LOAD_QUERY_TARGET", default_value = "http://127.0.0.1:8081",
          value_parser = parse_base_url)]
    pub query_target: String,
    /// Constant arrival rate in requests per second (runs for --duration).
    #[arg(long, env = "HOLDFAST_LOAD_RATE", value_parser = parse_rate)]
    pub rate: Option<f64>,
    /// How long --rate runs: 250ms, 60s, 5m or plain seconds.
    #[arg(long, env = "HOLDFAST_LOAD_DURATION", default_value = "60s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Stepped rates `RATE:DURATION,...` (e.g. `167:60s,1670:60s`); each step is reported alone.
    #[arg(long, env = "HOLDFAST_LOAD_STEPS", value_parser = parse_steps)]
    pub steps: Option<Steps>,
    /// Resources defined before the run (`POST /v1/resources`).
    #[arg(long, env = "HOLDFAST_LOAD_RESOURCES", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub resources: u32,
    /// Capacity of every slot of every resource.
    #[arg(long, env = "HOLDFAST_LOAD_CAPACITY", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub capacity: u32,
    /// Prefix of the resource ids (`<prefix>-r<n>`); a fresh `lt-<run id>` by default, so runs
    /// never share resources.
    #[arg(long, env = "HOLDFAST_LOAD_PREFIX", value_parser = parse_prefix)]
    pub prefix: Option<String>,
    /// Zipf exponent of the resource picked for each hold; 0 is uniform, 1+ is skewed.
    #[arg(long, env = "HOLDFAST_LOAD_ZIPF", default_value_t = 0.0, value_parser = parse_zipf)]
    pub zipf: f64,
    /// Operation mix by weight over hold, confirm, cancel, read (availability of a resource
    /// drawn like a hold) and ryw (a read-your-writes read of a random accepted hold, waiting
    /// for its position); confirm, cancel and ryw act on this run's accepted holds.
    #[arg(long, env = "HOLDFAST_LOAD_MIX", default_value = "hold=80,confirm=15,cancel=5", value_parser = Mix::parse)]
    pub mix: Mix,
    /// Longest hold in days (each hold spans 1..=D days, `to` exclusive).
    #[arg(long, env = "HOLDFAST_LOAD_DAYS_MAX", default_value_t = 3,
          value_parser = clap::value_parser!(u8).range(1..=31))]
    pub days_max: u8,
    /// Number of upcoming days (from tomorrow) a hold may start on.
    #[arg(long, env = "HOLDFAST_LOAD_DATE_WINDOW", default_value_t = 90,
          value_parser = clap::value_parser!(u16).range(1..=3650))]
    pub date_window: u16,
    /// Largest quantity of a hold (each hold asks for 1..=Q units).
    #[arg(long, env = "HOLDFAST_LOAD_QUANTITY_MAX", default_value_t = 2,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub quantity_max: u32,
    /// Hold time-to-live sent with each hold; the service's default (900 s) when absent.
    #[arg(long, env = "HOLDFAST_LOAD_HOLD_SECONDS", value_parser = clap::value_parser!(u32).range(1..=3600))]
    pub hold_seconds: Option<u32>,
    /// Most requests in flight; a request due while this many are open is dropped (counted).
    #[arg(long, env = "HOLDFAST_LOAD_MAX_IN_FLIGHT", default_value_t = 4096,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_in_flight: u32,
    /// Warm-up at the first step's rate before recording starts (its holds still count as
    /// accepted reservations).
    #[arg(long, env = "HOLDFAST_LOAD_WARMUP", default_value = "5s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Per-request timeout; a timed-out request is a transport error.
    #[arg(long, env = "HOLDFAST_LOAD_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Results folder (`summary.json`, `summary.md`, `accepted.jsonl`, `pending.jsonl`);
    /// `<temp dir>/holdfast-load-<run id>` by default.
    #[arg(long, env = "HOLDFAST_LOAD_OUT")]
    pub out: Option<PathBuf>,
    /// Print the JSON summary to stdout instead of the Markdown tables.
    #[arg(long)]
    pub json: bool,
    /// No progress lines on stderr.
    #[arg(long)]
    pub quiet: bool,
    /// Bearer token sent with every request (`infra/local/token` prints one). It needs every
    /// scope: the load holds for many customers and reads their reservations.
    #[arg(long, env = "HOLDFAST_LOAD_TOKEN", hide_env_values = true, value_parser = parse_secret_token)]
    pub token: Option<SecretString>,
    /// Mint the token with the HS256 secret in this file instead (the local stack's
    /// `.stack/auth/hs256.key`). Not needed with `--spawn`, which makes its own.
    #[arg(long, env = "HOLDFAST_LOAD_TOKEN_SECRET_FILE", default_value = ".stack/auth/hs256.key")]
    pub token_secret_file: std::path::PathBuf,
    /// Seed of the workload's random choices (random by default).
    #[arg(long, env = "HOLDFAST_LOAD_SEED")]
    pub seed: Option<u64>,
    /// Worker threads of the generator's runtime (it shares the machine with the target).
    #[arg(long, env = "HOLDFAST_LOAD_THREADS", default_value_t = 2,
          value_parser = clap::value_parser!(u16).range(1..=64))]
    pub threads: u16,
    /// The harness around the load: spawned services, faults, baselines, audit.
    #[command(flatten)]
    pub harness: crate::harness::HarnessArgs,
}

impl RunArgs {
    /// Parses `run` flags (without the program and subcommand names), as tests and embedding
    /// tools build settings.
    ///
    /// # Errors
    /// Clap's error for unknown or invalid flags.
    pub fn from_flags<'a>(flags: impl IntoIterator<Item = &'a str>) -> Result<Self, clap::Error> {
        let argv = ["holdfast-load", "run"].into_iter().chain(flags);
        match Cli::try_parse_from(argv)?.command {
            Command::Run(args) => Ok(*args),
            Command::Idle(_) => Err(clap::Error::new(clap::error::ErrorKind::InvalidSubcommand)),
        }
    }

    /// The recorded steps: `--steps`, or one step of `--rate` for `--duration`.
    #[must_use]
    pub fn steps(&self) -> Vec<Step> {
        match (&self.steps, self.rate) {
            (Some(steps), _) => steps.0.clone(),
            (None, Some(rate)) => vec![Step { rate, duration: self.duration }],
            (None, None) => Vec::new(),
        }
    }

    /// Every phase of the run in order: the warm-up (not recorded), then the steps.
    #[must_use]
    pub fn phases(&self) -> Vec<Phase> {
        let steps = self.steps();
        let warmup = steps
            .first()
            .filter(|_| !self.warmup.is_zero())
            .map(|first| Phase::warmup(first.rate, self.warmup));
        warmup.into_iter().chain(steps.iter().enumerate().map(|(i, s)| Phase::step(i, s))).collect()
    }
}

/// One step of constant arrival rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    /// Requests per second.
    pub rate: f64,
    /// How long the step lasts.
    pub duration: Duration,
}

/// The steps of `--steps`.
#[derive(Debug, Clone, PartialEq)]
pub struct Steps(pub Vec<Step>);

/// Parses a positive, finite rate in requests per second.
///
/// # Errors
/// A message naming the bad value.
pub fn parse_rate(raw: &str) -> Result<f64, String> {
    match raw.trim().parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 && rate <= 1_000_000.0 => Ok(rate),
        _ => Err(format!("expected a rate in requests per second (0 < rate <= 1000000), got {raw:?}")),
    }
}

/// Parses `RATE:DURATION[,RATE:DURATION...]`, e.g. `167:60s,1670:60s`.
///
/// # Errors
/// A message naming the step that does not parse.
pub fn parse_steps(raw: &str) -> Result<Steps, String> {
    let steps = raw
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (rate, duration) =
                part.split_once(':').ok_or_else(|| format!("step {part:?} is not RATE:DURATION"))?;
            let duration = parse_duration(duration)?;
            if duration.is_zero() {
                return Err(format!("step {part:?} has no duration"));
            }
            Ok(Step { rate: parse_rate(rate)?, duration })
        })
        .collect::<Result<Vec<_>, String>>()?;
    if steps.is_empty() {
        return Err("expected at least one RATE:DURATION step".to_owned());
    }
    Ok(Steps(steps))
}

/// Checks a resource-id prefix: 1–64 characters of `[A-Za-z0-9.:-]`.
///
/// # Errors
/// A message saying what is wrong.
pub fn parse_prefix(raw: &str) -> Result<String, String> {
    let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '-');
    if raw.is_empty() || raw.len() > MAX_PREFIX_CHARS || !raw.chars().all(valid) {
        return Err(format!("expected 1 to {MAX_PREFIX_CHARS} characters of [A-Za-z0-9.:-], got {raw:?}"));
    }
    Ok(raw.to_owned())
}

/// Checks the base URL of a service: `http` or `https` with a host (a path prefix is kept).
///
/// # Errors
/// A message naming the bad value.
pub fn parse_base_url(raw: &str) -> Result<String, String> {
    match reqwest::Url::parse(raw.trim()) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => Ok(raw.trim().to_owned()),
        Ok(_) => Err(format!("expected an http(s) URL with a host, got {raw:?}")),
        Err(e) => Err(format!("expected an http(s) URL, got {raw:?}: {e}")),
    }
}

/// Parses a Zipf exponent: finite and not negative.
///
/// # Errors
/// A message naming the bad value.
pub fn parse_zipf(raw: &str) -> Result<f64, String> {
    match raw.trim().parse::<f64>() {
        Ok(s) if s.is_finite() && s >= 0.0 => Ok(s),
        _ => Err(format!("expected a Zipf exponent >= 0, got {raw:?}")),
    }
}

/// A bearer token given on the command line or in the environment, kept out of `Debug`.
fn parse_secret_token(raw: &str) -> Result<SecretString, String> {
    let token = raw.trim().strip_prefix("Bearer ").unwrap_or(raw.trim());
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("a token is visible ASCII, without spaces".into());
    }
    Ok(SecretString::from(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_parse_rates_and_durations() {
        let steps = parse_steps("167:60s, 1670:2m,0.5:1500ms").expect("valid steps");
        assert_eq!(
            steps.0,
            vec![
                Step { rate: 167.0, duration: Duration::from_secs(60) },
                Step { rate: 1670.0, duration: Duration::from_secs(120) },
                Step { rate: 0.5, duration: Duration::from_millis(1500) },
            ]
        );
        for bad in ["", "167", "167:", "x:60s", "0:60s", "-5:60s", "100:0s", "100:1h", "inf:1s"] {
            assert!(parse_steps(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn a_rate_or_steps_is_required_and_not_both() {
        assert!(RunArgs::from_flags([]).is_err());
        assert!(RunArgs::from_flags(["--rate", "10", "--steps", "10:1s"]).is_err());
        let args =
            RunArgs::from_flags(["--rate", "200", "--duration", "10s", "--warmup", "0s"]).expect("valid");
        assert_eq!(args.steps(), vec![Step { rate: 200.0, duration: Duration::from_secs(10) }]);
        assert_eq!(args.phases().len(), 1);
    }

    #[test]
    fn warmup_runs_at_the_first_rate_and_is_not_recorded() {
        let args = RunArgs::from_flags(["--steps", "50:2s,100:3s", "--warmup", "5s"]).expect("valid");
        let phases = args.phases();
        assert_eq!(phases.len(), 3);
        assert!(!phases[0].recorded);
        assert!((phases[0].rate - 50.0).abs() < f64::EPSILON);
        assert_eq!(phases[0].duration, Duration::from_secs(5));
        assert!(phases[1].recorded && phases[2].recorded);
        assert!((phases[2].rate - 100.0).abs() < f64::EPSILON);
    }

    #[test]
    fn prefixes_must_fit_a_resource_id() {
        assert_eq!(parse_prefix("bench.1:a-b"), Ok("bench.1:a-b".to_owned()));
        for bad in ["", "under_score", "sp ace", &"x".repeat(65)] {
            assert!(parse_prefix(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn defaults_describe_a_sensible_run() {
        let args = RunArgs::from_flags(["--rate", "167"]).expect("valid");
        assert_eq!(args.target, "http://127.0.0.1:8080");
        assert_eq!(args.duration, Duration::from_secs(60));
        assert_eq!(args.query_target, "http://127.0.0.1:8081");
        assert_eq!(args.mix, Mix { hold: 80, confirm: 15, cancel: 5, read: 0, ryw: 0 }, "reads are opt-in");
        assert!(args.zipf.abs() < f64::EPSILON);
        assert!(parse_zipf("-1").is_err());
    }

    #[test]
    fn reads_name_their_query_service() {
        let args = RunArgs::from_flags([
            "--rate",
            "10",
            "--query-target",
            "https://gw.example/query",
            "--mix",
            "hold=5,read=3,ryw=2",
        ])
        .expect("valid");
        assert_eq!(args.query_target, "https://gw.example/query");
        assert_eq!(args.mix, Mix { hold: 5, confirm: 0, cancel: 0, read: 3, ryw: 2 });
        for bad in ["127.0.0.1:8081", "ftp://x", "http://", "mailto:a@b", ""] {
            assert!(parse_base_url(bad).is_err(), "{bad:?} must be refused");
        }
        assert!(RunArgs::from_flags(["--rate", "10", "--mix", "hold=1,browse=1"]).is_err());
    }
}
