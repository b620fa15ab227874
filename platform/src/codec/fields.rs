//! Field-level conversions both directions share: Avro `date` and `timestamp-micros` ⇄ the
//! domain's slots and instants, and typed reads of generic Avro values.
//!
//! Value readers accept a logical type's value and its underlying representation alike (a
//! `uuid` as `Value::Uuid` or a string, a `date` as `Value::Date` or an `int`, …), so a
//! writer schema that dropped a `logicalType` still decodes. A mismatch is a
//! [`CodecError::InvalidField`] naming the field; nothing here panics.

use apache_avro::Uuid;
use apache_avro::types::Value;
use time::{Date, OffsetDateTime};

use super::CodecError;

/// Julian day number of 1970-01-01, the epoch of Avro's `date`.
const UNIX_EPOCH_JULIAN_DAY: i32 = 2_440_588;

/// Days since 1970-01-01 of `date` (Avro `date`).
pub(crate) fn date_to_days(date: Date) -> i32 {
    date.to_julian_day() - UNIX_EPOCH_JULIAN_DAY
}

/// The date `days` after 1970-01-01, if representable.
pub(crate) fn days_to_date(days: i32) -> Option<Date> {
    Date::from_julian_day(days.checked_add(UNIX_EPOCH_JULIAN_DAY)?).ok()
}

/// Microseconds since the Unix epoch of `instant` (Avro `timestamp-micros`), rounded down:
/// sub-microsecond digits do not survive the wire. Saturates outside ±292,000 years, which
/// `time` cannot produce without its `large-dates` feature.
pub(crate) fn instant_to_micros(instant: OffsetDateTime) -> i64 {
    let micros = instant.unix_timestamp_nanos().div_euclid(1_000);
    i64::try_from(micros).unwrap_or(if micros < 0 { i64::MIN } else { i64::MAX })
}

/// The UTC instant `micros` after the Unix epoch, if representable.
pub(crate) fn micros_to_instant(micros: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000).ok()
}

/// A `uuid` (logical type on string).
pub(crate) fn uuid(field: &str, value: Value) -> Result<Uuid, CodecError> {
    match value {
        Value::Uuid(u) => Ok(u),
        Value::String(s) => Uuid::try_parse(&s).map_err(|e| CodecError::invalid(field, e.to_string())),
        other => Err(wrong(field, "a uuid", &other)),
    }
}

/// A `string`.
pub(crate) fn string(field: &str, value: Value) -> Result<String, CodecError> {
    match value {
        Value::String(s) => Ok(s),
        other => Err(wrong(field, "a string", &other)),
    }
}

/// A `["null","string"]` (or a plain string, or null).
pub(crate) fn nullable_string(field: &str, value: Value) -> Result<Option<String>, CodecError> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s)),
        Value::Union(_, inner) => nullable_string(field, *inner),
        other => Err(wrong(field, "a string or null", &other)),
    }
}

/// An `int` (also a `date`, or a promoted `long` that fits).
pub(crate) fn int(field: &str, value: Value) -> Result<i32, CodecError> {
    match value {
        Value::Int(n) | Value::Date(n) => Ok(n),
        Value::Long(n) => i32::try_from(n).map_err(|_| CodecError::invalid(field, "out of int range")),
        other => Err(wrong(field, "an int", &other)),
    }
}

/// A `timestamp-micros` (or a plain `long`).
pub(crate) fn micros(field: &str, value: Value) -> Result<i64, CodecError> {
    match value {
        Value::TimestampMicros(m) | Value::Long(m) => Ok(m),
        other => Err(wrong(field, "a timestamp-micros", &other)),
    }
}

/// An enum's symbol.
pub(crate) fn symbol(field: &str, value: Value) -> Result<String, CodecError> {
    match value {
        Value::Enum(_, symbol) | Value::String(symbol) => Ok(symbol),
        other => Err(wrong(field, "an enum symbol", &other)),
    }
}

/// The error for a field of the wrong Avro type.
fn wrong(field: &str, expected: &str, found: &Value) -> CodecError {
    CodecError::invalid(field, format!("expected {expected}, got {}", kind(found)))
}

/// A short name of a value's Avro kind, for error messages (never the value itself).
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Boolean(_) => "boolean",
        Value::Int(_) => "int",
        Value::Long(_) => "long",
        Value::String(_) => "string",
        Value::Record(_) => "record",
        Value::Enum(..) => "enum",
        Value::Union(..) => "union",
        Value::Date(_) => "date",
        Value::TimestampMicros(_) => "timestamp-micros",
        Value::Uuid(_) => "uuid",
        _ => "another type",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    #[test]
    fn dates_count_days_from_the_epoch() {
        assert_eq!(date_to_days(date!(1970 - 01 - 01)), 0);
        assert_eq!(date_to_days(date!(1970 - 01 - 02)), 1);
        assert_eq!(date_to_days(date!(1969 - 12 - 31)), -1);
        assert_eq!(days_to_date(20_000), Some(date!(2024 - 10 - 04)));
        assert_eq!(days_to_date(i32::MAX), None);
    }

    #[test]
    fn instants_round_down_to_microseconds() {
        let t = datetime!(2026-03-01 12:00:00.123_456_789 UTC);
        let micros = instant_to_micros(t);
        assert_eq!(micros_to_instant(micros), Some(datetime!(2026-03-01 12:00:00.123_456 UTC)));
        let before_epoch = datetime!(1969-12-31 23:59:59.999_999_5 UTC);
        assert_eq!(instant_to_micros(before_epoch), -1);
        assert_eq!(micros_to_instant(i64::MAX), None);
    }

    #[test]
    fn readers_accept_underlying_types_and_name_the_field() {
        assert_eq!(int("d", Value::Date(3)).expect("date"), 3);
        assert_eq!(int("l", Value::Long(3)).expect("long"), 3);
        assert!(int("l", Value::Long(i64::MAX)).is_err());
        let id = Uuid::from_u128(7);
        assert_eq!(uuid("u", Value::String(id.to_string())).expect("string uuid"), id);
        let err = uuid("u", Value::String("nope".into())).expect_err("bad uuid");
        assert!(matches!(err, CodecError::InvalidField { ref field, .. } if field == "u"));
        assert_eq!(nullable_string("o", Value::Union(0, Box::new(Value::Null))).expect("null"), None);
        assert_eq!(
            nullable_string("o", Value::Union(1, Box::new(Value::String("x".into())))).expect("some"),
            Some("x".into())
        );
        assert!(string("s", Value::Long(5)).is_err());
        assert!(micros("m", Value::Int(5)).is_err());
        assert_eq!(symbol("e", Value::Enum(1, "CONFIRMED".into())).expect("symbol"), "CONFIRMED");
    }
}
