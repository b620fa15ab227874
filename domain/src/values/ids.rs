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
/// Rule: 1–128 characters (Unicode scalar values), none of them a control (`Cc`) or format
/// (`Cf`) character, and no leading or trailing whitespace (so `"bob"` and `"bob "`, or
/// `"bob"` and `"bo\u{200B}b"`, cannot become two customers that look like one).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct CustomerId(String);

impl CustomerId {
    /// Validates `s` as a customer id.
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        printable_text("customer_id", s, MAX_ID_CHARS)?;
        if s.chars().any(is_format) {
            return Err(ValueError::new(
                "customer_id",
                "must not contain format characters (zero-width, bidirectional or other invisible marks)",
            ));
        }
        Ok(Self(s.to_owned()))
    }

    /// Validates `s` as a customer id read from the log or a read model, by the rule records
    /// were written under: [`Self::parse`]'s without the format-character check, which came
    /// later. A stricter input rule must never make an acknowledged record unreadable.
    pub fn parse_recorded(s: &str) -> Result<Self, ValueError> {
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

/// Whether `c` is of Unicode general category `Cf` (format: invisible characters that change
/// how their neighbours are shown, such as zero-width spaces and joiners, bidirectional
/// overrides, the byte order mark and tag characters), as of Unicode 15.1.
fn is_format(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{0600}'..='\u{0605}'
            | '\u{061C}'
            | '\u{06DD}'
            | '\u{070F}'
            | '\u{0890}'..='\u{0891}'
            | '\u{08E2}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{110BD}'
            | '\u{110CD}'
            | '\u{13430}'..='\u{1343F}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0001}'
            | '\u{E0020}'..='\u{E007F}'
    )
}

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
        // Format characters: zero-width space, joiner, right-to-left override, byte order
        // mark, soft hyphen, a tag character. Refused as input, still read from the log.
        for bad in ["bo\u{200B}b", "a\u{200D}b", "\u{202E}bob", "bob\u{FEFF}", "bo\u{AD}b", "b\u{E0041}"] {
            let err = CustomerId::parse(bad).expect_err(bad);
            assert!(err.reason.contains("format characters"), "{bad:?}: {}", err.reason);
            assert_eq!(CustomerId::parse_recorded(bad).map(|id| id.to_string()), Ok(bad.to_owned()));
        }
        assert!(CustomerId::parse_recorded("bo\nb").is_err(), "control characters never were allowed");
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
