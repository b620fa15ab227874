//! Holdfast's pure reservation domain.
//!
//! This crate owns the business rules of Holdfast and nothing else: validated value types
//! ([`values`]), the commands a client or timer can issue ([`command`]), the events that record
//! decisions ([`event`]), the per-resource state folded from those events ([`state`]), and the
//! decider ([`decide()`] / [`evolve()`]) that turns a command into events or a [`Rejection`].
//!
//! It must stay free of I/O: no Kafka, databases, clocks or randomness. The caller passes the
//! current time and the command's metadata in, which keeps [`decide()`] a pure, deterministic
//! function (event ids included) that replays, tests and property checks can rely on.

pub mod command;
pub mod decide;
pub mod event;
mod event_id;
pub mod rejection;
pub mod state;
pub mod values;

#[cfg(test)]
mod testing;

pub use command::{Command, CommandMeta};
pub use decide::{decide, evolve};
pub use event::{Envelope, Event, EventPayload, EventType, ReleasedFrom};
pub use rejection::Rejection;
pub use state::{Reservation, ReservationStatus, ResourceDefinition, ResourceState, SlotUsage};
pub use values::{
    Capacity, CapacityRange, CustomerId, HoldTtl, Quantity, ReservationId, ResourceId, ResourceName, Slot,
    SlotRange, ValueError,
};
