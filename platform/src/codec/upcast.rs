//! Upcasting: turning a record written as an older version of its event type into the
//! current version's shape, before the domain event is built.
//!
//! Compatible schema changes (a new optional field with a default) need no upcaster: Avro
//! schema resolution handles them and the event version stays. An upcaster exists for a
//! change of *meaning* or an incompatible change, which bumps the event version and gets a
//! new record namespace (`dev.holdfast.reservations.v<N>`, hence its own registry subject).
//! Upcasters are keyed by (event type, version they read) and chained: v0 → v1 → … → current.
//! They work on the writer-shaped generic record, so the old schema never has to be
//! resolvable against the new one; the upcast record is then resolved against the current
//! schema ([`resolve`]) like any record from another writer.
//!
//! The one real example: `ReservationHeld` v0 (pre-release builds) recorded the hold's TTL
//! as `hold_seconds`, leaving every reader to add it to `occurred_at`; v1 records the
//! absolute `expires_at` the decider computed. The v0 → v1 upcaster computes
//! `expires_at = occurred_at + hold_seconds` and drops `hold_seconds`.

use apache_avro::Schema;
use apache_avro::schema::ResolvedSchema;
use apache_avro::types::Value;
use holdfast_domain::EventType;

use super::CodecError;

/// Rewrites the fields of a record of one version into those of the next version.
type Upcaster = fn(Vec<(String, Value)>) -> Result<Vec<(String, Value)>, CodecError>;

/// Every upcaster, keyed by the event type and the version it reads.
const UPCASTERS: &[(EventType, u32, Upcaster)] =
    &[(EventType::ReservationHeld, 0, reservation_held_v0_to_v1)];

/// `value` (a record of `event_type` at `version`) in the shape of the current version.
///
/// # Errors
/// [`CodecError::UnsupportedVersion`] for a version newer than this build's or with no
/// upcaster path; [`CodecError::InvalidField`] when the old record lacks what its upcaster
/// needs.
pub fn to_current(event_type: EventType, version: u32, value: Value) -> Result<Value, CodecError> {
    let current = event_type.current_version();
    let unsupported = || CodecError::UnsupportedVersion { event_type, version, current };
    if version == current {
        return Ok(value);
    }
    if version > current {
        return Err(unsupported());
    }
    let Value::Record(mut fields) = value else {
        return Err(CodecError::invalid("(record)", "expected a record"));
    };
    for from in version..current {
        let (_, _, upcaster) =
            UPCASTERS.iter().find(|(t, v, _)| *t == event_type && *v == from).ok_or_else(unsupported)?;
        fields = upcaster(fields)?;
        set(&mut fields, "event_version", Value::Int(i32::try_from(from + 1).unwrap_or(i32::MAX)));
    }
    Ok(Value::Record(fields))
}

/// `value` (a record of `event_type` in the current version's shape, possibly written with
/// another schema) resolved against `reader` by Avro schema resolution: defaults filled in,
/// unknown fields dropped, types promoted.
///
/// # Errors
/// [`CodecError::InvalidField`] when the record does not resolve.
pub fn resolve(reader: &Schema, event_type: EventType, value: Value) -> Result<Value, CodecError> {
    let invalid = |detail: String| {
        CodecError::invalid(
            "(record)",
            format!("does not resolve to the current {event_type} schema: {detail}"),
        )
    };
    let names = ResolvedSchema::try_from(reader).map_err(|e| invalid(e.to_string()))?;
    value.resolve_with_names(reader, names.get_names()).map_err(|e| invalid(e.to_string()))
}

/// The `event_version` a generic record carries.
///
/// # Errors
/// [`CodecError::InvalidField`] when it is missing, not an int, or negative.
pub fn version_of(value: &Value) -> Result<u32, CodecError> {
    let Value::Record(fields) = value else {
        return Err(CodecError::invalid("(record)", "expected a record"));
    };
    let version = fields.iter().find(|(n, _)| n == "event_version").map(|(_, v)| v);
    match version {
        Some(Value::Int(v)) => {
            u32::try_from(*v).map_err(|_| CodecError::invalid("event_version", "negative"))
        }
        Some(_) => Err(CodecError::invalid("event_version", "expected an int")),
        None => Err(CodecError::invalid("event_version", "missing")),
    }
}

