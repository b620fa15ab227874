//! [`Needs`]: which stored rows a batch of events can touch, so a worker loads exactly those
//! before folding.
//!
//! Two steps, because a confirmation names only its reservation: [`Needs::of`] lists the
//! resources, reservations and slots the events name; once the reservations are loaded,
//! [`Needs::add_reservation_slots`] adds the slots of their ranges.

use std::collections::BTreeSet;

use holdfast_domain::{Event, EventPayload, ReservationId, ResourceId};

use super::fold::slots_of;
use super::{ReservationRow, SlotKey};

/// Keys of the rows a batch needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Needs {
    /// Resources the events belong to (a new slot row takes its default capacity).
    pub resources: BTreeSet<ResourceId>,
    /// Reservations the events name.
    pub reservations: BTreeSet<ReservationId>,
    /// Slots the events name, plus those of the reservations they transition.
    pub slots: BTreeSet<SlotKey>,
}

impl Needs {
    /// What `events` name directly.
    pub fn of<'a>(events: impl IntoIterator<Item = &'a Event>) -> Self {
        let mut needs = Self::default();
        for event in events {
            let resource = &event.envelope.resource_id;
            needs.resources.insert(resource.clone());
            match &event.payload {
                EventPayload::ResourceDefined { .. } => {}
                EventPayload::CapacityChanged { range, .. } => {
                    needs.slots.extend(range.slots().map(|slot| (resource.clone(), slot)));
                }
                EventPayload::ReservationHeld { reservation_id, range, .. } => {
                    needs.reservations.insert(reservation_id.clone());
                    needs.slots.extend(range.slots().map(|slot| (resource.clone(), slot)));
                }
                EventPayload::ReservationConfirmed { reservation_id, .. }
                | EventPayload::ReservationCancelled { reservation_id, .. }
                | EventPayload::HoldExpired { reservation_id } => {
                    needs.reservations.insert(reservation_id.clone());
                }
            }
        }
        needs
    }

    /// Adds the slots of stored reservations (their transitions move units on them).
    pub fn add_reservation_slots<'a>(&mut self, rows: impl IntoIterator<Item = &'a ReservationRow>) {
        for row in rows {
            let resource = row.reservation_id.resource_id();
            self.slots.extend(slots_of(row.slot_from, row.slot_to).map(|slot| (resource.clone(), slot)));
        }
    }
}
