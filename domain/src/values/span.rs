//! Half-open day ranges `[from, to)`: [`SlotRange`] for reservations and [`CapacityRange`]
//! for capacity changes, both instances of [`DaySpan`].

use std::iter::FusedIterator;

use serde::{Deserialize, Serialize};
use time::Date;

use super::{Slot, ValueError};

/// A half-open range of days `[from, to)` holding between 1 and `MAX_DAYS` slots.
///
/// Use the aliases [`SlotRange`] and [`CapacityRange`]; the const parameter only exists so
/// both share one implementation while keeping different length limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawSpan")]
pub struct DaySpan<const MAX_DAYS: u16> {
    /// First slot in the range.
    from: Slot,
    /// First slot after the range (exclusive).
    to: Slot,
}

/// A reservation's range: 1..=31 days.
pub type SlotRange = DaySpan<31>;

/// A capacity change's range: 1..=366 days. Longer than [`SlotRange`] because operators set
/// capacity for whole seasons or a year at once; each day still becomes its own override.
pub type CapacityRange = DaySpan<366>;

impl<const MAX_DAYS: u16> DaySpan<MAX_DAYS> {
    /// Longest accepted range, in days.
    pub const MAX_DAYS: u16 = MAX_DAYS;

    /// Builds `[from, to)`; `to` must be after `from` and at most `MAX_DAYS` days later.
    /// Errors name the `to` field, as that is the one to change.
    pub fn new(from: Slot, to: Slot) -> Result<Self, ValueError> {
        let days = from.days_until(to);
        if days <= 0 {
            return Err(ValueError::new(
                "to",
                format!("must be after from ({from}); to is exclusive, so a one-day range ends the next day"),
            ));
        }
        if days > i32::from(MAX_DAYS) {
            return Err(ValueError::new(
                "to",
                format!("range {from}..{to} spans {days} days; at most {MAX_DAYS} are allowed"),
            ));
        }
        Ok(Self { from, to })
    }

    /// Parses the two `YYYY-MM-DD` strings of the API (fields `from` and `to`).
    pub fn parse(from: &str, to: &str) -> Result<Self, ValueError> {
        let from = Slot::parse(from).map_err(|e| e.with_field("from"))?;
        let to = Slot::parse(to).map_err(|e| e.with_field("to"))?;
        Self::new(from, to)
    }

    /// The range of exactly one slot.
    pub fn single(slot: Slot) -> Result<Self, ValueError> {
        let to = slot.next().ok_or_else(|| ValueError::new("from", "no day follows 9999-12-31"))?;
        Self::new(slot, to)
    }

    /// First slot in the range.
    pub fn from(&self) -> Slot {
        self.from
    }

    /// First slot after the range (exclusive end).
    pub fn to(&self) -> Slot {
        self.to
    }

    /// Number of slots in the range (1..=`MAX_DAYS`).
    pub fn len(&self) -> usize {
        usize::try_from(self.from.days_until(self.to)).unwrap_or(0)
    }

    /// Always `false`: a range holds at least one slot. Present for API symmetry with `len`.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Whether `slot` lies in `[from, to)`.
    pub fn contains(&self, slot: Slot) -> bool {
        self.from <= slot && slot < self.to
    }

    /// The slots of the range in order.
    pub fn slots(&self) -> Slots {
        Slots { next: self.from.date(), end: self.to.date() }
    }
}

impl<const MAX_DAYS: u16> IntoIterator for &DaySpan<MAX_DAYS> {
    type Item = Slot;
    type IntoIter = Slots;
    fn into_iter(self) -> Slots {
        self.slots()
    }
}

/// Iterator over the slots of a [`DaySpan`], earliest first.
#[derive(Debug, Clone)]
pub struct Slots {
    /// Next day to yield.
    next: Date,
    /// Exclusive end.
    end: Date,
}

impl Iterator for Slots {
    type Item = Slot;

    fn next(&mut self) -> Option<Slot> {
        if self.next >= self.end {
            return None;
        }
        let current = self.next;
        // `end` is a valid slot after `current`, so the next day always exists.
        self.next = current.next_day().unwrap_or(self.end);
        Slot::from_date(current).ok()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = usize::try_from(self.end.to_julian_day() - self.next.to_julian_day()).unwrap_or(0);
        (n, Some(n))
    }
}

impl ExactSizeIterator for Slots {}
impl FusedIterator for Slots {}

/// Unvalidated wire form, deserialized first and then checked by [`DaySpan::new`].
#[derive(Deserialize)]
struct RawSpan {
    /// First slot.
    from: Slot,
    /// Exclusive end.
    to: Slot,
}

impl<const MAX_DAYS: u16> TryFrom<RawSpan> for DaySpan<MAX_DAYS> {
    type Error = ValueError;
    fn try_from(raw: RawSpan) -> Result<Self, ValueError> {
        Self::new(raw.from, raw.to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iterates_its_slots() {
        let range = SlotRange::parse("2026-02-27", "2026-03-02").expect("valid");
        let days: Vec<String> = range.slots().map(|s| s.to_string()).collect();
        assert_eq!(days, ["2026-02-27", "2026-02-28", "2026-03-01"]);
        assert_eq!(range.len(), 3);
        assert_eq!(range.slots().len(), 3);
        assert!(range.contains(Slot::parse("2026-03-01").expect("valid")));
        assert!(!range.contains(range.to()));
    }

    #[test]
    fn to_must_be_after_from() {
        for (from, to) in [("2026-03-01", "2026-03-01"), ("2026-03-02", "2026-03-01")] {
            let err = SlotRange::parse(from, to).expect_err("empty or reversed");
            assert_eq!(err.field, "to");
            assert!(err.reason.contains("must be after from"), "{}", err.reason);
        }
    }

    #[test]
    fn reservation_ranges_are_at_most_31_days() {
        assert_eq!(SlotRange::parse("2026-01-01", "2026-02-01").expect("31 days").len(), 31);
        let err = SlotRange::parse("2026-01-01", "2026-02-02").expect_err("32 days");
        assert_eq!(err.field, "to");
        assert!(err.reason.contains("at most 31"), "{}", err.reason);
    }

    #[test]
    fn capacity_ranges_are_at_most_366_days() {
        assert_eq!(CapacityRange::parse("2028-01-01", "2029-01-01").expect("leap year").len(), 366);
        let err = CapacityRange::parse("2026-01-01", "2027-01-03").expect_err("367 days");
        assert!(err.reason.contains("at most 366"), "{}", err.reason);
    }

    #[test]
    fn parse_errors_name_the_bad_field() {
        assert_eq!(SlotRange::parse("2026-02-30", "2026-03-02").expect_err("from").field, "from");
        assert_eq!(SlotRange::parse("2026-03-01", "2026-3-2").expect_err("to").field, "to");
    }

    #[test]
    fn single_day_range() {
        let slot = Slot::parse("2026-12-31").expect("valid");
        let range = SlotRange::single(slot).expect("valid");
        assert_eq!(range.len(), 1);
        assert_eq!(range.to().to_string(), "2027-01-01");
    }
}
