//! Events: the facts a decision records, each wrapped in an [`Envelope`].
//!
//! This module owns the event vocabulary, the envelope every event carries (ids, type and
//! version, time, causality, trace context) and the event type registry with its current
//! schema versions. Encoding (Avro, headers) belongs to the platform crate, not here. Old
//! event versions are upcast on read by the codec; the payloads here are always the newest.

use serde::{Deserialize, Serialize};
use time::{OffsetDateTime, UtcOffset};
use uuid::Uuid;

use crate::command::CommandMeta;
use crate::values::{
    Capacity, CapacityRange, CustomerId, Quantity, ReservationId, ResourceId, ResourceName, SlotRange,
};

/// One recorded decision about one resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Identity, type, time and causality of the event.
    pub envelope: Envelope,
    /// What happened.
    pub payload: EventPayload,
}

/// Metadata every event carries, whatever its type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Unique, time-ordered id (UUIDv7), derived deterministically from the command.
    pub event_id: Uuid,
    /// Type of the payload.
    pub event_type: EventType,
    /// Schema version of the payload type.
    pub event_version: u32,
    /// The resource the event belongs to (also the Kafka key).
    pub resource_id: ResourceId,
    /// When the decision was made, in UTC.
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    /// The command that produced this event.
    pub command_id: Uuid,
    /// The message that caused the command.
    pub causation_id: Uuid,
    /// The workflow the command belongs to.
    pub correlation_id: Uuid,
    /// W3C `traceparent` carried from the command, if traced.
    pub traceparent: Option<String>,
    /// W3C `tracestate` carried from the command, if any.
    pub tracestate: Option<String>,
    /// Who issued the command (the subject of the caller's token); `None` for a command
    /// Holdfast issued itself, and in events written before principals were recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
}

/// What happened to the resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum EventPayload {
    /// The resource now exists with this name and default capacity.
    ResourceDefined {
        /// Human-readable name.
        name: ResourceName,
        /// Default capacity of every slot.
        capacity: Capacity,
    },
    /// Every slot in `range` now has capacity `capacity`.
    CapacityChanged {
        /// Slots whose capacity was set.
        range: CapacityRange,
        /// Their new capacity.
        capacity: Capacity,
    },
    /// `quantity` units are held on every slot of `range` until `expires_at`.
    ReservationHeld {
        /// The new reservation.
        reservation_id: ReservationId,
        /// Slots held.
        range: SlotRange,
        /// Units held on each slot.
        quantity: Quantity,
        /// Who holds them.
        customer_id: CustomerId,
        /// When the hold lapses unless confirmed.
        #[serde(with = "time::serde::rfc3339")]
        expires_at: OffsetDateTime,
    },
    /// A hold became a confirmed reservation.
    ReservationConfirmed {
        /// The confirmed reservation.
        reservation_id: ReservationId,
        /// Payment reference given with the confirmation.
        payment_ref: Option<String>,
    },
    /// A held or confirmed reservation was released by the client.
    ReservationCancelled {
        /// The cancelled reservation.
        reservation_id: ReservationId,
        /// Why, if the client said.
        reason: Option<String>,
        /// Whether the units were released from held or from confirmed.
        released: ReleasedFrom,
    },
    /// A hold's TTL ran out and its units were released.
    HoldExpired {
        /// The expired hold.
        reservation_id: ReservationId,
    },
}

/// Which usage counter a cancellation released units from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ReleasedFrom {
    /// The reservation was still a hold.
    Held,
    /// The reservation was confirmed.
    Confirmed,
}

/// The type of an event payload, as named in the envelope and the schema registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum EventType {
    /// [`EventPayload::ResourceDefined`].
    ResourceDefined,
    /// [`EventPayload::CapacityChanged`].
    CapacityChanged,
    /// [`EventPayload::ReservationHeld`].
    ReservationHeld,
    /// [`EventPayload::ReservationConfirmed`].
    ReservationConfirmed,
    /// [`EventPayload::ReservationCancelled`].
    ReservationCancelled,
    /// [`EventPayload::HoldExpired`].
    HoldExpired,
}

impl EventType {
    /// Every event type, in declaration order.
    pub const ALL: [Self; 6] = [
        Self::ResourceDefined,
        Self::CapacityChanged,
        Self::ReservationHeld,
        Self::ReservationConfirmed,
        Self::ReservationCancelled,
        Self::HoldExpired,
    ];

