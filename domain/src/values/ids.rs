//! Free-form identifiers and names: [`ResourceId`], [`CustomerId`], [`ResourceName`].

use serde::Deserialize;

use super::{ValueError, string_value_impls};

/// Longest accepted resource id, customer id (in characters).
const MAX_ID_CHARS: usize = 128;
/// Longest accepted resource name (in characters).
const MAX_NAME_CHARS: usize = 200;

/// Identifies a bookable resource (a room, a table, a seat block); also the Kafka key.
///
/// Rule: 1–128 characters of `[A-Za-z0-9._:-]`. The underscore is deliberately absent so a
/// [`super::ReservationId`] can embed a resource id unambiguously.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct ResourceId(String);

impl ResourceId {
    /// Validates `s` as a resource id.
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        const FIELD: &str = "resource_id";
        if s.is_empty() {
            return Err(ValueError::new(FIELD, "must not be empty"));
        }
        if s.len() > MAX_ID_CHARS {
            return Err(ValueError::new(
                FIELD,
                format!("must be at most {MAX_ID_CHARS} characters, got {}", s.len()),
            ));
        }
        if let Some(bad) = s.chars().find(|c| !Self::allowed(*c)) {
            return Err(ValueError::new(
                FIELD,
                format!("contains {bad:?}; only letters, digits and . _ : - are allowed, without _"),
            ));
        }
        Ok(Self(s.to_owned()))
    }

    /// The id as a string slice (ASCII only).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `c` may appear in a resource id.
    pub(crate) fn allowed(c: char) -> bool {
        c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '-')
    }
}

string_value_impls!(ResourceId);

/// Identifies the customer who holds a reservation; opaque to Holdfast.
///
/// Rule: 1–128 characters (Unicode scalar values), none of them a control character, and no
/// leading or trailing whitespace (so `"bob"` and `"bob "` cannot become two customers).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct CustomerId(String);

impl CustomerId {
    /// Validates `s` as a customer id.
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        printable_text("customer_id", s, MAX_ID_CHARS).map(|()| Self(s.to_owned()))
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

string_value_impls!(CustomerId);

/// Human-readable name of a resource, shown in UIs.
///
/// Rule: 1–200 characters, no control characters, no leading or trailing whitespace.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct ResourceName(String);

impl ResourceName {
    /// Validates `s` as a resource name.
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        printable_text("name", s, MAX_NAME_CHARS).map(|()| Self(s.to_owned()))
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

string_value_impls!(ResourceName);

/// Shared rule for printable text fields: non-empty, bounded, no control characters, trimmed.
fn printable_text(field: &'static str, s: &str, max_chars: usize) -> Result<(), ValueError> {
    if s.is_empty() {
        return Err(ValueError::new(field, "must not be empty"));
    }
    let chars = s.chars().count();
    if chars > max_chars {
        return Err(ValueError::new(field, format!("must be at most {max_chars} characters, got {chars}")));
    }
    if s.chars().any(char::is_control) {
        return Err(ValueError::new(field, "must not contain control characters"));
    }
    if s.trim() != s {
        return Err(ValueError::new(field, "must not start or end with whitespace"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_id_accepts_its_charset() {
        let id = ResourceId::parse("hotel.berlin:room-101").expect("valid");
        assert_eq!(id.as_str(), "hotel.berlin:room-101");
        assert!(ResourceId::parse(&"a".repeat(128)).is_ok());
    }

    #[test]
    fn resource_id_rejects_bad_input_naming_the_field() {
        for bad in ["", "room 101", "room_101", "zimmer-ä", "a/b", &"a".repeat(129)] {
            let err = ResourceId::parse(bad).expect_err(bad);
            assert_eq!(err.field, "resource_id", "{bad}");
        }
        let err = ResourceId::parse("room_1").expect_err("underscore");
        assert!(err.reason.contains("'_'"), "{}", err.reason);
    }

    #[test]
    fn customer_id_rule() {
        assert!(CustomerId::parse("Zoë O'Brien <zoe@example.com>").is_ok());
        assert!(CustomerId::parse(&"é".repeat(128)).is_ok());
        for bad in ["", " bob", "bob ", "bo\nb", "x\u{7f}", &"é".repeat(129)] {
            let err = CustomerId::parse(bad).expect_err(bad);
            assert_eq!(err.field, "customer_id", "{bad:?}");
        }
    }

    #[test]
    fn resource_name_rule() {
        assert!(ResourceName::parse("Room 101 (sea view)").is_ok());
        let err = ResourceName::parse("").expect_err("empty");
        assert_eq!(err.field, "name");
        assert!(ResourceName::parse(&"n".repeat(201)).is_err());
    }

    #[test]
    fn serde_roundtrips_through_the_validating_parser() {
        let id: ResourceId = serde_json_like("room-1").expect("valid");
        assert_eq!(id.as_str(), "room-1");
        assert!(serde_json_like::<ResourceId>("room 1").is_err());
        assert!(serde_json_like::<CustomerId>("").is_err());
    }

    /// Deserializes a bare string through serde without pulling in a JSON crate.
    fn serde_json_like<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, serde::de::value::Error> {
        T::deserialize(serde::de::value::StrDeserializer::<serde::de::value::Error>::new(s))
    }
}
