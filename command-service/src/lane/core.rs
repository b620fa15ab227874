//! [`Lane`]: the pure core of a partition's owner. It decides commands against the partition's
//! state, says which records to append with which tenure marks, and turns delivery reports into
//! answers by the writer's acknowledge rule (`holdfast_tenure::Writer`). No I/O: the shell in
//! [`super::run`] sends the appends, feeds back the reports and reads gaps; the model check in
//! `tests/model.rs` drives this same code against a simulated log.
//!
//! Decisions are made one after another on the state that includes every earlier decision,
//! appended or still in flight, so the next command never waits for the previous append. The
//! price is that one failed append voids everything after it: the whole in-flight tail is
//! answered "undecided" and the shell claims again and restores from the log.
//!
//! Every decision that changes something appends its events; a refusal appends one
//! `CommandRejected` record. Both are answered only once their last record is known valid. A
//! repeat that changes nothing (the same definition again, confirming a confirmed reservation,
//! cancelling a cancelled one) restates a fact of the log: it is answered at once when nothing
//! is in flight, and otherwise only after everything appended before it is valid.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use holdfast_domain::{
    Command, CommandMeta, Event, EventPayload, Rejection, ReservationId, ResourceState, decide,
};
use holdfast_platform::codec::{LogRecord, RejectedRecord};
use holdfast_tenure::{Mark, Report, Status, Token, Writer};
use time::OffsetDateTime;
use uuid::Uuid;

use super::state::PartitionState;
use crate::envelope::{CommandEnvelope, FORMAT_VERSION, Outcome, Position, ReservationView, Verdict};

/// What a caller is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The decision, valid in the log.
    Decided(Arc<Outcome>),
    /// Nothing can be said: the decision's append failed, is unclear, or the writer was fenced.
    /// The command may or may not be in the log; a retry with the same command id finds out.
    Undecided,
}

/// A record to append to the partition, in this order, with these headers.
#[derive(Debug, Clone, PartialEq)]
pub struct Append {
    /// Its sequence number in the tenure (also in `mark`).
    pub seq: u64,
    /// Its tenure headers.
    pub mark: Mark,
    /// The fingerprint of the request it answers (none for internal commands).
    pub fingerprint: Option<u64>,
    /// The record.
    pub record: LogRecord,
}

/// What became of one command handed to [`Lane::decide`].
#[derive(Debug)]
pub enum Decided<C> {
    /// Answer the caller now.
    Answer(C, Answer),
    /// Append these; the caller is answered when the last of them is valid.
    Append(Vec<Append>),
    /// The caller waits for a decision already in flight.
    Waiting,
}

/// What to do after a delivery report or a gap check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Carry on.
    Continue,
    /// Read the records at `from..to` of the partition and pass their marks to [`Lane::gap`]
    /// for record `seq` (appended at `to`). Take no further report until then.
    CheckGap {
        /// The reported record.
        seq: u64,
        /// First offset to read.
        from: i64,
        /// The reported record's offset (exclusive end of the read).
        to: i64,
    },
    /// The tenure is broken: claim again, restore, and decide again what is still wanted.
    Reclaim,
    /// Another writer claimed the partition: drop it and its state.
    Drop,
}

/// Answers to give and what to do next.
#[derive(Debug)]
pub struct Progress<C> {
    /// Callers to answer.
    pub answers: Vec<(C, Answer)>,
    /// Decisions that became valid (expiries included), once each.
    pub settled: Vec<Arc<Outcome>>,
    /// The next step.
    pub next: Next,
}

impl<C> Progress<C> {
    fn next(next: Next) -> Self {
        Self { answers: Vec::new(), settled: Vec::new(), next }
    }
}

/// A decision whose records are appended but not all known valid.
#[derive(Debug)]
struct Pending<C> {
    /// Sequence number of its last record.
    last_seq: u64,
    /// Its outcome; the position is set once its last record is valid.
    outcome: Outcome,
    /// Whether the outcome is remembered for retries (not for internal commands).
    remember: bool,
    /// Callers of the command (retries that arrived while it was in flight included).
    callers: Vec<C>,
    /// Repeats decided on the state after this decision, answered once it is valid.
    followers: Vec<(C, Outcome)>,
}

