//! Commands: what a client (or the hold-expiry timer) asks a resource to do.
//!
//! This module owns the command vocabulary and the metadata that travels beside a command.
//! Commands hold only validated value types; the edge (HTTP, Kafka decoding) builds them.
//! Whether a command is accepted is decided in [`crate::decide`], never here.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::values::{
    Capacity, CapacityRange, CustomerId, HoldTtl, Quantity, ReservationId, ResourceId, ResourceName,
    SlotRange,
};

/// A request to change one resource. Every command names its resource ([`Command::resource_id`]),
/// which is the Kafka key that routes it to the single writer of that resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Command {
    /// Create a resource, or repeat its exact definition (a no-op).
    DefineResource {
        /// The resource to define.
        resource_id: ResourceId,
        /// Human-readable name.
        name: ResourceName,
        /// Default capacity of every slot.
        capacity: Capacity,
    },
    /// Set the capacity of every slot in a range.
    ChangeCapacity {
        /// The resource to change.
        resource_id: ResourceId,
        /// Slots whose capacity is set.
        range: CapacityRange,
        /// New capacity of each slot in the range.
        capacity: Capacity,
    },
    /// Hold `quantity` units on every slot of `range`, all or nothing, until the TTL runs out.
    PlaceHold {
        /// Id minted by the edge; it encodes the resource the hold is placed on.
        reservation_id: ReservationId,
        /// Slots to hold.
        range: SlotRange,
        /// Units held on each slot.
        quantity: Quantity,
        /// Who holds them.
        customer_id: CustomerId,
        /// How long the hold lasts unless confirmed.
        ttl: HoldTtl,
    },
    /// Turn a live hold into a confirmed reservation.
    ConfirmReservation {
        /// The reservation to confirm.
        reservation_id: ReservationId,
        /// Payment reference recorded with the confirmation, if any.
        payment_ref: Option<String>,
    },
    /// Release a held or confirmed reservation.
    CancelReservation {
        /// The reservation to cancel.
        reservation_id: ReservationId,
        /// Why it was cancelled, if the client said.
        reason: Option<String>,
    },
    /// Internal, sent by the partition owner's timer: release a hold whose TTL has run out.
    ExpireHold {
        /// The hold to expire.
        reservation_id: ReservationId,
    },
}

impl Command {
    /// The resource this command addresses: the routing (Kafka) key.
    pub fn resource_id(&self) -> &ResourceId {
        match self {
            Self::DefineResource { resource_id, .. } | Self::ChangeCapacity { resource_id, .. } => {
                resource_id
            }
            Self::PlaceHold { reservation_id, .. }
            | Self::ConfirmReservation { reservation_id, .. }
            | Self::CancelReservation { reservation_id, .. }
            | Self::ExpireHold { reservation_id } => reservation_id.resource_id(),
        }
    }

    /// The reservation this command addresses, if it is about one.
    pub fn reservation_id(&self) -> Option<&ReservationId> {
        match self {
            Self::DefineResource { .. } | Self::ChangeCapacity { .. } => None,
            Self::PlaceHold { reservation_id, .. }
            | Self::ConfirmReservation { reservation_id, .. }
            | Self::CancelReservation { reservation_id, .. }
            | Self::ExpireHold { reservation_id } => Some(reservation_id),
        }
    }

    /// Stable, low-cardinality name of the command kind, for logs and metric labels.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::DefineResource { .. } => "define-resource",
            Self::ChangeCapacity { .. } => "change-capacity",
            Self::PlaceHold { .. } => "place-hold",
            Self::ConfirmReservation { .. } => "confirm-reservation",
            Self::CancelReservation { .. } => "cancel-reservation",
            Self::ExpireHold { .. } => "expire-hold",
        }
    }
}

/// Metadata passed beside a command and copied into the envelope of every event it produces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandMeta {
    /// Unique id of this command; seeds the ids of the events it produces.
    pub command_id: Uuid,
    /// Id shared by everything done on behalf of one client request or workflow.
    pub correlation_id: Uuid,
    /// Id of the message that caused this command (the command itself for a client request).
    pub causation_id: Uuid,
    /// W3C `traceparent` of the span that issued the command, if traced.
    pub traceparent: Option<String>,
    /// W3C `tracestate` that goes with `traceparent`, if any.
    pub tracestate: Option<String>,
    /// Who issued the command: the subject of the caller's token. `None` for commands
    /// Holdfast issues itself (a hold's expiry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
}

impl CommandMeta {
    /// Metadata for a command that starts its own workflow: correlation and causation are the
    /// command itself, and there is no trace context.
    pub fn new(command_id: Uuid) -> Self {
        Self {
            command_id,
            correlation_id: command_id,
            causation_id: command_id,
            traceparent: None,
            tracestate: None,
            principal: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_answers_its_routing_key() {
        let room = ResourceId::parse("room-1").expect("valid");
        let id = ReservationId::new(&room, Uuid::from_u128(7));
        let range = SlotRange::parse("2026-03-01", "2026-03-03").expect("valid");
        let commands = [
            Command::DefineResource {
                resource_id: room.clone(),
                name: ResourceName::parse("Room 1").expect("valid"),
                capacity: Capacity::new(2).expect("valid"),
            },
            Command::ChangeCapacity {
                resource_id: room.clone(),
                range: CapacityRange::parse("2026-03-01", "2026-03-03").expect("valid"),
                capacity: Capacity::ZERO,
            },
            Command::PlaceHold {
                reservation_id: id.clone(),
                range,
                quantity: Quantity::new(1).expect("valid"),
                customer_id: CustomerId::parse("c").expect("valid"),
                ttl: HoldTtl::DEFAULT,
            },
            Command::ConfirmReservation { reservation_id: id.clone(), payment_ref: None },
            Command::CancelReservation { reservation_id: id.clone(), reason: None },
            Command::ExpireHold { reservation_id: id },
        ];
        for command in &commands {
            assert_eq!(command.resource_id(), &room, "{}", command.kind());
        }
    }

    #[test]
    fn meta_new_starts_a_workflow() {
        let meta = CommandMeta::new(Uuid::from_u128(9));
        assert_eq!(meta.correlation_id, meta.command_id);
        assert_eq!(meta.causation_id, meta.command_id);
    }
}
