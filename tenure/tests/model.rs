//! A randomized model check of the protocol on its own: writers claim a partition at any
//! time, restore from the log up to their claim, decide holds against a capacity and append
//! them; the broker appends each writer's records in order, may lose one or append one while
//! reporting a failure, and delays everything arbitrarily. At the end the reader rule is
//! applied to the log and two invariants are checked:
//!
//! - I1: every acknowledged record is valid;
//! - I2: every valid record was decided on exactly the fold of the valid records before it,
//!   so no reader's fold ever exceeds the capacity.
//!
//! The same check run with a broken protocol (no gap check, acknowledging after a failure, a
//! reader rule without sequence numbers) must find a violation: that is what shows it can fail.
//! The command service's own model check runs the real partition lane (domain, restores,
//! expiries, rejections) over this protocol.

use std::collections::VecDeque;

use holdfast_tenure::{Mark, ReaderRule, Report, Token, Verdict, Writer};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

const CAPACITY: u32 = 2;

/// Ways to break the protocol, each of which the check must catch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mutant {
    None,
    /// Acknowledge a record at any offset without reading the records in between.
    NoGapCheck,
    /// Keep acknowledging after a failed or unclear append.
    AckAfterFailure,
    /// A reader rule that ignores sequence numbers.
    RuleWithoutSequence,
}

#[derive(Debug, Clone)]
struct Record {
    mark: Mark,
    /// Held units the writer saw when it decided this record (claims: unused).
    seen: u32,
    /// +1 for a hold, -1 for a release.
    delta: i32,
}

#[derive(Debug)]
struct ModelWriter {
    tenure: Option<Writer>,
    /// Token of the claim in flight.
    claiming: Option<Token>,
    held: u32,
    /// Sent, not yet appended by the broker, in order.
    pending: VecDeque<Record>,
    /// (record, offset if reported appended), in order.
    reports: VecDeque<(Record, Option<usize>)>,
    /// Set by the mutant that ignores failures.
    ignore_failures: bool,
}

fn judge(log: &[Record], mutant: Mutant) -> Vec<Verdict> {
    let mut rule = ReaderRule::default();
    let mut loose: Option<Token> = None;
    log.iter()
        .map(|r| match (mutant, r.mark) {
            (Mutant::RuleWithoutSequence, Mark::Claim { token }) => {
                loose = Some(token);
                Verdict::Claim
            }
            (Mutant::RuleWithoutSequence, Mark::Data { token, .. }) if Some(token) == loose => Verdict::Valid,
            (Mutant::RuleWithoutSequence, _) => Verdict::Void(holdfast_tenure::Void::OtherWriter),
            _ => rule.admit(&r.mark),
        })
        .collect()
}

/// Held units after the valid records of `log[..upto]` (negative if releases outran holds).
fn fold(log: &[Record], upto: usize, mutant: Mutant) -> i64 {
    let verdicts = judge(&log[..upto], mutant);
    log.iter().zip(verdicts).filter(|(_, v)| *v == Verdict::Valid).map(|(r, _)| i64::from(r.delta)).sum()
}

/// What a run exercised, so a check that passes can be told from one that tested nothing.
#[derive(Debug, Default, Clone, Copy)]
struct Stats {
    acknowledged: usize,
    void: usize,
    fenced: usize,
}

