//! Rules for the resource itself: DefineResource and ChangeCapacity.

use super::Outcome;
use crate::event::EventPayload;
use crate::rejection::Rejection;
use crate::state::{ResourceDefinition, ResourceState};
use crate::values::{Capacity, CapacityRange, ResourceName};

/// DefineResource: creates the resource; repeating the same definition is a no-op, a
/// different one is a [`Rejection::ResourceConflict`].
pub(super) fn define(state: &ResourceState, name: &ResourceName, capacity: Capacity) -> Outcome {
    let requested = ResourceDefinition { name: name.clone(), capacity };
    match state.definition() {
        None => Ok(Some(EventPayload::ResourceDefined { name: requested.name, capacity })),
        Some(existing) if *existing == requested => Ok(None),
        Some(existing) => Err(Rejection::ResourceConflict {
            resource_id: state.resource_id().clone(),
            existing: existing.clone(),
            requested,
        }),
    }
}

/// ChangeCapacity: sets the capacity of every slot in `range`, unless some slot already has
/// more units held or confirmed than the new capacity (the first such slot is reported).
pub(super) fn change_capacity(state: &ResourceState, range: CapacityRange, capacity: Capacity) -> Outcome {
    for slot in range.slots() {
        let in_use = state.usage_at(slot).in_use();
        if in_use > capacity.get() {
            return Err(Rejection::CapacityBelowUsage { slot, requested: capacity, in_use });
        }
    }
    Ok(Some(EventPayload::CapacityChanged { range, capacity }))
}

#[cfg(test)]
mod tests {
    use crate::Rejection;
    use crate::testing::*;

    #[test]
    fn define_records_the_resource() {
        let state = given(&[]).when(define(10)).then_events(&[defined(10)]);
        assert_eq!(state.capacity_at(day(0)).get(), 10);
    }

    #[test]
    fn identical_redefine_is_a_no_op() {
        given(&[defined(10)]).when(define(10)).then_nothing();
    }

    #[test]
    fn different_redefine_is_a_conflict_saying_what_differs() {
        let rejection = given(&[defined(10)]).when(define(12)).rejection();
        assert_eq!(rejection.code(), "resource-conflict");
        assert!(rejection.to_string().contains("capacity 10 → 12"), "{rejection}");

        let renamed = crate::Command::DefineResource {
            resource_id: resource(),
            name: crate::ResourceName::parse("Suite").expect("valid"),
            capacity: cap(10),
        };
        let rejection = given(&[defined(10)]).when(renamed).rejection();
        assert!(rejection.to_string().contains("name \"Room 101\" → \"Suite\""), "{rejection}");
    }

    #[test]
    fn capacity_change_records_overrides() {
        let state =
            given(&[defined(10)]).when(change_capacity(1, 3, 4)).then_events(&[capacity_changed(1, 3, 4)]);
        assert_eq!(state.capacity_at(day(0)).get(), 10);
        assert_eq!(state.capacity_at(day(2)).get(), 4);
        assert_eq!(state.capacity_at(day(3)).get(), 10);
    }

    #[test]
    fn capacity_change_down_to_usage_is_allowed() {
        given(&[
            defined(10),
            held(1, 0, 2, 3, in_minutes(15)),
            held(2, 1, 2, 2, in_minutes(15)),
            confirmed(2),
        ])
        .when(change_capacity(0, 2, 5))
        .then_events(&[capacity_changed(0, 2, 5)]);
    }

    #[test]
    fn capacity_change_below_usage_is_rejected_at_the_first_short_slot() {
        given(&[
            defined(10),
            held(1, 0, 2, 3, in_minutes(15)),
            held(2, 1, 2, 2, in_minutes(15)),
            confirmed(2),
        ])
        .when(change_capacity(0, 5, 4))
        .then_rejected(Rejection::CapacityBelowUsage { slot: day(1), requested: cap(4), in_use: 5 });
    }

    #[test]
    fn capacity_can_close_empty_slots() {
        let state =
            given(&[defined(10)]).when(change_capacity(0, 1, 0)).then_events(&[capacity_changed(0, 1, 0)]);
        assert_eq!(state.available_at(day(0)), 0);
    }
}
