//! [`Rejection`]: why the decider refused a command.
//!
//! This module owns the business-level refusal vocabulary and its stable codes. The HTTP layer
//! maps [`Rejection::code`] to problem `type` URIs and status codes; infrastructure failures
//! never appear here (a rejection is a normal, committed outcome of a decision).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::state::ResourceDefinition;
use crate::values::{Capacity, Quantity, ReservationId, ResourceId, Slot};

/// A command refused by the business rules. Nothing was recorded; retrying the same command
/// against the same state gives the same answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "kebab-case")]
pub enum Rejection {
    /// The resource has not been defined. Caller: fix the resource id or define it first (404).
    #[error("resource {resource_id} is not defined")]
    UnknownResource {
        /// The resource the command named.
        resource_id: ResourceId,
    },
    /// The resource exists with a different definition. Caller: use another id, or repeat the
    /// existing definition exactly; change capacity with ChangeCapacity instead (409).
    #[error("resource {resource_id} is already defined differently: {}", differences(.existing, .requested))]
    ResourceConflict {
        /// The resource the command named.
        resource_id: ResourceId,
        /// Its current definition.
        existing: ResourceDefinition,
        /// The definition the command asked for.
        requested: ResourceDefinition,
    },
    /// The new capacity is below what is already held or confirmed on `slot`. Caller: cancel
    /// reservations on that slot first, or choose a capacity of at least `in_use` (409).
    #[error("capacity {requested} on {slot} is below the {in_use} units already held or confirmed")]
    CapacityBelowUsage {
        /// First slot of the range where the capacity would be too low.
        slot: Slot,
        /// The capacity asked for.
        requested: Capacity,
        /// Held plus confirmed units on that slot.
        in_use: u32,
    },
    /// Not enough free capacity on `slot`; nothing was held on any slot. Caller: ask for at
    /// most `available` units, or other dates (409).
    #[error("only {available} of the {requested} requested units are available on {slot}")]
    InsufficientCapacity {
        /// First slot of the range that is short.
        slot: Slot,
        /// Units asked for.
        requested: Quantity,
        /// Units still free on that slot.
        available: u32,
    },
    /// The reservation id is already used by a different hold. Caller: mint a fresh id; this
    /// points to a bug or an id collision at the edge (409).
    #[error("reservation {reservation_id} already exists with different details")]
    ReservationConflict {
        /// The reused id.
        reservation_id: ReservationId,
    },
    /// No such reservation on this resource (never existed, or pruned long after it ended).
    /// Caller: fix the id (404).
    #[error("reservation {reservation_id} is not known")]
    UnknownReservation {
        /// The id the command named.
        reservation_id: ReservationId,
    },
    /// The hold's TTL ran out, so it can no longer be confirmed or cancelled; its units are (or
    /// are about to be) released. Caller: place a new hold (409).
    #[error("the hold {reservation_id} expired at {expired_at}")]
    HoldExpired {
        /// The expired hold.
        reservation_id: ReservationId,
        /// When it expired.
        #[serde(with = "time::serde::rfc3339")]
        expired_at: OffsetDateTime,
    },
    /// The reservation was cancelled and cannot be confirmed. Caller: place a new hold (409).
    #[error("reservation {reservation_id} was cancelled")]
    AlreadyCancelled {
        /// The cancelled reservation.
        reservation_id: ReservationId,
    },
    /// The command was delivered to the state of another resource. This is a routing bug in
    /// the command service, not a client error: page someone (500).
    #[error("command for resource {command_resource} was routed to resource {state_resource}")]
    MisroutedCommand {
        /// The resource whose state received the command.
        state_resource: ResourceId,
        /// The resource the command addresses.
        command_resource: ResourceId,
    },
}

impl Rejection {
    /// Stable kebab-case code of the rejection, e.g. `insufficient-capacity`. Never renamed:
    /// clients and problem `type` URIs depend on it.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownResource { .. } => "unknown-resource",
            Self::ResourceConflict { .. } => "resource-conflict",
            Self::CapacityBelowUsage { .. } => "capacity-below-usage",
            Self::InsufficientCapacity { .. } => "insufficient-capacity",
            Self::ReservationConflict { .. } => "reservation-conflict",
            Self::UnknownReservation { .. } => "unknown-reservation",
            Self::HoldExpired { .. } => "hold-expired",
            Self::AlreadyCancelled { .. } => "already-cancelled",
            Self::MisroutedCommand { .. } => "misrouted-command",
        }
    }
}

/// Lists the fields in which two definitions differ, e.g. `capacity 10 → 12`.
fn differences(existing: &ResourceDefinition, requested: &ResourceDefinition) -> String {
    let mut parts = Vec::with_capacity(2);
    if existing.name != requested.name {
        parts.push(format!("name {:?} → {:?}", existing.name.as_str(), requested.name.as_str()));
    }
    if existing.capacity != requested.capacity {
        parts.push(format!("capacity {} → {}", existing.capacity, requested.capacity));
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values::ResourceName;

    #[test]
    fn conflict_message_says_what_differs() {
        let def = |name: &str, cap| ResourceDefinition {
            name: ResourceName::parse(name).expect("valid"),
            capacity: Capacity::new(cap).expect("valid"),
        };
        let rejection = Rejection::ResourceConflict {
            resource_id: ResourceId::parse("room-1").expect("valid"),
            existing: def("Room", 10),
            requested: def("Room", 12),
        };
        assert_eq!(rejection.code(), "resource-conflict");
        assert_eq!(rejection.to_string(), "resource room-1 is already defined differently: capacity 10 → 12");
    }
}
