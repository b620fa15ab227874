//! A run's figures beside the raw baselines measured right before it on the same machine,
//! and beside a peer's figure: the ratios that say how close Holdfast gets to what Kafka does
//! with nothing in between, and how it compares with an event-sourcing library on the same
//! machine.
//!
//! Everything here is pure: built from the summary, the timeline and the baselines.

use serde::{Deserialize, Serialize};

use crate::report::Baselines;
use crate::summary::Summary;
use crate::timeline::Timeline;

/// Decisions per second of the peer, an event-sourced command side built on `cqrs-es` with
/// `postgres-es` (events in PostgreSQL), as measured earlier on this machine (the 2-core
/// development box) for the issue that moved the command path to single writers. A constant,
/// not measured per run: the peer is not part of this repository, so its figure only means
/// something beside runs on the same machine.
pub const PEER_DECISIONS_PER_S: f64 = 1_150.0;

/// The run's figures at its best recorded step, and the ratios.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// The recorded step the figures are taken from: the one with the most decisions per
    /// second.
    pub step: String,
    /// Its offered rate (requests/s).
    pub offered_per_s: f64,
    /// Decisions (answers but 202, 429, 5xx or none) that finished within the step's window,
    /// per second of it.
    pub decided_per_s: f64,
    /// Median latency of the step's holds (ms).
    pub hold_p50_ms: Option<f64>,
    /// 99th percentile of the same (ms).
    pub hold_p99_ms: Option<f64>,
    /// 99th percentile of one raw idempotent append, measured before the load (ms).
    pub append_p99_ms: Option<f64>,
    /// `hold_p99_ms / append_p99_ms`: how many raw appends' worth of time a hold takes at
    /// the 99th percentile.
    pub p99_over_append_p99: Option<f64>,
    /// Producers of the raw produce baseline compared with: as many as the command service
    /// appends through, or the most measured when that count was not.
    pub raw_producers: Option<usize>,
    /// That baseline's acknowledged records per second.
    pub raw_produce_per_s: Option<f64>,
    /// `decided_per_s / raw_produce_per_s`: the share of raw Kafka's append rate Holdfast
    /// turns into decisions.
    pub decided_over_raw_produce: Option<f64>,
    /// [`PEER_DECISIONS_PER_S`].
    pub peer_decisions_per_s: f64,
    /// `decided_per_s / peer_decisions_per_s`.
    pub decided_over_peer: f64,
}

/// The comparison at the recorded step with the most decisions per second; `None` when no
/// step was recorded. `append_producers` is the command service's producer count.
#[must_use]
pub fn compare(
    summary: &Summary,
    timeline: &Timeline,
    baselines: Option<&Baselines>,
    append_producers: usize,
) -> Option<Comparison> {
    let (span, decided_per_s) = timeline
        .steps
        .iter()
        .map(|span| (span, decided_per_s(timeline, span.from_s, span.to_s)))
        .max_by(|a, b| a.1.total_cmp(&b.1))?;
    let hold = summary
        .steps
        .iter()
        .find(|step| step.label == span.label)
        .and_then(|step| step.ops.get("hold"))
        .filter(|hold| hold.count > 0)
        .map(|hold| hold.latency_ms);
    let append_p99_ms = baselines.and_then(|b| b.append.as_ref()).map(|a| a.p99_ms);
    let raw = baselines.and_then(|b| b.produce_with(append_producers));
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    };
    let hold_p99_ms = hold.map(|l| l.p99);
    let raw_produce_per_s = raw.map(|r| r.records_per_s);
    Some(Comparison {
        step: span.label.clone(),
        offered_per_s: span.rate,
        decided_per_s,
        hold_p50_ms: hold.map(|l| l.p50),
        hold_p99_ms,
        append_p99_ms,
        p99_over_append_p99: ratio(hold_p99_ms, append_p99_ms),
        raw_producers: raw.map(|r| r.producers),
        raw_produce_per_s,
        decided_over_raw_produce: ratio(Some(decided_per_s), raw_produce_per_s),
        peer_decisions_per_s: PEER_DECISIONS_PER_S,
        decided_over_peer: decided_per_s / PEER_DECISIONS_PER_S,
    })
}

