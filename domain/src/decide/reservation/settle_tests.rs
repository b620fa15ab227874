//! Scenarios for the ConfirmReservation, CancelReservation and ExpireHold rules.

use time::Duration;

use crate::testing::*;
use crate::{Command, EventPayload, Rejection, ReleasedFrom};

// --- ConfirmReservation ----------------------------------------------------------------

#[test]
fn confirm_turns_a_live_hold_into_confirmed_units() {
    let command = Command::ConfirmReservation { reservation_id: res(1), payment_ref: Some("pay-9".into()) };
    let state = given(&[defined(5), held(1, 0, 2, 2, in_minutes(15))])
        .at(in_minutes(14))
        .when(command)
        .then_events(&[EventPayload::ReservationConfirmed {
            reservation_id: res(1),
            payment_ref: Some("pay-9".into()),
        }]);
    assert_eq!(state.usage_at(day(1)), usage(0, 2));
}

#[test]
fn confirm_at_or_after_expiry_is_rejected() {
    let expired_hold = Rejection::HoldExpired { reservation_id: res(1), expired_at: in_minutes(15) };
    for at in [in_minutes(15), in_minutes(60)] {
        given(&[defined(5), held(1, 0, 2, 2, in_minutes(15))])
            .at(at)
            .when(confirm(1))
            .then_rejected(expired_hold.clone());
    }
    given(&[defined(5), held(1, 0, 2, 2, in_minutes(15)), expired(1)])
        .at(in_minutes(16))
        .when(confirm(1))
        .then_rejected(expired_hold);
}

#[test]
fn confirm_twice_is_a_no_op() {
    given(&[defined(5), held(1, 0, 2, 2, in_minutes(15)), confirmed(1)])
        .at(in_minutes(30))
        .when(confirm(1))
        .then_nothing();
}

#[test]
fn confirm_after_cancel_is_rejected() {
    given(&[defined(5), held(1, 0, 2, 2, in_minutes(15)), cancelled(1, ReleasedFrom::Held)])
        .when(confirm(1))
        .then_rejected(Rejection::AlreadyCancelled { reservation_id: res(1) });
}

#[test]
fn confirm_of_an_unknown_reservation_is_rejected() {
    given(&[defined(5)])
        .when(confirm(9))
        .then_rejected(Rejection::UnknownReservation { reservation_id: res(9) });
}

// --- CancelReservation -----------------------------------------------------------------

#[test]
fn cancel_releases_a_hold() {
    let command = Command::CancelReservation { reservation_id: res(1), reason: Some("changed plans".into()) };
    let state = given(&[defined(5), held(1, 0, 2, 2, in_minutes(15))]).when(command).then_events(&[
        EventPayload::ReservationCancelled {
            reservation_id: res(1),
            reason: Some("changed plans".into()),
            released: ReleasedFrom::Held,
        },
    ]);
    assert_eq!(state.usage_at(day(0)), usage(0, 0));
}

#[test]
fn cancel_releases_a_confirmed_reservation() {
    let state = given(&[defined(5), held(1, 0, 2, 2, in_minutes(15)), confirmed(1)])
        .at(in_minutes(600))
        .when(cancel(1))
        .then_events(&[cancelled(1, ReleasedFrom::Confirmed)]);
    assert_eq!(state.usage_at(day(1)), usage(0, 0));
}

#[test]
fn cancel_is_idempotent() {
    given(&[defined(5), held(1, 0, 2, 2, in_minutes(15)), cancelled(1, ReleasedFrom::Held)])
        .when(cancel(1))
        .then_nothing();
}

#[test]
fn cancel_of_an_expired_hold_is_rejected() {
    let rejection = Rejection::HoldExpired { reservation_id: res(1), expired_at: in_minutes(15) };
    given(&[defined(5), held(1, 0, 2, 2, in_minutes(15)), expired(1)])
        .at(in_minutes(20))
        .when(cancel(1))
        .then_rejected(rejection.clone());
    // Lapsed but its timer has not fired yet: same answer.
    given(&[defined(5), held(1, 0, 2, 2, in_minutes(15))])
        .at(in_minutes(15))
        .when(cancel(1))
        .then_rejected(rejection);
}

#[test]
fn cancel_of_an_unknown_reservation_is_rejected() {
    given(&[defined(5)])
        .when(cancel(9))
        .then_rejected(Rejection::UnknownReservation { reservation_id: res(9) });
}

// --- ExpireHold ------------------------------------------------------------------------

#[test]
fn expire_releases_a_lapsed_hold() {
    let state = given(&[defined(5), held(1, 0, 2, 2, in_minutes(15)), held(2, 1, 3, 1, in_minutes(15))])
        .at(in_minutes(15))
        .when(expire(1))
        .then_events(&[expired(1)]);
    assert_eq!(state.usage_at(day(0)), usage(0, 0));
    assert_eq!(state.usage_at(day(1)), usage(1, 0));
}

#[test]
fn early_or_stale_expiry_timers_are_harmless() {
    let hold = held(1, 0, 2, 2, in_minutes(15));
    given(&[defined(5), hold.clone()])
        .at(in_minutes(15) - Duration::milliseconds(1))
        .when(expire(1))
        .then_nothing();
    given(&[defined(5), hold.clone(), confirmed(1)]).at(in_minutes(20)).when(expire(1)).then_nothing();
    given(&[defined(5), hold.clone(), cancelled(1, ReleasedFrom::Held)])
        .at(in_minutes(20))
        .when(expire(1))
        .then_nothing();
    given(&[defined(5), hold, expired(1)]).at(in_minutes(20)).when(expire(1)).then_nothing();
    given(&[defined(5)]).at(in_minutes(20)).when(expire(9)).then_nothing();
}
