//! Domain events ⇄ generic Avro values of the current schemas.
//!
//! [`to_avro`] lays an [`Event`] out as the record of `schemas/<Type>.avsc`: the envelope
//! fields first, then the payload's. [`from_avro`] goes back, upcasting older versions first
//! and validating every field through the domain's own constructors, so a decoded event is as
//! trustworthy as one the decider produced. Framing, schemas ids and the registry are not
//! this module's business.

use apache_avro::types::Value;
use holdfast_domain::{
    Capacity, CapacityRange, CustomerId, Envelope, Event, EventPayload, EventType, Quantity, ReleasedFrom,
    ReservationId, ResourceId, ResourceName, SlotRange, ValueError,
};

use super::CodecError;
use super::fields::{Fields, instant_to_micros, slot_to_days};
use super::upcast;

/// Avro symbols of [`ReleasedFrom`], in schema order.
const RELEASED_FROM: [&str; 2] = ["HELD", "CONFIRMED"];

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
    match &event.payload {
        EventPayload::ResourceDefined { name, capacity } => {
            put("name", Value::String(name.as_str().to_owned()));
            put("capacity", int(capacity.get()));
        }
        EventPayload::CapacityChanged { range, capacity } => {
            put("from", Value::Date(slot_to_days(range.from())));
            put("to", Value::Date(slot_to_days(range.to())));
            put("capacity", int(capacity.get()));
        }
        EventPayload::ReservationHeld { reservation_id, range, quantity, customer_id, expires_at } => {
            put("reservation_id", Value::String(reservation_id.to_string()));
            put("from", Value::Date(slot_to_days(range.from())));
            put("to", Value::Date(slot_to_days(range.to())));
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
            let index = match released {
                ReleasedFrom::Held => 0,
                ReleasedFrom::Confirmed => 1,
            };
            put("released", Value::Enum(index, RELEASED_FROM[index as usize].to_owned()));
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
    build(event_type, &value)
}

/// The event of type `event_type` in `value`, which already has the current version's shape.
pub(crate) fn build(event_type: EventType, value: &Value) -> Result<Event, CodecError> {
    let f = Fields::of(value)?;
    let written_type = f.str("event_type")?;
    if written_type != event_type.as_str() {
        return Err(CodecError::invalid("event_type", format!("{written_type:?} in a {event_type} record")));
    }
    let envelope = Envelope {
        event_id: f.uuid("event_id")?,
        event_type,
        event_version: event_type.current_version(),
        resource_id: parse("resource_id", ResourceId::parse(f.str("resource_id")?))?,
        occurred_at: f.instant("occurred_at")?,
        command_id: f.uuid("command_id")?,
        causation_id: f.uuid("causation_id")?,
        correlation_id: f.uuid("correlation_id")?,
        traceparent: f.opt_string("traceparent")?,
        tracestate: f.opt_string("tracestate")?,
    };
    let payload = match event_type {
        EventType::ResourceDefined => EventPayload::ResourceDefined {
            name: parse("name", ResourceName::parse(f.str("name")?))?,
            capacity: parse("capacity", Capacity::new(f.count("capacity")?))?,
        },
        EventType::CapacityChanged => EventPayload::CapacityChanged {
            range: parse("to", CapacityRange::new(f.slot("from")?, f.slot("to")?))?,
            capacity: parse("capacity", Capacity::new(f.count("capacity")?))?,
        },
        EventType::ReservationHeld => EventPayload::ReservationHeld {
            reservation_id: reservation_id(f)?,
            range: parse("to", SlotRange::new(f.slot("from")?, f.slot("to")?))?,
            quantity: parse("quantity", Quantity::new(f.count("quantity")?))?,
            customer_id: parse("customer_id", CustomerId::parse(f.str("customer_id")?))?,
            expires_at: f.instant("expires_at")?,
        },
        EventType::ReservationConfirmed => EventPayload::ReservationConfirmed {
            reservation_id: reservation_id(f)?,
            payment_ref: f.opt_string("payment_ref")?,
        },
        EventType::ReservationCancelled => EventPayload::ReservationCancelled {
            reservation_id: reservation_id(f)?,
            reason: f.opt_string("reason")?,
            released: match f.symbol("released")? {
                "HELD" => ReleasedFrom::Held,
                "CONFIRMED" => ReleasedFrom::Confirmed,
                other => return Err(CodecError::invalid("released", format!("unknown symbol {other:?}"))),
            },
        },
        EventType::HoldExpired => EventPayload::HoldExpired { reservation_id: reservation_id(f)? },
    };
    if let Some(id) = payload.reservation_id()
        && id.resource_id() != &envelope.resource_id
    {
        return Err(CodecError::invalid(
            "reservation_id",
            format!("belongs to {}, not to {}", id.resource_id(), envelope.resource_id),
        ));
    }
    Ok(Event { envelope, payload })
}

/// The `reservation_id` field, validated.
fn reservation_id(f: Fields<'_>) -> Result<ReservationId, CodecError> {
    parse("reservation_id", ReservationId::parse(f.str("reservation_id")?))
}

/// A domain constructor's result, its error re-labelled with the Avro field name.
fn parse<T>(field: &str, result: Result<T, ValueError>) -> Result<T, CodecError> {
    result.map_err(|e| CodecError::invalid(field, e.reason))
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
