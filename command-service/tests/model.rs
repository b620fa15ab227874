//! A randomized model check of the command path's pure core — the real [`Lane`], the real
//! restore fold ([`Rebuild`]), the real domain, the real reader rule — against a simulated log.
//!
//! Two or three writers own partitions of a small topic, each with a few resources of small
//! capacity. Any writer may claim any partition at any time (an assignment, a re-claim, a
//! zombie that wakes up), restart (losing its lanes while its last sends may still land), take
//! commands — holds, confirmations, cancellations, capacity changes, definitions, and retries
//! of earlier commands with the same command id — and expire holds as a clock moves. The
//! broker appends each writer's records in order and may lose one, or append one while
//! reporting a failure; delivery reports and gap reads arrive whenever the writer gets to them.
//!
//! At the end the reader rule is applied to every partition and these must hold:
//! - every answered decision (its events, or its refusal) is valid in the log, at the position
//!   it was answered with;
//! - every valid record was decided on exactly the fold of the valid records before it, so no
//!   slot is ever over capacity in any reader's fold;
//! - a command answered twice (a retry) got the same decision both times;
//! - an answered repeat ("already confirmed") was true of the log where it was answered.
//!
//! The same check with the protocol broken (no gap check; acknowledging after a failed append;
//! a restore that folds void records) must find a violation.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use holdfast_command_service::envelope::{CommandEnvelope, FORMAT_VERSION, Outcome, Verdict};
use holdfast_command_service::http::idempotency;
use holdfast_command_service::lane::core::{Answer, Decided, Lane, Next};
use holdfast_command_service::lane::rebuild::Rebuild;
use holdfast_command_service::lane::state::Memory;
use holdfast_domain::{
    Capacity, CapacityRange, Command, CommandMeta, CustomerId, HoldTtl, Quantity, ReservationId,
    ReservationStatus, ResourceId, ResourceName, ResourceState, Slot, SlotRange,
};
use holdfast_platform::audit::AuditReport;
use holdfast_platform::codec::{ClaimRecord, LogRecord};
use holdfast_platform::partitioner::partition_for;
use holdfast_platform::replay::Entry;
use holdfast_tenure::{Mark, ReaderRule, Token, Verdict as Judged};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use time::macros::{date, datetime};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

const PARTITIONS: i32 = 2;
const RESOURCES_PER_PARTITION: usize = 2;
const DAYS: i64 = 3;

/// Ways to break the acknowledge rule in the shell, each of which must be caught.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mutant {
    None,
    /// Treat every gap as void records, without reading it.
    NoGapCheck,
    /// Keep going after a failed append as if it had landed.
    IgnoreFailures,
    /// Restore by folding every record, void ones too.
    RestoreWithoutRule,
}

/// One record in the simulated log.
#[derive(Debug, Clone)]
struct Logged {
    mark: Mark,
    fingerprint: Option<u64>,
    record: LogRecord,
    /// The state of its resource the writer decided it on (data records only).
    decided_on: Option<ResourceState>,
}

/// A record on its way to the broker.
#[derive(Debug, Clone)]
struct Send {
    logged: Logged,
    /// The data record's sequence number, or `None` for a claim.
    seq: Option<u64>,
}

/// A writer's lane on one partition.
#[derive(Debug)]
enum Tenancy {
    Idle,
    Claiming(Token),
    Active(Box<Lane<u64>>),
}

#[derive(Debug)]
struct WriterPartition {
    lane: Tenancy,
    sends: VecDeque<Send>,
    /// (token of the tenure that sent it, seq or claim, offset if reported appended)
    reports: VecDeque<(Token, Option<u64>, Option<usize>)>,
}

/// Something a client asked, kept so it can be retried with the same id.
#[derive(Debug, Clone)]
struct Request {
    envelope: CommandEnvelope,
}

struct World {
    rng: SmallRng,
    mutant: Mutant,
    now: OffsetDateTime,
    resources: Vec<ResourceId>,
    logs: Vec<Vec<Logged>>,
    writers: Vec<Vec<WriterPartition>>,
    requests: Vec<Request>,
    reservations: Vec<ReservationId>,
    /// Answers: (caller id → request index, answer).
    answers: Vec<(usize, Arc<Outcome>)>,
    callers: HashMap<u64, usize>,
    next_caller: u64,
    memory: Memory,
}

fn resources() -> Vec<ResourceId> {
    let mut chosen: Vec<ResourceId> = Vec::new();
    for p in 0..PARTITIONS {
        let mut n = 0;
        while chosen.iter().filter(|r| partition_of(r) == p).count() < RESOURCES_PER_PARTITION {
            let id = ResourceId::parse(&format!("room-{n}")).expect("id");
            if partition_of(&id) == p && !chosen.contains(&id) {
                chosen.push(id);
            }
            n += 1;
        }
    }
    chosen
}

