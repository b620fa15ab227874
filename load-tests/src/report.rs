//! The full report of a run (`report.json`, `report.md` and the plots): the load's summary,
//! the audit's verdict, the baselines and the run's figures beside them ([`crate::compare`]),
//! the faults with their error bursts and recovery times, the handover of the command
//! service's partitions through its faults ([`crate::handover`]), the machine, and the run
//! second by second.

use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::LoadError;
use crate::audit::AuditReport;
use crate::baseline::{AppendBaseline, BaselineError, KafkaBaselines, ProduceBaseline, UpsertBaseline};
use crate::client::is_decision;
use crate::compare::{Comparison, compare};
use crate::driver::{PendingSettled, Settled};
use crate::handover::Handover;
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
    /// Records written to warm the Kafka baselines' fresh topic up, unmeasured.
    #[serde(default)]
    pub warmup_records: u64,
    /// One raw idempotent append at a time: latency.
    pub append: Option<AppendBaseline>,
    /// Raw idempotent produce of events of the same size, per producer count: records/s.
    pub produce: Vec<ProduceBaseline>,
    /// Why the Kafka baselines are missing.
    pub kafka_error: Option<String>,
    /// Raw batched upserts into PostgreSQL.
    pub upsert: Option<UpsertBaseline>,
    /// Why it is missing.
    pub upsert_error: Option<String>,
}

impl Baselines {
    /// From the two measurements.
    #[must_use]
    pub fn new(
        kafka: Result<KafkaBaselines, BaselineError>,
        upsert: Result<UpsertBaseline, BaselineError>,
    ) -> Self {
        let (kafka, kafka_error) = split(kafka);
        let (upsert, upsert_error) = split(upsert);
        let (warmup_records, append, produce) =
            kafka.map_or((0, None, Vec::new()), |k| (k.warmup_records, Some(k.append), k.produce));
        Self { warmup_records, append, produce, kafka_error, upsert, upsert_error }
    }

    /// The produce baseline with `producers` producers, or the one with the most when that
    /// count was not measured.
    #[must_use]
    pub fn produce_with(&self, producers: usize) -> Option<&ProduceBaseline> {
        self.produce
            .iter()
            .find(|p| p.producers == producers)
            .or_else(|| self.produce.iter().max_by_key(|p| p.producers))
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
    /// Answers that were decisions (2xx, 4xx but 429), per second of load, holds answered
    /// 202 and decided in the end included.
    pub decisions_per_s: f64,
    /// Holds, confirms and cancels answered 2xx (each one event in the log), per second,
    /// holds answered 202 and accepted in the end included.
    pub accepted_per_s: f64,
    /// Accepted decisions per second until the projection had applied them all (load plus
    /// the audit's catch-up time): accepted, appended and projected, end to end. `None`
    /// when the projection did not catch up or was not audited.
    pub end_to_end_per_s: Option<f64>,
    /// Requests of the recorded steps answered 202 (queued, decided later).
    #[serde(default)]
    pub answered_202: u64,
    /// Requests of the recorded steps answered 503 (the append failed or was fenced, or the
    /// service was not ready).
    #[serde(default)]
    pub answered_503: u64,
}

/// The audit's verdict, or why there is none.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditOutcome {
    /// The verdict; `None` when skipped or when it could not run.
    pub audit: Option<AuditReport>,
    /// Why it could not run.
    pub error: Option<String>,
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
    /// What became of the holds answered 503, asked again after the load.
    #[serde(default)]
    pub unavailable: PendingSettled,
    /// Rates.
    pub throughput: Throughput,
    /// The best recorded step's figures beside the baselines and the peer.
    #[serde(default)]
    pub comparison: Option<Comparison>,
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
    /// How long the partitions each command-service fault disturbed took to answer again;
    /// `None` without such faults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handover: Option<Handover>,
    /// Plot files written next to the report.
    pub plots: Vec<String>,
}

