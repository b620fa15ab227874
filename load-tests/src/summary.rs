//! The report of a run: a serializable [`Summary`] (`summary.json`) and its Markdown form
//! (`summary.md`, the table printed at the end).
//!
//! Everything here is pure: built from the records, rendered to strings. Writing files is
//! [`crate::output`]'s job.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::client::problem_code;
use crate::record::{OpStats, PhaseStats};
use crate::schedule::Phase;
use crate::workload::Op;

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Random id of this run (also the start of every idempotency key it sent).
    pub run_id: String,
    /// Base URL of the command service.
    pub target: String,
    /// When the schedule started, warm-up included (RFC 3339, UTC).
    pub started_at: String,
    /// The workload's settings.
    pub settings: Settings,
    /// Whether ctrl-c or SIGTERM ended the run before its schedule did.
    pub stopped_early: bool,
    /// Request tasks that failed inside the generator (a bug in it; their requests are not
    /// recorded).
    pub generator_errors: u64,
    /// Defining the resources (closed loop, latency from the actual send).
    pub define: OpSummary,
    /// Each recorded step.
    pub steps: Vec<StepSummary>,
    /// What became of the holds the service accepted.
    pub accepted_reservations: AcceptedSummary,
}

/// The settings a run used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// Resource-id prefix.
    pub prefix: String,
    /// Resources defined.
    pub resources: u32,
    /// Capacity per slot of each.
    pub capacity: u32,
    /// Zipf exponent over resources.
    pub zipf: f64,
    /// Operation mix.
    pub mix: String,
    /// Longest hold in days.
    pub days_max: u8,
    /// Days a hold may start on.
    pub date_window: u16,
    /// Largest quantity.
    pub quantity_max: u32,
    /// Hold TTL sent, if any.
    pub hold_seconds: Option<u32>,
    /// In-flight limit.
    pub max_in_flight: u32,
    /// Warm-up length in seconds.
    pub warmup_s: f64,
    /// Per-request timeout in seconds.
    pub timeout_s: f64,
    /// Seed of the random choices.
    pub seed: u64,
}

/// One recorded step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepSummary {
    /// `step 2: 1670/s for 60s`.
    pub label: String,
    /// Arrival rate.
    pub offered_rps: f64,
    /// Length in seconds.
    pub duration_s: f64,
    /// Requests the schedule meant to start.
    pub scheduled: u64,
    /// Requests started.
    pub started: u64,
    /// Requests not started because the in-flight limit was reached.
    pub dropped: u64,
    /// Requests of this step that got a response (whenever it came).
    pub responses: u64,
    /// Requests of this step that got no response.
    pub transport_errors: u64,
    /// Responses with a 5xx status.
    pub server_errors: u64,
    /// Confirms, cancels or read-your-writes reads sent as holds because no accepted
    /// reservation was free (or, for reads, accepted yet).
    pub fallback_holds: u64,
    /// Requests (of any step) finished within this step's window.
    pub finished_in_window: u64,
    /// `finished_in_window` per second: the throughput the service sustained.
    pub achieved_rps: f64,
    /// Per operation that was sent, by name (`hold`, `confirm`, `cancel`, `read`, `ryw`).
    pub ops: BTreeMap<String, OpSummary>,
}

/// One operation's latency and answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpSummary {
    /// Responses.
    pub count: u64,
    /// Latency of the responses, from intended start to the end of the body.
    pub latency_ms: Latency,
    /// Responses by status.
    pub status: BTreeMap<String, u64>,
    /// Non-2xx responses by problem `type` URI.
    pub problems: BTreeMap<String, u64>,
    /// Requests without a response, by kind.
    pub transport_errors: BTreeMap<String, u64>,
}

/// Latency percentiles in milliseconds (microsecond resolution).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p99_9: f64,
    /// Largest.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

