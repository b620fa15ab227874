//! What a run measured: per phase and operation, an HDR latency histogram (microseconds,
//! three significant digits) and counts by status, problem type and transport error.
//!
//! Recording is a few array and map updates, done by the driver's single loop, so no lock is
//! needed. Turning the records into a report is [`crate::summary`]'s job.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::client::Answer;
use crate::workload::Op;

/// Largest latency a histogram tells apart (1 h); longer ones are recorded as 1 h.
const HIGHEST_MICROS: u64 = 3_600_000_000;

/// A histogram of microseconds from 1 µs to 1 h with three significant digits.
///
/// # Panics
/// Never: the bounds are constants that hdrhistogram accepts.
#[must_use]
pub fn histogram() -> Histogram<u64> {
    #[allow(clippy::expect_used, reason = "constant, valid bounds")]
    Histogram::new_with_bounds(1, HIGHEST_MICROS, 3).expect("valid histogram bounds")
}

/// `latency` in whole microseconds (at least 1, the histogram's lowest value).
#[must_use]
pub fn micros(latency: Duration) -> u64 {
    u64::try_from(latency.as_micros()).unwrap_or(u64::MAX).max(1)
}

/// Everything recorded about one operation in one phase.
#[derive(Debug, Clone)]
pub struct OpStats {
    /// Latency of every request that got a response, from its intended start.
    pub latency: Histogram<u64>,
    /// Responses by HTTP status.
    pub status: BTreeMap<u16, u64>,
    /// Non-2xx responses by problem `type` URI.
    pub problems: BTreeMap<String, u64>,
    /// Requests without a response, by kind.
    pub transport: BTreeMap<&'static str, u64>,
}

impl Default for OpStats {
    fn default() -> Self {
        Self {
            latency: histogram(),
            status: BTreeMap::new(),
            problems: BTreeMap::new(),
            transport: BTreeMap::new(),
        }
    }
}

impl OpStats {
    /// Records one finished request.
    pub fn record(&mut self, latency: Duration, answer: &Answer) {
        match answer {
            Answer::Response { status, problem, .. } => {
                self.latency.saturating_record(micros(latency));
                *self.status.entry(*status).or_default() += 1;
                if let Some(problem) = problem {
                    // Look up by &str first: a new String only for a type not seen before.
                    match self.problems.get_mut(&**problem) {
                        Some(count) => *count += 1,
                        None => {
                            self.problems.insert(problem.to_string(), 1);
                        }
                    }
                }
            }
            Answer::Transport(kind) => *self.transport.entry(kind).or_default() += 1,
        }
    }

    /// Responses received.
    #[must_use]
    pub fn responses(&self) -> u64 {
        self.status.values().sum()
    }

    /// Requests without a response.
    #[must_use]
    pub fn transport_errors(&self) -> u64 {
        self.transport.values().sum()
    }

    /// Responses with a 5xx status.
    #[must_use]
    pub fn server_errors(&self) -> u64 {
        self.status.range(500..).map(|(_, n)| n).sum()
    }
}

/// Everything recorded about one phase.
#[derive(Debug, Clone, Default)]
pub struct PhaseStats {
    /// Requests the schedule meant to start in this phase.
    pub scheduled: u64,
    /// Requests started.
    pub started: u64,
    /// Requests not started because the in-flight limit was reached.
    pub dropped: u64,
    /// Requests (of any phase) that finished inside this phase's time window.
    pub finished_in_window: u64,
    /// Confirms, cancels or read-your-writes reads that became holds because no accepted
    /// reservation was free (or, for reads, accepted yet).
    pub fallback_holds: u64,
    /// Per operation, in [`Op::WORKLOAD`] order.
    pub ops: [OpStats; Op::WORKLOAD.len()],
}

impl PhaseStats {
    /// Records a finished request of `op`.
    pub fn record(&mut self, op: Op, latency: Duration, answer: &Answer) {
        if let Some(stats) = self.ops.get_mut(op.index()) {
            stats.record(latency, answer);
        }
    }

    /// The stats of `op` (`None` for `Define`, recorded apart).
    #[must_use]
    pub fn op(&self, op: Op) -> Option<&OpStats> {
        self.ops.get(op.index())
    }

    /// Requests of this phase that finished (with or without a response).
    #[must_use]
    pub fn finished(&self) -> u64 {
        self.ops.iter().map(|s| s.responses() + s.transport_errors()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, problem: Option<&str>) -> Answer {
        Answer::Response { status, problem: problem.map(Into::into), reservation: None, location: None }
    }

    #[test]
    fn responses_and_transport_errors_are_counted_apart() {
        let mut stats = OpStats::default();
        stats.record(Duration::from_millis(5), &response(201, None));
        stats.record(
            Duration::from_millis(7),
            &response(409, Some("https://holdfast.dev/problems/insufficient-capacity")),
        );
        stats.record(
            Duration::from_millis(9),
            &response(409, Some("https://holdfast.dev/problems/insufficient-capacity")),
        );
        stats.record(Duration::from_millis(2), &response(503, Some("https://holdfast.dev/problems/timeout")));
        stats.record(Duration::from_secs(30), &Answer::Transport("timeout"));
        assert_eq!(stats.responses(), 4);
        assert_eq!(stats.latency.len(), 4, "no latency without a response");
        assert_eq!(stats.transport_errors(), 1);
        assert_eq!(stats.server_errors(), 1);
        assert_eq!(stats.status.get(&409), Some(&2));
        assert_eq!(stats.problems.get("https://holdfast.dev/problems/insufficient-capacity"), Some(&2));
        let max = stats.latency.max();
        assert!((9_000..9_010).contains(&max), "9 ms within three significant digits, got {max} µs");
    }

    #[test]
    fn define_is_not_a_phase_operation() {
        let mut phase = PhaseStats::default();
        phase.record(Op::Define, Duration::from_millis(1), &response(201, None));
        phase.record(Op::Cancel, Duration::from_millis(1), &response(200, None));
        assert_eq!(phase.finished(), 1);
        assert!(phase.op(Op::Define).is_none());
        assert_eq!(phase.op(Op::Cancel).map(OpStats::responses), Some(1));
    }

    #[test]
    fn reads_are_recorded_apart_from_commands() {
        let mut phase = PhaseStats::default();
        phase.record(Op::Read, Duration::from_millis(1), &response(200, None));
        phase.record(Op::Read, Duration::from_millis(1), &response(404, Some("x/unknown-resource")));
        phase.record(Op::Ryw, Duration::from_millis(3), &response(503, Some("x/position-not-reached")));
        assert_eq!(phase.finished(), 3);
        assert_eq!(phase.op(Op::Read).map(|s| s.status.clone()), Some([(200, 1), (404, 1)].into()));
        assert_eq!(phase.op(Op::Ryw).map(OpStats::server_errors), Some(1));
        assert_eq!(phase.op(Op::Hold).map(OpStats::responses), Some(0));
    }

    #[test]
    fn micros_never_record_zero() {
        assert_eq!(micros(Duration::ZERO), 1);
        assert_eq!(micros(Duration::from_micros(1500)), 1500);
    }
}
