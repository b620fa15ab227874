//! The read model's Redis layout: the one description the projection (its writer), the
//! query service (its reader) and the replay CLI's verification all use.
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

use std::fmt::Display;

use holdfast_domain::Slot;
use serde::{Deserialize, Serialize};

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
pub fn availability_key(prefix: &str, resource: &(impl Display + ?Sized)) -> String {
    format!("{prefix}avail:{{{resource}}}")
}

/// The live-update channel of `resource` under `prefix`.
#[must_use]
pub fn channel(prefix: &str, resource: &(impl Display + ?Sized)) -> String {
    format!("{prefix}avail-updates:{{{resource}}}")
}

/// The prefix of every live-update channel under `prefix` (a channel is this, the resource id
/// and `}`).
#[must_use]
pub fn channel_prefix(prefix: &str) -> String {
    format!("{prefix}avail-updates:{{")
}

/// The positions hash under `prefix`.
#[must_use]
pub fn positions_key(prefix: &str) -> String {
    format!("{prefix}positions")
}

/// The `def` value of a resource.
#[must_use]
pub fn definition_value(version: i64, capacity: u32, name: &str) -> String {
    format!("{version}|{capacity}|{name}")
}

/// The field of a slot.
#[must_use]
pub fn slot_field(slot: Slot) -> String {
    slot.to_string()
}

/// The value of a slot's field.
#[must_use]
pub fn slot_value(slot: &CachedSlot) -> String {
    format!("{}|{}|{}|{}", slot.version, slot.capacity, slot.held, slot.confirmed)
}

/// A cached slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedSlot {
    /// Version of the value (offset of the event that last changed it).
    pub version: i64,
    /// Capacity.
    pub capacity: u32,
    /// Units held.
    pub held: u32,
    /// Units confirmed.
    pub confirmed: u32,
}

/// A cached definition.
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

/// Parses a `def` value (the name may contain `|`); `None` when malformed.
#[must_use]
pub fn parse_definition(value: &str) -> Option<CachedDefinition> {
    let mut parts = value.splitn(3, '|');
    Some(CachedDefinition {
        version: parts.next()?.parse().ok()?,
        capacity: parts.next()?.parse().ok()?,
        name: parts.next()?.to_owned(),
    })
}

/// Parses a `YYYY-MM-DD` field name into a slot; `None` for `def` and anything else.
#[must_use]
pub fn field_slot(field: &str) -> Option<Slot> {
    Slot::parse(field).ok()
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UpdatedSlot {
    /// The day, `YYYY-MM-DD`.
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

#[cfg(test)]
mod tests {
    use holdfast_domain::ResourceId;

    use super::*;

    #[test]
    fn values_round_trip_and_keys_carry_a_hash_tag() {
        let resource = ResourceId::parse("hotel.berlin:room-1").expect("valid");
        assert_eq!(availability_key("hf:", &resource), "hf:avail:{hotel.berlin:room-1}");
        assert_eq!(availability_key("hf:", "hotel.berlin:room-1"), "hf:avail:{hotel.berlin:room-1}");
        assert_eq!(channel("hf:", &resource), "hf:avail-updates:{hotel.berlin:room-1}");
        assert!(channel("hf:", &resource).starts_with(&channel_prefix("hf:")));
        assert_eq!(positions_key("hf:"), "hf:positions");
        assert_eq!(generation_prefix("hf:", 0), "hf:");
        assert_eq!(generation_key("hf:"), "hf:generation");
        assert_eq!(
            availability_key(&generation_prefix("hf:", 3), &resource),
            "hf:g3:avail:{hotel.berlin:room-1}"
        );
        let slot = CachedSlot { version: 77, capacity: 10, held: 3, confirmed: 4 };
        let day = Slot::parse("2031-03-01").expect("valid");
        assert_eq!(slot_field(day), "2031-03-01");
        assert_eq!(field_slot(&slot_field(day)), Some(day));
        assert_eq!(field_slot(DEFINITION_FIELD), None);
        assert_eq!(parse_slot(&slot_value(&slot)), Some(slot));
        assert_eq!(parse_slot("1|2|3"), None);
        assert_eq!(parse_slot("1|2|3|4|5"), None);
        let def = parse_definition(&definition_value(5, 12, "Room | with bar")).expect("parses");
        assert_eq!((def.version, def.capacity, def.name.as_str()), (5, 12, "Room | with bar"));
        assert_eq!(parse_definition("5|12"), None);
    }
}