/// What became of the accepted holds (listed one per line in `accepted.jsonl`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptedSummary {
    /// Holds answered 2xx with a reservation id (warm-up included).
    pub accepted: u64,
    /// Still held as far as this run knows.
    pub held: u64,
    /// Confirmed.
    pub confirmed: u64,
    /// Cancelled.
    pub cancelled: u64,
    /// Found expired by a confirm or cancel.
    pub expired: u64,
    /// A later request's outcome is unknown.
    pub uncertain: u64,
    /// Holds answered 202 (decided later; listed in `pending.jsonl`).
    pub pending_holds: u64,
    /// Holds answered 503 (the append failed or was fenced; listed in `pending.jsonl`).
    #[serde(default)]
    pub unavailable_holds: u64,
}

impl Latency {
    /// Percentiles of a histogram of microseconds; all zero when it is empty.
    #[must_use]
    pub fn of(histogram: &Histogram<u64>) -> Self {
        if histogram.is_empty() {
            return Self::default();
        }
        #[allow(clippy::cast_precision_loss, reason = "latencies are far below 2^53 µs")]
        let ms = |micros: u64| micros as f64 / 1000.0;
        let at = |q: f64| ms(histogram.value_at_quantile(q));
        Self {
            p50: at(0.5),
            p90: at(0.9),
            p95: at(0.95),
            p99: at(0.99),
            p99_9: at(0.999),
            max: ms(histogram.max()),
            mean: (histogram.mean()).round() / 1000.0,
        }
    }
}

impl OpSummary {
    /// The summary of `stats`.
    #[must_use]
    pub fn of(stats: &OpStats) -> Self {
        Self {
            count: stats.responses(),
            latency_ms: Latency::of(&stats.latency),
            status: stats.status.iter().map(|(s, n)| (s.to_string(), *n)).collect(),
            problems: stats.problems.clone(),
            transport_errors: stats.transport.iter().map(|(k, n)| ((*k).to_owned(), *n)).collect(),
        }
    }

    /// `201 × 80, 409 × 3 (insufficient-capacity × 3), timeout × 1`.
    #[must_use]
    pub fn answers(&self) -> String {
        let mut text = self.status.iter().map(|(s, n)| format!("{s} × {n}")).collect::<Vec<_>>().join(", ");
        if !self.problems.is_empty() {
            let problems: Vec<String> =
                self.problems.iter().map(|(t, n)| format!("{} × {n}", problem_code(t))).collect();
            let _ = write!(text, " ({})", problems.join(", "));
        }
        for (kind, n) in &self.transport_errors {
            let separator = if text.is_empty() { "" } else { ", " };
            let _ = write!(text, "{separator}{kind} × {n}");
        }
        if text.is_empty() { "—".to_owned() } else { text }
    }
}

impl StepSummary {
    /// The summary of `phase` from its records.
    #[must_use]
    pub fn of(phase: &Phase, stats: &PhaseStats) -> Self {
        let seconds = phase.duration.as_secs_f64();
        #[allow(clippy::cast_precision_loss, reason = "counts are far below 2^53")]
        let achieved = if seconds > 0.0 { stats.finished_in_window as f64 / seconds } else { 0.0 };
        let ops = Op::WORKLOAD
            .iter()
            .filter_map(|op| stats.op(*op).map(|s| (op, s)))
            .filter(|(_, s)| s.responses() + s.transport_errors() > 0)
            .map(|(op, s)| (op.name().to_owned(), OpSummary::of(s)))
            .collect();
        Self {
            label: phase.label.clone(),
            offered_rps: phase.rate,
            duration_s: seconds,
            scheduled: stats.scheduled,
            started: stats.started,
            dropped: stats.dropped,
            responses: stats.ops.iter().map(OpStats::responses).sum(),
            transport_errors: stats.ops.iter().map(OpStats::transport_errors).sum(),
            server_errors: stats.ops.iter().map(OpStats::server_errors).sum(),
            fallback_holds: stats.fallback_holds,
            finished_in_window: stats.finished_in_window,
            achieved_rps: (achieved * 10.0).round() / 10.0,
            ops,
        }
    }
}

