//! `holdfast-load idle`: how much CPU the broker and Holdfast's services burn with no load at
//! all — consumers polling empty partitions, timers, health checks. The target is at
//! most 10 % of one core for all of them together over 60 s.
//!
//! Each process's user + system time (`/proc/<pid>/stat`, all its threads) is read at the
//! start and the end of a window in which nothing sends a request; its share of one core is
//! the CPU time it used divided by the window. The services are started by the measurement
//! itself (`--spawn`, like `run`), left to settle (claims, restores, first fetches), and
//! stopped afterwards; the broker and any other process are named by pid.

use std::fmt::Write as _;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use holdfast_platform::config::parse_duration;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::LoadError;
use crate::report::Machine;
use crate::services::{ServiceArgs, Services};
use crate::stack::Role;

/// The target: all measured processes together at most this share of one core.
pub const TARGET_SHARE: f64 = 0.10;
/// File names in the results folder.
pub const IDLE_JSON: &str = "idle.json";
/// Markdown report.
pub const IDLE_MD: &str = "idle.md";

/// Settings of `holdfast-load idle`.
#[derive(Debug, Clone, Args)]
pub struct IdleArgs {
    /// How long the idle window lasts.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub seconds: Duration,
    /// How long spawned services run after they are ready before the window starts (their
    /// start-up work — claims, restores, first fetches — is not idling).
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub settle: Duration,
    /// The Kafka broker's process id (the local stack's `.stack/run/kafka.pid`), measured as
    /// `kafka`.
    #[arg(long)]
    pub broker_pid: Option<u32>,
    /// Another process to measure, `NAME=PID`. Repeatable; with `--spawn`, measured beside
    /// the spawned services.
    #[arg(long = "pid", value_parser = parse_named_pid)]
    pub pids: Vec<NamedPid>,
    /// Results folder (`idle.json`, `idle.md`, the services' logs);
    /// `<temp dir>/holdfast-load-<run id>` by default.
    #[arg(long, env = "HOLDFAST_LOAD_OUT")]
    pub out: Option<PathBuf>,
    /// Print the JSON report to stdout instead of the Markdown table.
    #[arg(long)]
    pub json: bool,
    /// No progress lines on stderr.
    #[arg(long)]
    pub quiet: bool,
    /// The services: started for the measurement (`--spawn`) or not at all.
    #[command(flatten)]
    pub services: ServiceArgs,
}

/// A process named on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedPid {
    /// What the report calls it.
    pub name: String,
    /// Its process id.
    pub pid: u32,
}

/// Parses `NAME=PID`.
///
/// # Errors
/// A message naming the bad value.
pub fn parse_named_pid(raw: &str) -> Result<NamedPid, String> {
    let (name, pid) = raw.split_once('=').ok_or_else(|| format!("expected NAME=PID, got {raw:?}"))?;
    match pid.trim().parse::<u32>() {
        Ok(pid) if pid > 0 && !name.trim().is_empty() => Ok(NamedPid { name: name.trim().to_owned(), pid }),
        _ => Err(format!("expected NAME=PID with a positive pid, got {raw:?}")),
    }
}

/// One process over the window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessCpu {
    /// What it is (`kafka`, `command-service`, …).
    pub name: String,
    /// Its process id.
    pub pid: u32,
    /// User + system CPU time it used in the window (s); `None` when it could not be read.
    pub cpu_s: Option<f64>,
    /// `cpu_s` over the window: its share of one core.
    pub share: Option<f64>,
    /// Why it could not be measured (the process ended, `/proc` unreadable).
    pub error: Option<String>,
}

/// What `holdfast-load idle` measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdleReport {
    /// Length of the window (s).
    pub window_s: f64,
    /// Time spawned services ran before it (s); 0 without `--spawn`.
    pub settle_s: f64,
    /// Every process measured.
    pub processes: Vec<ProcessCpu>,
    /// All of them together, as a share of one core (the unreadable ones left out).
    pub total_share: f64,
    /// [`TARGET_SHARE`].
    pub target_share: f64,
    /// Whether every process was measured and `total_share <= target_share`.
    pub met: bool,
    /// The machine.
    pub machine: Machine,
}

impl IdleReport {
    /// The report of `processes` over a window of `window_s` seconds.
    #[must_use]
    pub fn new(processes: Vec<ProcessCpu>, window_s: f64, settle_s: f64) -> Self {
        let total_share = processes.iter().filter_map(|p| p.share).sum::<f64>();
        let complete = processes.iter().all(|p| p.error.is_none()) && !processes.is_empty();
        Self {
            window_s,
            settle_s,
            processes,
            total_share,
            target_share: TARGET_SHARE,
            met: complete && total_share <= TARGET_SHARE,
            machine: Machine::this(),
        }
    }

