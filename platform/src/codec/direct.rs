//! The hot path: events written straight into, and read straight out of, the Avro binary
//! encoding of their schema through apache-avro's schema-aware serde, without the generic
//! [`apache_avro::types::Value`] tree (whose per-field name strings and lookup maps cost
//! more than the rest of the work together).
//!
//! Used only when the writer schema has the reader's canonical form; anything else (older or
//! newer writers, upcasting) takes the generic path. Two layouts: *positional* when the
//! schema's fields are exactly the embedded schema's, in order (fields written and read by
//! position, no name lookups), and *by name* otherwise (a candidate schema with extra
//! fields, which are then written with their defaults and skipped on reading). The unit
//! tests check that every path produces the generic path's bytes and events.

use std::io::{Read, Write};

use apache_avro::Schema;
use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::schema::ResolvedSchema;
use apache_avro::writer::datum::GenericDatumWriter;
use holdfast_domain::{Event, EventPayload, EventType, ReleasedFrom};
use serde::Serialize;
use serde::ser::{SerializeStruct, SerializeTuple, Serializer};

use super::fields::{date_to_days, instant_to_micros};
use super::record::{WireRecord, released_symbol};
use super::visit::Named;

/// How a schema can be read and written directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    /// No named-type references: no table of names is needed.
    pub(crate) self_contained: bool,
    /// The embedded schema's fields in the embedded order: fields go by position.
    pub(crate) positional: bool,
}

/// Number of fields of `event_type`'s embedded record: the envelope's eleven plus the payload's.
pub(crate) fn field_count(event_type: EventType) -> usize {
    11 + match event_type {
        EventType::ResourceDefined | EventType::ReservationConfirmed => 2,
        EventType::CapacityChanged | EventType::ReservationCancelled => 3,
        EventType::ReservationHeld => 6,
        EventType::HoldExpired => 1,
    }
}

/// The names a schema refers to: none when it is self-contained.
fn names(schema: &Schema, layout: Layout) -> apache_avro::AvroResult<ResolvedSchema<'_>> {
    if layout.self_contained {
        ResolvedSchema::new_with_schemata(Vec::new())
    } else {
        ResolvedSchema::try_from(schema)
    }
}

/// Writes `event` as a datum of `schema`, a schema of its event type.
pub(crate) fn write(
    out: &mut impl Write,
    schema: &Schema,
    layout: Layout,
    event: &Event,
) -> apache_avro::AvroResult<usize> {
    GenericDatumWriter::builder(schema)
        .resolved_schemata(names(schema, layout)?)
        .human_readable(true)
        .build()?
        .write_ser(out, &Direct { event, positional: layout.positional })
}

/// Reads a datum of `schema`, a schema of `event_type` whose fields are read by name (a
/// positional one goes through [`super::positional`]).
pub(crate) fn read(
    input: &mut impl Read,
    schema: &Schema,
    layout: Layout,
    event_type: EventType,
) -> apache_avro::AvroResult<Box<WireRecord<'static>>> {
    let reader = GenericDatumReader::builder(schema)
        .resolved_writer_schemata(names(schema, layout)?)
        .human_readable(true)
        .build()?;
    // Serde's entry points are per type, so each event type has a type of its own.
    fn read_as<const K: usize>(
        reader: &GenericDatumReader<'_>,
        input: &mut impl Read,
    ) -> apache_avro::AvroResult<Box<WireRecord<'static>>> {
        reader.read_deser::<Named<K>>(input).map(|r| r.0)
    }
    match event_type {
        EventType::ResourceDefined => read_as::<0>(&reader, input),
        EventType::CapacityChanged => read_as::<1>(&reader, input),
        EventType::ReservationHeld => read_as::<2>(&reader, input),
        EventType::ReservationConfirmed => read_as::<3>(&reader, input),
        EventType::ReservationCancelled => read_as::<4>(&reader, input),
        EventType::HoldExpired => read_as::<5>(&reader, input),
    }
}

/// Serializes an event as its record.
struct Direct<'a> {
    /// The event.
    event: &'a Event,
    /// Whether to write by position (a tuple) rather than by name (a struct).
    positional: bool,
}