impl StepSummary {
    /// The operations that were sent, in the order hold, confirm, cancel, read, ryw.
    pub fn ops_in_order(&self) -> impl Iterator<Item = (&'static str, &OpSummary)> {
        Op::WORKLOAD.iter().filter_map(|op| self.ops.get(op.name()).map(|summary| (op.name(), summary)))
    }
}

/// Header and separator of a latency table.
const LATENCY_HEADER: &str = "| op | count | p50 ms | p90 ms | p95 ms | p99 ms | p99.9 ms | max ms |\n\
                              |---|--:|--:|--:|--:|--:|--:|--:|\n";

/// One row of a latency table.
fn latency_row(out: &mut String, op: &str, summary: &OpSummary) {
    let l = summary.latency_ms;
    let _ = writeln!(
        out,
        "| {op} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
        summary.count, l.p50, l.p90, l.p95, l.p99, l.p99_9, l.max
    );
}

impl Summary {
    /// The report as Markdown: settings, then per step a latency table and the answers.
    #[must_use]
    pub fn to_markdown(&self) -> String {
        let s = &self.settings;
        let mut out = String::new();
        let _ = writeln!(out, "# holdfast-load run {}\n", self.run_id);
        let stopped = if self.stopped_early { " (stopped early)" } else { "" };
        let _ = writeln!(out, "- target: {}, started {}{stopped}", self.target, self.started_at);
        let hold = s.hold_seconds.map_or_else(|| "service default".to_owned(), |h| format!("{h} s"));
        let _ = writeln!(
            out,
            "- workload: {} resources `{}-r*` × capacity {}, zipf {}, mix {}, 1..={} days within {} days, \
             quantity 1..={}, hold TTL {hold}",
            s.resources, s.prefix, s.capacity, s.zipf, s.mix, s.days_max, s.date_window, s.quantity_max
        );
        let _ = writeln!(
            out,
            "- limits: {} in flight, timeout {} s, warm-up {} s, seed {}",
            s.max_in_flight, s.timeout_s, s.warmup_s, s.seed
        );
        for step in &self.steps {
            let _ = writeln!(out, "\n## {}\n", step.label);
            let _ = writeln!(
                out,
                "offered {:.1}/s, achieved {:.1}/s: {} scheduled, {} started, {} dropped, {} responses, \
                 {} transport errors, {} 5xx, {} confirms/cancels/ryw reads sent as holds\n",
                step.offered_rps,
                step.achieved_rps,
                step.scheduled,
                step.started,
                step.dropped,
                step.responses,
                step.transport_errors,
                step.server_errors,
                step.fallback_holds
            );
            out.push_str(LATENCY_HEADER);
            for (op, summary) in step.ops_in_order() {
                latency_row(&mut out, op, summary);
            }
            out.push_str("\n| op | answers |\n|---|---|\n");
            for (op, summary) in step.ops_in_order() {
                let _ = writeln!(out, "| {op} | {} |", summary.answers());
            }
        }
        let _ = writeln!(out, "\n## set-up\n");
        out.push_str(LATENCY_HEADER);
        latency_row(&mut out, "define", &self.define);
        let _ = writeln!(out, "\nanswers: {}", self.define.answers());
        let a = &self.accepted_reservations;
        let _ = writeln!(
            out,
            "\n## accepted reservations\n\n{} holds accepted: {} held, {} confirmed, {} cancelled, {} expired, \
             {} uncertain; {} holds answered 202 (pending), {} answered 503 (unavailable). Listed in \
             `accepted.jsonl` and `pending.jsonl`.",
            a.accepted,
            a.held,
            a.confirmed,
            a.cancelled,
            a.expired,
            a.uncertain,
            a.pending_holds,
            a.unavailable_holds
        );
        out
    }
}

#[cfg(test)]
mod tests;
