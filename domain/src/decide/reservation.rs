//! Rules for reservations: PlaceHold, ConfirmReservation, CancelReservation, ExpireHold.

use time::OffsetDateTime;

use super::Outcome;
use crate::event::{EventPayload, ReleasedFrom};
use crate::rejection::Rejection;
use crate::state::{ReservationStatus, ResourceState};
use crate::values::{CustomerId, HoldTtl, Quantity, ReservationId, SlotRange};

/// The fields of a PlaceHold command, borrowed.
#[derive(Debug, Clone, Copy)]
pub(super) struct Hold<'a> {
    /// Id minted by the edge.
    pub id: &'a ReservationId,
    /// Slots to hold.
    pub range: &'a SlotRange,
    /// Units per slot.
    pub quantity: Quantity,
    /// Who holds them.
    pub customer_id: &'a CustomerId,
    /// How long the hold lasts.
    pub ttl: HoldTtl,
}

/// PlaceHold: all or nothing over the range. A repeat of the same hold is a no-op; a reused id
/// with other details is a conflict; the first short slot is reported.
pub(super) fn place_hold(state: &ResourceState, hold: Hold<'_>, now: OffsetDateTime) -> Outcome {
    if let Some(existing) = state.reservation(hold.id) {
        let same = existing.range == *hold.range
            && existing.quantity == hold.quantity
            && existing.customer_id == *hold.customer_id;
        return if same {
            Ok(None)
        } else {
            Err(Rejection::ReservationConflict { reservation_id: hold.id.clone() })
        };
    }
    for slot in hold.range.slots() {
        let available = state.available_at(slot);
        if available < hold.quantity.get() {
            return Err(Rejection::InsufficientCapacity { slot, requested: hold.quantity, available });
        }
    }
    Ok(Some(EventPayload::ReservationHeld {
        reservation_id: hold.id.clone(),
        range: *hold.range,
        quantity: hold.quantity,
        customer_id: hold.customer_id.clone(),
        expires_at: now.saturating_add(hold.ttl.duration()),
    }))
}

/// ConfirmReservation: only a live hold can be confirmed; confirming twice is a no-op.
pub(super) fn confirm(
    state: &ResourceState,
    id: &ReservationId,
    payment_ref: Option<&String>,
    now: OffsetDateTime,
) -> Outcome {
    let reservation = known(state, id)?;
    match reservation.status {
        ReservationStatus::Held { expires_at } if now < expires_at => {
            Ok(Some(EventPayload::ReservationConfirmed {
                reservation_id: id.clone(),
                payment_ref: payment_ref.cloned(),
            }))
        }
        ReservationStatus::Held { expires_at: expired_at } | ReservationStatus::Expired { expired_at } => {
            Err(Rejection::HoldExpired { reservation_id: id.clone(), expired_at })
        }
        ReservationStatus::Confirmed => Ok(None),
        ReservationStatus::Cancelled => Err(Rejection::AlreadyCancelled { reservation_id: id.clone() }),
    }
}

/// CancelReservation: releases a live hold or a confirmed reservation; cancelling twice is a
/// no-op. A hold whose TTL has run out counts as expired even before its ExpireHold timer
/// fires, so the answer does not depend on timer latency.
pub(super) fn cancel(
    state: &ResourceState,
    id: &ReservationId,
    reason: Option<&String>,
    now: OffsetDateTime,
) -> Outcome {
    let reservation = known(state, id)?;
    let released = match reservation.status {
        ReservationStatus::Held { expires_at } if now < expires_at => ReleasedFrom::Held,
        ReservationStatus::Confirmed => ReleasedFrom::Confirmed,
        ReservationStatus::Held { expires_at: expired_at } | ReservationStatus::Expired { expired_at } => {
            return Err(Rejection::HoldExpired { reservation_id: id.clone(), expired_at });
        }
        ReservationStatus::Cancelled => return Ok(None),
    };
    Ok(Some(EventPayload::ReservationCancelled {
        reservation_id: id.clone(),
        reason: reason.cloned(),
        released,
    }))
}

/// ExpireHold: releases a hold whose TTL has run out; anything else (early, already settled,
/// unknown) is a stale timer and harmless.
pub(super) fn expire(state: &ResourceState, id: &ReservationId, now: OffsetDateTime) -> Outcome {
    match state.reservation(id).map(|r| r.status) {
        Some(ReservationStatus::Held { expires_at }) if now >= expires_at => {
            Ok(Some(EventPayload::HoldExpired { reservation_id: id.clone() }))
        }
        _ => Ok(None),
    }
}

/// The reservation `id`, or [`Rejection::UnknownReservation`].
fn known<'s>(
    state: &'s ResourceState,
    id: &ReservationId,
) -> Result<&'s crate::state::Reservation, Rejection> {
    state.reservation(id).ok_or_else(|| Rejection::UnknownReservation { reservation_id: id.clone() })
}

#[cfg(test)]
mod hold_tests;
#[cfg(test)]
mod settle_tests;
