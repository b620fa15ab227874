//! [`WireRecord`]: an event record's fields as they come off the wire, before validation,
//! and [`WireRecord::into_event`], the one place a decoded record becomes a domain event.
//!
//! Both decoding paths end here — the direct one ([`super::direct`]) and the generic
//! [`Value`] one (schema resolution, upcasting, [`super::from_avro`]) — so every field is
//! validated by the domain's own constructors exactly once, the same way.

use std::borrow::Cow;

use apache_avro::Uuid;
use apache_avro::types::Value;
use holdfast_domain::{
    Capacity, CapacityRange, CustomerId, Envelope, Event, EventPayload, EventType, Quantity, ReleasedFrom,
    ReservationId, ResourceId, ResourceName, Slot, SlotRange, ValueError,
};

use super::CodecError;
use super::fields::{self, days_to_date, micros_to_instant};

/// The fields of any event record; `None` when absent (or null, for nullable fields). Strings
/// are borrowed from the record's bytes where the reader can ([`super::positional`]).
#[derive(Debug, Default)]
pub(crate) struct WireRecord<'a> {
    pub(crate) event_id: Option<Uuid>,
    pub(crate) event_type: Option<Cow<'a, str>>,
    pub(crate) event_version: Option<i32>,
    pub(crate) resource_id: Option<Cow<'a, str>>,
    pub(crate) occurred_at: Option<i64>,
    pub(crate) command_id: Option<Uuid>,
    pub(crate) causation_id: Option<Uuid>,
    pub(crate) correlation_id: Option<Uuid>,
    pub(crate) traceparent: Option<Cow<'a, str>>,
    pub(crate) tracestate: Option<Cow<'a, str>>,
    pub(crate) principal: Option<Cow<'a, str>>,
    pub(crate) name: Option<Cow<'a, str>>,
    pub(crate) capacity: Option<i32>,
    pub(crate) from: Option<i32>,
    pub(crate) to: Option<i32>,
    pub(crate) reservation_id: Option<Cow<'a, str>>,
    pub(crate) quantity: Option<i32>,
    pub(crate) customer_id: Option<Cow<'a, str>>,
    pub(crate) expires_at: Option<i64>,
    pub(crate) payment_ref: Option<Cow<'a, str>>,
    pub(crate) reason: Option<Cow<'a, str>>,
    pub(crate) released: Option<ReleasedFrom>,
}

/// Avro symbol of each [`ReleasedFrom`].
pub(crate) fn released_symbol(released: ReleasedFrom) -> (u32, &'static str) {
    match released {
        ReleasedFrom::Held => (0, "HELD"),
        ReleasedFrom::Confirmed => (1, "CONFIRMED"),
    }
}

