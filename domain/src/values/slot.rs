//! [`Slot`]: one bookable calendar day.

use std::fmt;

use serde::Deserialize;
use time::{Date, Month};

use super::ValueError;

/// One calendar day, the unit of capacity. Wire form is strictly `YYYY-MM-DD`.
///
/// Years are limited to 0000–9999 so the wire form always has four year digits and
/// `parse(display(x)) == x`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct Slot(Date);

impl Slot {
    /// Parses `YYYY-MM-DD` exactly: zero-padded, real calendar dates only (no `2026-02-30`).
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        const FIELD: &str = "slot";
        let shape = || ValueError::new(FIELD, format!("{s:?} is not a date in YYYY-MM-DD form"));
        let b = s.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return Err(shape());
        }
        let digits = |range: std::ops::Range<usize>| -> Result<u16, ValueError> {
            b[range].iter().try_fold(0_u16, |acc, &d| {
                if d.is_ascii_digit() { Ok(acc * 10 + u16::from(d - b'0')) } else { Err(shape()) }
            })
        };
        let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
        let impossible = || ValueError::new(FIELD, format!("{s} is not a real calendar date"));
        let month = u8::try_from(month).ok().and_then(|m| Month::try_from(m).ok()).ok_or_else(impossible)?;
        let day = u8::try_from(day).map_err(|_| impossible())?;
        Date::from_calendar_date(i32::from(year), month, day).map(Self).map_err(|_| impossible())
    }

    /// Wraps a date, refusing years outside 0000–9999 (they have no `YYYY-MM-DD` form).
    pub fn from_date(date: Date) -> Result<Self, ValueError> {
        if (0..=9999).contains(&date.year()) {
            Ok(Self(date))
        } else {
            Err(ValueError::new("slot", "year must be between 0000 and 9999"))
        }
    }

    /// The calendar date.
    pub fn date(self) -> Date {
        self.0
    }

    /// The following day, or `None` after 9999-12-31.
    pub fn next(self) -> Option<Self> {
        self.0.next_day().and_then(|d| Self::from_date(d).ok())
    }

    /// Whole days from `self` to `later` (negative if `later` is earlier).
    pub fn days_until(self, later: Self) -> i32 {
        later.0.to_julian_day() - self.0.to_julian_day()
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        write!(f, "{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
    }
}

impl std::str::FromStr for Slot {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<&str> for Slot {
    type Error = ValueError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Self::parse(s)
    }
}

impl TryFrom<String> for Slot {
    type Error = ValueError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl serde::Serialize for Slot {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_displays_strictly() {
        let slot = Slot::parse("2026-02-28").expect("valid");
        assert_eq!(slot.to_string(), "2026-02-28");
        assert_eq!(Slot::parse("0001-01-01").expect("valid").to_string(), "0001-01-01");
        assert_eq!(Slot::parse("2028-02-29").expect("leap").to_string(), "2028-02-29");
    }

    #[test]
    fn rejects_malformed_dates() {
        for bad in [
            "",
            "2026-2-3",
            "2026-02-3",
            "26-02-03",
            "2026/02/03",
            "2026-02-03T00:00",
            " 2026-02-03",
            "+026-02-03",
            "2026-0a-03",
            "２026-02-03",
        ] {
            let err = Slot::parse(bad).expect_err(bad);
            assert_eq!(err.field, "slot", "{bad}");
            assert!(err.reason.contains("YYYY-MM-DD"), "{bad}: {}", err.reason);
        }
    }

    #[test]
    fn rejects_impossible_dates() {
        for bad in ["2026-02-30", "2026-02-29", "2026-13-01", "2026-00-10", "2026-04-31", "2026-01-00"] {
            let err = Slot::parse(bad).expect_err(bad);
            assert_eq!(err.field, "slot");
            assert!(err.reason.contains("not a real calendar date"), "{bad}: {}", err.reason);
        }
    }

    #[test]
    fn next_crosses_month_and_year_ends() {
        let next = |s: &str| Slot::parse(s).expect("valid").next().map(|n| n.to_string());
        assert_eq!(next("2026-01-31").as_deref(), Some("2026-02-01"));
        assert_eq!(next("2026-12-31").as_deref(), Some("2027-01-01"));
        assert_eq!(next("9999-12-31"), None);
    }

    #[test]
    fn with_field_relabels_errors() {
        let err = Slot::parse("2026-02-30").expect_err("impossible").with_field("from");
        assert_eq!(err.field, "from");
    }
}