/// The owner of one partition during one tenure.
#[derive(Debug)]
pub struct Lane<C> {
    partition: i32,
    state: PartitionState,
    writer: Writer,
    pending: VecDeque<Pending<C>>,
    /// Command id → the `last_seq` of its decision in flight.
    in_flight: HashMap<Uuid, u64>,
}

impl<C> Lane<C> {
    /// The owner of `partition` after restoring `state` from every valid record before its
    /// claim, appended at `claim_offset` with `token`.
    #[must_use]
    pub fn new(partition: i32, mut state: PartitionState, token: Token, claim_offset: i64) -> Self {
        state.arm_timers();
        Self {
            partition,
            state,
            writer: Writer::new(token, claim_offset),
            pending: VecDeque::new(),
            in_flight: HashMap::new(),
        }
    }

    /// The partition.
    #[must_use]
    pub fn partition(&self) -> i32 {
        self.partition
    }

    /// The partition's state, including decisions still in flight.
    #[must_use]
    pub fn state(&self) -> &PartitionState {
        &self.state
    }

    /// The tenure's token.
    #[must_use]
    pub fn token(&self) -> Token {
        self.writer.token()
    }

    /// Offset of the last record known valid (the claim's at first).
    #[must_use]
    pub fn last_valid(&self) -> i64 {
        self.writer.last_valid()
    }

    /// Whether every decision made is answered (nothing in flight).
    #[must_use]
    pub fn is_settled(&self) -> bool {
        self.pending.is_empty()
    }

    /// Whether the tenure still acknowledges (no failure, not fenced).
    #[must_use]
    pub fn is_acknowledging(&self) -> bool {
        self.writer.status() == Status::Acknowledging
    }

    /// The earliest hold deadline in the partition.
    #[must_use]
    pub fn next_deadline(&self) -> Option<OffsetDateTime> {
        self.state.next_deadline()
    }

    /// Decides `envelope` for `caller` at `now`.
    pub fn decide(&mut self, envelope: &CommandEnvelope, caller: C, now: OffsetDateTime) -> Decided<C> {
        let command_id = envelope.meta.command_id;
        // A command decided before (valid in the log): its first outcome, whatever the request.
        // The edge tells a reused key from a retry by the fingerprint.
        if let Some(known) = self.state.outcome(command_id) {
            return Decided::Answer(caller, Answer::Decided(Arc::new(known.clone())));
        }
        if let Some(&last_seq) = self.in_flight.get(&command_id)
            && let Some(pending) = self.pending.iter_mut().find(|p| p.last_seq == last_seq)
        {
            pending.callers.push(caller);
            return Decided::Waiting;
        }
        let resource_id = envelope.command.resource_id().clone();
        let state = self.state.resource_mut(&resource_id);
        let base = Outcome {
            v: FORMAT_VERSION,
            command_id,
            resource_id,
            command: envelope.command.kind().to_owned(),
            verdict: Verdict::Accepted { events: 0, reservation: None },
            position: Position { partition: self.partition, next_offset: self.writer.last_valid() + 1 },
            decided_at: now,
            fingerprint: envelope.fingerprint,
            principal: envelope.meta.principal.clone(),
        };
        let decided = match foreign(state, envelope) {
            Some(rejection) => Err(rejection),
            None => decide(state, &envelope.command, &envelope.meta, now),
        };
        match decided {
            Ok(events) if events.is_empty() => {
                let outcome = Outcome {
                    verdict: Verdict::Accepted { events: 0, reservation: view(state, &envelope.command) },
                    ..base
                };
                match self.pending.back_mut() {
                    Some(last) => {
                        last.followers.push((caller, outcome));
                        Decided::Waiting
                    }
                    None => {
                        self.state.remember(outcome.clone());
                        Decided::Answer(caller, Answer::Decided(Arc::new(outcome)))
                    }
                }
            }
            Ok(events) => {
                for event in &events {
                    state.apply(event);
                }
                let verdict = Verdict::Accepted {
                    events: u32::try_from(events.len()).unwrap_or(u32::MAX),
                    reservation: view(state, &envelope.command),
                };
                self.arm(&events);
                let records = events.into_iter().map(LogRecord::Event).collect();
                Decided::Append(self.push(records, Outcome { verdict, ..base }, true, vec![caller]))
            }
            Err(rejection) => {
                let record = LogRecord::Rejected(RejectedRecord {
                    resource_id: base.resource_id.clone(),
                    occurred_at: now,
                    command_id,
                    correlation_id: envelope.meta.correlation_id,
                    traceparent: envelope.meta.traceparent.clone(),
                    principal: envelope.meta.principal.clone(),
                    command: base.command.clone(),
                    rejection: rejection.clone(),
                });
                let outcome = Outcome { verdict: Verdict::Rejected { rejection }, ..base };
                Decided::Append(self.push(vec![record], outcome, true, vec![caller]))
            }
        }
    }

