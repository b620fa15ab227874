//! [`ResourceState`]: everything one resource's decider needs to know, folded from its events.
//!
//! This module owns the in-memory shape of a resource (definition, per-slot capacity and
//! usage, known reservations), the read-only queries the decider and the command service use,
//! and memory pruning. Folding events into it lives in [`apply`]; it never validates business
//! rules (that is [`crate::decide`]'s job) and never fails.

mod apply;

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::values::{
    Capacity, CustomerId, Quantity, ReservationId, ResourceId, ResourceName, Slot, SlotRange,
};

/// The state of one resource, as of the last event folded into it.
///
/// Slots live in a `BTreeMap` (ordered, so pruning old days is a split) and reservations in a
/// `HashMap` keyed by the UUID part of their id (every reservation here belongs to this
/// resource, so the UUID alone identifies it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceState {
    /// The resource this state belongs to; events of other resources are ignored.
    resource_id: ResourceId,
    /// Name and default capacity, once defined.
    definition: Option<ResourceDefinition>,
    /// Per-slot capacity overrides and usage; slots never touched are absent.
    slots: BTreeMap<Slot, SlotEntry>,
    /// Reservations known to this resource, by the UUID of their id.
    reservations: HashMap<Uuid, Reservation>,
}

/// A resource's definition: what DefineResource set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceDefinition {
    /// Human-readable name.
    pub name: ResourceName,
    /// Capacity of every slot without an override.
    pub capacity: Capacity,
}

/// Units in use on one slot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SlotUsage {
    /// Units held by live (not yet confirmed) holds.
    pub held: u32,
    /// Units taken by confirmed reservations.
    pub confirmed: u32,
}

impl SlotUsage {
    /// Held plus confirmed units.
    pub fn in_use(self) -> u32 {
        self.held.saturating_add(self.confirmed)
    }
}

/// What the state records per touched slot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct SlotEntry {
    /// Capacity set by CapacityChanged, overriding the default.
    capacity: Option<Capacity>,
    /// Units in use.
    usage: SlotUsage,
}

/// A reservation as the resource knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    /// Slots it covers.
    pub range: SlotRange,
    /// Units it takes on each slot.
    pub quantity: Quantity,
    /// Who made it.
    pub customer_id: CustomerId,
    /// Where it is in its lifecycle.
    pub status: ReservationStatus,
}

/// Lifecycle of a reservation: `held → confirmed | cancelled | expired`, `confirmed → cancelled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ReservationStatus {
    /// Units are held until `expires_at`.
    Held {
        /// When the hold lapses.
        #[serde(with = "time::serde::rfc3339")]
        expires_at: OffsetDateTime,
    },
    /// Units are taken for good.
    Confirmed,
    /// Released by the client.
    Cancelled,
    /// Released because the hold lapsed.
    Expired {
        /// When the hold lapsed (its former `expires_at`).
        #[serde(with = "time::serde::rfc3339")]
        expired_at: OffsetDateTime,
    },
}

impl ReservationStatus {
    /// The status as the API spells it: `held`, `confirmed`, `cancelled` or `expired`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Held { .. } => "held",
            Self::Confirmed => "confirmed",
            Self::Cancelled => "cancelled",
            Self::Expired { .. } => "expired",
        }
    }
}

impl ResourceState {
    /// The state of `resource_id` before any event: undefined, nothing reserved.
    pub fn new(resource_id: ResourceId) -> Self {
        Self { resource_id, definition: None, slots: BTreeMap::new(), reservations: HashMap::new() }
    }

    /// The resource this state belongs to.
    pub fn resource_id(&self) -> &ResourceId {
        &self.resource_id
    }

    /// The definition, or `None` while the resource is undefined.
    pub fn definition(&self) -> Option<&ResourceDefinition> {
        self.definition.as_ref()
    }

    /// Capacity of `slot`: its override, else the default, else zero while undefined.
    pub fn capacity_at(&self, slot: Slot) -> Capacity {
        self.slots
            .get(&slot)
            .and_then(|e| e.capacity)
            .or_else(|| self.definition.as_ref().map(|d| d.capacity))
            .unwrap_or(Capacity::ZERO)
    }

    /// Units held and confirmed on `slot`.
    pub fn usage_at(&self, slot: Slot) -> SlotUsage {
        self.slots.get(&slot).map(|e| e.usage).unwrap_or_default()
    }

    /// Units still free on `slot` (capacity minus held and confirmed, never negative).
    pub fn available_at(&self, slot: Slot) -> u32 {
        let entry = self.slots.get(&slot);
        let capacity = entry
            .and_then(|e| e.capacity)
            .or_else(|| self.definition.as_ref().map(|d| d.capacity))
            .unwrap_or(Capacity::ZERO);
        let in_use = entry.map_or(0, |e| e.usage.in_use());
        capacity.get().saturating_sub(in_use)
    }

