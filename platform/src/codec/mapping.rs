//! Domain events ⇄ generic Avro values of the current schemas.
//!
//! [`to_avro`] lays an [`Event`] out as the record of `schemas/<Type>.avsc`: the envelope
//! fields first, then the payload's. [`from_avro`] goes back, upcasting older versions first
//! and validating every field through the domain's own constructors, so a decoded event is as
//! trustworthy as one the decider produced. Framing, schemas ids and the registry are not
//! this module's business.

use apache_avro::types::Value;
use holdfast_domain::{Event, EventPayload, EventType};

use super::CodecError;
use super::fields::{date_to_days, instant_to_micros};
use super::record::{WireRecord, released_symbol};
use super::upcast;

/// The record of `event` under its current schema.
#[must_use]
pub fn to_avro(event: &Event) -> Value {
    let env = &event.envelope;
    let event_type = event.payload.event_type();
    let mut fields: Vec<(String, Value)> = Vec::with_capacity(16);
    let mut put = |name: &str, value: Value| fields.push((name.to_owned(), value));
    put("event_id", Value::Uuid(env.event_id));
    put("event_type", Value::String(event_type.as_str().to_owned()));
    put("event_version", int(env.event_version));
    put("resource_id", Value::String(env.resource_id.as_str().to_owned()));
    put("occurred_at", Value::TimestampMicros(instant_to_micros(env.occurred_at)));
    put("command_id", Value::Uuid(env.command_id));
    put("causation_id", Value::Uuid(env.causation_id));
    put("correlation_id", Value::Uuid(env.correlation_id));
    put("traceparent", nullable(env.traceparent.as_deref()));
    put("tracestate", nullable(env.tracestate.as_deref()));
    put("principal", nullable(env.principal.as_deref()));
    match &event.payload {
        EventPayload::ResourceDefined { name, capacity } => {
            put("name", Value::String(name.as_str().to_owned()));
            put("capacity", int(capacity.get()));
        }
        EventPayload::CapacityChanged { range, capacity } => {
            put("from", Value::Date(date_to_days(range.from().date())));
            put("to", Value::Date(date_to_days(range.to().date())));
            put("capacity", int(capacity.get()));
        }
        EventPayload::ReservationHeld { reservation_id, range, quantity, customer_id, expires_at } => {
            put("reservation_id", Value::String(reservation_id.to_string()));
            put("from", Value::Date(date_to_days(range.from().date())));
            put("to", Value::Date(date_to_days(range.to().date())));
            put("quantity", int(quantity.get()));
            put("customer_id", Value::String(customer_id.as_str().to_owned()));
            put("expires_at", Value::TimestampMicros(instant_to_micros(*expires_at)));
        }
        EventPayload::ReservationConfirmed { reservation_id, payment_ref } => {
            put("reservation_id", Value::String(reservation_id.to_string()));
            put("payment_ref", nullable(payment_ref.as_deref()));
        }
        EventPayload::ReservationCancelled { reservation_id, reason, released } => {
            put("reservation_id", Value::String(reservation_id.to_string()));
            put("reason", nullable(reason.as_deref()));
            let (index, symbol) = released_symbol(*released);
            put("released", Value::Enum(index, symbol.to_owned()));
        }
        EventPayload::HoldExpired { reservation_id } => {
            put("reservation_id", Value::String(reservation_id.to_string()));
        }
    }
    Value::Record(fields)
}

/// The event in `value`, a record named `record_name` (simple or full name) written as
/// version `version` of its type: upcast to the current version, then validated field by
/// field. Fields the current version does not know are ignored; missing optional ones are
/// null.
///
/// # Errors
/// [`CodecError::UnknownRecordName`], [`CodecError::UnsupportedVersion`], or
/// [`CodecError::InvalidField`] naming the first offending field.
pub fn from_avro(record_name: &str, version: u32, value: Value) -> Result<Event, CodecError> {
    let simple = record_name.rsplit('.').next().unwrap_or(record_name);
    let event_type = EventType::from_name(simple)
        .ok_or_else(|| CodecError::UnknownRecordName { name: record_name.to_owned() })?;
    let value = upcast::to_current(event_type, version, value)?;
    WireRecord::from_value(value)?.into_event(event_type)
}

/// The type of `event`, checked to be writable: the envelope agrees with the payload and
/// carries the current version (the only one this build writes).
///
/// # Errors
/// [`CodecError::InvalidField`] naming `event_type` or `event_version`.
pub(crate) fn writable_type(event: &Event) -> Result<EventType, CodecError> {
    let (envelope, event_type) = (&event.envelope, event.payload.event_type());
    if envelope.event_type != event_type {
        let reason = format!("envelope says {}, payload is {event_type}", envelope.event_type);
        return Err(CodecError::invalid("event_type", reason));
    }
    let current = event_type.current_version();
    if envelope.event_version != current {
        let reason = format!("{} is not the current version {current}", envelope.event_version);
        return Err(CodecError::invalid("event_version", reason));
    }
    Ok(event_type)
}

/// An Avro `int` for a bounded domain number (capacities, quantities and versions are far
/// below `i32::MAX`; the saturation only guards the type conversion).
fn int(n: u32) -> Value {
    Value::Int(i32::try_from(n).unwrap_or(i32::MAX))
}

/// A `["null","string"]` union value.
fn nullable(s: Option<&str>) -> Value {
    match s {
        None => Value::Union(0, Box::new(Value::Null)),
        Some(s) => Value::Union(1, Box::new(Value::String(s.to_owned()))),
    }
}

#[cfg(test)]
#[path = "mapping_tests.rs"]
mod tests;
