//! The full report of a run (`report.json`, `report.md` and the plots): the load's summary,
//! the audit's verdict, the baselines and the efficiency ratio, the faults with their error
//! bursts and recovery times, the machine, and the run second by second.

use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::LoadError;
use crate::audit::AuditReport;
use crate::baseline::{BaselineError, ProduceBaseline, UpsertBaseline};
use crate::client::is_decision;
use crate::driver::PendingSettled;
use crate::plot;
use crate::summary::Summary;
use crate::timeline::Timeline;

/// File names.
pub const REPORT_JSON: &str = "report.json";
/// Markdown report.
pub const REPORT_MD: &str = "report.md";

/// The baselines measured before the load (an error text where one could not be).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baselines {
    /// Raw transactional produce of events of the same size.
    pub produce: Option<ProduceBaseline>,
    /// Why it is missing.
    pub produce_error: Option<String>,
    /// Raw batched upserts into PostgreSQL.
    pub upsert: Option<UpsertBaseline>,
    /// Why it is missing.
    pub upsert_error: Option<String>,
}

impl Baselines {
    /// From the two measurements.
    #[must_use]
    pub fn new(
        produce: Result<ProduceBaseline, BaselineError>,
        upsert: Result<UpsertBaseline, BaselineError>,
    ) -> Self {
        let (produce, produce_error) = split(produce);
        let (upsert, upsert_error) = split(upsert);
        Self { produce, produce_error, upsert, upsert_error }
    }
}

fn split<T>(result: Result<T, BaselineError>) -> (Option<T>, Option<String>) {
    match result {
        Ok(value) => (Some(value), None),
        Err(error) => (None, Some(crate::describe(&error))),
    }
}

/// Rates over the recorded steps, from the answers and the audit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Throughput {
    /// Seconds of recorded load.
    pub load_s: f64,
    /// Answers that were decisions (2xx, 4xx but 429), per second of load.
    pub decisions_per_s: f64,
    /// Holds, confirms and cancels answered 2xx (each one event in the log), per second,
    /// holds answered 202 and accepted in the end included.
    pub accepted_per_s: f64,
    /// Accepted decisions per second until the projection had applied them all (load plus
    /// the audit's catch-up time): accepted, committed and projected, end to end. `None`
    /// when the projection did not catch up or was not audited.
    pub end_to_end_per_s: Option<f64>,
    /// `end_to_end_per_s` (or `accepted_per_s` without an audit) over the raw transactional
    /// produce baseline's events per second.
    pub efficiency: Option<f64>,
}

/// Where the numbers came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// Logical CPUs.
    pub cpus: usize,
    /// Memory in GiB.
    pub memory_gib: f64,
    /// Kernel.
    pub kernel: String,
    /// 1-minute load average when the report was written.
    pub load_average: String,
}

impl Machine {
    /// This machine, from `/proc`.
    #[must_use]
    pub fn this() -> Self {
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        let memory_kib = read("/proc/meminfo")
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .unwrap_or(0.0);
        Self {
            cpus: std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
            memory_gib: (memory_kib / 1_048_576.0 * 10.0).round() / 10.0,
            kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
            load_average: read("/proc/loadavg").split_whitespace().take(3).collect::<Vec<_>>().join(" "),
        }
    }
}

/// Everything a run produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// The load's summary (also `summary.json`).
    pub summary: Summary,
    /// What became of the holds answered 202, asked again after the load.
    pub pending: PendingSettled,
    /// Rates and the efficiency ratio.
    pub throughput: Throughput,
    /// The audit's verdict; `None` when skipped or when it could not run.
    pub audit: Option<AuditReport>,
    /// Why the audit could not run.
    pub audit_error: Option<String>,
    /// The baselines, when measured.
    pub baselines: Option<Baselines>,
    /// The machine.
    pub machine: Machine,
    /// Second by second, with the faults.
    pub timeline: Timeline,
    /// Plot files written next to the report.
    pub plots: Vec<String>,
}

