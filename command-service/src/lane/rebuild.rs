//! [`Rebuild`]: a partition's state folded from its log by the reader rule — the pure part of a
//! restore. Valid events change the resources' state; every valid decision (its events, or its
//! `CommandRejected` record) becomes a remembered outcome, so a retry of a command decided
//! before the partition moved gets the same answer. Claims and void records change nothing.
//!
//! A valid record that cannot be decoded stops the rebuild: skipping it could leave capacity
//! that is in fact taken looking free.

use holdfast_domain::{Event, EventType};
use holdfast_platform::codec::{CodecError, LogRecord, RejectedRecord};
use holdfast_platform::replay::Entry;
use time::OffsetDateTime;

use super::state::{Memory, PartitionState};
use crate::envelope::{FORMAT_VERSION, Outcome, Position, ReservationView, Verdict};

/// Why a rebuild cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    /// A valid record does not decode. The partition cannot be served until an operator acts
    /// (deploy a build that reads it, or repair the registry); it is never skipped.
    #[error("valid record at offset {offset} cannot be decoded: {error}")]
    Undecodable {
        /// Where it is.
        offset: i64,
        /// Why.
        error: CodecError,
    },
    /// The schema registry did not answer while a writer schema was needed: retry.
    #[error("schema registry unreachable at offset {offset}: {error}")]
    Registry {
        /// The record whose schema was needed.
        offset: i64,
        /// What failed.
        error: CodecError,
    },
}

/// The state of one partition folded from its valid records, in log order.
#[derive(Debug, Clone)]
pub struct Rebuild {
    partition: i32,
    state: PartitionState,
    /// Outcomes decided before this are not remembered.
    horizon: OffsetDateTime,
    /// The decision being folded (its events may follow).
    current: Option<Outcome>,
    /// Valid records folded.
    pub valid: u64,
    /// Claims seen.
    pub claims: u64,
    /// Void records skipped.
    pub void: u64,
}

impl Rebuild {
    /// An empty partition, remembering outcomes decided within `memory.window` before `now`.
    #[must_use]
    pub fn new(partition: i32, memory: Memory, now: OffsetDateTime) -> Self {
        Self {
            partition,
            state: PartitionState::new(memory),
            horizon: now - memory.window,
            current: None,
            valid: 0,
            claims: 0,
            void: 0,
        }
    }

    /// Folds the next record of the partition.
    ///
    /// # Errors
    /// See [`RebuildError`].
    pub fn apply(&mut self, offset: i64, entry: Entry) -> Result<(), RebuildError> {
        match entry {
            Entry::Claim(_) => self.claims += 1,
            Entry::Void(_) => self.void += 1,
            Entry::Valid { record, fingerprint } => {
                let record = record.map_err(|error| match error {
                    CodecError::RegistryUnreachable { .. } => RebuildError::Registry { offset, error },
                    error => RebuildError::Undecodable { offset, error },
                })?;
                self.valid += 1;
                let fingerprint = fingerprint.unwrap_or_default();
                match record {
                    LogRecord::Event(event) => self.event(offset, &event, fingerprint),
                    LogRecord::Rejected(rejected) => self.rejected(offset, rejected, fingerprint),
                    LogRecord::Claim(_) => {
                        let error =
                            CodecError::UnknownRecordName { name: "a claim under data headers".into() };
                        return Err(RebuildError::Undecodable { offset, error });
                    }
                }
            }
        }
        Ok(())
    }

    /// Moves the horizon to `memory.window` before `now`, forgetting the outcomes decided
    /// earlier. A rebuild kept folding for a long time (a standby) then remembers exactly what
    /// one started at `now` would: that one never remembers them at all.
    pub fn advance(&mut self, now: OffsetDateTime) {
        let horizon = now - self.state.memory().window;
        if horizon <= self.horizon {
            return;
        }
        self.horizon = horizon;
        if self.current.as_ref().is_some_and(|current| current.decided_at < horizon) {
            self.current = None;
        }
        self.state.forget_before(horizon);
    }

    /// The state, once every record before the claim is folded.
    #[must_use]
    pub fn finish(mut self) -> PartitionState {
        self.flush();
        self.state
    }