fn partition_of(resource: &ResourceId) -> i32 {
    partition_for(resource.as_str().as_bytes(), PARTITIONS)
}

fn micros(at: OffsetDateTime) -> OffsetDateTime {
    at.replace_nanosecond(at.nanosecond() / 1_000 * 1_000).expect("valid")
}

impl World {
    fn new(seed: u64, writers: usize, mutant: Mutant) -> Self {
        Self {
            rng: SmallRng::seed_from_u64(seed),
            mutant,
            now: datetime!(2027-01-01 00:00 UTC),
            resources: resources(),
            logs: vec![Vec::new(); usize::try_from(PARTITIONS).unwrap()],
            writers: (0..writers)
                .map(|_| {
                    (0..PARTITIONS)
                        .map(|_| WriterPartition {
                            lane: Tenancy::Idle,
                            sends: VecDeque::new(),
                            reports: VecDeque::new(),
                        })
                        .collect()
                })
                .collect(),
            requests: Vec::new(),
            reservations: Vec::new(),
            answers: Vec::new(),
            callers: HashMap::new(),
            next_caller: 0,
            memory: Memory { window: Duration::hours(1), capacity: 10_000 },
        }
    }

    fn step(&mut self) {
        let w = self.rng.random_range(0..self.writers.len());
        let p = self.rng.random_range(0..PARTITIONS);
        let roll: f64 = self.rng.random();
        if roll < 0.03 {
            self.claim(w, p);
        } else if roll < 0.04 {
            // A crash: every lane of the writer is gone; its sends may still land.
            for wp in &mut self.writers[w] {
                wp.lane = Tenancy::Idle;
            }
        } else if roll < 0.40 {
            self.command(w, p);
        } else if roll < 0.45 {
            self.now += Duration::milliseconds(self.rng.random_range(0..2_500));
            let now = micros(self.now);
            if let Tenancy::Active(lane) = &mut self.writers[w][usize::try_from(p).unwrap()].lane {
                let shadow = lane.state().resources.clone();
                let appends = lane.expire_due(now);
                self.queue(w, p, shadow, appends);
            }
        } else if roll < 0.75 {
            self.broker(w, p);
        } else {
            self.report(w, p);
        }
    }

    fn claim(&mut self, w: usize, p: i32) {
        let token = Token(Uuid::from_u128(self.rng.random()));
        let record = LogRecord::Claim(ClaimRecord {
            token,
            partition: p,
            owner: format!("w{w}"),
            address: None,
            claimed_at: self.now,
        });
        let wp = &mut self.writers[w][usize::try_from(p).unwrap()];
        wp.lane = Tenancy::Claiming(token);
        let logged = Logged { mark: Mark::Claim { token }, fingerprint: None, record, decided_on: None };
        wp.sends.push_back(Send { logged, seq: None });
    }

    /// A new command, or a retry of an earlier one, for a resource of partition `p`.
    fn request(&mut self, p: i32) -> Request {
        if !self.requests.is_empty() && self.rng.random_bool(0.15) {
            let pick = self.rng.random_range(0..self.requests.len());
            let earlier = self.requests[pick].clone();
            if partition_of(earlier.envelope.command.resource_id()) == p {
                return earlier;
            }
        }
        let on_partition: Vec<ResourceId> =
            self.resources.iter().filter(|r| partition_of(r) == p).cloned().collect();
        let resource = on_partition[self.rng.random_range(0..on_partition.len())].clone();
        let known: Vec<ReservationId> =
            self.reservations.iter().filter(|r| r.resource_id() == &resource).cloned().collect();
        let day = |n: i64| Slot::from_date(date!(2027 - 02 - 01) + Duration::days(n)).expect("slot");
        let from = self.rng.random_range(0..DAYS);
        let to = self.rng.random_range(from + 1..=DAYS);
        let command = match self.rng.random_range(0..10) {
            0 => Command::DefineResource {
                resource_id: resource.clone(),
                name: ResourceName::parse("Room").expect("name"),
                capacity: Capacity::new(3).expect("capacity"),
            },
            1 => Command::ChangeCapacity {
                resource_id: resource.clone(),
                range: CapacityRange::new(day(from), day(to)).expect("range"),
                capacity: Capacity::new(self.rng.random_range(1..5)).expect("capacity"),
            },
            2 | 3 if !known.is_empty() => Command::ConfirmReservation {
                reservation_id: known[self.rng.random_range(0..known.len())].clone(),
                payment_ref: None,
            },
            4 if !known.is_empty() => Command::CancelReservation {
                reservation_id: known[self.rng.random_range(0..known.len())].clone(),
                reason: None,
            },
            _ => {
                let id = ReservationId::new(&resource, Uuid::from_u128(self.rng.random()));
                self.reservations.push(id.clone());
                Command::PlaceHold {
                    reservation_id: id,
                    range: SlotRange::new(day(from), day(to)).expect("range"),
                    quantity: Quantity::new(self.rng.random_range(1..3)).expect("quantity"),
                    customer_id: CustomerId::parse("c").expect("customer"),
                    ttl: HoldTtl::from_seconds(self.rng.random_range(1..4)).expect("ttl"),
                }
            }
        };
        let fingerprint = idempotency::fingerprint(&command).expect("fingerprint");
        let envelope = CommandEnvelope {
            v: FORMAT_VERSION,
            command,
            meta: CommandMeta::new(Uuid::from_u128(self.rng.random())),
            fingerprint,
            submitted_at: self.now,
            reply_to: None,
            acting_for: None,
        };
        let request = Request { envelope };
        self.requests.push(request.clone());
        request
    }

