//! How long the partitions a command-service fault (`kill-command`, `stop-command`,
//! `restart-command`) disturbed took to answer again, from what the load generator saw: every
//! command request's partition (its resource's, by the shared partitioner), when it was sent
//! and what came back.
//!
//! A partition is disturbed by a fault when a command request to it, sent from the fault until
//! the next fault (of any kind) and answered before that next fault, got no decision (5xx, 202,
//! 429, no answer). Its recovery time runs from the fault to the first decided answer (2xx, or
//! a 4xx decision such as 409) of a request to it sent after its last failure; with none until
//! the end of the run it is not recovered. Requests in flight when a fault strikes count for
//! neither window: the fault cut them off, they say nothing about the handover.
//!
//! This module is pure: the driver records the answers, the harness hands them over with the
//! injected faults, the report prints the result.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::client::is_decision;
use crate::fault::{FaultKind, Injected};
use crate::takeover::Takeovers;

/// One command request, as the handover measurement sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CommandAnswer {
    /// Partition of the request's resource.
    pub partition: i32,
    /// Its intended start, in seconds since the schedule began.
    pub sent_s: f64,
    /// When its answer (or the failure to get one) came, in seconds since the schedule began.
    pub answered_s: f64,
    /// The HTTP status; `None` when no response came (refused or reset connection, timeout).
    pub status: Option<u16>,
}

impl CommandAnswer {
    /// Whether the answer was a decision ([`is_decision`]).
    #[must_use]
    pub fn decided(&self) -> bool {
        self.status.is_some_and(is_decision)
    }
}

/// p50, p99 and the largest of a few values (s).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    /// Median (nearest rank).
    pub p50: f64,
    /// 90th percentile (nearest rank).
    pub p90: f64,
    /// 99th percentile (nearest rank).
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

impl Spread {
    /// Of `values`; `None` when there are none.
    #[must_use]
    pub fn of(values: &[f64]) -> Option<Self> {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let rank = |q: f64| {
            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                clippy::cast_precision_loss,
                reason = "a rank among a few thousand values"
            )]
            let rank = (q * sorted.len() as f64).ceil() as usize;
            sorted.get(rank.saturating_sub(1)).copied()
        };
        Some(Self { p50: rank(0.5)?, p90: rank(0.9)?, p99: rank(0.99)?, max: *sorted.last()? })
    }
}

/// What one command-service fault did to the partitions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultHandover {
    /// The fault (`kill-command`, `stop-command`, `restart-command`).
    pub kind: String,
    /// When it was injected (s since the schedule began).
    pub at_s: f64,
    /// Command requests sent from the fault until the next one.
    pub requests: u64,
    /// Of those, the ones without a decision (answered before the next fault).
    pub failed: u64,
    /// Of those, the ones answered 5xx.
    pub answered_5xx: u64,
    /// Partitions disturbed.
    pub disturbed: u64,
    /// Disturbed partitions without a decided answer after their last failure by the end of
    /// the run.
    pub unrecovered: u64,
    /// Recovery times of the recovered partitions (s from the fault); `None` when none was.
    pub recovery_s: Option<Spread>,
    /// Partitions the instances took over from the fault until the next one, and how long
    /// each took from its assignment, as they measured it ([`crate::takeover`]); `None`
    /// without the instances' counts.
    #[serde(default)]
    pub takeovers: Option<Takeovers>,
}

impl FaultHandover {
    /// The longest recovery: 0 when nothing was disturbed, `None` when a partition did not
    /// recover.
    #[must_use]
    pub fn max_recovery_s(&self) -> Option<f64> {
        if self.unrecovered > 0 {
            return None;
        }
        Some(self.recovery_s.map_or(0.0, |r| r.max))
    }
}

/// Every fault of one kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KindHandover {
    /// The fault.
    pub kind: String,
    /// How many were injected.
    pub faults: u64,
    /// Spread of the faults' longest recoveries (0 for a fault that disturbed nothing), over
    /// the faults whose disturbed partitions all recovered.
    pub max_recovery_s: Option<Spread>,
    /// Faults with a partition that did not recover.
    pub unrecovered_faults: u64,
    /// Answers 5xx over all of them.
    pub answered_5xx: u64,
    /// Their takeovers together.
    #[serde(default)]
    pub takeovers: Takeovers,
}

/// The handover of every command-service fault of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Handover {
    /// Each fault, in the order injected.
    pub faults: Vec<FaultHandover>,
    /// Over all faults of a kind.
    pub kinds: Vec<KindHandover>,
}

