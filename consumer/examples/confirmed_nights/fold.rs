//! The example's fold: confirmed nights per resource, from the valid history.
//!
//! A night is one unit of a resource for one slot: a confirmed reservation of 2 units for
//! 3 nights counts 6. A hold counts once it is confirmed, and no more once a confirmed
//! reservation is cancelled.

use std::collections::{BTreeMap, HashMap};

use holdfast_domain::{Event, EventPayload, ReleasedFrom, ReservationId};

/// Confirmed nights per resource id.
#[derive(Debug, Default)]
pub struct ConfirmedNights {
    /// Holds not confirmed (yet): reservation id → (resource id, nights).
    held: HashMap<ReservationId, (String, u64)>,
    /// Confirmed reservations: reservation id → (resource id, nights).
    confirmed: HashMap<ReservationId, (String, u64)>,
    /// The count, by resource id.
    pub by_resource: BTreeMap<String, u64>,
}

impl ConfirmedNights {
    /// Applies the next valid event of its partition.
    pub fn apply(&mut self, event: &Event) {
        let resource = event.envelope.resource_id.as_str().to_owned();
        match &event.payload {
            EventPayload::ReservationHeld { reservation_id, range, quantity, .. } => {
                let nights = range.len() as u64 * u64::from(quantity.get());
                self.held.insert(reservation_id.clone(), (resource, nights));
            }
            EventPayload::ReservationConfirmed { reservation_id, .. } => {
                if let Some((resource, nights)) = self.held.remove(reservation_id) {
                    *self.by_resource.entry(resource.clone()).or_default() += nights;
                    self.confirmed.insert(reservation_id.clone(), (resource, nights));
                }
            }
            EventPayload::ReservationCancelled {
                reservation_id, released: ReleasedFrom::Confirmed, ..
            } => {
                if let Some((resource, nights)) = self.confirmed.remove(reservation_id) {
                    let count = self.by_resource.entry(resource).or_default();
                    *count = count.saturating_sub(nights);
                }
            }
            EventPayload::ReservationCancelled { reservation_id, released: ReleasedFrom::Held, .. }
            | EventPayload::HoldExpired { reservation_id } => {
                self.held.remove(reservation_id);
            }
            EventPayload::ResourceDefined { .. } | EventPayload::CapacityChanged { .. } => {}
        }
    }
}
