//! How availability is laid out in Redis, shared by the writer here and the readers (query
//! service, verification).
//!
//! One hash per resource, `<prefix>avail:{<resource_id>}` (the braces are a cluster hash tag,
//! so a resource's key lives on one node). Fields:
//! - `def` → `<version>|<default capacity>|<name>`
//! - `YYYY-MM-DD` → `<version>|<capacity>|<held>|<confirmed>` for every slot with a row
//!
//! Every value starts with its version (the offset of the event that last changed it), which
//! the write script compares so a stale value never replaces a newer one. Slots without a
//! field have the default capacity and no usage.
//!
//! Positions: the hash `<prefix>positions` maps each partition to the next offset up to which
//! Redis reflects every event (read-your-writes compares a client's position token with it).
//! Live updates: `PUBLISH <prefix>avail-updates:{<resource_id>}` with a JSON [`Update`].
//!
//! Generations: `<prefix>` above is the generation's prefix, [`generation_prefix`]: the
//! configured prefix itself for generation 0, `<configured>g<n>:` for rebuilt generation `n`.
//! The key `<configured>generation` holds the live generation's number (absent: 0), set by a
//! rebuild right after its PostgreSQL switch, which also publishes the number on
//! `<configured>generation-changes`. Readers resolve the prefix through it.

use holdfast_domain::{ResourceId, Slot};
use serde::{Deserialize, Serialize};

use crate::model::{ResourceRow, SlotRow};

/// Field holding a resource's definition.
pub const DEFINITION_FIELD: &str = "def";

/// The key prefix of generation `generation` under the configured prefix `base`.
#[must_use]
pub fn generation_prefix(base: &str, generation: i64) -> String {
    if generation == 0 { base.to_owned() } else { format!("{base}g{generation}:") }
}

/// The key holding the live generation's number under the configured prefix `base`.
#[must_use]
pub fn generation_key(base: &str) -> String {
    format!("{base}generation")
}

/// The channel a switch of generation is announced on.
#[must_use]
pub fn generation_channel(base: &str) -> String {
    format!("{base}generation-changes")
}

/// The availability hash of `resource` under `prefix`.
#[must_use]
pub fn availability_key(prefix: &str, resource: &ResourceId) -> String {
    format!("{prefix}avail:{{{resource}}}")
}

/// The live-update channel of `resource` under `prefix`.
#[must_use]
pub fn channel(prefix: &str, resource: &ResourceId) -> String {
    format!("{prefix}avail-updates:{{{resource}}}")
}

/// The positions hash under `prefix`.
#[must_use]
pub fn positions_key(prefix: &str) -> String {
    format!("{prefix}positions")
}

/// The `def` value of a resource row.
#[must_use]
pub fn definition_value(row: &ResourceRow) -> String {
    format!("{}|{}|{}", row.version, row.capacity, row.name)
}

/// The field and value of a slot row.
#[must_use]
pub fn slot_field(row: &SlotRow) -> (String, String) {
    (row.slot.to_string(), format!("{}|{}|{}|{}", row.version, row.capacity, row.held, row.confirmed))
}

/// A cached slot, parsed back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedSlot {
    /// Version of the value.
    pub version: i64,
    /// Capacity.
    pub capacity: u32,
    /// Units held.
    pub held: u32,
    /// Units confirmed.
    pub confirmed: u32,
}

/// A cached definition, parsed back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedDefinition {
    /// Version of the value.
    pub version: i64,
    /// Default capacity.
    pub capacity: u32,
    /// Name.
    pub name: String,
}

/// Parses a slot value; `None` when malformed.
#[must_use]
pub fn parse_slot(value: &str) -> Option<CachedSlot> {
    let mut parts = value.split('|');
    let slot = CachedSlot {
        version: parts.next()?.parse().ok()?,
        capacity: parts.next()?.parse().ok()?,
        held: parts.next()?.parse().ok()?,
        confirmed: parts.next()?.parse().ok()?,
    };
    parts.next().is_none().then_some(slot)
}

/// Parses a `def` value; `None` when malformed.
#[must_use]
pub fn parse_definition(value: &str) -> Option<CachedDefinition> {
    let mut parts = value.splitn(3, '|');
    Some(CachedDefinition {
        version: parts.next()?.parse().ok()?,
        capacity: parts.next()?.parse().ok()?,
        name: parts.next()?.to_owned(),
    })
}

/// A live update: what changed on a resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Update {
    /// The resource.
    pub resource_id: String,
    /// The newest version among the changes.
    pub version: i64,
    /// The default capacity, when the definition changed.
    pub capacity: Option<u32>,
    /// The changed slots.
    pub slots: Vec<UpdatedSlot>,
}

/// One slot of an [`Update`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdatedSlot {
    /// The day.
    pub slot: String,
    /// Capacity.
    pub capacity: u32,
    /// Units held.
    pub held: u32,
    /// Units confirmed.
    pub confirmed: u32,
    /// Units free.
    pub available: u32,
}

impl UpdatedSlot {
    /// The update entry of a slot row.
    #[must_use]
    pub fn of(row: &SlotRow) -> Self {
        Self {
            slot: row.slot.to_string(),
            capacity: row.capacity,
            held: row.held,
            confirmed: row.confirmed,
            available: row.available(),
        }
    }
}

/// Parses a `YYYY-MM-DD` field name into a slot; `None` for `def` and anything else.
#[must_use]
pub fn field_slot(field: &str) -> Option<Slot> {
    Slot::parse(field).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_keys_carry_a_hash_tag() {
        let resource = ResourceId::parse("hotel.berlin:room-1").expect("valid");
        assert_eq!(availability_key("hf:", &resource), "hf:avail:{hotel.berlin:room-1}");
        assert_eq!(channel("hf:", &resource), "hf:avail-updates:{hotel.berlin:room-1}");
        assert_eq!(generation_prefix("hf:", 0), "hf:");
        assert_eq!(
            availability_key(&generation_prefix("hf:", 3), &resource),
            "hf:g3:avail:{hotel.berlin:room-1}"
        );
        let row = SlotRow {
            resource_id: resource,
            slot: Slot::parse("2031-03-01").expect("valid"),
            capacity: 10,
            held: 3,
            confirmed: 4,
            version: 77,
        };
        let (field, value) = slot_field(&row);
        assert_eq!(field, "2031-03-01");
        assert_eq!(parse_slot(&value), Some(CachedSlot { version: 77, capacity: 10, held: 3, confirmed: 4 }));
        assert_eq!(parse_slot("1|2|3"), None);
        let def = parse_definition("5|12|Room | with bar").expect("parses");
        assert_eq!((def.version, def.capacity, def.name.as_str()), (5, 12, "Room | with bar"));
    }
}
