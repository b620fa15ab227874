//! Scenarios for the PlaceHold rules.

use crate::testing::*;
use crate::{Command, HoldTtl, Rejection, ReleasedFrom, ReservationId};

// --- PlaceHold -------------------------------------------------------------------------

#[test]
fn hold_takes_units_on_every_slot_until_now_plus_ttl() {
    let state = given(&[defined(5)]).at(in_minutes(1)).when(place_hold(1, 0, 3, 2)).then_events(&[held(
        1,
        0,
        3,
        2,
        in_minutes(16),
    )]);
    for d in 0..3 {
        assert_eq!(state.usage_at(day(d)), usage(2, 0));
    }
    assert_eq!(state.usage_at(day(3)), usage(0, 0));
}

#[test]
fn hold_uses_the_requested_ttl() {
    let Command::PlaceHold { reservation_id, range, quantity, customer_id, .. } = place_hold(1, 0, 1, 1)
    else {
        unreachable!("place_hold builds a PlaceHold")
    };
    let ttl = HoldTtl::from_seconds(60).expect("valid");
    let command = Command::PlaceHold { reservation_id, range, quantity, customer_id, ttl };
    given(&[defined(5)]).when(command).then_events(&[held(1, 0, 1, 1, in_minutes(1))]);
}

#[test]
fn hold_may_fill_a_slot_exactly() {
    let state = given(&[defined(5), held(1, 0, 1, 3, in_minutes(15))])
        .when(place_hold(2, 0, 1, 2))
        .then_events(&[held(2, 0, 1, 2, in_minutes(15))]);
    assert_eq!(state.available_at(day(0)), 0);
}

#[test]
fn multi_day_hold_is_all_or_nothing() {
    // Day 2 has only 2 free units: the 3-unit hold over days 0..4 takes nothing anywhere.
    let history = [defined(5), held(1, 2, 3, 3, in_minutes(15))];
    given(&history).when(place_hold(2, 0, 4, 3)).then_rejected(Rejection::InsufficientCapacity {
        slot: day(2),
        requested: qty(3),
        available: 2,
    });
    given(&history).when(place_hold(2, 0, 4, 2)).then_events(&[held(2, 0, 4, 2, in_minutes(15))]);
}

#[test]
fn insufficient_capacity_reports_the_first_short_slot() {
    given(&[defined(5), capacity_changed(3, 4, 0), held(1, 1, 2, 4, in_minutes(15))])
        .when(place_hold(2, 0, 5, 2))
        .then_rejected(Rejection::InsufficientCapacity { slot: day(1), requested: qty(2), available: 1 });
}

#[test]
fn hold_respects_capacity_overrides() {
    given(&[defined(5), capacity_changed(1, 2, 1)])
        .when(place_hold(1, 0, 2, 2))
        .then_rejected(Rejection::InsufficientCapacity { slot: day(1), requested: qty(2), available: 1 });
}

#[test]
fn repeating_the_same_hold_is_a_no_op() {
    given(&[defined(5), held(1, 0, 2, 2, in_minutes(15))]).when(place_hold(1, 0, 2, 2)).then_nothing();
    given(&[defined(5), held(1, 0, 2, 2, in_minutes(15)), confirmed(1)])
        .when(place_hold(1, 0, 2, 2))
        .then_nothing();
}

#[test]
fn reusing_a_reservation_id_for_another_hold_is_a_conflict() {
    for other in [place_hold(1, 0, 3, 2), place_hold(1, 0, 2, 1)] {
        given(&[defined(5), held(1, 0, 2, 2, in_minutes(15))])
            .when(other)
            .then_rejected(Rejection::ReservationConflict { reservation_id: res(1) });
    }
}

#[test]
fn hold_for_another_resource_is_misrouted() {
    let Command::PlaceHold { range, quantity, customer_id, ttl, .. } = place_hold(1, 0, 1, 1) else {
        unreachable!("place_hold builds a PlaceHold")
    };
    let reservation_id = ReservationId::new(&other_resource(), res(1).uuid());
    let command = Command::PlaceHold { reservation_id, range, quantity, customer_id, ttl };
    given(&[defined(5)]).when(command).then_rejected(Rejection::MisroutedCommand {
        state_resource: resource(),
        command_resource: other_resource(),
    });
}

#[test]
fn expiry_frees_capacity_for_new_holds() {
    let full = [defined(2), held(1, 0, 2, 2, in_minutes(15))];
    given(&full).when(place_hold(2, 0, 2, 1)).rejection();
    let mut freed = full.to_vec();
    freed.push(expired(1));
    given(&freed).when(place_hold(2, 0, 2, 2)).then_events(&[held(2, 0, 2, 2, in_minutes(15))]);
}

#[test]
fn cancellation_frees_capacity_for_new_holds() {
    given(&[
        defined(2),
        held(1, 0, 2, 2, in_minutes(15)),
        confirmed(1),
        cancelled(1, ReleasedFrom::Confirmed),
    ])
    .when(place_hold(2, 0, 2, 2))
    .then_events(&[held(2, 0, 2, 2, in_minutes(15))]);
}