    fn command(&mut self, w: usize, p: i32) {
        if !matches!(self.writers[w][usize::try_from(p).unwrap()].lane, Tenancy::Active(_)) {
            return;
        }
        let request = self.request(p);
        let index = self
            .requests
            .iter()
            .position(|r| r.envelope.meta.command_id == request.envelope.meta.command_id)
            .expect("kept");
        let caller = self.next_caller;
        self.next_caller += 1;
        self.callers.insert(caller, index);
        let now = micros(self.now);
        let Tenancy::Active(lane) = &mut self.writers[w][usize::try_from(p).unwrap()].lane else { return };
        let shadow = lane.state().resources.clone();
        match lane.decide(&request.envelope, caller, now) {
            Decided::Answer(caller, answer) => self.answered(caller, answer),
            Decided::Waiting => {}
            Decided::Append(appends) => self.queue(w, p, shadow, appends),
        }
    }

    /// Queues appends decided on `shadow` (the lane's resources before the decision).
    fn queue(
        &mut self,
        w: usize,
        p: i32,
        mut shadow: HashMap<ResourceId, ResourceState>,
        appends: Vec<holdfast_command_service::lane::core::Append>,
    ) {
        for append in appends {
            let resource = match &append.record {
                LogRecord::Event(e) => e.envelope.resource_id.clone(),
                LogRecord::Rejected(r) => r.resource_id.clone(),
                LogRecord::Claim(_) => unreachable!("lanes append no claims"),
            };
            let state =
                shadow.entry(resource.clone()).or_insert_with(|| ResourceState::new(resource.clone()));
            let decided_on = Some(state.clone());
            if let LogRecord::Event(event) = &append.record {
                state.apply(event);
            }
            let logged = Logged {
                mark: append.mark,
                fingerprint: append.fingerprint,
                record: append.record,
                decided_on,
            };
            self.writers[w][usize::try_from(p).unwrap()]
                .sends
                .push_back(Send { logged, seq: Some(append.seq) });
        }
    }

    fn broker(&mut self, w: usize, p: i32) {
        let fate: f64 = self.rng.random();
        let pi = usize::try_from(p).unwrap();
        let Some(send) = self.writers[w][pi].sends.pop_front() else { return };
        let token = match send.logged.mark {
            Mark::Claim { token } | Mark::Data { token, .. } => token,
            Mark::Unmarked => unreachable!(),
        };
        let offset = if fate < 0.04 {
            None // lost
        } else if fate < 0.08 {
            self.logs[pi].push(send.logged);
            None // appended, reported as failed
        } else {
            self.logs[pi].push(send.logged);
            Some(self.logs[pi].len() - 1)
        };
        self.writers[w][pi].reports.push_back((token, send.seq, offset));
    }