impl RunReport {
    /// The report of a finished run; `append_producers` is the command service's producer
    /// count (which produce baseline its decisions are compared with).
    #[must_use]
    pub fn new(
        summary: Summary,
        settled: Settled,
        timeline: Timeline,
        audited: AuditOutcome,
        baselines: Option<Baselines>,
        append_producers: usize,
    ) -> Self {
        let AuditOutcome { audit, error: audit_error } = audited;
        let throughput = throughput(&summary, &settled.pending, audit.as_ref());
        let comparison = compare(&summary, &timeline, baselines.as_ref(), append_producers);
        Self {
            summary,
            pending: settled.pending,
            unavailable: settled.unavailable,
            throughput,
            comparison,
            audit,
            audit_error,
            baselines,
            machine: Machine::this(),
            timeline,
            handover: None,
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
             (accepted, appended and projected): {}; {} requests answered 202, {} answered 503",
            t.decisions_per_s,
            t.accepted_per_s,
            t.load_s,
            t.end_to_end_per_s.map_or_else(|| "n/a".to_owned(), |r| format!("{r:.1}/s")),
            t.answered_202,
            t.answered_503,
        );
        for (answer, settled, then) in [
            ("202 (queued, decided later)", &self.pending, "audited with the others"),
            ("503 (append failed or fenced)", &self.unavailable, "audited with the others"),
        ] {
            if settled.pending > 0 {
                let _ = writeln!(
                    out,
                    "\n{} holds were answered {answer}; asked again with their idempotency keys after the \
                     load: {} accepted ({then}), {} refused, {} still undecided.",
                    settled.pending, settled.accepted, settled.rejected, settled.undecided
                );
            }
        }
        if let Some(b) = &self.baselines {
            baselines_markdown(&mut out, b);
        }
        if let Some(c) = &self.comparison {
            comparison_markdown(&mut out, c);
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
        if let Some(handover) = &self.handover {
            handover.markdown(&mut out);
        }
        out.push_str("\n## audit\n\n");
        match (&self.audit, &self.audit_error) {
            (Some(a), _) => audit_markdown(&mut out, a),
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

/// The baselines section.
fn baselines_markdown(out: &mut String, b: &Baselines) {
    out.push_str("\n## baselines (same machine, right before the load)\n\n");
    if b.warmup_records > 0 {
        let _ = writeln!(
            out,
            "Kafka baselines on a fresh topic after {} records of warm-up:\n",
            b.warmup_records
        );
    }
    if let Some(a) = &b.append {
        let _ = writeln!(
            out,
            "- single idempotent append (acks=all, linger 0), one at a time: **p50 {:.2} ms, p99 {:.2} ms**, \
             max {:.2} ms, mean {:.2} ms ({} appends of {} bytes over {} partitions, {:.1} s)",
            a.p50_ms, a.p99_ms, a.max_ms, a.mean_ms, a.appends, a.event_bytes, a.partitions, a.seconds
        );
    }
    for p in &b.produce {
        let _ = writeln!(
            out,
            "- raw idempotent produce, {} producer{}: **{:.0} records/s** ({} records of {} bytes over {} \
             partitions, {:.1} s)",
            p.producers,
            if p.producers == 1 { "" } else { "s" },
            p.records_per_s,
            p.records,
            p.event_bytes,
            p.partitions,
            p.seconds
        );
    }
    if let Some(error) = &b.kafka_error {
        let _ = writeln!(out, "- raw Kafka baselines: failed: {error}");
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
            let _ = writeln!(out, "- raw PostgreSQL upsert: failed: {}", error.as_deref().unwrap_or("?"));
        }
    }
}

/// The comparison section.
fn comparison_markdown(out: &mut String, c: &Comparison) {
    let num =
        |v: Option<f64>, precision: usize| v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.precision$}"));
    let _ = writeln!(
        out,
        "\n## against the baselines ({}, offered {:.0}/s)\n\n\
         | figure | value | baseline | ratio |\n|---|--:|--:|--:|\n\
         | hold p99 ms ÷ single-append p99 ms | {} | {} | {} |\n\
         | decisions/s ÷ raw produce records/s ({} producers) | {:.0} | {} | {} |\n\
         | decisions/s ÷ peer (cqrs-es + postgres-es) | {:.0} | {:.0} | {:.2} |",
        c.step,
        c.offered_per_s,
        num(c.hold_p99_ms, 1),
        num(c.append_p99_ms, 2),
        num(c.p99_over_append_p99, 1),
        c.raw_producers.map_or_else(|| "n/a".to_owned(), |n| n.to_string()),
        c.decided_per_s,
        num(c.raw_produce_per_s, 0),
        num(c.decided_over_raw_produce, 3),
        c.decided_per_s,
        c.peer_decisions_per_s,
        c.decided_over_peer,
    );
}

/// The audit's verdict.
fn audit_markdown(out: &mut String, a: &AuditReport) {
    let verdict = if a.passed { "**passed**" } else { "**FAILED**" };
    let _ = writeln!(
        out,
        "{verdict}: {} valid events read from the log, {} reservations in it, {} accepted holds checked; \
         read model audited: {}, {} PostgreSQL rows and {} Redis resources compared; projection caught up {} \
         after the load; audit took {:.1} s.",
        a.events,
        a.reservations_in_log,
        a.accepted_checked,
        a.read_model_audited,
        a.rows_compared,
        a.cached_resources_compared,
        a.projection_caught_up_s.map_or_else(|| "not within the wait".to_owned(), |s| format!("{s:.1} s")),
        a.took_s
    );
    let void = if a.void.is_empty() {
        String::new()
    } else {
        let reasons: Vec<String> = a.void.iter().map(|(why, n)| format!("{why} {n}")).collect();
        format!(" ({})", reasons.join(", "))
    };
    let _ = writeln!(
        out,
        "\nThe log also holds {} claims, {} recorded rejections and {} void records{void}: void records \
         (a fenced writer's, or after a failed append) are skipped by every reader and are no violation.\n",
        a.claims, a.rejected, a.void_total
    );
    for (kind, count) in &a.violations {
        let _ = writeln!(out, "- {kind}: {count}");
    }
    for example in a.examples.iter().take(10) {
        let _ = writeln!(out, "  - `{}`", serde_json::to_string(example).unwrap_or_default());
    }
}

/// Rates of the recorded steps and, with an audit, end to end.
fn throughput(summary: &Summary, pending: &PendingSettled, audit: Option<&AuditReport>) -> Throughput {
    let load_s: f64 = summary.steps.iter().map(|s| s.duration_s).sum();
    let (mut decisions, mut accepted, mut answered_202, mut answered_503) = (0_u64, 0_u64, 0_u64, 0_u64);
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
                match code {
                    202 => answered_202 += count,
                    503 => answered_503 += count,
                    _ => {}
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
    // Holds answered 202 and decided in the end were decided during the load too (from the
    // commands topic). Holds answered 503 are not counted: their decision may have been made
    // only when they were asked again, after the load.
    accepted += pending.accepted;
    decisions += pending.accepted + pending.rejected;
    #[allow(clippy::cast_precision_loss, reason = "counts are far below 2^53")]
    let per_s = |n: u64, s: f64| if s > 0.0 { n as f64 / s } else { 0.0 };
    let end_to_end_per_s =
        audit.and_then(|a| a.projection_caught_up_s).map(|catch_up| per_s(accepted, load_s + catch_up));
    Throughput {
        load_s,
        decisions_per_s: per_s(decisions, load_s),
        accepted_per_s: per_s(accepted, load_s),
        end_to_end_per_s,
        answered_202,
        answered_503,
    }
}
