//! [`ReadModel`]: rows in memory and the fold of events into them.
//!
//! The fold follows `holdfast_domain::ResourceState::apply` exactly (the domain is the
//! reference; the tests compare the two): it never fails, ignores events that do not fit
//! (a second hold with the same id, a transition from the wrong status, a reservation of
//! another resource), and so applying an event twice changes nothing. Arithmetic saturates.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

use holdfast_domain::{Event, EventPayload, ReservationId, ResourceId, Slot, SlotRange};

use super::{Changes, EventPosition, ReservationRow, ResourceRow, SlotKey, SlotRow, Status};

/// A set of read-model rows and which of them changed since they were loaded.
///
/// Loaded partially (the live workers), the rows must include every existing row the folded
/// events touch — [`super::Needs`] lists them; a row the fold does not find is taken to be
/// absent from the store.
#[derive(Debug, Clone, Default)]
pub struct ReadModel {
    resources: BTreeMap<ResourceId, ResourceRow>,
    /// Slots by resource, then day: a slot is found without building (allocating) a key.
    slots: BTreeMap<ResourceId, BTreeMap<Slot, SlotRow>>,
    /// Hashed, not ordered: a rebuild holds millions, inserted in id order only by chance;
    /// [`ReadModel::reservations`] sorts when asked.
    reservations: HashMap<ReservationId, ReservationRow, BuildHasherDefault<IdHasher>>,
    changed_resources: BTreeSet<ResourceId>,
    changed_slots: BTreeSet<SlotKey>,
    changed_reservations: BTreeSet<ReservationId>,
    /// Whether changes go unrecorded (a bulk fold that writes every row at the end).
    untracked: bool,
}

/// Hashes reservation ids (a UUID and a resource id from our own log) by multiply-rotate:
/// SipHash's defence against chosen keys costs a rebuild's fold more than it buys.
#[derive(Debug, Default, Clone, Copy)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0_u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        for &byte in chunks.remainder() {
            self.add(u64::from(byte));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }
}

impl IdHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

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

impl ReadModel {
    /// A model holding `rows` as they are stored (nothing changed yet).
    #[must_use]
    pub fn from_rows(
        resources: impl IntoIterator<Item = ResourceRow>,
        slots: impl IntoIterator<Item = SlotRow>,
        reservations: impl IntoIterator<Item = ReservationRow>,
    ) -> Self {
        Self {
            resources: resources.into_iter().map(|r| (r.resource_id.clone(), r)).collect(),
            slots: slots.into_iter().fold(BTreeMap::new(), |mut slots, row| {
                slots.entry(row.resource_id.clone()).or_insert_with(BTreeMap::new).insert(row.slot, row);
                slots
            }),
            reservations: reservations.into_iter().map(|r| (r.reservation_id.clone(), r)).collect(),
            ..Self::default()
        }
    }

    /// Every resource row.
    pub fn resources(&self) -> impl Iterator<Item = &ResourceRow> {
        self.resources.values()
    }

    /// Every slot row, by resource then day.
    pub fn slots(&self) -> impl Iterator<Item = &SlotRow> {
        self.slots.values().flat_map(BTreeMap::values)
    }

    /// Every reservation row, in id order.
    pub fn reservations(&self) -> impl Iterator<Item = &ReservationRow> {
        let mut rows: Vec<&ReservationRow> = self.reservations.values().collect();
        rows.sort_unstable_by(|a, b| a.reservation_id.cmp(&b.reservation_id));
        rows.into_iter()
    }

    /// One reservation row.
    #[must_use]
    pub fn reservation(&self, id: &ReservationId) -> Option<&ReservationRow> {
        self.reservations.get(id)
    }

    /// Stops (`false`) or resumes (`true`) recording which rows change. A rebuild folds the
    /// log untracked, writes every row, then tracks the changes of its catch-up.
    pub fn track_changes(&mut self, on: bool) {
        self.untracked = !on;
    }

    /// Forgets which rows changed (they were written some other way).
    pub fn clear_changes(&mut self) {
        self.changed_resources.clear();
        self.changed_slots.clear();
        self.changed_reservations.clear();
    }

    /// Numbers of resource, slot and reservation rows.
    #[must_use]
    pub fn counts(&self) -> (usize, usize, usize) {
        (self.resources.len(), self.slots.values().map(BTreeMap::len).sum(), self.reservations.len())
    }

    /// Takes the rows changed since loading (or the last call), leaving them unmarked.
    pub fn take_changes(&mut self) -> Changes {
        let resources = std::mem::take(&mut self.changed_resources);
        let slots = std::mem::take(&mut self.changed_slots);
        let reservations = std::mem::take(&mut self.changed_reservations);
        Changes {
            resources: resources.iter().filter_map(|k| self.resources.get(k).cloned()).collect(),
            slots: slots.iter().filter_map(|(r, d)| self.slots.get(r)?.get(d).cloned()).collect(),
            reservations: reservations.iter().filter_map(|k| self.reservations.get(k).cloned()).collect(),
        }
    }

