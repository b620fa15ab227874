//! The read model as rows, and the pure fold of events into them.
//!
//! This module owns the shape of every read-model row (resources, availability per slot,
//! reservations) and [`ReadModel::apply`], which folds one event into the rows it touches.
//! It does no I/O: the live workers load the rows a batch needs ([`Needs`]) from PostgreSQL,
//! fold, and write back what changed; a rebuild or a verification folds the whole log into
//! an empty model. Both therefore get the same rows from the same events.
//!
//! Every row carries a `version`: the offset (in its resource's events partition) of the last
//! event that changed it. A resource lives in exactly one partition, so versions of one
//! resource's rows only grow, which is what lets Redis refuse a stale write.

mod fold;
mod needs;

use holdfast_domain::{CustomerId, ReservationId, ResourceId, ResourceName, Slot};
use time::OffsetDateTime;

pub use fold::ReadModel;
pub use needs::Needs;

/// Where an event sits in the log: its partition and offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventPosition {
    /// Partition of the events topic.
    pub partition: i32,
    /// Offset of the event in that partition; becomes the version of the rows it changes.
    pub offset: i64,
}

/// A resource's definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceRow {
    /// The resource.
    pub resource_id: ResourceId,
    /// Events partition the resource lives in (where its refills read from).
    pub partition: i32,
    /// Human-readable name.
    pub name: ResourceName,
    /// Default capacity of every slot without its own row.
    pub capacity: u32,
    /// Offset of the event that last changed this row.
    pub version: i64,
}

/// Identifies one slot of one resource.
pub type SlotKey = (ResourceId, Slot);

/// Capacity and usage of one slot of one resource. Slots no event touched have no row: their
/// capacity is the resource's default and nothing is in use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotRow {
    /// The resource.
    pub resource_id: ResourceId,
    /// The day.
    pub slot: Slot,
    /// Capacity of the slot (its override, or the resource default when the row was made).
    pub capacity: u32,
    /// Units held by live holds.
    pub held: u32,
    /// Units taken by confirmed reservations.
    pub confirmed: u32,
    /// Offset of the event that last changed this row.
    pub version: i64,
}

impl SlotRow {
    /// The row's key.
    #[must_use]
    pub fn key(&self) -> SlotKey {
        (self.resource_id.clone(), self.slot)
    }

    /// Units still free (never negative, even if capacity was lowered to the usage).
    #[must_use]
    pub fn available(&self) -> u32 {
        self.capacity.saturating_sub(self.held.saturating_add(self.confirmed))
    }
}

/// Where a reservation is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// Units held until `expires_at`.
    Held,
    /// Units taken for good.
    Confirmed,
    /// Released by the client.
    Cancelled,
    /// Released because the hold lapsed.
    Expired,
}

impl Status {
    /// The status as the API and the database spell it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Held => "held",
            Self::Confirmed => "confirmed",
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
        }
    }

    /// Parses [`Status::as_str`]'s spelling.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Held, Self::Confirmed, Self::Cancelled, Self::Expired].into_iter().find(|v| v.as_str() == s)
    }
}

/// One reservation as the read API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservationRow {
    /// The reservation (its id names its resource).
    pub reservation_id: ReservationId,
    /// First slot.
    pub slot_from: Slot,
    /// First slot after the range (exclusive).
    pub slot_to: Slot,
    /// Units on each slot.
    pub quantity: u32,
    /// Who holds it.
    pub customer_id: CustomerId,
    /// Lifecycle status.
    pub status: Status,
    /// When the hold lapses (or lapsed), whatever the status now.
    pub expires_at: OffsetDateTime,
    /// Payment reference given with the confirmation, if any.
    pub payment_ref: Option<String>,
    /// Reason given with the cancellation, if any.
    pub cancel_reason: Option<String>,
    /// When the hold was placed.
    pub created_at: OffsetDateTime,
    /// When the last change happened.
    pub updated_at: OffsetDateTime,
    /// Offset of the event that last changed this row.
    pub version: i64,
}

/// The rows a fold changed, in key order (a stable order keeps concurrent writers of the same
/// rows from deadlocking, and makes the writes easy to compare).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Changed resource definitions.
    pub resources: Vec<ResourceRow>,
    /// Changed slots.
    pub slots: Vec<SlotRow>,
    /// Changed reservations.
    pub reservations: Vec<ReservationRow>,
}

impl Changes {
    /// Whether nothing changed.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.resources.is_empty() && self.slots.is_empty() && self.reservations.is_empty()
    }

    /// The changes grouped by resource, for per-resource cache writes and notifications.
    #[must_use]
    pub fn by_resource(&self) -> Vec<ResourceChanges<'_>> {
        let mut grouped: std::collections::BTreeMap<&ResourceId, ResourceChanges<'_>> =
            std::collections::BTreeMap::new();
        for row in &self.resources {
            grouped
                .entry(&row.resource_id)
                .or_insert_with(|| ResourceChanges::new(&row.resource_id))
                .definition = Some(row);
        }
        for row in &self.slots {
            grouped
                .entry(&row.resource_id)
                .or_insert_with(|| ResourceChanges::new(&row.resource_id))
                .slots
                .push(row);
        }
        grouped.into_values().collect()
    }
}

/// What changed for one resource's availability.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceChanges<'a> {
    /// The resource.
    pub resource_id: &'a ResourceId,
    /// Its definition, when it changed.
    pub definition: Option<&'a ResourceRow>,
    /// Its changed slots, earliest first.
    pub slots: Vec<&'a SlotRow>,
}

impl<'a> ResourceChanges<'a> {
    fn new(resource_id: &'a ResourceId) -> Self {
        Self { resource_id, definition: None, slots: Vec::new() }
    }

    /// The newest version among the changes.
    #[must_use]
    pub fn version(&self) -> i64 {
        let slots = self.slots.iter().map(|s| s.version);
        self.definition.map(|d| d.version).into_iter().chain(slots).max().unwrap_or(0)
    }
}
