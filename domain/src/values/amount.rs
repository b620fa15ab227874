//! Bounded numbers: [`Quantity`], [`Capacity`] and [`HoldTtl`].

use serde::{Deserialize, Serialize};

use super::ValueError;

/// Largest quantity a hold may take and largest capacity a slot may have.
const MAX_UNITS: u32 = 1_000_000;

/// How many units a reservation takes on each slot of its range: 1..=1,000,000.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct Quantity(u32);

impl Quantity {
    /// Largest accepted quantity.
    pub const MAX: u32 = MAX_UNITS;

    /// Validates `n` as a quantity.
    pub fn new(n: u32) -> Result<Self, ValueError> {
        if (1..=Self::MAX).contains(&n) {
            Ok(Self(n))
        } else {
            Err(ValueError::new("quantity", format!("must be between 1 and {}, got {n}", Self::MAX)))
        }
    }

    /// The number of units.
    pub fn get(self) -> u32 {
        self.0
    }
}

/// How many units a slot offers: 0..=1,000,000 (0 closes the slot).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct Capacity(u32);

impl Capacity {
    /// Largest accepted capacity.
    pub const MAX: u32 = MAX_UNITS;
    /// A closed slot.
    pub const ZERO: Self = Self(0);

    /// Validates `n` as a capacity.
    pub fn new(n: u32) -> Result<Self, ValueError> {
        if n <= Self::MAX {
            Ok(Self(n))
        } else {
            Err(ValueError::new("capacity", format!("must be between 0 and {}, got {n}", Self::MAX)))
        }
    }

    /// The number of units.
    pub fn get(self) -> u32 {
        self.0
    }
}

/// How long a hold lasts before it expires: 1..=3600 seconds, default 900.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct HoldTtl(u32);

impl HoldTtl {
    /// Longest accepted hold, in seconds.
    pub const MAX_SECONDS: u32 = 3600;
    /// Used when the client does not ask for a duration (15 minutes).
    pub const DEFAULT: Self = Self(900);

    /// Validates a TTL in seconds (the API's `hold_seconds`).
    pub fn from_seconds(seconds: u32) -> Result<Self, ValueError> {
        if (1..=Self::MAX_SECONDS).contains(&seconds) {
            Ok(Self(seconds))
        } else {
            Err(ValueError::new(
                "hold_seconds",
                format!("must be between 1 and {}, got {seconds}", Self::MAX_SECONDS),
            ))
        }
    }

    /// The TTL in seconds.
    pub fn seconds(self) -> u32 {
        self.0
    }

    /// The TTL as a duration.
    pub fn duration(self) -> time::Duration {
        time::Duration::seconds(i64::from(self.0))
    }
}

impl Default for HoldTtl {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Implements the `u32` conversions serde's `try_from`/`into` need.
macro_rules! u32_conversions {
    ($ty:ty, $ctor:path) => {
        impl TryFrom<u32> for $ty {
            type Error = ValueError;
            fn try_from(n: u32) -> Result<Self, ValueError> {
                $ctor(n)
            }
        }

        impl From<$ty> for u32 {
            fn from(v: $ty) -> u32 {
                v.0
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

u32_conversions!(Quantity, Quantity::new);
u32_conversions!(Capacity, Capacity::new);
u32_conversions!(HoldTtl, HoldTtl::from_seconds);

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::value::{Error, U32Deserializer};

    #[test]
    fn quantity_bounds() {
        assert_eq!(Quantity::new(1).expect("min").get(), 1);
        assert_eq!(Quantity::new(1_000_000).expect("max").get(), 1_000_000);
        for bad in [0, 1_000_001, u32::MAX] {
            let err = Quantity::new(bad).expect_err("out of range");
            assert_eq!(err.field, "quantity");
            assert!(err.reason.contains("between 1 and 1000000"), "{}", err.reason);
        }
    }

    #[test]
    fn capacity_bounds() {
        assert_eq!(Capacity::new(0).expect("zero closes"), Capacity::ZERO);
        assert!(Capacity::new(1_000_000).is_ok());
        let err = Capacity::new(1_000_001).expect_err("too large");
        assert_eq!(err.field, "capacity");
    }

    #[test]
    fn hold_ttl_bounds_and_default() {
        assert_eq!(HoldTtl::default().seconds(), 900);
        assert_eq!(HoldTtl::from_seconds(3600).expect("max").duration(), time::Duration::hours(1));
        for bad in [0, 3601] {
            assert_eq!(HoldTtl::from_seconds(bad).expect_err("bounds").field, "hold_seconds");
        }
    }

    #[test]
    fn deserializing_validates() {
        let de = |n| Quantity::deserialize(U32Deserializer::<Error>::new(n));
        assert_eq!(de(5).expect("valid").get(), 5);
        assert!(de(0).is_err());
        assert!(Capacity::deserialize(U32Deserializer::<Error>::new(2_000_000)).is_err());
    }
}
