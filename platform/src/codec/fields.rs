//! Reading typed fields out of a decoded Avro record, and the time conversions both
//! directions share.
//!
//! Readers accept a logical type's value and its underlying representation alike (a `uuid`
//! as `Value::Uuid` or a plain string, a `date` as `Value::Date` or an `int`, …) so a writer
//! schema that dropped a `logicalType` still decodes. Every mismatch is a
//! [`CodecError::InvalidField`] naming the field; nothing here panics.

use apache_avro::Uuid;
use apache_avro::types::Value;
use holdfast_domain::Slot;
use time::{Date, OffsetDateTime};

use super::CodecError;

/// Julian day number of 1970-01-01, the epoch of Avro's `date`.
const UNIX_EPOCH_JULIAN_DAY: i32 = 2_440_588;

/// A decoded record's fields, looked up by name.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fields<'a>(pub(crate) &'a [(String, Value)]);

impl<'a> Fields<'a> {
    /// The record's fields, or an error when `value` is not a record.
    pub(crate) fn of(value: &'a Value) -> Result<Self, CodecError> {
        match value {
            Value::Record(fields) => Ok(Self(fields)),
            other => Err(CodecError::invalid("(record)", format!("expected a record, got {}", kind(other)))),
        }
    }

    /// The raw value of `name`, with a nullable union unwrapped; `None` when absent or null.
    pub(crate) fn get(&self, name: &str) -> Option<&'a Value> {
        let value = self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v)?;
        match value {
            Value::Union(_, inner) => match inner.as_ref() {
                Value::Null => None,
                inner => Some(inner),
            },
            Value::Null => None,
            value => Some(value),
        }
    }

    /// The value of a required field.
    fn required(&self, name: &str) -> Result<&'a Value, CodecError> {
        self.get(name).ok_or_else(|| CodecError::invalid(name, "missing or null"))
    }

    /// A required string.
    pub(crate) fn str(&self, name: &str) -> Result<&'a str, CodecError> {
        match self.required(name)? {
            Value::String(s) => Ok(s),
            other => Err(wrong(name, "a string", other)),
        }
    }

    /// An optional string (`["null","string"]`); absent counts as null.
    pub(crate) fn opt_string(&self, name: &str) -> Result<Option<String>, CodecError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(wrong(name, "a string or null", other)),
        }
    }

    /// A required `int`, which may also be a promoted `long` that fits.
    pub(crate) fn int(&self, name: &str) -> Result<i32, CodecError> {
        match self.required(name)? {
            Value::Int(n) => Ok(*n),
            Value::Long(n) => i32::try_from(*n).map_err(|_| CodecError::invalid(name, "out of int range")),
            other => Err(wrong(name, "an int", other)),
        }
    }

    /// A required non-negative `int` as `u32`.
    pub(crate) fn count(&self, name: &str) -> Result<u32, CodecError> {
        let n = self.int(name)?;
        u32::try_from(n).map_err(|_| CodecError::invalid(name, format!("must not be negative, got {n}")))
    }

    /// A required `uuid` (logical type on string).
    pub(crate) fn uuid(&self, name: &str) -> Result<Uuid, CodecError> {
        match self.required(name)? {
            Value::Uuid(u) => Ok(*u),
            Value::String(s) => Uuid::try_parse(s).map_err(|e| CodecError::invalid(name, e.to_string())),
            other => Err(wrong(name, "a uuid", other)),
        }
    }

    /// A required `date` (days since 1970-01-01) as a slot.
    pub(crate) fn slot(&self, name: &str) -> Result<Slot, CodecError> {
        let days = match self.required(name)? {
            Value::Date(d) | Value::Int(d) => *d,
            other => return Err(wrong(name, "a date", other)),
        };
        let date = days_to_date(days)
            .ok_or_else(|| CodecError::invalid(name, format!("day {days} is out of range")))?;
        Slot::from_date(date).map_err(|e| CodecError::invalid(name, e.reason))
    }

    /// A required `timestamp-micros` as a UTC instant.
    pub(crate) fn instant(&self, name: &str) -> Result<OffsetDateTime, CodecError> {
        match self.required(name)? {
            Value::TimestampMicros(m) | Value::Long(m) => micros_to_instant(*m)
                .ok_or_else(|| CodecError::invalid(name, format!("{m} µs is out of range"))),
            other => Err(wrong(name, "a timestamp-micros", other)),
        }
    }

    /// A required enum's symbol.
    pub(crate) fn symbol(&self, name: &str) -> Result<&'a str, CodecError> {
        match self.required(name)? {
            Value::Enum(_, symbol) | Value::String(symbol) => Ok(symbol),
            other => Err(wrong(name, "an enum symbol", other)),
        }
    }
}

/// The error for a field of the wrong Avro type.
fn wrong(name: &str, expected: &str, found: &Value) -> CodecError {
    CodecError::invalid(name, format!("expected {expected}, got {}", kind(found)))
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

/// Days since 1970-01-01 of `slot` (Avro `date`).
pub(crate) fn slot_to_days(slot: Slot) -> i32 {
    slot.date().to_julian_day() - UNIX_EPOCH_JULIAN_DAY
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

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    #[test]
    fn dates_count_days_from_the_epoch() {
        let slot = |s: &str| Slot::parse(s).expect("valid");
        assert_eq!(slot_to_days(slot("1970-01-01")), 0);
        assert_eq!(slot_to_days(slot("1970-01-02")), 1);
        assert_eq!(slot_to_days(slot("1969-12-31")), -1);
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
    fn readers_name_the_field_and_accept_underlying_types() {
        let record = Value::Record(vec![
            ("d".into(), Value::Int(1)),
            ("u".into(), Value::String("not-a-uuid".into())),
            ("n".into(), Value::Int(-3)),
            ("o".into(), Value::Union(0, Box::new(Value::Null))),
            ("s".into(), Value::Long(5)),
        ]);
        let fields = Fields::of(&record).expect("record");
        assert_eq!(fields.slot("d").expect("int as date").to_string(), "1970-01-02");
        let err = fields.uuid("u").expect_err("bad uuid");
        assert!(matches!(err, CodecError::InvalidField { ref field, .. } if field == "u"));
        assert!(fields.count("n").is_err());
        assert_eq!(fields.opt_string("o").expect("null"), None);
        assert_eq!(fields.opt_string("absent").expect("absent"), None);
        assert!(fields.str("s").is_err());
        assert!(fields.str("absent").is_err());
        assert!(Fields::of(&Value::Int(1)).is_err());
    }
}
