//! The read model's Redis layout ([`holdfast_platform::read_model`], shared with the query
//! service, which reads what this crate writes) applied to this crate's rows.

use holdfast_platform::read_model;
pub use holdfast_platform::read_model::{
    CachedDefinition, CachedSlot, DEFINITION_FIELD, Update, UpdatedSlot, availability_key, channel,
    field_slot, generation_channel, generation_key, generation_prefix, parse_definition, parse_slot,
    positions_key,
};

use crate::model::{ResourceRow, SlotRow};

/// The `def` value of a resource row.
#[must_use]
pub fn definition_value(row: &ResourceRow) -> String {
    read_model::definition_value(row.version, row.capacity, row.name.as_str())
}

/// The field and value of a slot row.
#[must_use]
pub fn slot_field(row: &SlotRow) -> (String, String) {
    (read_model::slot_field(row.slot), read_model::slot_value(&cached(row)))
}

/// A slot row as cached.
#[must_use]
pub fn cached(row: &SlotRow) -> CachedSlot {
    CachedSlot { version: row.version, capacity: row.capacity, held: row.held, confirmed: row.confirmed }
}

/// The update entry of a slot row.
#[must_use]
pub fn updated_slot(row: &SlotRow) -> UpdatedSlot {
    UpdatedSlot {
        slot: row.slot.to_string(),
        capacity: row.capacity,
        held: row.held,
        confirmed: row.confirmed,
        available: row.available(),
    }
}

#[cfg(test)]
mod tests {
    use holdfast_domain::{ResourceId, Slot};

    use super::*;

    #[test]
    fn rows_are_written_as_the_layout_reads_them() {
        let row = SlotRow {
            resource_id: ResourceId::parse("room-1").expect("valid"),
            slot: Slot::parse("2031-03-01").expect("valid"),
            capacity: 10,
            held: 3,
            confirmed: 4,
            version: 77,
        };
        let (field, value) = slot_field(&row);
        assert_eq!(field_slot(&field), Some(row.slot));
        assert_eq!(parse_slot(&value), Some(cached(&row)));
        assert_eq!(updated_slot(&row).available, 3);
    }
}