    /// The reservation `id`, if it belongs to this resource and has not been pruned.
    pub fn reservation(&self, id: &ReservationId) -> Option<&Reservation> {
        if id.resource_id() != &self.resource_id {
            return None;
        }
        self.reservations.get(&id.uuid())
    }

    /// Every known reservation with its id, in no particular order.
    pub fn reservations(&self) -> impl Iterator<Item = (ReservationId, &Reservation)> + '_ {
        self.reservations.iter().map(|(uuid, r)| (ReservationId::new(&self.resource_id, *uuid), r))
    }

    /// Every live hold with its expiry, in no particular order. The command service builds its
    /// expiry timers from this after restoring a partition.
    pub fn held_reservations(&self) -> impl Iterator<Item = (ReservationId, OffsetDateTime)> + '_ {
        self.reservations.iter().filter_map(|(uuid, r)| match r.status {
            ReservationStatus::Held { expires_at } => {
                Some((ReservationId::new(&self.resource_id, *uuid), expires_at))
            }
            _ => None,
        })
    }

    /// Live holds that expire strictly before `instant`.
    pub fn holds_expiring_before(
        &self,
        instant: OffsetDateTime,
    ) -> impl Iterator<Item = (ReservationId, OffsetDateTime)> + '_ {
        self.held_reservations().filter(move |(_, at)| *at < instant)
    }

    /// Number of reservations held in memory (any status).
    pub fn reservation_count(&self) -> usize {
        self.reservations.len()
    }

    /// Number of slots with a capacity override or usage held in memory.
    pub fn slot_count(&self) -> usize {
        self.slots.len()
    }

    /// Forgets slots before `before` and reservations whose whole range ended before it, to
    /// keep memory bounded. Live holds are kept whatever their range, so their expiry is still
    /// emitted and read models release them.
    ///
    /// After pruning, commands about a forgotten reservation get `UnknownReservation`, and a
    /// forgotten slot reads as default capacity and no usage; prune only days that can no
    /// longer be booked. A pruned state no longer equals a full replay of the log.
    pub fn prune(&mut self, before: Slot) {
        self.slots = self.slots.split_off(&before);
        self.reservations
            .retain(|_, r| r.range.to() > before || matches!(r.status, ReservationStatus::Held { .. }));
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::*;

    #[test]
    fn undefined_resource_has_no_capacity() {
        let state = given(&[]).state();
        assert_eq!(state.capacity_at(day(0)).get(), 0);
        assert_eq!(state.available_at(day(0)), 0);
        assert!(state.definition().is_none());
    }

    #[test]
    fn queries_combine_default_overrides_and_usage() {
        let state = given(&[
            defined(10),
            capacity_changed(1, 2, 4),
            held(1, 0, 3, 3, in_minutes(15)),
            held(2, 1, 2, 1, in_minutes(5)),
        ])
        .state();
        assert_eq!(state.capacity_at(day(0)).get(), 10);
        assert_eq!(state.capacity_at(day(1)).get(), 4);
        assert_eq!(state.usage_at(day(1)), usage(4, 0));
        assert_eq!(state.available_at(day(1)), 0);
        assert_eq!(state.available_at(day(2)), 7);
        assert_eq!(state.available_at(day(3)), 10);
        assert!(state.reservation(&res(1)).is_some());
        let expiring: Vec<_> = state.holds_expiring_before(in_minutes(10)).collect();
        assert_eq!(expiring, [(res(2), in_minutes(5))]);
        assert_eq!(state.held_reservations().count(), 2);
    }

    #[test]
    fn reservation_lookup_checks_the_resource() {
        let state = given(&[defined(10), held(1, 0, 1, 1, in_minutes(15))]).state();
        let foreign = crate::ReservationId::new(&other_resource(), res(1).uuid());
        assert!(state.reservation(&foreign).is_none());
    }

    #[test]
    fn prune_forgets_ended_days_and_reservations_but_keeps_live_holds() {
        let mut state = given(&[
            defined(10),
            held(1, 0, 2, 1, in_minutes(15)),
            confirmed(1),
            held(2, 0, 2, 1, in_minutes(15)),
            held(3, 1, 5, 1, in_minutes(15)),
            confirmed(3),
        ])
        .state();
        state.prune(day(2));
        assert!(state.reservation(&res(1)).is_none(), "ended before day 2");
        assert!(state.reservation(&res(2)).is_some(), "live hold is kept");
        assert!(state.reservation(&res(3)).is_some(), "still running");
        assert_eq!(state.usage_at(day(1)), usage(0, 0));
        assert_eq!(state.usage_at(day(2)), usage(0, 1));
        assert_eq!(state.slot_count(), 3);
    }
}