    fn report(&mut self, w: usize, p: i32) {
        let pi = usize::try_from(p).unwrap();
        let Some((token, seq, offset)) = self.writers[w][pi].reports.pop_front() else { return };
        match (&mut self.writers[w][pi].lane, seq) {
            (Tenancy::Claiming(claiming), None) if *claiming == token => match offset {
                Some(claim_offset) => {
                    let everything = self.mutant == Mutant::RestoreWithoutRule;
                    let state = restore(&self.logs[pi][..claim_offset], p, self.memory, self.now, everything);
                    let offset = i64::try_from(claim_offset).unwrap();
                    self.writers[w][pi].lane = Tenancy::Active(Box::new(Lane::new(p, state, token, offset)));
                }
                None => self.writers[w][pi].lane = Tenancy::Idle,
            },
            (Tenancy::Active(lane), Some(seq)) if lane.token() == token => {
                let offset = offset.map(|o| i64::try_from(o).unwrap());
                let mut progress = match (self.mutant, offset) {
                    // As if the failed record had landed right after the last valid one.
                    (Mutant::IgnoreFailures, None) => lane.delivered(seq, Some(lane.last_valid() + 1)),
                    _ => lane.delivered(seq, offset),
                };
                if let Next::CheckGap { seq, from, to } = progress.next {
                    let marks: Vec<Mark> = self.logs[pi]
                        [usize::try_from(from).unwrap()..usize::try_from(to).unwrap()]
                        .iter()
                        .map(|l| l.mark)
                        .collect();
                    let marks = if self.mutant == Mutant::NoGapCheck { Vec::new() } else { marks };
                    progress = lane.gap(seq, to, &marks);
                }
                let next = progress.next;
                for (caller, answer) in progress.answers {
                    self.answered(caller, answer);
                }
                match next {
                    Next::Reclaim => self.claim(w, p),
                    Next::Drop => self.writers[w][pi].lane = Tenancy::Idle,
                    Next::Continue | Next::CheckGap { .. } => {}
                }
            }
            // A report of an earlier tenure of this writer: nobody waits for it any more.
            _ => {}
        }
    }

    fn answered(&mut self, caller: u64, answer: Answer) {
        if let Answer::Decided(outcome) = answer {
            let request = self.callers[&caller];
            self.answers.push((request, outcome));
        }
    }

    /// Lets whatever is still in flight land (a zombie's last appends), acknowledged by nobody.
    fn drain(&mut self) {
        for w in 0..self.writers.len() {
            for p in 0..PARTITIONS {
                let pi = usize::try_from(p).unwrap();
                while let Some(send) = self.writers[w][pi].sends.pop_front() {
                    self.logs[pi].push(send.logged);
                }
            }
        }
    }
}

/// The restore of the real lanes: the reader rule and the fold, on the simulated records.
/// `everything` (a mutant) folds void records too.
fn restore(
    log: &[Logged],
    partition: i32,
    memory: Memory,
    now: OffsetDateTime,
    everything: bool,
) -> holdfast_command_service::lane::state::PartitionState {
    let mut rule = ReaderRule::default();
    let mut rebuild = Rebuild::new(partition, memory, now);
    for (offset, logged) in log.iter().enumerate() {
        let verdict = match rule.admit(&logged.mark) {
            Judged::Void(_) if everything => Judged::Valid,
            verdict => verdict,
        };
        let entry = match verdict {
            Judged::Claim => match logged.mark {
                Mark::Claim { token } => Entry::Claim(token),
                _ => unreachable!(),
            },
            Judged::Valid => {
                Entry::Valid { record: Ok(logged.record.clone()), fingerprint: logged.fingerprint }
            }
            Judged::Void(why) => Entry::Void(why),
        };
        rebuild.apply(i64::try_from(offset).unwrap(), entry).expect("every simulated record decodes");
    }
    rebuild.finish()
}