    /// Expires every hold whose deadline is at or before `now`: the appends of their
    /// `HoldExpired` events. Holds confirmed or cancelled meanwhile need nothing.
    pub fn expire_due(&mut self, now: OffsetDateTime) -> Vec<Append> {
        let mut appends = Vec::new();
        for reservation_id in self.state.due_timers(now) {
            let envelope = expiry(&reservation_id, now);
            let state = self.state.resource_mut(reservation_id.resource_id());
            let Ok(events) = decide(state, &envelope.command, &envelope.meta, now) else { continue };
            if events.is_empty() {
                continue;
            }
            for event in &events {
                state.apply(event);
            }
            let outcome = Outcome {
                v: FORMAT_VERSION,
                command_id: envelope.meta.command_id,
                resource_id: reservation_id.resource_id().clone(),
                command: envelope.command.kind().to_owned(),
                verdict: Verdict::Accepted { events: 1, reservation: None },
                position: Position { partition: self.partition, next_offset: 0 },
                decided_at: now,
                fingerprint: 0,
                principal: None,
            };
            let records = events.into_iter().map(LogRecord::Event).collect();
            appends.extend(self.push(records, outcome, false, Vec::new()));
        }
        appends
    }

    /// The delivery report of record `seq`: appended at `offset`, or `None` when the append
    /// failed or its outcome is unknown.
    pub fn delivered(&mut self, seq: u64, offset: Option<i64>) -> Progress<C> {
        match self.writer.delivered(seq, offset) {
            Report::Valid => self.valid(seq, self.writer.last_valid()),
            Report::CheckGap { from, to } => Progress::next(Next::CheckGap { seq, from, to }),
            Report::Broken => self.abandon(Next::Reclaim),
            Report::Fenced => self.abandon(Next::Drop),
        }
    }

    /// The marks of the records read for a [`Next::CheckGap`].
    pub fn gap(&mut self, seq: u64, offset: i64, marks: &[Mark]) -> Progress<C> {
        match self.writer.gap(seq, offset, marks) {
            Report::Valid => self.valid(seq, offset),
            Report::CheckGap { .. } | Report::Broken => self.abandon(Next::Reclaim),
            Report::Fenced => self.abandon(Next::Drop),
        }
    }

    /// Gives up the tenure (the partition is revoked or the owner stops): every caller still
    /// waiting is undecided.
    pub fn close(mut self) -> Vec<(C, Answer)> {
        self.abandon(Next::Drop).answers
    }

    /// Queues the records of one decision for appending.
    fn push(
        &mut self,
        records: Vec<LogRecord>,
        outcome: Outcome,
        remember: bool,
        callers: Vec<C>,
    ) -> Vec<Append> {
        let fingerprint = remember.then_some(outcome.fingerprint);
        let appends: Vec<Append> = records
            .into_iter()
            .map(|record| {
                let seq = self.writer.next_seq();
                Append { seq, mark: self.writer.next_mark(), fingerprint, record }
            })
            .collect();
        if let Some(last) = appends.last() {
            self.in_flight.insert(outcome.command_id, last.seq);
            self.pending.push_back(Pending {
                last_seq: last.seq,
                outcome,
                remember,
                callers,
                followers: Vec::new(),
            });
        }
        appends
    }

