//! Deciding one command against a partition's state: the pure step of the processor loop,
//! between consuming a command and producing its events inside a transaction.

use holdfast_domain::{Command, Event, ResourceState, decide};
use time::OffsetDateTime;

use crate::envelope::{CommandEnvelope, ReservationView, Verdict};
use crate::processor::partition::PartitionState;

/// What deciding one command produced.
#[derive(Debug)]
pub struct Decided {
    /// Events to append (already applied to the partition's state).
    pub events: Vec<Event>,
    /// The verdict to report.
    pub verdict: Verdict,
    /// Whether the verdict is a remembered one (a retry) rather than a new decision.
    pub remembered: bool,
}

/// Decides `envelope` against `partition`, applying accepted events to its state at once so
/// the next command in the same batch sees them. A command id the partition already decided
/// is answered with the remembered verdict (or refused when the request differs).
pub fn decide_one(
    partition: &mut PartitionState,
    envelope: &CommandEnvelope,
    now: OffsetDateTime,
) -> Decided {
    if let Some(known) = partition.outcome(envelope.meta.command_id) {
        let verdict = if known.fingerprint == envelope.fingerprint {
            known.verdict.clone()
        } else {
            Verdict::KeyReused
        };
        return Decided { events: Vec::new(), verdict, remembered: true };
    }
    let state = partition.resource_mut(envelope.command.resource_id());
    match decide(state, &envelope.command, &envelope.meta, now) {
        Ok(events) => {
            for event in &events {
                state.apply(event);
            }
            let verdict = Verdict::Accepted {
                events: u32::try_from(events.len()).unwrap_or(u32::MAX),
                reservation: view(state, &envelope.command),
            };
            Decided { events, verdict, remembered: false }
        }
        Err(rejection) => {
            Decided { events: Vec::new(), verdict: Verdict::Rejected { rejection }, remembered: false }
        }
    }
}

/// The reservation a command concerns, as it stands in `state`.
fn view(state: &ResourceState, command: &Command) -> Option<ReservationView> {
    let id = command.reservation_id()?;
    let reservation = state.reservation(id)?;
    Some(ReservationView { reservation_id: id.clone(), status: reservation.status })
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
