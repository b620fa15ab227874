//! What a read returns, independent of the source: availability per slot and reservations.
//! [`assemble`] is the one place slots without a row get the resource's default capacity.

use super::layout::CachedSlot;
use holdfast_domain::{CapacityRange, Slot};
use serde::Serialize;
use utoipa::ToSchema;

use super::Source;
use crate::position::Position;

/// A resource's availability over a range of days.
#[derive(Debug, Clone)]
pub struct Availability {
    /// The resource.
    pub resource_id: String,
    /// One entry per day of the range, in order.
    pub slots: Vec<SlotView>,
    /// How far the projection of the resource's partition had come.
    pub position: Position,
    /// The newest version among the definition and the range's slots (the ETag).
    pub version: i64,
    /// Where it was read.
    pub source: Source,
}

/// One day of availability.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct SlotView {
    /// The day, `YYYY-MM-DD`.
    #[schema(example = "2026-03-01")]
    pub slot: String,
    /// Units bookable that day.
    pub capacity: u32,
    /// Units held (not confirmed yet).
    pub held: u32,
    /// Units confirmed.
    pub confirmed: u32,
    /// Units still free: `capacity - held - confirmed` (0 when capacity was lowered below use).
    pub available: u32,
}

/// A reservation as the read model holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ReservationView {
    /// The reservation (it encodes its resource).
    #[schema(example = "r1_0192f0c1a2b37c3d8e4f5a6b7c8d9e0f_hotel.berlin:room-101")]
    pub reservation_id: String,
    /// The resource.
    pub resource_id: String,
    /// First day, `YYYY-MM-DD`.
    pub from: String,
    /// Day after the last (exclusive), `YYYY-MM-DD`.
    pub to: String,
    /// Units per day.
    pub quantity: u32,
    /// The customer.
    pub customer_id: String,
    /// `held`, `confirmed`, `cancelled` or `expired`.
    #[schema(example = "held")]
    pub status: String,
    /// When the hold lapses (or lapsed) unless confirmed, RFC 3339 UTC.
    #[schema(example = "2026-03-01T12:15:00Z")]
    pub expires_at: String,
    /// Version of the row (offset of the last event that changed it).
    pub version: i64,
    /// How far the projection of the reservation's partition had come (single reads only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "17.4242")]
    pub position: Option<String>,
}

/// The slots of `range`: the stored ones from `stored` (sorted by day, may contain days outside
/// the range), the others with `default_capacity` and no use. Returns them with the newest
/// version among `definition_version` and the stored slots of the range.
pub fn assemble(
    range: &CapacityRange,
    default_capacity: u32,
    definition_version: i64,
    stored: impl IntoIterator<Item = (Slot, CachedSlot)>,
) -> (Vec<SlotView>, i64) {
    let mut stored = stored.into_iter().filter(|(day, _)| range.contains(*day)).peekable();
    let mut version = definition_version;
    let mut slots = Vec::with_capacity(range.len());
    for day in range.slots() {
        while stored.peek().is_some_and(|(d, _)| *d < day) {
            stored.next();
        }
        let cached = match stored.peek() {
            Some((d, cached)) if *d == day => {
                version = version.max(cached.version);
                *cached
            }
            _ => CachedSlot { version: 0, capacity: default_capacity, held: 0, confirmed: 0 },
        };
        slots.push(SlotView {
            slot: day.to_string(),
            capacity: cached.capacity,
            held: cached.held,
            confirmed: cached.confirmed,
            available: cached.capacity.saturating_sub(cached.held.saturating_add(cached.confirmed)),
        });
    }
    (slots, version)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> Slot {
        Slot::parse(s).expect("valid day")
    }

    #[test]
    fn unstored_days_have_the_default_capacity_and_the_version_is_the_newest() {
        let range = CapacityRange::parse("2031-03-01", "2031-03-04").expect("valid");
        let stored = [
            (day("2031-02-28"), CachedSlot { version: 99, capacity: 1, held: 1, confirmed: 0 }),
            (day("2031-03-02"), CachedSlot { version: 7, capacity: 4, held: 3, confirmed: 2 }),
        ];
        let (slots, version) = assemble(&range, 5, 3, stored);
        assert_eq!(version, 7, "days outside the range do not count");
        let summary: Vec<_> =
            slots.iter().map(|s| (s.slot.as_str(), s.capacity, s.held, s.confirmed, s.available)).collect();
        assert_eq!(
            summary,
            [("2031-03-01", 5, 0, 0, 5), ("2031-03-02", 4, 3, 2, 0), ("2031-03-03", 5, 0, 0, 5)]
        );
    }
}