/// The handover of each fault in `injected` that moves partitions, from `answers` (in any
/// order) and the instances' takeover counts before each fault and `takeovers_after` the
/// load; `None` when there is no such fault.
#[must_use]
pub fn measure(
    injected: &[Injected],
    answers: &[CommandAnswer],
    takeovers_after: Option<&Takeovers>,
) -> Option<Handover> {
    let mut answers = answers.to_vec();
    answers.sort_by(|a, b| a.sent_s.total_cmp(&b.sent_s));
    let faults: Vec<FaultHandover> = injected
        .iter()
        .enumerate()
        .filter(|(_, fault)| fault.kind.moves_partitions())
        .map(|(i, fault)| {
            let until = injected.get(i + 1).map_or(f64::INFINITY, |next| next.at_s);
            let next_counts =
                injected.get(i + 1).map_or(takeovers_after, |next| next.takeovers_before.as_ref());
            let takeovers = match (&fault.takeovers_before, next_counts) {
                (Some(before), Some(after)) => Some(after.since(before)),
                _ => None,
            };
            FaultHandover { takeovers, ..one_fault(fault.kind, fault.at_s, until, &answers) }
        })
        .collect();
    if faults.is_empty() {
        return None;
    }
    let kinds = FaultKind::ALL
        .into_iter()
        .filter_map(|kind| {
            let of_kind: Vec<&FaultHandover> = faults.iter().filter(|f| f.kind == kind.name()).collect();
            if of_kind.is_empty() {
                return None;
            }
            let maxima: Vec<f64> = of_kind.iter().filter_map(|f| f.max_recovery_s()).collect();
            let mut takeovers = Takeovers::default();
            for taken in of_kind.iter().filter_map(|f| f.takeovers.as_ref()) {
                takeovers.add(taken);
            }
            Some(KindHandover {
                kind: kind.name().to_owned(),
                faults: of_kind.len() as u64,
                max_recovery_s: Spread::of(&maxima),
                unrecovered_faults: of_kind.iter().filter(|f| f.unrecovered > 0).count() as u64,
                answered_5xx: of_kind.iter().map(|f| f.answered_5xx).sum(),
                takeovers,
            })
        })
        .collect();
    Some(Handover { faults, kinds })
}

/// One fault at `at_s`, its window ending at `until`; `answers` sorted by sending time.
fn one_fault(kind: FaultKind, at_s: f64, until: f64, answers: &[CommandAnswer]) -> FaultHandover {
    let first = answers.partition_point(|a| a.sent_s < at_s);
    let end = answers.partition_point(|a| a.sent_s < until);
    let window = &answers[first..end];
    // Each disturbed partition's last failure (by sending time), answered within the window.
    let mut last_failure: BTreeMap<i32, f64> = BTreeMap::new();
    let (mut failed, mut answered_5xx) = (0, 0);
    for answer in window.iter().filter(|a| !a.decided() && a.answered_s < until) {
        failed += 1;
        answered_5xx += u64::from(answer.status.is_some_and(|s| s >= 500));
        let last = last_failure.entry(answer.partition).or_insert(answer.sent_s);
        *last = last.max(answer.sent_s);
    }
    // Each one's first decided answer to a request sent after that failure.
    let mut answered_again: BTreeMap<i32, f64> = BTreeMap::new();
    for answer in answers[first..].iter().filter(|a| a.decided()) {
        if last_failure.get(&answer.partition).is_some_and(|failed_at| answer.sent_s > *failed_at) {
            let earliest = answered_again.entry(answer.partition).or_insert(answer.answered_s);
            *earliest = earliest.min(answer.answered_s);
        }
    }
    let recovered: Vec<f64> = answered_again.values().map(|answered| (answered - at_s).max(0.0)).collect();
    FaultHandover {
        kind: kind.name().to_owned(),
        at_s,
        requests: window.len() as u64,
        failed,
        answered_5xx,
        disturbed: last_failure.len() as u64,
        unrecovered: (last_failure.len() - recovered.len()) as u64,
        recovery_s: Spread::of(&recovered),
        takeovers: None,
    }
}

