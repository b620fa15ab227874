//! A run second by second: what was offered, what finished and how, latency percentiles of
//! the requests that finished in each second, the projection's lag as the workers reported it,
//! and the faults injected. The plots and the fault report are drawn from it.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::record::{histogram, micros};

/// One second of a run (`t` is its start, in seconds since the schedule began, warm-up
/// included).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Second {
    /// Start of this second since the schedule began.
    pub t: f64,
    /// Requests the schedule meant to start in this second (the offered load).
    pub offered: u64,
    /// Requests that finished in this second with a decision: 2xx, or a 4xx the service
    /// decided (409 insufficient capacity, 404 unknown…).
    pub ok: u64,
    /// Requests that finished in this second without a decision: 5xx, 202 (pending), 429,
    /// transport errors and timeouts.
    pub failed: u64,
    /// Requests due in this second that were dropped at the in-flight limit.
    pub dropped: u64,
    /// Median latency of the requests that finished in this second (ms; 0 when none did).
    pub p50_ms: f64,
    /// 99th percentile of the same (ms).
    pub p99_ms: f64,
    /// Largest latency of the same (ms).
    pub max_ms: f64,
    /// Events the projection workers reported as not yet applied, summed over partitions, at
    /// the end of this second; `None` when they could not be asked (not watched, or down).
    pub lag_events: Option<u64>,
}

/// A fault injected during the run and what it did to the answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultMark {
    /// What was done (`kill-command`, `stop-command`, `restart-kafka`…).
    pub kind: String,
    /// When it was injected, in seconds since the schedule began.
    pub at_s: f64,
    /// How long the injection itself took (a restart until the component was back; a pause
    /// until SIGCONT), in seconds.
    pub took_s: f64,
    /// Requests without a decision from `at_s` until recovery.
    pub failed: u64,
    /// Seconds from `at_s` to the end of the last second with a failed request before the
    /// next fault or the end of the run; 0 when no request failed.
    pub recovery_s: f64,
    /// Largest per-second p99 latency from `at_s` until recovery (ms).
    pub worst_p99_ms: f64,
    /// Whether the injection succeeded; the reason when it did not.
    pub error: Option<String>,
}

/// The whole run, second by second.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timeline {
    /// Every second from the schedule's start to the last finished request.
    pub seconds: Vec<Second>,
    /// Faults in the order they were injected.
    pub faults: Vec<FaultMark>,
    /// Where the recorded steps start and end (seconds since the schedule began), with their
    /// offered rate, for shading the plots.
    pub steps: Vec<StepSpan>,
}

/// A recorded step's place on the time axis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepSpan {
    /// Its label.
    pub label: String,
    /// Start (s).
    pub from_s: f64,
    /// End (s).
    pub to_s: f64,
    /// Offered rate (requests/s).
    pub rate: f64,
}

impl Timeline {
    /// Puts lag samples, each taken at the end of a second (`at` since the schedule began),
    /// into their seconds.
    pub fn add_lag(&mut self, samples: &[(Duration, Option<u64>)]) {
        for (at, events) in samples {
            let index = usize::try_from(at.as_secs().saturating_sub(1)).unwrap_or(usize::MAX);
            if let Some(second) = self.seconds.get_mut(index) {
                second.lag_events = *events;
            }
        }
    }
}

/// Collects the per-second records while a run goes on.
#[derive(Debug)]
pub struct Recorder {
    seconds: Vec<Bucket>,
}

/// A second being recorded.
#[derive(Debug)]
struct Bucket {
    offered: u64,
    ok: u64,
    failed: u64,
    dropped: u64,
    latency: Histogram<u64>,
}

impl Default for Bucket {
    fn default() -> Self {
        Self { offered: 0, ok: 0, failed: 0, dropped: 0, latency: histogram() }
    }
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    /// An empty record.
    #[must_use]
    pub fn new() -> Self {
        Self { seconds: Vec::new() }
    }

    /// The bucket of `since_start`, growing the record as needed.
    fn at(&mut self, since_start: Duration) -> &mut Bucket {
        let index = usize::try_from(since_start.as_secs()).unwrap_or(usize::MAX).min(24 * 3600);
        if self.seconds.len() <= index {
            self.seconds.resize_with(index + 1, Bucket::default);
        }
        &mut self.seconds[index]
    }

    /// A request was due at `since_start`; `dropped` when the in-flight limit refused it.
    pub fn offered(&mut self, since_start: Duration, dropped: bool) {
        let bucket = self.at(since_start);
        bucket.offered += 1;
        bucket.dropped += u64::from(dropped);
    }

    /// A request finished at `since_start` after `latency`; `decided` when the service gave
    /// an answer that is a decision.
    pub fn finished(&mut self, since_start: Duration, latency: Duration, decided: bool) {
        let bucket = self.at(since_start);
        if decided {
            bucket.ok += 1;
        } else {
            bucket.failed += 1;
        }
        bucket.latency.saturating_record(micros(latency));
    }

    /// The seconds recorded so far.
    #[must_use]
    pub fn seconds(&self) -> Vec<Second> {
        #[allow(clippy::cast_precision_loss, reason = "latencies are far below 2^53 µs")]
        let ms = |micros: u64| micros as f64 / 1000.0;
        self.seconds
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let quantile =
                    |q: f64| if b.latency.is_empty() { 0.0 } else { ms(b.latency.value_at_quantile(q)) };
                #[allow(clippy::cast_precision_loss, reason = "a run lasts far fewer than 2^53 s")]
                Second {
                    t: i as f64,
                    offered: b.offered,
                    ok: b.ok,
                    failed: b.failed,
                    dropped: b.dropped,
                    p50_ms: quantile(0.5),
                    p99_ms: quantile(0.99),
                    max_ms: if b.latency.is_empty() { 0.0 } else { ms(b.latency.max()) },
                    lag_events: None,
                }
            })
            .collect()
    }
}
