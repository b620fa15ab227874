//! The Redis layout the projection writes (`holdfast_projection_workers::cache::format`), as
//! this service reads it. Kept here by contract rather than by a dependency on the writer's
//! crate, like the position token; the integration tests check both sides agree.
//!
//! - `<prefix>avail:{<resource_id>}`: hash with `def` → `<version>|<default capacity>|<name>`
//!   and `YYYY-MM-DD` → `<version>|<capacity>|<held>|<confirmed>` for every slot with a row;
//! - `<prefix>positions`: partition → next offset up to which Redis reflects every event;
//! - `PUBLISH <prefix>avail-updates:{<resource_id>}` with a JSON [`Update`].

use serde::{Deserialize, Serialize};

/// Field holding a resource's definition.
pub const DEFINITION_FIELD: &str = "def";

/// The availability hash of `resource` under `prefix`.
#[must_use]
pub fn availability_key(prefix: &str, resource: &str) -> String {
    format!("{prefix}avail:{{{resource}}}")
}

/// The live-update channel of `resource` under `prefix`.
#[must_use]
pub fn channel(prefix: &str, resource: &str) -> String {
    format!("{prefix}avail-updates:{{{resource}}}")
}

/// The positions hash under `prefix`.
#[must_use]
pub fn positions_key(prefix: &str) -> String {
    format!("{prefix}positions")
}

/// A stored slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CachedDefinition {
    /// Version of the value.
    pub version: i64,
    /// Default capacity.
    pub capacity: u32,
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

/// Parses a `def` value (the name, which may contain `|`, is not needed); `None` when malformed.
#[must_use]
pub fn parse_definition(value: &str) -> Option<CachedDefinition> {
    let mut parts = value.splitn(3, '|');
    let definition =
        CachedDefinition { version: parts.next()?.parse().ok()?, capacity: parts.next()?.parse().ok()? };
    parts.next().map(|_| definition)
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
    use super::*;

    #[test]
    fn values_parse_and_keys_carry_a_hash_tag() {
        assert_eq!(availability_key("hf:", "hotel.berlin:room-1"), "hf:avail:{hotel.berlin:room-1}");
        assert_eq!(channel("hf:", "room-1"), "hf:avail-updates:{room-1}");
        assert_eq!(positions_key("hf:"), "hf:positions");
        assert_eq!(
            parse_slot("77|10|3|4"),
            Some(CachedSlot { version: 77, capacity: 10, held: 3, confirmed: 4 })
        );
        assert_eq!(parse_slot("1|2|3"), None);
        assert_eq!(parse_slot("1|2|3|4|5"), None);
        assert_eq!(
            parse_definition("5|12|Room | with bar"),
            Some(CachedDefinition { version: 5, capacity: 12 })
        );
        assert_eq!(parse_definition("5|12"), None);
    }
}