fn run(rng: &mut SmallRng, writers: usize, steps: usize, mutant: Mutant) -> Result<Stats, String> {
    let mut stats = Stats::default();
    let mut log: Vec<Record> = Vec::new();
    let mut acked: Vec<usize> = Vec::new();
    let mut ws: Vec<ModelWriter> = (0..writers)
        .map(|_| ModelWriter {
            tenure: None,
            claiming: None,
            held: 0,
            pending: VecDeque::new(),
            reports: VecDeque::new(),
            ignore_failures: mutant == Mutant::AckAfterFailure,
        })
        .collect();
    let mut tokens = 0_u128;
    for _ in 0..steps {
        let w = &mut ws[rng.random_range(0..writers)];
        let act: f64 = rng.random();
        if act < 0.04 {
            // A claim: an assignment, a re-claim after a failure, or a zombie waking up.
            tokens += 1;
            let token = Token(Uuid::from_u128(tokens));
            w.claiming = Some(token);
            w.tenure = None;
            w.pending.push_back(Record { mark: Mark::Claim { token }, seen: 0, delta: 0 });
        } else if act < 0.45 {
            if let Some(tenure) =
                w.tenure.as_mut().filter(|t| t.status() == holdfast_tenure::Status::Acknowledging)
            {
                // Hold while there is room, otherwise release one.
                let delta = if w.held < CAPACITY { 1 } else { -1 };
                let mark = tenure.next_mark();
                w.pending.push_back(Record { mark, seen: w.held, delta });
                w.held = w.held.saturating_add_signed(delta);
            }
        } else if act < 0.80 {
            if let Some(record) = w.pending.pop_front() {
                let fate: f64 = rng.random();
                if fate < 0.05 {
                    w.reports.push_back((record, None)); // lost
                } else if fate < 0.10 {
                    log.push(record.clone()); // appended, reported as failed
                    w.reports.push_back((record, None));
                } else {
                    log.push(record.clone());
                    w.reports.push_back((record, Some(log.len() - 1)));
                }
            }
        } else if let Some((record, offset)) = w.reports.pop_front() {
            match record.mark {
                Mark::Claim { token } if w.claiming == Some(token) => {
                    w.claiming = None;
                    if let Some(offset) = offset {
                        // Restored: the fold of every valid record before the claim.
                        w.held = u32::try_from(fold(&log, offset, Mutant::None)).unwrap_or(u32::MAX);
                        w.tenure = Some(Writer::new(token, i64::try_from(offset).unwrap_or(i64::MAX)));
                    }
                }
                Mark::Data { token, seq } => {
                    let Some(tenure) = w.tenure.as_mut().filter(|t| t.token() == token) else { continue };
                    let offset_i64 = offset.map(|o| i64::try_from(o).unwrap_or(i64::MAX));
                    let mut report = tenure.delivered(seq, offset_i64);
                    if let Report::CheckGap { from, to } = report {
                        report = if mutant == Mutant::NoGapCheck {
                            Report::Valid
                        } else {
                            let gap: Vec<Mark> =
                                log[from as usize..to as usize].iter().map(|r| r.mark).collect();
                            tenure.gap(seq, to, &gap)
                        };
                    }
                    if report == Report::Fenced {
                        stats.fenced += 1;
                    }
                    match (report, offset) {
                        (Report::Valid, Some(offset)) => acked.push(offset),
                        (Report::Broken, Some(offset)) if w.ignore_failures => acked.push(offset),
                        _ => {}
                    }
                }
                _ => {}
            }
        }
    }
    // Whatever is still in flight lands late (a zombie's last appends), never acknowledged.
    for w in &mut ws {
        log.extend(w.pending.drain(..));
    }
    let verdicts = judge(&log, mutant);
    for &offset in &acked {
        if verdicts[offset] != Verdict::Valid {
            return Err(format!("I1: acknowledged record at {offset} is void ({:?})", verdicts[offset]));
        }
    }
    stats.acknowledged = acked.len();
    stats.void = verdicts.iter().filter(|v| matches!(v, Verdict::Void(_))).count();
    for (i, verdict) in verdicts.iter().enumerate() {
        if *verdict == Verdict::Valid {
            let before = fold(&log, i, mutant);
            if i64::from(log[i].seen) != before {
                return Err(format!(
                    "I2: record {i} decided on {} held, the log's fold says {before}",
                    log[i].seen
                ));
            }
            let after = before + i64::from(log[i].delta);
            if !(0..=i64::from(CAPACITY)).contains(&after) {
                return Err(format!("capacity exceeded at {i}: {after} held of {CAPACITY}"));
            }
        }
    }
    Ok(stats)
}

fn check(runs: usize, writers: usize, steps: usize, mutant: Mutant) -> Result<Stats, String> {
    let mut rng = SmallRng::seed_from_u64(1);
    let mut total = Stats::default();
    for n in 0..runs {
        let stats = run(&mut rng, writers, steps, mutant).map_err(|e| format!("run {n}: {e}"))?;
        total.acknowledged += stats.acknowledged;
        total.void += stats.void;
        total.fenced += stats.fenced;
    }
    Ok(total)
}

#[test]
fn the_protocol_holds_for_two_and_three_writers() {
    for writers in [2, 3] {
        let stats =
            check(10_000, writers, 150, Mutant::None).unwrap_or_else(|v| panic!("{writers} writers: {v}"));
        // The runs must have exercised what they claim to check.
        assert!(stats.acknowledged > 10_000, "{stats:?}");
        assert!(stats.void > 1_000 && stats.fenced > 100, "{stats:?}");
    }
}

#[test]
fn the_check_catches_each_broken_protocol() {
    for mutant in [Mutant::NoGapCheck, Mutant::AckAfterFailure, Mutant::RuleWithoutSequence] {
        let found = check(10_000, 3, 150, mutant);
        assert!(found.is_err(), "{mutant:?} went unnoticed: {found:?}");
    }
}