    /// The report as Markdown.
    #[must_use]
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        let settled = if self.settle_s > 0.0 {
            format!(", starting {:.0} s after the services were ready", self.settle_s)
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "# idle CPU\n\n{:.0} s with no load{settled}; share of one core (user + system time ÷ window).\n\n\
             | process | pid | CPU s | share of one core |\n|---|--:|--:|--:|",
            self.window_s
        );
        for p in &self.processes {
            let (cpu, share) = match (p.cpu_s, p.share, &p.error) {
                (Some(cpu), Some(share), _) => (format!("{cpu:.2}"), format!("{:.1} %", share * 100.0)),
                (_, _, error) => ("n/a".to_owned(), error.clone().unwrap_or_default()),
            };
            let _ = writeln!(out, "| {} | {} | {cpu} | {share} |", p.name, p.pid);
        }
        let _ = writeln!(
            out,
            "| **together** | | | **{:.1} %** |\n\ntarget: at most {:.0} % of one core together: **{}**\n\n\
             Machine: {} CPUs, Linux {}, load average {} at the end.",
            self.total_share * 100.0,
            self.target_share * 100.0,
            if self.met { "met" } else { "missed" },
            self.machine.cpus,
            self.machine.kernel,
            self.machine.load_average
        );
        out
    }
}

/// User + system time of process `pid` in clock ticks: fields 14 and 15 of
/// `/proc/<pid>/stat`, counted after the command name (which may hold spaces and parentheses,
/// so the fields start after the last `)`).
#[must_use]
pub fn cpu_ticks(stat: &str) -> Option<u64> {
    let (_, rest) = stat.rsplit_once(')')?;
    // `rest` starts with field 3 (state): utime and stime are its 12th and 13th fields.
    let mut fields = rest.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(user + system)
}

/// Clock ticks per second of `/proc`'s times (`getconf CLK_TCK`; 100, Linux's `USER_HZ` on
/// every common architecture, when it cannot be asked).
fn ticks_per_second() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .filter(|ticks| *ticks > 0)
        .unwrap_or(100)
}

/// The process's CPU ticks so far, or why they cannot be read.
fn read_ticks(pid: u32) -> Result<u64, String> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    cpu_ticks(&stat).ok_or_else(|| format!("{path}: unexpected format"))
}

/// Measures `processes` over `window` (cut short when `stop` completes).
pub async fn measure(
    processes: &[NamedPid],
    window: Duration,
    stop: impl Future<Output = ()>,
) -> (Vec<ProcessCpu>, f64) {
    let ticks = ticks_per_second();
    let before: Vec<Result<u64, String>> = processes.iter().map(|p| read_ticks(p.pid)).collect();
    let started = Instant::now();
    tokio::select! {
        () = tokio::time::sleep(window) => {}
        () = stop => {}
    }
    let window_s = started.elapsed().as_secs_f64();
    let measured = processes
        .iter()
        .zip(before)
        .map(|(p, before)| {
            let used = before.and_then(|b| {
                let after = read_ticks(p.pid)?;
                after.checked_sub(b).ok_or_else(|| "the process was replaced".to_owned())
            });
            #[allow(clippy::cast_precision_loss, reason = "tick counts are far below 2^53")]
            let cpu_s = used.as_ref().ok().map(|t| *t as f64 / ticks as f64);
            ProcessCpu {
                name: p.name.clone(),
                pid: p.pid,
                cpu_s,
                share: cpu_s.map(|s| if window_s > 0.0 { s / window_s } else { 0.0 }),
                error: used.err(),
            }
        })
        .collect();
    (measured, window_s)
}

/// What the report calls a spawned service.
fn service_name(role: Role, command_instances: u16) -> String {
    match role {
        Role::Command(n) if command_instances > 1 => format!("{}-{n}", role.binary()),
        _ => role.binary().to_owned(),
    }
}