impl RunReport {
    /// The report of a finished run.
    #[must_use]
    pub fn new(
        summary: Summary,
        pending: PendingSettled,
        timeline: Timeline,
        audit: Option<AuditReport>,
        audit_error: Option<String>,
        baselines: Option<Baselines>,
    ) -> Self {
        let throughput = throughput(&summary, &pending, audit.as_ref(), baselines.as_ref());
        Self {
            summary,
            pending,
            throughput,
            audit,
            audit_error,
            baselines,
            machine: Machine::this(),
            timeline,
            plots: Vec::new(),
        }
    }

    /// Whether the run kept every promise the audit checks (false when the audit was asked
    /// for and could not run).
    #[must_use]
    pub fn passed(&self) -> bool {
        self.audit_error.is_none() && self.audit.as_ref().is_none_or(|a| a.passed)
    }

    /// Writes the plots, `report.json` and `report.md` into `dir`.
    ///
    /// # Errors
    /// When a file cannot be written.
    pub fn write(&mut self, dir: &Path) -> Result<(), LoadError> {
        let title = format!("run {}", self.summary.run_id);
        let written = plot::write_all(dir, &title, &self.timeline).map_err(|e| LoadError::Write {
            path: dir.to_owned(),
            source: std::io::Error::other(e.to_string()),
        })?;
        self.plots = written
            .iter()
            .filter_map(|p| p.file_name().and_then(|n| n.to_str()).map(str::to_owned))
            .collect();
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| LoadError::Write { path, source }
        };
        let json = serde_json::to_vec_pretty(self).map_err(|e| std::io::Error::other(e.to_string()));
        let json_path = dir.join(REPORT_JSON);
        std::fs::write(&json_path, json.map_err(io(&json_path))?).map_err(io(&json_path))?;
        let md_path = dir.join(REPORT_MD);
        std::fs::write(&md_path, self.to_markdown()).map_err(io(&md_path))
    }

    /// The report as Markdown.
    #[must_use]
    pub fn to_markdown(&self) -> String {
        let mut out = self.summary.to_markdown();
        let m = &self.machine;
        let _ = writeln!(
            out,
            "\n## machine\n\n{} CPUs, {} GiB, Linux {}, load average {} at the end",
            m.cpus, m.memory_gib, m.kernel, m.load_average
        );
        let t = &self.throughput;
        let _ = writeln!(
            out,
            "\n## throughput\n\n{:.1} decisions/s and {:.1} accepted/s over {:.0} s of load; end to end \
             (accepted, committed and projected): {}; efficiency vs raw transactional produce: {}",
            t.decisions_per_s,
            t.accepted_per_s,
            t.load_s,
            t.end_to_end_per_s.map_or_else(|| "n/a".to_owned(), |r| format!("{r:.1}/s")),
            t.efficiency.map_or_else(|| "n/a".to_owned(), |e| format!("{e:.3}")),
        );
        let p = &self.pending;
        if p.pending > 0 {
            let _ = writeln!(
                out,
                "\n{} holds were answered 202 (decided later); asked again with their idempotency keys after \
                 the load: {} accepted (audited with the others), {} refused, {} still undecided.",
                p.pending, p.accepted, p.rejected, p.undecided
            );
        }
        if let Some(b) = &self.baselines {
            out.push_str("\n## baselines (same machine, right before the load)\n\n");
            match (&b.produce, &b.produce_error) {
                (Some(p), _) => {
                    let _ = writeln!(
                        out,
                        "- raw transactional produce: **{:.0} events/s** ({:.0} transactions/s, {} events of {} bytes \
                         per transaction, {} producers, {} partitions, {:.1} s)",
                        p.events_per_s,
                        p.transactions_per_s,
                        p.batch,
                        p.event_bytes,
                        p.producers,
                        p.partitions,
                        p.seconds
                    );
                }
                (None, error) => {
                    let _ = writeln!(
                        out,
                        "- raw transactional produce: failed: {}",
                        error.as_deref().unwrap_or("?")
                    );
                }
            }
            match (&b.upsert, &b.upsert_error) {
                (Some(u), _) => {
                    let _ = writeln!(
                        out,
                        "- raw PostgreSQL batched upsert: **{:.0} rows/s** ({} rows per statement, {:.1} s)",
                        u.rows_per_s, u.batch, u.seconds
                    );
                }
                (None, error) => {
                    let _ =
                        writeln!(out, "- raw PostgreSQL upsert: failed: {}", error.as_deref().unwrap_or("?"));
                }
            }
        }
        if !self.timeline.faults.is_empty() {
            out.push_str(
                "\n## faults\n\n| fault | at s | took s | failed requests | recovery s | worst p99 ms | error |\n\
                 |---|--:|--:|--:|--:|--:|---|\n",
            );
            for f in &self.timeline.faults {
                let _ = writeln!(
                    out,
                    "| {} | {:.1} | {:.1} | {} | {:.1} | {:.1} | {} |",
                    f.kind,
                    f.at_s,
                    f.took_s,
                    f.failed,
                    f.recovery_s,
                    f.worst_p99_ms,
                    f.error.as_deref().unwrap_or("")
                );
            }
        }
        out.push_str("\n## audit\n\n");
        match (&self.audit, &self.audit_error) {
            (Some(a), _) => {
                let verdict = if a.passed { "**passed**" } else { "**FAILED**" };
                let _ = writeln!(
                    out,
                    "{verdict}: {} events read from the log, {} reservations in it, {} accepted holds checked; \
                     read model audited: {}, {} PostgreSQL rows and {} Redis resources compared; projection \
                     caught up {} after the load; audit took {:.1} s.",
                    a.events,
                    a.reservations_in_log,
                    a.accepted_checked,
                    a.read_model_audited,
                    a.rows_compared,
                    a.cached_resources_compared,
                    a.projection_caught_up_s
                        .map_or_else(|| "not within the wait".to_owned(), |s| format!("{s:.1} s")),
                    a.took_s
                );
                for (kind, count) in &a.violations {
                    let _ = writeln!(out, "- {kind}: {count}");
                }
                for example in a.examples.iter().take(10) {
                    let _ = writeln!(out, "  - `{}`", serde_json::to_string(example).unwrap_or_default());
                }
            }
            (None, Some(error)) => {
                let _ = writeln!(out, "**could not run**: {error}");
            }
            (None, None) => out.push_str("skipped (`--no-audit`)\n"),
        }
        if !self.plots.is_empty() {
            out.push_str("\n## plots\n\n");
            for plot in &self.plots {
                let _ = writeln!(out, "![{plot}]({plot})");
            }
        }
        out
    }
}