/// `ReservationHeld` v0 → v1: `expires_at = occurred_at + hold_seconds`.
fn reservation_held_v0_to_v1(mut fields: Vec<(String, Value)>) -> Result<Vec<(String, Value)>, CodecError> {
    let occurred_at = match take(&mut fields, "occurred_at") {
        Some(Value::TimestampMicros(m) | Value::Long(m)) => m,
        _ => return Err(CodecError::invalid("occurred_at", "missing from a v0 ReservationHeld")),
    };
    let hold_seconds = match take(&mut fields, "hold_seconds") {
        Some(Value::Int(s)) if s > 0 => i64::from(s),
        _ => {
            return Err(CodecError::invalid(
                "hold_seconds",
                "missing or not positive in a v0 ReservationHeld",
            ));
        }
    };
    let expires_at = occurred_at
        .checked_add(hold_seconds * 1_000_000)
        .ok_or_else(|| CodecError::invalid("hold_seconds", "expiry overflows"))?;
    fields.push(("occurred_at".to_owned(), Value::TimestampMicros(occurred_at)));
    fields.push(("expires_at".to_owned(), Value::TimestampMicros(expires_at)));
    Ok(fields)
}

/// Removes and returns the field `name`.
fn take(fields: &mut Vec<(String, Value)>, name: &str) -> Option<Value> {
    let at = fields.iter().position(|(n, _)| n == name)?;
    Some(fields.remove(at).1)
}

/// Sets the field `name`, adding it when absent.
fn set(fields: &mut Vec<(String, Value)>, name: &str, value: Value) {
    match fields.iter_mut().find(|(n, _)| n == name) {
        Some((_, slot)) => *slot = value,
        None => fields.push((name.to_owned(), value)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v0(hold_seconds: i32) -> Value {
        Value::Record(vec![
            ("event_version".into(), Value::Int(0)),
            ("occurred_at".into(), Value::TimestampMicros(1_000_000)),
            ("hold_seconds".into(), Value::Int(hold_seconds)),
        ])
    }

    fn field<'a>(value: &'a Value, name: &str) -> Option<&'a Value> {
        let Value::Record(fields) = value else { return None };
        fields.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    #[test]
    fn reservation_held_v0_gets_an_absolute_expiry() {
        let v1 = to_current(EventType::ReservationHeld, 0, v0(900)).expect("upcast");
        assert_eq!(field(&v1, "expires_at"), Some(&Value::TimestampMicros(901_000_000)));
        assert_eq!(field(&v1, "occurred_at"), Some(&Value::TimestampMicros(1_000_000)));
        assert_eq!(field(&v1, "event_version"), Some(&Value::Int(1)));
        assert_eq!(field(&v1, "hold_seconds"), None);
    }

    #[test]
    fn a_broken_v0_is_an_invalid_field() {
        let err = to_current(EventType::ReservationHeld, 0, v0(0)).expect_err("zero ttl");
        assert!(matches!(err, CodecError::InvalidField { ref field, .. } if field == "hold_seconds"));
    }

    #[test]
    fn current_versions_pass_through_and_unknown_ones_are_refused() {
        let value = Value::Record(vec![]);
        assert_eq!(to_current(EventType::HoldExpired, 1, value.clone()).expect("current"), value);
        for (event_type, version) in [(EventType::HoldExpired, 2), (EventType::HoldExpired, 0)] {
            let err = to_current(event_type, version, value.clone()).expect_err("unsupported");
            assert!(matches!(err, CodecError::UnsupportedVersion { current: 1, .. }), "{err}");
        }
    }
}