/// Decisions that finished in `[from_s, to_s)`, per second.
fn decided_per_s(timeline: &Timeline, from_s: f64, to_s: f64) -> f64 {
    let seconds = to_s - from_s;
    if seconds <= 0.0 {
        return 0.0;
    }
    let decided: u64 = timeline.seconds.iter().filter(|s| s.t >= from_s && s.t < to_s).map(|s| s.ok).sum();
    #[allow(clippy::cast_precision_loss, reason = "counts are far below 2^53")]
    let decided = decided as f64;
    decided / seconds
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baseline::{AppendBaseline, ProduceBaseline};
    use crate::timeline::{Second, StepSpan};

    fn timeline() -> Timeline {
        let second = |t: f64, ok: u64| Second { t, ok, ..Second::default() };
        Timeline {
            // A warm-up second, then two steps of two seconds each.
            seconds: vec![
                second(0.0, 50),
                second(1.0, 100),
                second(2.0, 100),
                second(3.0, 300),
                second(4.0, 260),
            ],
            faults: Vec::new(),
            steps: vec![
                StepSpan { label: "step 1".into(), from_s: 1.0, to_s: 3.0, rate: 100.0 },
                StepSpan { label: "step 2".into(), from_s: 3.0, to_s: 5.0, rate: 400.0 },
            ],
        }
    }

    fn produce(producers: usize, records_per_s: f64) -> ProduceBaseline {
        ProduceBaseline {
            records_per_s,
            producers,
            event_bytes: 281,
            partitions: 480,
            seconds: 10.0,
            records: 1,
            warmup_records: 480,
        }
    }

    fn baselines() -> Baselines {
        Baselines {
            warmup_records: 1,
            append: Some(AppendBaseline {
                appends: 2_000,
                p50_ms: 0.8,
                p99_ms: 4.0,
                max_ms: 9.0,
                mean_ms: 1.0,
                event_bytes: 281,
                partitions: 480,
                seconds: 2.0,
                warmup_records: 480,
            }),
            produce: vec![produce(1, 14_000.0), produce(2, 28_000.0)],
            kafka_error: None,
            upsert: None,
            upsert_error: None,
        }
    }

    fn summary() -> Summary {
        let json = serde_json::json!({
            "run_id": "r", "target": "t", "started_at": "s",
            "settings": {"prefix": "p", "resources": 1, "capacity": 1, "zipf": 0.0, "mix": "hold=1",
                         "days_max": 1, "date_window": 1, "quantity_max": 1, "hold_seconds": null,
                         "max_in_flight": 1, "warmup_s": 1.0, "timeout_s": 1.0, "seed": 1},
            "stopped_early": false, "generator_errors": 0,
            "define": {"count": 0, "latency_ms": {"p50": 0.0, "p90": 0.0, "p95": 0.0, "p99": 0.0, "p99_9": 0.0,
                        "max": 0.0, "mean": 0.0}, "status": {}, "problems": {}, "transport_errors": {}},
            "steps": [
                {"label": "step 1", "offered_rps": 100.0, "duration_s": 2.0, "scheduled": 200, "started": 200,
                 "dropped": 0, "responses": 200, "transport_errors": 0, "server_errors": 0, "fallback_holds": 0,
                 "finished_in_window": 200, "achieved_rps": 100.0, "ops": {}},
                {"label": "step 2", "offered_rps": 400.0, "duration_s": 2.0, "scheduled": 800, "started": 800,
                 "dropped": 0, "responses": 560, "transport_errors": 0, "server_errors": 0, "fallback_holds": 0,
                 "finished_in_window": 560, "achieved_rps": 280.0,
                 "ops": {"hold": {"count": 560,
                          "latency_ms": {"p50": 2.0, "p90": 5.0, "p95": 6.0, "p99": 12.0, "p99_9": 20.0,
                                         "max": 30.0, "mean": 3.0},
                          "status": {"201": 560}, "problems": {}, "transport_errors": {}}}}
            ],
            "accepted_reservations": {"accepted": 0, "held": 0, "confirmed": 0, "cancelled": 0, "expired": 0,
                                      "uncertain": 0, "pending_holds": 0}
        });
        serde_json::from_value(json).expect("a summary")
    }

    #[test]
    fn ratios_are_taken_at_the_step_with_the_most_decisions() {
        let compared = compare(&summary(), &timeline(), Some(&baselines()), 2).expect("a step");
        assert_eq!(compared.step, "step 2");
        assert!((compared.decided_per_s - 280.0).abs() < 1e-9, "{compared:?}");
        assert_eq!((compared.hold_p50_ms, compared.hold_p99_ms), (Some(2.0), Some(12.0)));
        assert_eq!(compared.p99_over_append_p99, Some(3.0));
        assert_eq!((compared.raw_producers, compared.raw_produce_per_s), (Some(2), Some(28_000.0)));
        assert_eq!(compared.decided_over_raw_produce, Some(0.01));
        assert!((compared.decided_over_peer - 280.0 / 1_150.0).abs() < 1e-12);
    }

    #[test]
    fn the_produce_baseline_matches_the_services_producers_or_is_the_largest() {
        let with_one = compare(&summary(), &timeline(), Some(&baselines()), 1).expect("a step");
        assert_eq!(with_one.raw_producers, Some(1));
        let with_four = compare(&summary(), &timeline(), Some(&baselines()), 4).expect("a step");
        assert_eq!(with_four.raw_producers, Some(2), "not measured with 4: the most measured");
        let without = compare(&summary(), &timeline(), None, 2).expect("a step");
        assert_eq!((without.append_p99_ms, without.decided_over_raw_produce), (None, None));
        assert!(compare(&summary(), &Timeline::default(), None, 2).is_none(), "no step, no comparison");
    }
}