/// Rates of the recorded steps and, with an audit and a baseline, end to end.
fn throughput(
    summary: &Summary,
    pending: &PendingSettled,
    audit: Option<&AuditReport>,
    baselines: Option<&Baselines>,
) -> Throughput {
    let load_s: f64 = summary.steps.iter().map(|s| s.duration_s).sum();
    let (mut decisions, mut accepted) = (0_u64, 0_u64);
    for step in &summary.steps {
        for op in step.ops.values() {
            for (status, count) in &op.status {
                let code: u16 = status.parse().unwrap_or(0);
                if is_decision(code) {
                    decisions += count;
                }
                if (200..300).contains(&code) && code != 202 {
                    accepted += count;
                }
            }
        }
        // Reads answer 200 too but write nothing.
        for read in ["read", "ryw"] {
            if let Some(op) = step.ops.get(read) {
                accepted = accepted.saturating_sub(op.status.get("200").copied().unwrap_or(0));
            }
        }
    }
    // Holds answered 202 and accepted in the end were decided during the load too.
    accepted += pending.accepted;
    decisions += pending.accepted + pending.rejected;
    #[allow(clippy::cast_precision_loss, reason = "counts are far below 2^53")]
    let per_s = |n: u64, s: f64| if s > 0.0 { n as f64 / s } else { 0.0 };
    let end_to_end_per_s =
        audit.and_then(|a| a.projection_caught_up_s).map(|catch_up| per_s(accepted, load_s + catch_up));
    let produce = baselines.and_then(|b| b.produce.as_ref()).map(|p| p.events_per_s).filter(|r| *r > 0.0);
    let efficiency = produce.map(|raw| end_to_end_per_s.unwrap_or_else(|| per_s(accepted, load_s)) / raw);
    Throughput {
        load_s,
        decisions_per_s: per_s(decisions, load_s),
        accepted_per_s: per_s(accepted, load_s),
        end_to_end_per_s,
        efficiency,
    }
}
