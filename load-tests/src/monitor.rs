//! The projection's lag while the load runs, as the projection workers report it on their
//! `/metrics` (`projection_lag_events`, per assigned partition), sampled once a second.

use std::time::Duration;

use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};

/// Samples of (time since `start`, events behind or `None` when the worker did not answer).
pub type LagSamples = Vec<(Duration, Option<u64>)>;

/// Samples `metrics_url` every second from `start` until `done` turns true.
pub async fn sample_lag(metrics_url: String, start: Instant, mut done: watch::Receiver<bool>) -> LagSamples {
    let client = reqwest::Client::builder().timeout(Duration::from_millis(800)).no_proxy().build();
    let Ok(client) = client else { return Vec::new() };
    let mut ticker = tokio::time::interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut samples = Vec::new();
    loop {
        tokio::select! {
            changed = done.changed() => if changed.is_err() || *done.borrow() { return samples },
            now = ticker.tick() => {
                let lag = match client.get(&metrics_url).send().await {
                    Ok(response) if response.status().is_success() => {
                        response.text().await.ok().map(|text| lag_events(&text))
                    }
                    _ => None,
                };
                samples.push((now.saturating_duration_since(start), lag));
            }
        }
    }
}

/// The sum of every `*projection_lag_events{...}` sample in a Prometheus text exposition.
#[must_use]
pub fn lag_events(metrics: &str) -> u64 {
    metrics
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            let metric = name.split('{').next()?;
            metric.ends_with("projection_lag_events").then(|| value.trim().parse::<f64>().ok()).flatten()
        })
        .map(|value| {
            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "gauges of event counts"
            )]
            let events = value.max(0.0) as u64;
            events
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_is_summed_over_partitions() {
        let text = "# HELP holdfast_projection_lag_events Events not yet applied.\n\
                    # TYPE holdfast_projection_lag_events gauge\n\
                    holdfast_projection_lag_events{partition=\"0\"} 12\n\
                    holdfast_projection_lag_events{partition=\"7\"} 30\n\
                    holdfast_projection_lag_seconds{partition=\"7\"} 0.5\n";
        assert_eq!(lag_events(text), 42);
        assert_eq!(lag_events("other_metric 5\n"), 0);
    }
}