    /// The type's name (also its Avro record name).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ResourceDefined => "ResourceDefined",
            Self::CapacityChanged => "CapacityChanged",
            Self::ReservationHeld => "ReservationHeld",
            Self::ReservationConfirmed => "ReservationConfirmed",
            Self::ReservationCancelled => "ReservationCancelled",
            Self::HoldExpired => "HoldExpired",
        }
    }

    /// Looks a type up by its name; `None` for an unknown (e.g. newer) type.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// The schema version this crate writes for the type. Bump it together with a new
    /// schema and an upcaster for the previous version.
    pub fn current_version(self) -> u32 {
        match self {
            Self::ResourceDefined
            | Self::CapacityChanged
            | Self::ReservationHeld
            | Self::ReservationConfirmed
            | Self::ReservationCancelled
            | Self::HoldExpired => 1,
        }
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl EventPayload {
    /// The payload's type.
    pub fn event_type(&self) -> EventType {
        match self {
            Self::ResourceDefined { .. } => EventType::ResourceDefined,
            Self::CapacityChanged { .. } => EventType::CapacityChanged,
            Self::ReservationHeld { .. } => EventType::ReservationHeld,
            Self::ReservationConfirmed { .. } => EventType::ReservationConfirmed,
            Self::ReservationCancelled { .. } => EventType::ReservationCancelled,
            Self::HoldExpired { .. } => EventType::HoldExpired,
        }
    }

    /// The reservation the event is about, if any.
    pub fn reservation_id(&self) -> Option<&ReservationId> {
        match self {
            Self::ResourceDefined { .. } | Self::CapacityChanged { .. } => None,
            Self::ReservationHeld { reservation_id, .. }
            | Self::ReservationConfirmed { reservation_id, .. }
            | Self::ReservationCancelled { reservation_id, .. }
            | Self::HoldExpired { reservation_id } => Some(reservation_id),
        }
    }
}

impl Event {
    /// Wraps `payload` as event number `index` of the decision on `command` (described by
    /// `meta`) about `resource_id`, taken at `now`. The id is derived, not random, so the same
    /// inputs always give the same event.
    pub fn from_decision(
        resource_id: &ResourceId,
        meta: &CommandMeta,
        now: OffsetDateTime,
        index: u32,
        payload: EventPayload,
    ) -> Self {
        let event_type = payload.event_type();
        let envelope = Envelope {
            event_id: crate::event_id::derive(now, meta.command_id, index),
            event_type,
            event_version: event_type.current_version(),
            resource_id: resource_id.clone(),
            occurred_at: now.to_offset(UtcOffset::UTC),
            command_id: meta.command_id,
            causation_id: meta.causation_id,
            correlation_id: meta.correlation_id,
            traceparent: meta.traceparent.clone(),
            tracestate: meta.tracestate.clone(),
            principal: meta.principal.clone(),
        };
        Self { envelope, payload }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{datetime, offset};

    #[test]
    fn type_names_roundtrip_and_are_version_1() {
        for t in EventType::ALL {
            assert_eq!(EventType::from_name(t.as_str()), Some(t));
            assert_eq!(t.current_version(), 1);
        }
        assert_eq!(EventType::from_name("ReservationTeleported"), None);
    }

    #[test]
    fn envelope_copies_metadata_and_normalises_time_to_utc() {
        let room = ResourceId::parse("room-1").expect("valid");
        let mut meta = CommandMeta::new(Uuid::from_u128(42));
        meta.correlation_id = Uuid::from_u128(43);
        meta.traceparent = Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into());
        let now = datetime!(2026-03-01 14:00 +02:00);
        let payload =
            EventPayload::HoldExpired { reservation_id: ReservationId::new(&room, Uuid::from_u128(1)) };
        let event = Event::from_decision(&room, &meta, now, 0, payload);
        let env = &event.envelope;
        assert_eq!(env.event_type, EventType::HoldExpired);
        assert_eq!(env.event_version, 1);
        assert_eq!(env.resource_id, room);
        assert_eq!(env.occurred_at, now);
        assert_eq!(env.occurred_at.offset(), offset!(UTC));
        assert_eq!(
            (env.command_id, env.causation_id, env.correlation_id),
            (meta.command_id, meta.command_id, meta.correlation_id)
        );
        assert_eq!(env.traceparent, meta.traceparent);
        assert_eq!(env.event_id.get_version_num(), 7);
    }
}