/// Runs `holdfast-load idle`: starts the services (`--spawn`), lets them settle, measures the
/// window, stops them and writes the report into the results folder.
///
/// # Errors
/// Nothing to measure, services that do not start, or results that cannot be written.
pub async fn run(args: &IdleArgs, stop: impl Future<Output = ()>) -> Result<IdleReport, LoadError> {
    if args.services.spawn.is_none() && args.pids.is_empty() && args.broker_pid.is_none() {
        return Err(LoadError::Settings("nothing to measure: give --spawn, --broker-pid or --pid".into()));
    }
    if args.seconds.is_zero() {
        return Err(LoadError::Settings("--seconds must be positive".into()));
    }
    let run_id = format!("{:08x}", rand::random::<u32>());
    let out_dir = crate::output::results_dir(args.out.as_deref(), &run_id);
    std::fs::create_dir_all(&out_dir).map_err(|source| LoadError::Write { path: out_dir.clone(), source })?;
    let services = Services::start(&args.services, &run_id, &out_dir, Duration::ZERO, args.quiet).await?;
    let mut processes: Vec<NamedPid> = Vec::new();
    if let Some(pid) = args.broker_pid {
        processes.push(NamedPid { name: "kafka".to_owned(), pid });
    }
    processes.extend(args.pids.iter().cloned());
    let mut settle_s = 0.0;
    if let Some(spawned) = &services.spawned {
        let instances = args.services.command_instances;
        processes.extend(
            spawned
                .pids()
                .into_iter()
                .map(|(role, pid)| NamedPid { name: service_name(role, instances), pid }),
        );
        if !args.quiet {
            eprintln!("services ready; settling for {:?}", args.settle);
        }
        tokio::time::sleep(args.settle).await;
        settle_s = args.settle.as_secs_f64();
    }
    if !args.quiet {
        let names: Vec<&str> = processes.iter().map(|p| p.name.as_str()).collect();
        eprintln!("measuring {} for {:?} with no load", names.join(", "), args.seconds);
    }
    let (measured, window_s) = measure(&processes, args.seconds, stop).await;
    services.tear_down(&args.services).await;
    let report = IdleReport::new(measured, window_s, settle_s);
    write(&out_dir, &report)?;
    Ok(report)
}

/// Writes `idle.json` and `idle.md` into `dir`.
fn write(dir: &Path, report: &IdleReport) -> Result<(), LoadError> {
    let io = |path: PathBuf| move |source| LoadError::Write { path, source };
    let json =
        serde_json::to_vec_pretty(report).map_err(std::io::Error::other).map_err(io(dir.join(IDLE_JSON)))?;
    std::fs::write(dir.join(IDLE_JSON), json).map_err(io(dir.join(IDLE_JSON)))?;
    std::fs::write(dir.join(IDLE_MD), report.to_markdown()).map_err(io(dir.join(IDLE_MD)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_is_read_after_the_command_name() {
        let stat =
            "4242 (java (kafka) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 1234 567 0 0 20 0 80 0 100 0 0";
        assert_eq!(cpu_ticks(stat), Some(1234 + 567));
        assert_eq!(cpu_ticks("4242 (short) S 1 2"), None, "too few fields");
        assert_eq!(cpu_ticks("no parenthesis"), None);
    }

    #[tokio::test]
    async fn this_process_is_measured_and_a_missing_one_is_reported() {
        let me = NamedPid { name: "me".to_owned(), pid: std::process::id() };
        let gone = NamedPid { name: "gone".to_owned(), pid: u32::MAX };
        let (measured, window_s) =
            measure(&[me, gone], Duration::from_millis(200), std::future::pending()).await;
        assert!(window_s >= 0.2, "{window_s}");
        assert!(measured[0].error.is_none() && measured[0].share.is_some_and(|s| s >= 0.0), "{measured:?}");
        assert!(measured[1].error.is_some() && measured[1].share.is_none(), "{measured:?}");
        let report = IdleReport::new(measured, window_s, 0.0);
        assert!(!report.met, "a process that could not be measured leaves the target unproven");
        assert!(report.to_markdown().contains("| gone |"));
    }

    #[test]
    fn the_target_is_a_tenth_of_one_core_together() {
        let process = |name: &str, share: f64| ProcessCpu {
            name: name.to_owned(),
            pid: 1,
            cpu_s: Some(share * 60.0),
            share: Some(share),
            error: None,
        };
        let under =
            IdleReport::new(vec![process("kafka", 0.05), process("command-service", 0.04)], 60.0, 15.0);
        assert!(under.met && (under.total_share - 0.09).abs() < 1e-12, "{under:?}");
        let over =
            IdleReport::new(vec![process("kafka", 0.07), process("projection-workers", 0.04)], 60.0, 15.0);
        assert!(!over.met);
        assert!(over.to_markdown().contains("**missed**"));
        assert!(parse_named_pid("kafka=12").is_ok());
        for bad in ["kafka", "=12", "kafka=0", "kafka=x"] {
            assert!(parse_named_pid(bad).is_err(), "{bad:?}");
        }
    }
}
