//! The decider: [`decide`] turns a command into events or a [`Rejection`]; [`evolve`] folds
//! an event into the state.
//!
//! This module owns every business rule of Holdfast. It is pure: the caller supplies the
//! state, the command, its metadata and the current time, and gets the same answer every time
//! for the same inputs (event ids included). Rules for resources live in [`resource`], rules
//! for reservations in [`reservation`]; this file routes and wraps payloads in envelopes.

mod reservation;
mod resource;

use time::{OffsetDateTime, UtcOffset};

use crate::command::{Command, CommandMeta};
use crate::event::{Event, EventPayload};
use crate::rejection::Rejection;
use crate::state::ResourceState;

/// What a rule decided: the payloads to record (empty for an idempotent repeat) or a refusal.
type Outcome = Result<Option<EventPayload>, Rejection>;

/// Decides `command` against `state` at instant `now`.
///
/// Returns the events to append (possibly none, when the command repeats something already
/// done) or the rejection. `state` is not changed: fold the events with [`evolve`] once they
/// are committed. Commands addressed to another resource are refused as
/// [`Rejection::MisroutedCommand`].
pub fn decide(
    state: &ResourceState,
    command: &Command,
    meta: &CommandMeta,
    now: OffsetDateTime,
) -> Result<Vec<Event>, Rejection> {
    let target = command.resource_id();
    if target != state.resource_id() {
        return Err(Rejection::MisroutedCommand {
            state_resource: state.resource_id().clone(),
            command_resource: target.clone(),
        });
    }
    let now = now.to_offset(UtcOffset::UTC);
    let payload = decide_payload(state, command, now)?;
    Ok(payload
        .into_iter()
        .zip(0_u32..)
        .map(|(payload, index)| Event::from_decision(state.resource_id(), meta, now, index, payload))
        .collect())
}

/// Folds `event` into `state`. Never fails; see [`ResourceState::apply`].
pub fn evolve(mut state: ResourceState, event: &Event) -> ResourceState {
    state.apply(event);
    state
}

/// Routes `command` to its rule once the resource is known to match.
fn decide_payload(state: &ResourceState, command: &Command, now: OffsetDateTime) -> Outcome {
    match command {
        Command::DefineResource { name, capacity, .. } => resource::define(state, name, *capacity),
        _ if state.definition().is_none() => {
            Err(Rejection::UnknownResource { resource_id: state.resource_id().clone() })
        }
        Command::ChangeCapacity { range, capacity, .. } => {
            resource::change_capacity(state, *range, *capacity)
        }
        Command::PlaceHold { reservation_id, range, quantity, customer_id, ttl } => reservation::place_hold(
            state,
            reservation::Hold { id: reservation_id, range, quantity: *quantity, customer_id, ttl: *ttl },
            now,
        ),
        Command::ConfirmReservation { reservation_id, payment_ref } => {
            reservation::confirm(state, reservation_id, payment_ref.as_ref(), now)
        }
        Command::CancelReservation { reservation_id, reason } => {
            reservation::cancel(state, reservation_id, reason.as_ref(), now)
        }
        Command::ExpireHold { reservation_id } => reservation::expire(state, reservation_id, now),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;

    #[test]
    fn commands_on_an_undefined_resource_are_unknown_resource() {
        let unknown = crate::Rejection::UnknownResource { resource_id: resource() };
        for command in [change_capacity(0, 1, 5), place_hold(1, 0, 1, 1), confirm(1), cancel(1), expire(1)] {
            given(&[]).when(command).then_rejected(unknown.clone());
        }
    }

    #[test]
    fn commands_for_another_resource_are_misrouted() {
        let state = given(&[defined(5)]).state();
        let command = crate::Command::ConfirmReservation {
            reservation_id: crate::ReservationId::new(&other_resource(), res(1).uuid()),
            payment_ref: None,
        };
        let rejection = decide(&state, &command, &meta(1), t0()).expect_err("misrouted");
        assert_eq!(rejection.code(), "misrouted-command");
    }

    #[test]
    fn events_carry_an_envelope_built_from_the_command() {
        let state = given(&[defined(5)]).state();
        let m = meta(77);
        let events = decide(&state, &place_hold(1, 0, 2, 1), &m, t0()).expect("accepted");
        let [event] = events.as_slice() else { panic!("one event expected: {events:?}") };
        let env = &event.envelope;
        assert_eq!(env.event_type, crate::EventType::ReservationHeld);
        assert_eq!(env.resource_id, resource());
        assert_eq!(env.occurred_at, t0());
        assert_eq!(env.command_id, m.command_id);
        assert_eq!(env.causation_id, m.causation_id);
        assert_eq!(env.correlation_id, m.correlation_id);
        assert_eq!(env.event_id.get_version_num(), 7);
    }

    #[test]
    fn decide_is_deterministic() {
        let state = given(&[defined(5)]).state();
        let once = decide(&state, &place_hold(1, 0, 2, 1), &meta(5), t0());
        let again = decide(&state, &place_hold(1, 0, 2, 1), &meta(5), t0());
        assert_eq!(once, again);
    }

    #[test]
    fn evolve_folds_what_decide_produced() {
        let state = given(&[defined(5)]).state();
        let events = decide(&state, &place_hold(1, 0, 2, 2), &meta(1), t0()).expect("accepted");
        let state = events.iter().fold(state, evolve);
        assert_eq!(state.available_at(day(1)), 3);
    }
}
