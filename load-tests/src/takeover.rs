//! How long the command instances took to take over partitions, as they measure it
//! themselves: `holdfast_takeover_seconds{source}`, a histogram of the time from a partition's
//! assignment to its lane taking commands, by where its state came from (`standby`: the
//! partition was followed and only the records since were read; `log`: restored from the
//! start).
//!
//! The harness scrapes every command instance's `/metrics` right before each fault (and a
//! process right before it is stopped or killed, as its counts go with it) and once after the
//! load; a fault's takeovers are the difference between the sums before it and before the
//! next one. This module is pure: parsing, adding, subtracting and reading the histograms.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The metric's name in the text exposition format.
const METRIC: &str = "holdfast_takeover_seconds";

/// One source's histogram: cumulative counts at each upper bound, as Prometheus keeps them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Buckets {
    /// Count of takeovers that took at most each bound (s), by bound in ascending order
    /// (`+Inf` included).
    pub at_most: Vec<(f64, u64)>,
}

impl Buckets {
    /// Takeovers counted.
    #[must_use]
    pub fn count(&self) -> u64 {
        self.at_most.last().map_or(0, |(_, n)| *n)
    }

    /// Takeovers that took at most `bound` s (the count at the largest bucket bound not above it).
    #[must_use]
    pub fn within(&self, bound: f64) -> u64 {
        self.at_most.iter().take_while(|(le, _)| *le <= bound).last().map_or(0, |(_, n)| *n)
    }

    /// The upper bound of the bucket holding the `q` quantile (nearest rank); `None` when
    /// nothing was counted. `f64::INFINITY` when it lies past the largest finite bound.
    #[must_use]
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let count = self.count();
        if count == 0 {
            return None;
        }
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss,
            reason = "a rank among a few thousand takeovers"
        )]
        let rank = ((q * count as f64).ceil() as u64).max(1);
        self.at_most.iter().find(|(_, n)| *n >= rank).map(|(le, _)| *le)
    }

    fn combine(&mut self, other: &Self, sign: i64) {
        let mut merged: BTreeMap<u64, i64> = BTreeMap::new();
        for (le, n) in &self.at_most {
            *merged.entry(le.to_bits()).or_default() += i64::try_from(*n).unwrap_or(i64::MAX);
        }
        for (le, n) in &other.at_most {
            *merged.entry(le.to_bits()).or_default() += sign * i64::try_from(*n).unwrap_or(i64::MAX);
        }
        let mut at_most: Vec<(f64, u64)> =
            merged.into_iter().map(|(le, n)| (f64::from_bits(le), u64::try_from(n).unwrap_or(0))).collect();
        at_most.sort_by(|a, b| a.0.total_cmp(&b.0));
        self.at_most = at_most;
    }
}

/// The takeover histograms by source.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Takeovers {
    /// By source (`standby`, `log`).
    pub by_source: BTreeMap<String, Buckets>,
}

impl Takeovers {
    /// The histograms in a `/metrics` page (nothing when the metric is not there).
    #[must_use]
    pub fn parse(page: &str) -> Self {
        let mut by_source: BTreeMap<String, Buckets> = BTreeMap::new();
        for line in page.lines() {
            let Some(rest) = line.strip_prefix(METRIC).and_then(|rest| rest.strip_prefix("_bucket{")) else {
                continue;
            };
            let Some((labels, value)) = rest.split_once("} ") else { continue };
            let (mut source, mut bound) = (None, None);
            for label in labels.split(',') {
                match label.split_once('=') {
                    Some(("source", v)) => source = Some(v.trim_matches('"').to_owned()),
                    Some(("le", v)) => bound = v.trim_matches('"').parse::<f64>().ok(),
                    _ => {}
                }
            }
            if let (Some(source), Some(bound), Ok(count)) = (source, bound, value.trim().parse::<u64>()) {
                by_source.entry(source).or_default().at_most.push((bound, count));
            }
        }
        for buckets in by_source.values_mut() {
            buckets.at_most.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
        Self { by_source }
    }

    /// Adds `other`'s counts.
    pub fn add(&mut self, other: &Self) {
        for (source, buckets) in &other.by_source {
            self.by_source.entry(source.clone()).or_default().combine(buckets, 1);
        }
    }

    /// What was counted since `earlier` (counts never decrease, so this is what happened in
    /// between; a count that did, from a process gone uncounted, reads 0).
    #[must_use]
    pub fn since(&self, earlier: &Self) -> Self {
        let mut since = self.clone();
        for (source, buckets) in &earlier.by_source {
            since.by_source.entry(source.clone()).or_default().combine(buckets, -1);
        }
        since.by_source.retain(|_, buckets| buckets.count() > 0);
        since
    }

    /// Takeovers counted, over every source.
    #[must_use]
    pub fn count(&self) -> u64 {
        self.by_source.values().map(Buckets::count).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = r#"# HELP holdfast_takeover_seconds Time from a partition's assignment to its lane taking commands.
# TYPE holdfast_takeover_seconds histogram
holdfast_takeover_seconds_bucket{source="standby",le="0.1"} 3
holdfast_takeover_seconds_bucket{source="standby",le="0.2"} 7
holdfast_takeover_seconds_bucket{source="standby",le="1"} 9
holdfast_takeover_seconds_bucket{source="standby",le="+Inf"} 10
holdfast_takeover_seconds_sum{source="standby"} 4.5
holdfast_takeover_seconds_count{source="standby"} 10
holdfast_takeover_seconds_bucket{source="log",le="0.1"} 0
holdfast_takeover_seconds_bucket{source="log",le="0.2"} 0
holdfast_takeover_seconds_bucket{source="log",le="1"} 1
holdfast_takeover_seconds_bucket{source="log",le="+Inf"} 2
holdfast_restore_seconds_bucket{le="0.1"} 99
"#;

    #[test]
    fn a_page_parses_into_cumulative_buckets_by_source() {
        let takeovers = Takeovers::parse(PAGE);
        assert_eq!(takeovers.by_source.len(), 2);
        let standby = &takeovers.by_source["standby"];
        assert_eq!(standby.count(), 10);
        assert_eq!(standby.within(0.2), 7);
        assert_eq!(standby.within(0.5), 7, "no bound between 0.2 and 0.5: counted at 0.2");
        assert_eq!(standby.within(1.0), 9);
        assert_eq!(standby.quantile(0.5), Some(0.2));
        assert_eq!(standby.quantile(0.9), Some(1.0));
        assert_eq!(standby.quantile(1.0), Some(f64::INFINITY));
        assert_eq!(takeovers.count(), 12);
        assert_eq!(Takeovers::parse("no metrics here"), Takeovers::default());
    }

    #[test]
    fn snapshots_add_and_subtract() {
        let one = Takeovers::parse(PAGE);
        let mut two = one.clone();
        two.add(&one);
        assert_eq!(two.by_source["standby"].within(0.2), 14);
        assert_eq!(two.since(&one), one, "the difference is what came in between");
        assert!(one.since(&one).by_source.is_empty(), "nothing in between");
        assert_eq!(Buckets::default().quantile(0.5), None);
    }
}
