//! The live progress line, once a second on stderr: elapsed time, phase, offered and
//! completed requests per second over the last interval, requests in flight, drops, and the
//! p99 of the current phase so far.

use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::time::Instant;

use crate::record::{histogram, micros};

/// Counters behind the progress line.
#[derive(Debug)]
pub struct Progress {
    /// When the run's schedule started.
    started: Instant,
    /// When the last line was made.
    last: Instant,
    /// Requests scheduled since the last line.
    scheduled: u64,
    /// Requests finished since the last line.
    finished: u64,
    /// Requests dropped since the last line.
    dropped: u64,
    /// The phase the latest scheduled request belongs to.
    phase: usize,
    /// Latency of that phase's responses so far.
    latency: Histogram<u64>,
}

impl Progress {
    /// Counters for a schedule that starts at `started`.
    #[must_use]
    pub fn new(started: Instant) -> Self {
        Self { started, last: started, scheduled: 0, finished: 0, dropped: 0, phase: 0, latency: histogram() }
    }

    /// A request of `phase` was due (started or dropped).
    pub fn scheduled(&mut self, phase: usize) {
        if phase != self.phase {
            self.phase = phase;
            self.latency.reset();
        }
        self.scheduled += 1;
    }

    /// A due request was dropped.
    pub fn dropped(&mut self) {
        self.dropped += 1;
    }

    /// A request of `phase` finished; `latency` when it got a response.
    pub fn finished(&mut self, phase: usize, latency: Option<Duration>) {
        self.finished += 1;
        if let Some(latency) = latency.filter(|_| phase == self.phase) {
            self.latency.saturating_record(micros(latency));
        }
    }

    /// The line for `now`, naming the current phase with `label`; restarts the interval.
    pub fn line(&mut self, now: Instant, label: &str, in_flight: usize) -> String {
        let interval = now.saturating_duration_since(self.last).as_secs_f64().max(1e-3);
        #[allow(clippy::cast_precision_loss, reason = "per-second counts are small")]
        let per_second = |count: u64| count as f64 / interval;
        #[allow(clippy::cast_precision_loss, reason = "latencies are far below 2^53 µs")]
        let p99 = self.latency.value_at_quantile(0.99) as f64 / 1000.0;
        let line = format!(
            "[{:>5.0}s] {label} | offered {:.0}/s | completed {:.0}/s | in flight {in_flight} | dropped {} | p99 {p99:.2} ms",
            now.saturating_duration_since(self.started).as_secs_f64(),
            per_second(self.scheduled),
            per_second(self.finished),
            self.dropped,
        );
        self.last = now;
        self.scheduled = 0;
        self.finished = 0;
        self.dropped = 0;
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_show_rates_of_the_last_interval_and_the_phase_p99() {
        let start = Instant::now();
        let mut progress = Progress::new(start);
        for _ in 0..200 {
            progress.scheduled(0);
        }
        progress.dropped();
        for ms in 1..=100 {
            progress.finished(0, Some(Duration::from_millis(ms)));
        }
        progress.finished(0, None);
        progress.finished(0, None);
        let line = progress.line(start + Duration::from_secs(2), "step 1: 100/s for 60s", 7);
        assert_eq!(
            line,
            "[    2s] step 1: 100/s for 60s | offered 100/s | completed 51/s | in flight 7 | dropped 1 | p99 99.01 ms"
        );
        let next = progress.line(start + Duration::from_secs(3), "step 1: 100/s for 60s", 0);
        assert!(next.contains("offered 0/s | completed 0/s"), "{next}");
        assert!(next.ends_with("p99 99.01 ms"), "p99 is cumulative within a phase: {next}");
        progress.scheduled(1);
        assert!(progress.line(start + Duration::from_secs(4), "step 2", 0).ends_with("p99 0.00 ms"));
    }
}