    /// Folds `event`, found at `at` in the log, into the rows.
    pub fn apply(&mut self, event: &Event, at: EventPosition) {
        let resource = &event.envelope.resource_id;
        let version = at.offset;
        match &event.payload {
            EventPayload::ResourceDefined { name, capacity } => {
                let row = ResourceRow {
                    resource_id: resource.clone(),
                    partition: at.partition,
                    name: name.clone(),
                    capacity: capacity.get(),
                    version,
                };
                if self.resources.get(resource).is_none_or(|old| old.version < version) {
                    self.resources.insert(resource.clone(), row);
                    if !self.untracked {
                        self.changed_resources.insert(resource.clone());
                    }
                }
            }
            EventPayload::CapacityChanged { range, capacity } => {
                self.update_slots(resource, range.slots(), |row| {
                    row.capacity = capacity.get();
                    row.version = version;
                });
            }
            EventPayload::ReservationHeld { reservation_id, range, quantity, customer_id, expires_at } => {
                if reservation_id.resource_id() != resource || self.reservations.contains_key(reservation_id)
                {
                    return;
                }
                let occurred_at = event.envelope.occurred_at;
                self.reservations.insert(
                    reservation_id.clone(),
                    ReservationRow {
                        reservation_id: reservation_id.clone(),
                        slot_from: range.from(),
                        slot_to: range.to(),
                        quantity: quantity.get(),
                        customer_id: customer_id.clone(),
                        status: Status::Held,
                        expires_at: *expires_at,
                        payment_ref: None,
                        cancel_reason: None,
                        created_at: occurred_at,
                        updated_at: occurred_at,
                        version,
                    },
                );
                if !self.untracked {
                    self.changed_reservations.insert(reservation_id.clone());
                }
                self.update_slots(resource, range.slots(), |row| {
                    row.held = row.held.saturating_add(quantity.get());
                    row.version = version;
                });
            }
            EventPayload::ReservationConfirmed { reservation_id, payment_ref } => {
                self.transition(event, reservation_id, version, |row| match row.status {
                    Status::Held => {
                        row.payment_ref.clone_from(payment_ref);
                        Some((Status::Confirmed, Move::Confirm))
                    }
                    _ => None,
                });
            }
            EventPayload::ReservationCancelled { reservation_id, reason, .. } => {
                // As in the domain, the row's own status (not the event's `released`) says
                // which counter to decrement; the two agree for every event the decider emits.
                self.transition(event, reservation_id, version, |row| {
                    let movement = match row.status {
                        Status::Held => Move::ReleaseHeld,
                        Status::Confirmed => Move::ReleaseConfirmed,
                        _ => return None,
                    };
                    row.cancel_reason.clone_from(reason);
                    Some((Status::Cancelled, movement))
                });
            }
            EventPayload::HoldExpired { reservation_id } => {
                self.transition(event, reservation_id, version, |row| match row.status {
                    Status::Held => Some((Status::Expired, Move::ReleaseHeld)),
                    _ => None,
                });
            }
        }
    }

    /// Applies `update` to the rows of `slots` of `resource`, each created first with the
    /// resource's default capacity (zero while the resource is undefined, as in the domain)
    /// and no usage when absent; marks them changed. The resource's maps are looked up once.
    fn update_slots(
        &mut self,
        resource: &ResourceId,
        slots: impl Iterator<Item = Slot>,
        mut update: impl FnMut(&mut SlotRow),
    ) {
        let default = self.resources.get(resource).map_or(0, |r| r.capacity);
        if !self.slots.contains_key(resource) {
            self.slots.insert(resource.clone(), BTreeMap::new());
        }
        let Some(days) = self.slots.get_mut(resource) else { return };
        for slot in slots {
            let row = days.entry(slot).or_insert_with(|| SlotRow {
                resource_id: resource.clone(),
                slot,
                capacity: default,
                held: 0,
                confirmed: 0,
                version: 0,
            });
            update(row);
            if !self.untracked {
                self.changed_slots.insert((resource.clone(), slot));
            }
        }
    }

    /// Moves reservation `id` to the status `step` picks (if any) and adjusts its slots.
    fn transition(
        &mut self,
        event: &Event,
        id: &ReservationId,
        version: i64,
        step: impl FnOnce(&mut ReservationRow) -> Option<(Status, Move)>,
    ) {
        let resource = &event.envelope.resource_id;
        if id.resource_id() != resource {
            return;
        }
        let Some(row) = self.reservations.get_mut(id) else { return };
        let Some((next, movement)) = step(row) else { return };
        row.status = next;
        row.updated_at = event.envelope.occurred_at;
        row.version = version;
        if !self.untracked {
            self.changed_reservations.insert(id.clone());
        }
        let (range, quantity) = (row.slot_from..row.slot_to, row.quantity);
        self.move_units(resource, range, quantity, movement, version);
    }

    /// Applies `movement` of `quantity` units on every existing slot row in `range`.
    fn move_units(
        &mut self,
        resource: &ResourceId,
        range: std::ops::Range<Slot>,
        quantity: u32,
        movement: Move,
        version: i64,
    ) {
        let Some(days) = self.slots.get_mut(resource) else { return };
        for (day, row) in days.range_mut(range) {
            match movement {
                Move::Confirm => {
                    row.held = row.held.saturating_sub(quantity);
                    row.confirmed = row.confirmed.saturating_add(quantity);
                }
                Move::ReleaseHeld => row.held = row.held.saturating_sub(quantity),
                Move::ReleaseConfirmed => row.confirmed = row.confirmed.saturating_sub(quantity),
            }
            row.version = version;
            if !self.untracked {
                self.changed_slots.insert((resource.clone(), *day));
            }
        }
    }
}

/// The slots of a reservation's stored range (the range was valid when the hold was made).
pub(super) fn slots_of(from: Slot, to: Slot) -> impl Iterator<Item = Slot> {
    SlotRange::new(from, to).ok().into_iter().flat_map(|range| range.slots())
}

#[cfg(test)]
mod tests;