    /// Record `seq` at `offset` is valid: answer its decision if it was the last record.
    fn valid(&mut self, seq: u64, offset: i64) -> Progress<C> {
        let mut progress = Progress::next(Next::Continue);
        if self.pending.front().is_some_and(|p| p.last_seq == seq)
            && let Some(pending) = self.pending.pop_front()
        {
            let position = Position { partition: self.partition, next_offset: offset + 1 };
            self.in_flight.remove(&pending.outcome.command_id);
            let outcome = Arc::new(Outcome { position, ..pending.outcome });
            if pending.remember {
                self.state.remember((*outcome).clone());
            }
            progress
                .answers
                .extend(pending.callers.into_iter().map(|c| (c, Answer::Decided(Arc::clone(&outcome)))));
            progress.settled.push(outcome);
            for (caller, repeat) in pending.followers {
                let repeat = Arc::new(Outcome { position, ..repeat });
                self.state.remember((*repeat).clone());
                progress.answers.push((caller, Answer::Decided(Arc::clone(&repeat))));
                progress.settled.push(repeat);
            }
        }
        progress
    }

    /// Everyone waiting is undecided.
    fn abandon(&mut self, next: Next) -> Progress<C> {
        self.in_flight.clear();
        let answers = self
            .pending
            .drain(..)
            .flat_map(|p| {
                let followers = p.followers.into_iter().map(|(c, _)| c);
                p.callers.into_iter().chain(followers).map(|c| (c, Answer::Undecided))
            })
            .collect();
        Progress { answers, settled: Vec::new(), next }
    }

    /// Arms the expiry timer of every hold among `events`.
    fn arm(&mut self, events: &[Event]) {
        for event in events {
            if let EventPayload::ReservationHeld { reservation_id, expires_at, .. } = &event.payload {
                self.state.timers.insert((*expires_at, reservation_id.clone()));
            }
        }
    }
}

/// The reservation a command concerns, as it stands in `state`.
#[must_use]
pub fn view(state: &ResourceState, command: &Command) -> Option<ReservationView> {
    let id = command.reservation_id()?;
    let reservation = state.reservation(id)?;
    Some(ReservationView { reservation_id: id.clone(), status: reservation.status })
}

/// The internal command that expires a hold, with an id derived from the reservation so a
/// repeated expiry is recognisable in the log.
#[must_use]
pub fn expiry(reservation_id: &ReservationId, now: OffsetDateTime) -> CommandEnvelope {
    let command_id = Uuid::new_v5(&Uuid::NAMESPACE_OID, format!("expire {reservation_id}").as_bytes());
    CommandEnvelope {
        v: FORMAT_VERSION,
        command: Command::ExpireHold { reservation_id: reservation_id.clone() },
        meta: CommandMeta::new(command_id),
        fingerprint: 0,
        submitted_at: now,
        reply_to: None,
        acting_for: None,
    }
}

/// `unknown-reservation` when a customer confirms or cancels a reservation of another
/// customer: to it, that reservation does not exist. Holds in another's name never get here
/// (the edge refuses them), and administrators act for anyone.
#[must_use]
pub fn foreign(state: &ResourceState, envelope: &CommandEnvelope) -> Option<Rejection> {
    let customer = envelope.acting_for.as_deref()?;
    let reservation_id = match &envelope.command {
        Command::ConfirmReservation { reservation_id, .. }
        | Command::CancelReservation { reservation_id, .. } => reservation_id,
        _ => return None,
    };
    let reservation = state.reservation(reservation_id)?;
    (reservation.customer_id.as_str() != customer)
        .then(|| Rejection::UnknownReservation { reservation_id: reservation_id.clone() })
}

/// The outcome label of a verdict for the decisions metric.
#[must_use]
pub fn outcome_label(verdict: &Verdict) -> &'static str {
    match verdict {
        Verdict::Accepted { events: 0, .. } => "repeated",
        Verdict::Accepted { .. } => "accepted",
        Verdict::Rejected { rejection } => rejection.code(),
        Verdict::KeyReused => "key-reused",
    }
}
