//! The open-model schedule: when each request is *meant* to start.
//!
//! Arrivals are fixed by the rate alone, evenly spaced within each phase, and never wait for
//! earlier answers, so a slow service cannot slow the arrivals down and hide its own latency
//! (no coordinated omission). This module is pure time arithmetic; sleeping until a tick and
//! starting the request are the driver's job.

use std::time::Duration;

use crate::cli::Step;

/// A stretch of constant arrival rate: the warm-up or one recorded step.
#[derive(Debug, Clone, PartialEq)]
pub struct Phase {
    /// How reports name it, e.g. `step 2: 1670/s for 60s`.
    pub label: String,
    /// Requests per second.
    pub rate: f64,
    /// How long it lasts.
    pub duration: Duration,
    /// Whether its requests are recorded (the warm-up's are not).
    pub recorded: bool,
}

impl Phase {
    /// The warm-up before the first step.
    #[must_use]
    pub fn warmup(rate: f64, duration: Duration) -> Self {
        Self {
            label: format!("warm-up: {} for {}", rate_label(rate), duration_label(duration)),
            rate,
            duration,
            recorded: false,
        }
    }

    /// Recorded step `index` (0-based).
    #[must_use]
    pub fn step(index: usize, step: &Step) -> Self {
        let label =
            format!("step {}: {} for {}", index + 1, rate_label(step.rate), duration_label(step.duration));
        Self { label, rate: step.rate, duration: step.duration, recorded: true }
    }

    /// Requests this phase starts: rate × duration, rounded.
    #[must_use]
    pub fn requests(&self) -> u64 {
        requests(self.rate, self.duration)
    }
}

/// `rate × duration` requests, rounded to the nearest whole request.
#[must_use]
pub fn requests(rate: f64, duration: Duration) -> u64 {
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "rates are positive and bounded"
    )]
    let count = (rate * duration.as_secs_f64()).round() as u64;
    count
}

/// `167/s`, `0.5/s`.
#[must_use]
pub fn rate_label(rate: f64) -> String {
    if rate.fract() == 0.0 { format!("{rate:.0}/s") } else { format!("{rate}/s") }
}

/// `60s`, `1.5s`.
#[must_use]
pub fn duration_label(duration: Duration) -> String {
    format!("{}s", duration.as_secs_f64())
}

/// One intended request start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tick {
    /// Index of the phase it belongs to.
    pub phase: usize,
    /// Intended start, from the start of the run.
    pub at: Duration,
}

/// Every intended start of a run, in order: phase after phase, `1 / rate` apart.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// Rate, duration and request count of each phase.
    phases: Vec<(f64, Duration, u64)>,
    /// The phase being ticked.
    phase: usize,
    /// When that phase starts.
    phase_start: Duration,
    /// Ticks already given in that phase.
    given: u64,
}

impl Schedule {
    /// The schedule of `phases`.
    #[must_use]
    pub fn new(phases: &[Phase]) -> Self {
        let phases = phases.iter().map(|p| (p.rate, p.duration, p.requests())).collect();
        Self { phases, phase: 0, phase_start: Duration::ZERO, given: 0 }
    }

    /// Total length of the run.
    #[must_use]
    pub fn length(&self) -> Duration {
        self.phases.iter().map(|&(_, duration, _)| duration).sum()
    }
}

impl Iterator for Schedule {
    type Item = Tick;

    fn next(&mut self) -> Option<Tick> {
        loop {
            let &(rate, duration, count) = self.phases.get(self.phase)?;
            if self.given < count {
                #[allow(clippy::cast_precision_loss, reason = "exact below 2^53 requests")]
                let offset = Duration::from_secs_f64(self.given as f64 / rate);
                self.given += 1;
                return Some(Tick { phase: self.phase, at: self.phase_start + offset });
            }
            self.phase += 1;
            self.phase_start += duration;
            self.given = 0;
        }
    }
}

/// The phase whose window contains `elapsed` (from the start of the run), or `None` after the
/// last one. Windows are half-open: `[start, start + duration)`.
#[must_use]
pub fn phase_at(phases: &[Phase], elapsed: Duration) -> Option<usize> {
    let mut end = Duration::ZERO;
    phases.iter().position(|phase| {
        end += phase.duration;
        elapsed < end
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phase(rate: f64, secs: u64) -> Phase {
        Phase::step(0, &Step { rate, duration: Duration::from_secs(secs) })
    }

    #[test]
    fn ticks_are_evenly_spaced_at_the_rate() {
        let ticks: Vec<Tick> = Schedule::new(&[phase(4.0, 2)]).collect();
        assert_eq!(ticks.len(), 8);
        for (i, tick) in ticks.iter().enumerate() {
            assert_eq!(tick.phase, 0);
            assert_eq!(tick.at, Duration::from_millis(250 * i as u64));
        }
    }

    #[test]
    fn phases_follow_each_other_with_their_own_spacing() {
        let phases = [phase(2.0, 1), phase(10.0, 1)];
        let ticks: Vec<Tick> = Schedule::new(&phases).collect();
        assert_eq!(ticks.len(), 12);
        assert_eq!(ticks[1], Tick { phase: 0, at: Duration::from_millis(500) });
        assert_eq!(ticks[2], Tick { phase: 1, at: Duration::from_secs(1) });
        assert_eq!(ticks[3], Tick { phase: 1, at: Duration::from_millis(1100) });
        assert!(ticks.windows(2).all(|w| w[0].at < w[1].at), "strictly increasing");
        assert!(ticks.iter().all(|t| t.at < Duration::from_secs(2)), "all within the run");
        assert_eq!(Schedule::new(&phases).length(), Duration::from_secs(2));
    }

    #[test]
    fn high_rates_keep_their_count_and_spacing() {
        let ticks: Vec<Tick> = Schedule::new(&[phase(1670.0, 60)]).collect();
        assert_eq!(ticks.len(), 100_200);
        let gap = ticks[1].at - ticks[0].at;
        assert!(gap.abs_diff(Duration::from_nanos(598_802)) <= Duration::from_nanos(1));
        let last = ticks.last().expect("ticks").at;
        assert!(last < Duration::from_secs(60) && last > Duration::from_millis(59_999));
    }

    #[test]
    fn fractional_rates_round_the_count() {
        assert_eq!(requests(0.5, Duration::from_secs(3)), 2);
        assert_eq!(requests(167.0, Duration::from_secs(60)), 10_020);
        assert_eq!(
            Schedule::new(&[phase(0.5, 4)]).map(|t| t.at).collect::<Vec<_>>(),
            [Duration::ZERO, Duration::from_secs(2)]
        );
    }

    #[test]
    fn completions_fall_into_half_open_windows() {
        let phases = [phase(1.0, 5), phase(1.0, 10)];
        assert_eq!(phase_at(&phases, Duration::ZERO), Some(0));
        assert_eq!(phase_at(&phases, Duration::from_millis(4999)), Some(0));
        assert_eq!(phase_at(&phases, Duration::from_secs(5)), Some(1));
        assert_eq!(phase_at(&phases, Duration::from_secs(15)), None);
    }

    #[test]
    fn labels_read_well() {
        assert_eq!(phase(1670.0, 60).label, "step 1: 1670/s for 60s");
        assert_eq!(Phase::warmup(0.5, Duration::from_millis(1500)).label, "warm-up: 0.5/s for 1.5s");
    }
}