impl WireRecord<'_> {
    /// The fields of a generic record; fields no event has are ignored.
    pub(crate) fn from_value(value: Value) -> Result<WireRecord<'static>, CodecError> {
        let Value::Record(fields) = value else {
            return Err(CodecError::invalid("(record)", "expected a record"));
        };
        let mut r = WireRecord::default();
        for (name, value) in fields {
            let f = name.as_str();
            match f {
                "event_id" => r.event_id = Some(fields::uuid(f, value)?),
                "event_type" => r.event_type = Some(fields::string(f, value)?.into()),
                "event_version" => r.event_version = Some(fields::int(f, value)?),
                "resource_id" => r.resource_id = Some(fields::string(f, value)?.into()),
                "occurred_at" => r.occurred_at = Some(fields::micros(f, value)?),
                "command_id" => r.command_id = Some(fields::uuid(f, value)?),
                "causation_id" => r.causation_id = Some(fields::uuid(f, value)?),
                "correlation_id" => r.correlation_id = Some(fields::uuid(f, value)?),
                "traceparent" => r.traceparent = fields::nullable_string(f, value)?.map(Cow::Owned),
                "tracestate" => r.tracestate = fields::nullable_string(f, value)?.map(Cow::Owned),
                "principal" => r.principal = fields::nullable_string(f, value)?.map(Cow::Owned),
                "name" => r.name = Some(fields::string(f, value)?.into()),
                "capacity" => r.capacity = Some(fields::int(f, value)?),
                "from" => r.from = Some(fields::int(f, value)?),
                "to" => r.to = Some(fields::int(f, value)?),
                "reservation_id" => r.reservation_id = Some(fields::string(f, value)?.into()),
                "quantity" => r.quantity = Some(fields::int(f, value)?),
                "customer_id" => r.customer_id = Some(fields::string(f, value)?.into()),
                "expires_at" => r.expires_at = Some(fields::micros(f, value)?),
                "payment_ref" => r.payment_ref = fields::nullable_string(f, value)?.map(Cow::Owned),
                "reason" => r.reason = fields::nullable_string(f, value)?.map(Cow::Owned),
                "released" => {
                    r.released = Some(match fields::symbol(f, value)?.as_str() {
                        "HELD" => ReleasedFrom::Held,
                        "CONFIRMED" => ReleasedFrom::Confirmed,
                        other => return Err(CodecError::invalid(f, format!("unknown symbol {other:?}"))),
                    });
                }
                _ => {}
            }
        }
        Ok(r)
    }

    /// The domain event of type `event_type` (current version) these fields describe.
    ///
    /// # Errors
    /// [`CodecError::InvalidField`] naming the first field that is missing, of the wrong
    /// type, or breaks the domain's rule.
    pub(crate) fn into_event(self, event_type: EventType) -> Result<Event, CodecError> {
        let written_type = required(self.event_type, "event_type")?;
        if written_type != event_type.as_str() {
            return Err(CodecError::invalid(
                "event_type",
                format!("{written_type:?} in a {event_type} record"),
            ));
        }
        let resource_id = ResourceId::parse(&required(self.resource_id, "resource_id")?);
        let envelope = Envelope {
            event_id: required(self.event_id, "event_id")?,
            event_type,
            event_version: event_type.current_version(),
            resource_id: domain("resource_id", resource_id)?,
            occurred_at: instant(self.occurred_at, "occurred_at")?,
            command_id: required(self.command_id, "command_id")?,
            causation_id: required(self.causation_id, "causation_id")?,
            correlation_id: required(self.correlation_id, "correlation_id")?,
            traceparent: self.traceparent.map(Cow::into_owned),
            tracestate: self.tracestate.map(Cow::into_owned),
            principal: self.principal.map(Cow::into_owned),
        };
        let reservation_id = || {
            let id = required(self.reservation_id.as_deref(), "reservation_id")?;
            domain("reservation_id", ReservationId::parse(id))
        };
        let capacity = || domain("capacity", Capacity::new(count(self.capacity, "capacity")?));
        let payload = match event_type {
            EventType::ResourceDefined => EventPayload::ResourceDefined {
                name: domain("name", ResourceName::parse(&required(self.name, "name")?))?,
                capacity: capacity()?,
            },
            EventType::CapacityChanged => EventPayload::CapacityChanged {
                range: domain("to", CapacityRange::new(slot(self.from, "from")?, slot(self.to, "to")?))?,
                capacity: capacity()?,
            },
            EventType::ReservationHeld => EventPayload::ReservationHeld {
                reservation_id: reservation_id()?,
                range: domain("to", SlotRange::new(slot(self.from, "from")?, slot(self.to, "to")?))?,
                quantity: domain("quantity", Quantity::new(count(self.quantity, "quantity")?))?,
                customer_id: domain(
                    "customer_id",
                    CustomerId::parse_recorded(&required(self.customer_id, "customer_id")?),
                )?,
                expires_at: instant(self.expires_at, "expires_at")?,
            },
            EventType::ReservationConfirmed => EventPayload::ReservationConfirmed {
                reservation_id: reservation_id()?,
                payment_ref: self.payment_ref.map(Cow::into_owned),
            },
            EventType::ReservationCancelled => EventPayload::ReservationCancelled {
                reservation_id: reservation_id()?,
                reason: self.reason.map(Cow::into_owned),
                released: required(self.released, "released")?,
            },
            EventType::HoldExpired => EventPayload::HoldExpired { reservation_id: reservation_id()? },
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
}

/// A required field's value.
fn required<T>(value: Option<T>, field: &str) -> Result<T, CodecError> {
    value.ok_or_else(|| CodecError::invalid(field, "missing or null"))
}

/// A required non-negative count.
fn count(value: Option<i32>, field: &str) -> Result<u32, CodecError> {
    let n = required(value, field)?;
    u32::try_from(n).map_err(|_| CodecError::invalid(field, format!("must not be negative, got {n}")))
}

/// A required `date` as a slot.
fn slot(value: Option<i32>, field: &str) -> Result<Slot, CodecError> {
    let days = required(value, field)?;
    let date = days_to_date(days)
        .ok_or_else(|| CodecError::invalid(field, format!("day {days} is out of range")))?;
    domain(field, Slot::from_date(date))
}

/// A required `timestamp-micros` as a UTC instant.
fn instant(value: Option<i64>, field: &str) -> Result<time::OffsetDateTime, CodecError> {
    let micros = required(value, field)?;
    micros_to_instant(micros)
        .ok_or_else(|| CodecError::invalid(field, format!("{micros} µs is out of range")))
}

/// A domain constructor's result, its error re-labelled with the Avro field name.
fn domain<T>(field: &str, result: Result<T, ValueError>) -> Result<T, CodecError> {
    result.map_err(|e| CodecError::invalid(field, e.reason))
}
