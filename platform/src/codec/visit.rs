//! A serde visitor that reads an event record straight into a [`WireRecord`] by name
//! ([`Named`]: any schema of the record, unknown fields skipped). Used by [`super::direct`]
//! only; a writer with the embedded schema's exact field order is read by
//! [`super::positional`].

use holdfast_domain::{EventType, ReleasedFrom};
use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};

use super::record::WireRecord;

/// A [`WireRecord`] read by name from the record of `EventType::ALL[K]`.
pub(crate) struct Named<const K: usize>(pub(crate) Box<WireRecord<'static>>);

impl<'de, const K: usize> Deserialize<'de> for Named<K> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // The schema-aware deserializer checks this name against the record's.
        let name = EventType::ALL.get(K).map_or("", |t| t.as_str());
        d.deserialize_struct(name, FIELDS, ByName).map(Self)
    }
}

/// Every field name any event record has; `Other` for fields a newer schema added.
#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum Field {
    EventId,
    EventType,
    EventVersion,
    ResourceId,
    OccurredAt,
    CommandId,
    CausationId,
    CorrelationId,
    Traceparent,
    Tracestate,
    Principal,
    Name,
    Capacity,
    From,
    To,
    ReservationId,
    Quantity,
    CustomerId,
    ExpiresAt,
    PaymentRef,
    Reason,
    Released,
    #[serde(other)]
    Other,
}

/// The names of [`Field`], for `deserialize_struct`.
const FIELDS: &[&str] = &[
    "event_id",
    "event_type",
    "event_version",
    "resource_id",
    "occurred_at",
    "command_id",
    "causation_id",
    "correlation_id",
    "traceparent",
    "tracestate",
    "principal",
    "name",
    "capacity",
    "from",
    "to",
    "reservation_id",
    "quantity",
    "customer_id",
    "expires_at",
    "payment_ref",
    "reason",
    "released",
];

/// Fills a [`WireRecord`] from the record's fields, in whatever order they come.
struct ByName;

impl<'de> Visitor<'de> for ByName {
    type Value = Box<WireRecord<'static>>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a Holdfast event record")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Box<WireRecord<'static>>, A::Error> {
        let mut r = Box::<WireRecord<'static>>::default();
        while let Some(field) = map.next_key::<Field>()? {
            match field {
                Field::EventId => r.event_id = Some(map.next_value()?),
                Field::EventType => r.event_type = Some(map.next_value()?),
                Field::EventVersion => r.event_version = Some(map.next_value()?),
                Field::ResourceId => r.resource_id = Some(map.next_value()?),
                Field::OccurredAt => r.occurred_at = Some(map.next_value()?),
                Field::CommandId => r.command_id = Some(map.next_value()?),
                Field::CausationId => r.causation_id = Some(map.next_value()?),
                Field::CorrelationId => r.correlation_id = Some(map.next_value()?),
                Field::Traceparent => r.traceparent = map.next_value()?,
                Field::Tracestate => r.tracestate = map.next_value()?,
                Field::Principal => r.principal = map.next_value()?,
                Field::Name => r.name = Some(map.next_value()?),
                Field::Capacity => r.capacity = Some(map.next_value()?),
                Field::From => r.from = Some(map.next_value()?),
                Field::To => r.to = Some(map.next_value()?),
                Field::ReservationId => r.reservation_id = Some(map.next_value()?),
                Field::Quantity => r.quantity = Some(map.next_value()?),
                Field::CustomerId => r.customer_id = Some(map.next_value()?),
                Field::ExpiresAt => r.expires_at = Some(map.next_value()?),
                Field::PaymentRef => r.payment_ref = map.next_value()?,
                Field::Reason => r.reason = map.next_value()?,
                Field::Released => r.released = Some(map.next_value::<Released>()?.0),
                Field::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(r)
    }
}

/// [`ReleasedFrom`] read from its Avro enum symbol.
struct Released(ReleasedFrom);

impl<'de> Deserialize<'de> for Released {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        /// The symbols, as serde variants.
        #[derive(Deserialize)]
        enum Symbol {
            #[serde(rename = "HELD")]
            Held,
            #[serde(rename = "CONFIRMED")]
            Confirmed,
        }
        Ok(Self(match Symbol::deserialize(d)? {
            Symbol::Held => ReleasedFrom::Held,
            Symbol::Confirmed => ReleasedFrom::Confirmed,
        }))
    }
}
