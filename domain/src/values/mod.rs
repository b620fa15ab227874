//! Validated value types: identifiers, calendar slots and ranges, amounts.
//!
//! This module owns every rule about what a well-formed input looks like. Each type has a
//! `parse`/`TryFrom` constructor that returns a [`ValueError`] naming the field and a reason a
//! client can act on; serde deserializes through the same constructor, so no unvalidated value
//! can reach the decider. It must not contain business rules that depend on state (those
//! belong to [`crate::decide`]).

mod amount;
mod ids;
mod reservation_id;
mod slot;
mod span;

pub use amount::{Capacity, HoldTtl, Quantity};
pub use ids::{CustomerId, ResourceId, ResourceName};
pub use reservation_id::ReservationId;
pub use slot::Slot;
pub use span::{CapacityRange, DaySpan, SlotRange, Slots};

/// An input value that breaks its type's rule.
///
/// `field` is the name the HTTP contract uses (e.g. `resource_id`, `from`), so the edge can
/// turn it into a 422 problem that points at the offending field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ValueError {
    /// Name of the offending field, as spelled in the API contract.
    pub field: &'static str,
    /// Why the value was refused, phrased so a client can fix it.
    pub reason: String,
}

impl ValueError {
    /// Builds an error for `field` with a human-readable `reason`.
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self { field, reason: reason.into() }
    }

    /// Re-labels the error for a different field name, e.g. a `slot` parsed as `from`.
    #[must_use]
    pub fn with_field(mut self, field: &'static str) -> Self {
        self.field = field;
        self
    }
}

/// Implements the string plumbing shared by string-backed value types: `Display`,
/// `FromStr`, `TryFrom<&str>`, `TryFrom<String>` and `Serialize` (as the plain string).
/// The type must provide `fn parse(&str) -> Result<Self, ValueError>` and derive
/// `Deserialize` with `#[serde(try_from = "String")]`.
macro_rules! string_value_impls {
    ($ty:ty) => {
        impl ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $ty {
            type Err = $crate::values::ValueError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl TryFrom<&str> for $ty {
            type Error = $crate::values::ValueError;
            fn try_from(s: &str) -> Result<Self, Self::Error> {
                Self::parse(s)
            }
        }

        impl TryFrom<String> for $ty {
            type Error = $crate::values::ValueError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::parse(&s)
            }
        }

        impl ::serde::Serialize for $ty {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}
pub(crate) use string_value_impls;