/// Checks the invariants on the final logs; describes the first violation.
fn judge(world: &World) -> Result<Stats, String> {
    let mut stats = Stats::default();
    let mut verdicts: Vec<Vec<Judged>> = Vec::new();
    for (p, log) in world.logs.iter().enumerate() {
        let mut rule = ReaderRule::default();
        let judged: Vec<Judged> = log.iter().map(|l| rule.admit(&l.mark)).collect();
        // Every valid record was decided on the fold of the valid records before it.
        let mut folds: HashMap<ResourceId, ResourceState> = HashMap::new();
        let mut audit = AuditReport::default();
        for (offset, (logged, verdict)) in log.iter().zip(&judged).enumerate() {
            match verdict {
                Judged::Valid => stats.valid += 1,
                Judged::Void(_) => {
                    stats.void += 1;
                    continue;
                }
                Judged::Claim => continue,
            }
            let resource = match &logged.record {
                LogRecord::Event(e) => e.envelope.resource_id.clone(),
                LogRecord::Rejected(r) => r.resource_id.clone(),
                LogRecord::Claim(_) => return Err(format!("p{p}@{offset}: a claim under data headers")),
            };
            let fold = folds.entry(resource.clone()).or_insert_with(|| ResourceState::new(resource.clone()));
            if logged.decided_on.as_ref() != Some(fold) {
                return Err(format!("p{p}@{offset}: decided on a state other than the log's fold before it"));
            }
            if let LogRecord::Event(event) = &logged.record {
                fold.apply(event);
                audit.apply(i64::try_from(offset).unwrap(), event);
            }
        }
        if let Some(overbooked) = audit.overbookings.first() {
            return Err(format!("p{p}: overbooked {overbooked:?}"));
        }
        verdicts.push(judged);
    }
    // Every answered decision is valid where its answer says; retries got the same decision.
    let mut first: HashMap<Uuid, &Arc<Outcome>> = HashMap::new();
    for (request, outcome) in &world.answers {
        let command_id = world.requests[*request].envelope.meta.command_id;
        let p = usize::try_from(outcome.position.partition).unwrap();
        let at = usize::try_from(outcome.position.next_offset).unwrap();
        match &outcome.verdict {
            Verdict::Accepted { events: 0, reservation } => {
                stats.repeats += 1;
                // A repeat restates the log: the fold before its position agrees.
                if let Some(view) = reservation {
                    let status =
                        fold_before(&world.logs[p], &verdicts[p], at, view.reservation_id.resource_id())
                            .and_then(|s| s.reservation(&view.reservation_id).map(|r| r.status));
                    if status.map(status_name) != Some(status_name(view.status)) {
                        return Err(format!(
                            "repeat of {command_id} answered {:?}, the log says {status:?}",
                            view.status
                        ));
                    }
                }
                continue;
            }
            _ => stats.decided += 1,
        }
        let Some(last) = at.checked_sub(1) else {
            return Err(format!("{command_id} answered at position 0"));
        };
        let valid = verdicts[p].get(last) == Some(&Judged::Valid);
        let same_command = match world.logs[p].get(last).map(|l| &l.record) {
            Some(LogRecord::Event(e)) => e.envelope.command_id == command_id,
            Some(LogRecord::Rejected(r)) => r.command_id == command_id,
            _ => false,
        };
        if !valid || !same_command {
            return Err(format!("{command_id} answered at p{p}@{last}, which is not its valid record"));
        }
        match first.get(&command_id) {
            Some(earlier) if (&earlier.verdict, earlier.position) != (&outcome.verdict, outcome.position) => {
                return Err(format!("{command_id} answered twice differently: {earlier:?} then {outcome:?}"));
            }
            Some(_) => stats.retries += 1,
            None => {
                first.insert(command_id, outcome);
            }
        }
    }
    Ok(stats)
}

fn status_name(status: ReservationStatus) -> &'static str {
    status.as_str()
}

/// The state of `resource` after the valid records before offset `at`.
fn fold_before(
    log: &[Logged],
    verdicts: &[Judged],
    at: usize,
    resource: &ResourceId,
) -> Option<ResourceState> {
    let mut state = ResourceState::new(resource.clone());
    for (logged, verdict) in log.iter().zip(verdicts).take(at) {
        if let (Judged::Valid, LogRecord::Event(event)) = (verdict, &logged.record)
            && &event.envelope.resource_id == resource
        {
            state.apply(event);
        }
    }
    Some(state)
}

#[derive(Debug, Default, Clone, Copy)]
struct Stats {
    valid: usize,
    void: usize,
    decided: usize,
    repeats: usize,
    retries: usize,
}

fn check(runs: u64, writers: usize, steps: usize, mutant: Mutant) -> Result<Stats, String> {
    let mut total = Stats::default();
    for seed in 0..runs {
        let mut world = World::new(seed, writers, mutant);
        for _ in 0..steps {
            world.step();
        }
        world.drain();
        let stats = judge(&world).map_err(|violation| format!("seed {seed}: {violation}"))?;
        total.valid += stats.valid;
        total.void += stats.void;
        total.decided += stats.decided;
        total.repeats += stats.repeats;
        total.retries += stats.retries;
    }
    Ok(total)
}

#[test]
fn the_lanes_keep_every_promise_with_two_and_three_writers() {
    for writers in [2, 3] {
        let stats =
            check(1_000, writers, 400, Mutant::None).unwrap_or_else(|v| panic!("{writers} writers: {v}"));
        // The runs exercised what they check: decisions, refusals, void records, retries.
        assert!(stats.decided > 3_000 && stats.void > 1_000, "{stats:?}");
        assert!(stats.retries > 100 && stats.repeats > 50, "{stats:?}");
    }
}

#[test]
fn the_check_catches_a_broken_acknowledge_rule() {
    for mutant in [Mutant::NoGapCheck, Mutant::IgnoreFailures, Mutant::RestoreWithoutRule] {
        let found = check(600, 3, 400, mutant);
        assert!(found.is_err(), "{mutant:?} went unnoticed: {found:?}");
    }
}