    fn event(&mut self, offset: i64, event: &Event, fingerprint: u64) {
        let envelope = &event.envelope;
        let state = self.state.resource_mut(&envelope.resource_id);
        state.apply(event);
        let Some(command) = command_kind(envelope.event_type) else { return };
        // Built only for outcomes that are remembered: most of a long log is older than the
        // horizon, and the view costs a lookup and a copy of the id.
        let reservation = || {
            event.payload.reservation_id().and_then(|id| {
                let reservation = state.reservation(id)?;
                Some(ReservationView { reservation_id: id.clone(), status: reservation.status })
            })
        };
        let position = Position { partition: self.partition, next_offset: offset + 1 };
        if let Some(current) = self.current.as_mut().filter(|c| c.command_id == envelope.command_id) {
            if let Verdict::Accepted { events, reservation: seen } = &mut current.verdict {
                *events += 1;
                *seen = reservation().or(seen.take());
            }
            current.position = position;
            return;
        }
        if envelope.occurred_at < self.horizon {
            self.flush();
            return;
        }
        let reservation = reservation();
        self.flush();
        self.current = Some(Outcome {
            v: FORMAT_VERSION,
            command_id: envelope.command_id,
            resource_id: envelope.resource_id.clone(),
            command: command.to_owned(),
            verdict: Verdict::Accepted { events: 1, reservation },
            position,
            decided_at: envelope.occurred_at,
            fingerprint,
            principal: envelope.principal.clone(),
        });
    }

    fn rejected(&mut self, offset: i64, rejected: RejectedRecord, fingerprint: u64) {
        self.flush();
        if rejected.occurred_at < self.horizon {
            return;
        }
        self.current = Some(Outcome {
            v: FORMAT_VERSION,
            command_id: rejected.command_id,
            resource_id: rejected.resource_id,
            command: rejected.command,
            verdict: Verdict::Rejected { rejection: rejected.rejection },
            position: Position { partition: self.partition, next_offset: offset + 1 },
            decided_at: rejected.occurred_at,
            fingerprint,
            principal: rejected.principal,
        });
    }

    fn flush(&mut self) {
        if let Some(outcome) = self.current.take() {
            self.state.remember(outcome);
        }
    }
}

/// The command kind that records an event of `event_type`; `None` for the internal expiry,
/// which no caller waits for.
fn command_kind(event_type: EventType) -> Option<&'static str> {
    match event_type {
        EventType::ResourceDefined => Some("define-resource"),
        EventType::CapacityChanged => Some("change-capacity"),
        EventType::ReservationHeld => Some("place-hold"),
        EventType::ReservationConfirmed => Some("confirm-reservation"),
        EventType::ReservationCancelled => Some("cancel-reservation"),
        EventType::HoldExpired => None,
    }
}

#[cfg(test)]
mod tests {
    use holdfast_domain::{Rejection, ResourceId};
    use holdfast_platform::codec::RejectedRecord;
    use time::Duration;
    use uuid::Uuid;

    use super::*;
    use crate::lane::state::Memory;

    fn rejected(command: u128, at: OffsetDateTime) -> Entry {
        let resource_id = ResourceId::parse("room-1").expect("valid");
        let record = RejectedRecord {
            resource_id: resource_id.clone(),
            occurred_at: at,
            command_id: Uuid::from_u128(command),
            correlation_id: Uuid::from_u128(command),
            traceparent: None,
            principal: None,
            command: "place-hold".into(),
            rejection: Rejection::UnknownResource { resource_id },
        };
        Entry::Valid { record: Ok(LogRecord::Rejected(record)), fingerprint: Some(1) }
    }

    #[test]
    fn a_rebuild_advanced_to_now_remembers_what_one_begun_now_remembers() {
        let memory = Memory { window: Duration::HOUR, capacity: 100 };
        let now = OffsetDateTime::from_unix_timestamp(1_767_225_600).expect("in range");
        let minutes = |n: i64| now - Duration::minutes(n);
        // Command 2 is decided again after its first outcome aged out.
        let log = [
            (1, minutes(120)),
            (2, minutes(90)),
            (5, minutes(70)),
            (3, minutes(30)),
            (2, minutes(20)),
            (4, minutes(10)),
        ];
        let fold = |begun: OffsetDateTime| {
            let mut rebuild = Rebuild::new(0, memory, begun);
            for (offset, (command, at)) in (0..).zip(log) {
                rebuild.apply(offset, rejected(command, at)).expect("folds");
            }
            rebuild
        };
        let mut early = fold(minutes(150));
        assert_eq!(early.clone().finish().remembered(), 4, "an earlier horizon remembers more");
        early.advance(now);
        let (early, fresh) = (early.finish(), fold(now).finish());
        assert_eq!(fresh.remembered(), 3);
        assert_eq!(fresh.outcome(Uuid::from_u128(2)).map(|o| o.decided_at), Some(minutes(20)));
        assert_eq!(early, fresh);
    }
}