impl Serialize for Direct<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let event_type = self.event.payload.event_type();
        if self.positional {
            let mut sink = InOrder(s.serialize_tuple(field_count(event_type))?);
            write_fields(&mut sink, self.event)?;
            sink.0.end()
        } else {
            let mut sink = ByName(s.serialize_struct(event_type.as_str(), field_count(event_type))?);
            write_fields(&mut sink, self.event)?;
            sink.0.end()
        }
    }
}

/// Where [`write_fields`] puts each field.
trait Sink {
    /// The serializer's error.
    type Error;
    /// Writes the field `name`.
    fn field<T: ?Sized + Serialize>(&mut self, name: &'static str, value: &T) -> Result<(), Self::Error>;
}

/// Fields by name, into a record (the schema may have more fields, or another order).
struct ByName<S>(S);

impl<S: SerializeStruct> Sink for ByName<S> {
    type Error = S::Error;
    fn field<T: ?Sized + Serialize>(&mut self, name: &'static str, value: &T) -> Result<(), S::Error> {
        self.0.serialize_field(name, value)
    }
}

/// Fields by position (the schema's fields are exactly these, in this order).
struct InOrder<S>(S);

impl<S: SerializeTuple> Sink for InOrder<S> {
    type Error = S::Error;
    fn field<T: ?Sized + Serialize>(&mut self, _: &'static str, value: &T) -> Result<(), S::Error> {
        self.0.serialize_element(value)
    }
}

/// Every field of `event`, in the order of its embedded schema.
fn write_fields<S: Sink>(r: &mut S, event: &Event) -> Result<(), S::Error> {
    let Event { envelope: env, payload } = event;
    r.field("event_id", &env.event_id)?;
    r.field("event_type", payload.event_type().as_str())?;
    r.field("event_version", &int(env.event_version))?;
    r.field("resource_id", env.resource_id.as_str())?;
    r.field("occurred_at", &instant_to_micros(env.occurred_at))?;
    r.field("command_id", &env.command_id)?;
    r.field("causation_id", &env.causation_id)?;
    r.field("correlation_id", &env.correlation_id)?;
    r.field("traceparent", &env.traceparent)?;
    r.field("tracestate", &env.tracestate)?;
    r.field("principal", &env.principal)?;
    match payload {
        EventPayload::ResourceDefined { name, capacity } => {
            r.field("name", name.as_str())?;
            r.field("capacity", &int(capacity.get()))
        }
        EventPayload::CapacityChanged { range, capacity } => {
            r.field("from", &date_to_days(range.from().date()))?;
            r.field("to", &date_to_days(range.to().date()))?;
            r.field("capacity", &int(capacity.get()))
        }
        EventPayload::ReservationHeld { reservation_id, range, quantity, customer_id, expires_at } => {
            r.field("reservation_id", reservation_id)?;
            r.field("from", &date_to_days(range.from().date()))?;
            r.field("to", &date_to_days(range.to().date()))?;
            r.field("quantity", &int(quantity.get()))?;
            r.field("customer_id", customer_id.as_str())?;
            r.field("expires_at", &instant_to_micros(*expires_at))
        }
        EventPayload::ReservationConfirmed { reservation_id, payment_ref } => {
            r.field("reservation_id", reservation_id)?;
            r.field("payment_ref", payment_ref)
        }
        EventPayload::ReservationCancelled { reservation_id, reason, released } => {
            r.field("reservation_id", reservation_id)?;
            r.field("reason", reason)?;
            r.field("released", &Released(*released))
        }
        EventPayload::HoldExpired { reservation_id } => r.field("reservation_id", reservation_id),
    }
}

/// An Avro `int` for a bounded domain number (capacities, quantities and versions are far
/// below `i32::MAX`; the saturation only guards the type conversion).
fn int(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// [`ReleasedFrom`] as its Avro enum symbol.
struct Released(ReleasedFrom);

impl Serialize for Released {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (index, symbol) = released_symbol(self.0);
        s.serialize_unit_variant("ReleasedFrom", index, symbol)
    }
}