impl Handover {
    /// The report's section: per fault, then per kind.
    pub fn markdown(&self, out: &mut String) {
        let seconds = |v: Option<f64>| v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.2}"));
        out.push_str(
            "\n## handover\n\nPartitions disturbed by each command-service fault (a command request to them, \
             sent after the fault and answered before the next one, got no decision) and how long after the \
             fault each answered a decision again to a request sent after its last failure \
             (load-tests/README.md).\n\n\
             | fault | at s | requests | failed | 5xx | disturbed partitions | not recovered | recovery p50 s | \
             p99 s | max s |\n|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n",
        );
        for f in &self.faults {
            let r = f.recovery_s;
            let _ = writeln!(
                out,
                "| {} | {:.1} | {} | {} | {} | {} | {} | {} | {} | {} |",
                f.kind,
                f.at_s,
                f.requests,
                f.failed,
                f.answered_5xx,
                f.disturbed,
                f.unrecovered,
                seconds(r.map(|r| r.p50)),
                seconds(r.map(|r| r.p99)),
                seconds(r.map(|r| r.max)),
            );
        }
        out.push_str(
            "\nOver all faults of a kind, the spread of each fault's longest recovery (0 when it disturbed \
             nothing; faults with a partition that never recovered are counted apart):\n\n\
             | fault | faults | p50 s | p90 s | max s | not recovered | 5xx |\n|---|--:|--:|--:|--:|--:|--:|\n",
        );
        for k in &self.kinds {
            let m = k.max_recovery_s;
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} |",
                k.kind,
                k.faults,
                seconds(m.map(|m| m.p50)),
                seconds(m.map(|m| m.p90)),
                seconds(m.map(|m| m.max)),
                k.unrecovered_faults,
                k.answered_5xx,
            );
        }
        if self.kinds.iter().all(|k| k.takeovers.count() == 0) {
            return;
        }
        out.push_str(
            "\nPartitions taken over after the faults of a kind, as the instances measured it \
             (`holdfast_takeover_seconds{source}`: from the group's assignment to the lane taking commands; \
             `standby`: the state came from a standby, `log`: restored from the start). The quantiles are \
             bucket bounds: \"≤ 0.2\" means within 0.2 s.\n\n\
             | fault | source | takeovers | ≤ 0.2 s | ≤ 1 s | p50 ≤ s | p90 ≤ s | p99 ≤ s |\n\
             |---|---|--:|--:|--:|--:|--:|--:|\n",
        );
        for k in &self.kinds {
            for (source, buckets) in &k.takeovers.by_source {
                let largest = buckets.at_most.iter().rev().map(|(le, _)| *le).find(|le| le.is_finite());
                let bound = |v: Option<f64>| match v {
                    Some(v) if v.is_finite() => format!("{v}"),
                    Some(_) => format!("> {}", largest.unwrap_or(0.0)),
                    None => "n/a".to_owned(),
                };
                let _ = writeln!(
                    out,
                    "| {} | {source} | {} | {} | {} | {} | {} | {} |",
                    k.kind,
                    buckets.count(),
                    buckets.within(0.2),
                    buckets.within(1.0),
                    bound(buckets.quantile(0.5)),
                    bound(buckets.quantile(0.9)),
                    bound(buckets.quantile(0.99)),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(partition: i32, sent_s: f64, answered_s: f64, status: Option<u16>) -> CommandAnswer {
        CommandAnswer { partition, sent_s, answered_s, status }
    }

    fn fault(kind: FaultKind, at_s: f64) -> Injected {
        Injected { kind, at_s, took_s: 1.0, error: None, takeovers_before: None }
    }

    #[test]
    fn recovery_runs_to_the_first_decision_after_the_last_failure() {
        let answers = [
            // Partition 1: fails twice, a decision in between does not count, then recovers.
            answer(1, 10.2, 10.3, Some(503)),
            answer(1, 10.5, 10.6, Some(201)),
            answer(1, 11.0, 12.0, None),
            answer(1, 11.5, 13.5, Some(409)),
            answer(1, 11.6, 13.0, Some(201)),
            // Partition 2: one 202, recovered at 10.9.
            answer(2, 10.4, 10.5, Some(202)),
            answer(2, 10.6, 10.9, Some(200)),
            // Partition 3: never failed after the fault (its failure came before it).
            answer(3, 9.0, 10.5, None),
            answer(3, 10.1, 10.2, Some(201)),
        ];
        let handover =
            measure(&[fault(FaultKind::KillCommand, 10.0)], &answers, None).expect("a command fault");
        let f = &handover.faults[0];
        assert_eq!((f.requests, f.failed, f.answered_5xx, f.disturbed, f.unrecovered), (8, 3, 1, 2, 0));
        let r = f.recovery_s.expect("recovered");
        assert!((r.p50 - 0.9).abs() < 1e-9 && (r.max - 3.0).abs() < 1e-9, "{r:?}");
        assert_eq!(f.max_recovery_s(), Some(r.max));
    }

    #[test]
    fn the_next_fault_closes_the_window_and_cut_off_requests_count_for_neither() {
        let answers = [
            answer(7, 20.5, 21.0, Some(503)),
            answer(7, 21.5, 22.0, Some(201)),
            // Sent before the next fault, cut off by it: disturbs neither fault.
            answer(8, 29.9, 30.2, None),
            answer(8, 30.5, 31.0, Some(201)),
            // Sent after the next fault: that fault's, and never recovered.
            answer(9, 31.0, 31.5, Some(500)),
            answer(9, 32.0, 62.0, None),
        ];
        let injected = [
            fault(FaultKind::StopCommand, 20.0),
            fault(FaultKind::FlushRedis, 25.0),
            fault(FaultKind::RestartCommand, 30.0),
        ];
        let handover = measure(&injected, &answers, None).expect("command faults");
        assert_eq!(handover.faults.len(), 2, "flush-redis is no handover");
        let stop = &handover.faults[0];
        assert_eq!((stop.disturbed, stop.max_recovery_s()), (1, Some(2.0)));
        let restart = &handover.faults[1];
        assert_eq!((restart.requests, restart.failed, restart.answered_5xx), (3, 2, 1));
        assert_eq!((restart.disturbed, restart.unrecovered, restart.recovery_s), (1, 1, None));
        assert_eq!(restart.max_recovery_s(), None);
    }

    #[test]
    fn kinds_spread_each_faults_longest_recovery() {
        // Five kills 10 s apart; kill k disturbs partition k for k seconds; the fourth
        // disturbs nothing.
        let mut answers = Vec::new();
        let mut injected = Vec::new();
        for k in 0..5_u8 {
            let at = f64::from(k) * 10.0;
            injected.push(fault(FaultKind::KillCommand, at));
            if k != 3 {
                let lasted = f64::from(k + 1);
                answers.push(answer(i32::from(k), at + 0.1, at + 0.2, Some(503)));
                answers.push(answer(i32::from(k), at + 0.5, at + lasted, Some(201)));
            }
        }
        let handover = measure(&injected, &answers, None).expect("command faults");
        let maxima: Vec<Option<f64>> = handover.faults.iter().map(FaultHandover::max_recovery_s).collect();
        assert_eq!(maxima, [Some(1.0), Some(2.0), Some(3.0), Some(0.0), Some(5.0)]);
        assert_eq!(handover.kinds.len(), 1);
        let kills = &handover.kinds[0];
        assert_eq!(
            (kills.kind.as_str(), kills.faults, kills.unrecovered_faults, kills.answered_5xx),
            ("kill-command", 5, 0, 4)
        );
        let spread = kills.max_recovery_s.expect("spread");
        assert_eq!((spread.p50, spread.p90, spread.max), (2.0, 5.0, 5.0));
        let mut md = String::new();
        handover.markdown(&mut md);
        assert!(md.contains("| kill-command | 5 | 2.00 | 5.00 | 5.00 | 0 | 4 |"), "{md}");
    }

    #[test]
    fn takeovers_between_faults_are_the_earlier_faults() {
        let counts = |standby_fast: u64, standby: u64, log: u64| {
            Takeovers::parse(&format!(
                "holdfast_takeover_seconds_bucket{{source=\"standby\",le=\"0.2\"}} {standby_fast}\n\
                 holdfast_takeover_seconds_bucket{{source=\"standby\",le=\"+Inf\"}} {standby}\n\
                 holdfast_takeover_seconds_bucket{{source=\"log\",le=\"0.2\"}} 0\n\
                 holdfast_takeover_seconds_bucket{{source=\"log\",le=\"+Inf\"}} {log}\n"
            ))
        };
        // Eight partitions restored from the log at the start; then a kill whose partitions
        // come from standbys (three of four within 0.2 s), then a restart with two more.
        let mut kill = fault(FaultKind::KillCommand, 10.0);
        kill.takeovers_before = Some(counts(0, 0, 8));
        let mut restart = fault(FaultKind::RestartCommand, 20.0);
        restart.takeovers_before = Some(counts(3, 4, 8));
        let after = counts(5, 6, 8);
        let answers = [answer(1, 10.5, 11.0, Some(201))];
        let handover = measure(&[kill, restart], &answers, Some(&after)).expect("command faults");
        let taken = |i: usize| handover.faults[i].takeovers.clone().expect("counted");
        assert_eq!(taken(0).count(), 4, "the start's restores are not the kill's");
        assert_eq!(taken(0).by_source["standby"].within(0.2), 3);
        assert!(!taken(0).by_source.contains_key("log"), "none from the log");
        assert_eq!(taken(1).count(), 2);
        let mut md = String::new();
        handover.markdown(&mut md);
        assert!(md.contains("| kill-command | standby | 4 | 3 | 3 | 0.2 | > 0.2 | > 0.2 |"), "{md}");
        assert!(md.contains("| restart-command | standby | 2 | 2 | 2 | 0.2 | 0.2 | 0.2 |"), "{md}");
    }

    #[test]
    fn runs_without_command_faults_have_no_handover() {
        let answers = [answer(1, 1.0, 2.0, Some(503))];
        assert_eq!(measure(&[fault(FaultKind::RestartKafka, 0.5)], &answers, None), None);
        assert_eq!(measure(&[], &answers, None), None);
        assert_eq!(Spread::of(&[]), None);
    }
}
