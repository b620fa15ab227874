//! Folding events into a [`ResourceState`].
//!
//! Applying never fails and never panics: arithmetic saturates, and an event that does not fit
//! the current state (another resource's event, a duplicate, a transition from the wrong
//! status) is ignored, so replaying an event twice changes nothing. Business rules are not
//! checked here; the decider only emits events that fit.

use super::{Reservation, ReservationStatus, ResourceDefinition, ResourceState};
use crate::event::{Event, EventPayload};
use crate::values::{ReservationId, SlotRange};

/// How a transition moves a reservation's units between the usage counters of its slots.
#[derive(Debug, Clone, Copy)]
enum Move {
    /// held → confirmed.
    Confirm,
    /// held → free.
    ReleaseHeld,
    /// confirmed → free.
    ReleaseConfirmed,
}

impl ResourceState {
    /// Folds one event into the state.
    pub fn apply(&mut self, event: &Event) {
        if event.envelope.resource_id != self.resource_id {
            return;
        }
        match &event.payload {
            EventPayload::ResourceDefined { name, capacity } => {
                self.definition = Some(ResourceDefinition { name: name.clone(), capacity: *capacity });
            }
            EventPayload::CapacityChanged { range, capacity } => {
                for slot in range.slots() {
                    self.slots.entry(slot).or_default().capacity = Some(*capacity);
                }
            }
            EventPayload::ReservationHeld { reservation_id, range, quantity, customer_id, expires_at } => {
                if reservation_id.resource_id() != &self.resource_id {
                    return;
                }
                let std::collections::hash_map::Entry::Vacant(slot) =
                    self.reservations.entry(reservation_id.uuid())
                else {
                    return;
                };
                slot.insert(Reservation {
                    range: *range,
                    quantity: *quantity,
                    customer_id: customer_id.clone(),
                    status: ReservationStatus::Held { expires_at: *expires_at },
                });
                for slot in range.slots() {
                    let usage = &mut self.slots.entry(slot).or_default().usage;
                    usage.held = usage.held.saturating_add(quantity.get());
                }
            }
            EventPayload::ReservationConfirmed { reservation_id, .. } => {
                self.transition(reservation_id, |status| match status {
                    ReservationStatus::Held { .. } => Some((ReservationStatus::Confirmed, Move::Confirm)),
                    _ => None,
                });
            }
            EventPayload::ReservationCancelled { reservation_id, .. } => {
                // The state's own status, not the event's `released`, says which counter to
                // decrement: the two agree for every event the decider emits.
                self.transition(reservation_id, |status| match status {
                    ReservationStatus::Held { .. } => Some((ReservationStatus::Cancelled, Move::ReleaseHeld)),
                    ReservationStatus::Confirmed => {
                        Some((ReservationStatus::Cancelled, Move::ReleaseConfirmed))
                    }
                    _ => None,
                });
            }
            EventPayload::HoldExpired { reservation_id } => {
                self.transition(reservation_id, |status| match status {
                    ReservationStatus::Held { expires_at } => {
                        Some((ReservationStatus::Expired { expired_at: expires_at }, Move::ReleaseHeld))
                    }
                    _ => None,
                });
            }
        }
    }

    /// Moves reservation `id` to the status `step` picks for its current one (if any) and
    /// adjusts usage on its slots accordingly.
    fn transition(
        &mut self,
        id: &ReservationId,
        step: impl FnOnce(ReservationStatus) -> Option<(ReservationStatus, Move)>,
    ) {
        if id.resource_id() != &self.resource_id {
            return;
        }
        let Some(reservation) = self.reservations.get_mut(&id.uuid()) else {
            return;
        };
        let Some((next, movement)) = step(reservation.status) else {
            return;
        };
        reservation.status = next;
        let (range, quantity) = (reservation.range, reservation.quantity.get());
        self.move_units(range, quantity, movement);
    }

    /// Applies `movement` of `quantity` units on every slot of `range` still in memory.
    /// Pruned slots are skipped rather than recreated.
    fn move_units(&mut self, range: SlotRange, quantity: u32, movement: Move) {
        for (_, entry) in self.slots.range_mut(range.from()..range.to()) {
            let usage = &mut entry.usage;
            match movement {
                Move::Confirm => {
                    usage.held = usage.held.saturating_sub(quantity);
                    usage.confirmed = usage.confirmed.saturating_add(quantity);
                }
                Move::ReleaseHeld => usage.held = usage.held.saturating_sub(quantity),
                Move::ReleaseConfirmed => {
                    usage.confirmed = usage.confirmed.saturating_sub(quantity);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::*;

    #[test]
    fn held_confirmed_cancelled_move_usage() {
        let state = given(&[defined(10), held(1, 0, 2, 3, in_minutes(15))]).state();
        assert_eq!(state.usage_at(day(0)), usage(3, 0));
        assert_eq!(state.usage_at(day(1)), usage(3, 0));
        assert_eq!(state.usage_at(day(2)), usage(0, 0));

        let state = given(&[defined(10), held(1, 0, 2, 3, in_minutes(15)), confirmed(1)]).state();
        assert_eq!(state.usage_at(day(1)), usage(0, 3));

        let state = given(&[
            defined(10),
            held(1, 0, 2, 3, in_minutes(15)),
            confirmed(1),
            cancelled(1, crate::ReleasedFrom::Confirmed),
        ])
        .state();
        assert_eq!(state.usage_at(day(1)), usage(0, 0));
        assert_eq!(state.reservation(&res(1)).map(|r| r.status.as_str()), Some("cancelled"));
    }

    #[test]
    fn expiry_releases_held_units_and_records_when() {
        let state = given(&[defined(10), held(1, 0, 2, 3, in_minutes(15)), expired(1)]).state();
        assert_eq!(state.usage_at(day(0)), usage(0, 0));
        assert_eq!(
            state.reservation(&res(1)).map(|r| r.status),
            Some(crate::ReservationStatus::Expired { expired_at: in_minutes(15) })
        );
    }

    #[test]
    fn duplicates_and_misfits_are_ignored() {
        let once = given(&[defined(10), held(1, 0, 2, 3, in_minutes(15)), confirmed(1)]).state();
        let twice = given(&[
            defined(10),
            held(1, 0, 2, 3, in_minutes(15)),
            held(1, 0, 2, 3, in_minutes(15)),
            confirmed(1),
            confirmed(1),
            expired(1),
        ])
        .state();
        assert_eq!(once, twice);
    }

    #[test]
    fn events_of_another_resource_are_ignored() {
        let mut state = given(&[defined(10)]).state();
        let before = state.clone();
        state.apply(&foreign_event(defined(99)));
        assert_eq!(state, before);
    }
}
