//! Test support: fixtures and a given(events) / when(command) / then(events | rejection)
//! harness for the decider. Compiled for unit tests only.

use time::macros::{date, datetime};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::{
    Capacity, CapacityRange, Command, CommandMeta, CustomerId, Event, EventPayload, HoldTtl, Quantity,
    Rejection, ReleasedFrom, ReservationId, ResourceId, ResourceName, ResourceState, Slot, SlotRange,
    SlotUsage, decide, evolve,
};

/// The resource every scenario is about.
pub(crate) fn resource() -> ResourceId {
    ResourceId::parse("room-101").expect("valid resource id")
}

/// Some other resource, for routing tests.
pub(crate) fn other_resource() -> ResourceId {
    ResourceId::parse("room-202").expect("valid resource id")
}

/// The instant scenarios start at.
pub(crate) fn t0() -> OffsetDateTime {
    datetime!(2026-03-01 12:00 UTC)
}

/// `minutes` after [`t0`] (negative for before).
pub(crate) fn in_minutes(minutes: i64) -> OffsetDateTime {
    t0() + Duration::minutes(minutes)
}

/// The `n`-th day after 2026-04-01.
pub(crate) fn day(n: i64) -> Slot {
    Slot::from_date(date!(2026 - 04 - 01) + Duration::days(n)).expect("valid slot")
}

/// Reservation range `[day(from), day(to))`.
pub(crate) fn range(from: i64, to: i64) -> SlotRange {
    SlotRange::new(day(from), day(to)).expect("valid range")
}

/// Capacity range `[day(from), day(to))`.
pub(crate) fn capacity_range(from: i64, to: i64) -> CapacityRange {
    CapacityRange::new(day(from), day(to)).expect("valid range")
}

/// Reservation number `n` on [`resource`].
pub(crate) fn res(n: u128) -> ReservationId {
    ReservationId::new(&resource(), Uuid::from_u128(n))
}

/// The customer of every scenario hold.
pub(crate) fn customer() -> CustomerId {
    CustomerId::parse("customer-1").expect("valid customer id")
}

/// A capacity.
pub(crate) fn cap(n: u32) -> Capacity {
    Capacity::new(n).expect("valid capacity")
}

/// A quantity.
pub(crate) fn qty(n: u32) -> Quantity {
    Quantity::new(n).expect("valid quantity")
}

/// Slot usage.
pub(crate) fn usage(held: u32, confirmed: u32) -> SlotUsage {
    SlotUsage { held, confirmed }
}

/// Command metadata with command id `n`.
pub(crate) fn meta(n: u128) -> CommandMeta {
    CommandMeta::new(Uuid::from_u128(n))
}

/// ResourceDefined("Room 101", capacity).
pub(crate) fn defined(capacity: u32) -> EventPayload {
    EventPayload::ResourceDefined {
        name: ResourceName::parse("Room 101").expect("valid"),
        capacity: cap(capacity),
    }
}

/// CapacityChanged over `[day(from), day(to))`.
pub(crate) fn capacity_changed(from: i64, to: i64, capacity: u32) -> EventPayload {
    EventPayload::CapacityChanged { range: capacity_range(from, to), capacity: cap(capacity) }
}

/// ReservationHeld of reservation `n`.
pub(crate) fn held(n: u128, from: i64, to: i64, quantity: u32, expires_at: OffsetDateTime) -> EventPayload {
    EventPayload::ReservationHeld {
        reservation_id: res(n),
        range: range(from, to),
        quantity: qty(quantity),
        customer_id: customer(),
        expires_at,
    }
}

/// ReservationConfirmed of reservation `n`, without payment reference.
pub(crate) fn confirmed(n: u128) -> EventPayload {
    EventPayload::ReservationConfirmed { reservation_id: res(n), payment_ref: None }
}

/// ReservationCancelled of reservation `n`, without reason.
pub(crate) fn cancelled(n: u128, released: ReleasedFrom) -> EventPayload {
    EventPayload::ReservationCancelled { reservation_id: res(n), reason: None, released }
}

/// HoldExpired of reservation `n`.
pub(crate) fn expired(n: u128) -> EventPayload {
    EventPayload::HoldExpired { reservation_id: res(n) }
}

/// DefineResource("Room 101", capacity).
pub(crate) fn define(capacity: u32) -> Command {
    Command::DefineResource {
        resource_id: resource(),
        name: ResourceName::parse("Room 101").expect("valid"),
        capacity: cap(capacity),
    }
}

/// ChangeCapacity over `[day(from), day(to))`.
pub(crate) fn change_capacity(from: i64, to: i64, capacity: u32) -> Command {
    Command::ChangeCapacity {
        resource_id: resource(),
        range: capacity_range(from, to),
        capacity: cap(capacity),
    }
}

/// PlaceHold of reservation `n` with the default TTL (15 minutes).
pub(crate) fn place_hold(n: u128, from: i64, to: i64, quantity: u32) -> Command {
    Command::PlaceHold {
        reservation_id: res(n),
        range: range(from, to),
        quantity: qty(quantity),
        customer_id: customer(),
        ttl: HoldTtl::DEFAULT,
    }
}

/// ConfirmReservation of reservation `n`.
pub(crate) fn confirm(n: u128) -> Command {
    Command::ConfirmReservation { reservation_id: res(n), payment_ref: None }
}

/// CancelReservation of reservation `n`.
pub(crate) fn cancel(n: u128) -> Command {
    Command::CancelReservation { reservation_id: res(n), reason: None }
}

/// ExpireHold of reservation `n`.
pub(crate) fn expire(n: u128) -> Command {
    Command::ExpireHold { reservation_id: res(n) }
}

/// `payload` wrapped as an event of [`other_resource`].
pub(crate) fn foreign_event(payload: EventPayload) -> Event {
    Event::from_decision(&other_resource(), &meta(0), t0(), 0, payload)
}

/// A scenario's history: the state folded from the given events, and the clock.
#[derive(Debug)]
pub(crate) struct Given {
    /// State after the history.
    state: ResourceState,
    /// When the next command is decided.
    now: OffsetDateTime,
}

/// Starts a scenario whose history is `payloads` (recorded at [`t0`]), decided at [`t0`].
pub(crate) fn given(payloads: &[EventPayload]) -> Given {
    let state = payloads.iter().zip(0..).fold(ResourceState::new(resource()), |state, (payload, i)| {
        evolve(state, &Event::from_decision(&resource(), &meta(1_000_000 + i), t0(), 0, payload.clone()))
    });
    Given { state, now: t0() }
}

impl Given {
    /// Decides the next command at `now` instead of [`t0`].
    pub(crate) fn at(mut self, now: OffsetDateTime) -> Self {
        self.now = now;
        self
    }

    /// The state the history produced.
    pub(crate) fn state(self) -> ResourceState {
        self.state
    }

    /// Decides `command` against the history.
    pub(crate) fn when(self, command: Command) -> Then {
        let meta = meta(42);
        let result = decide(&self.state, &command, &meta, self.now);
        Then { state: self.state, command, meta, result }
    }
}

/// The outcome of a scenario, to be checked.
#[derive(Debug)]
pub(crate) struct Then {
    /// State before the command.
    state: ResourceState,
    /// The command decided.
    command: Command,
    /// Its metadata.
    meta: CommandMeta,
    /// What the decider answered.
    result: Result<Vec<Event>, Rejection>,
}

impl Then {
    /// Asserts the command was accepted with exactly `expected` payloads (and well-formed
    /// envelopes); returns the state after folding them.
    #[track_caller]
    pub(crate) fn then_events(self, expected: &[EventPayload]) -> ResourceState {
        let events = match self.result {
            Ok(events) => events,
            Err(rejection) => panic!("{} was rejected: {rejection:?}", self.command.kind()),
        };
        let payloads: Vec<_> = events.iter().map(|e| e.payload.clone()).collect();
        assert_eq!(payloads, expected, "events of {}", self.command.kind());
        for event in &events {
            assert_eq!(event.envelope.resource_id, resource());
            assert_eq!(event.envelope.command_id, self.meta.command_id);
            assert_eq!(event.envelope.event_type, event.payload.event_type());
        }
        events.iter().fold(self.state, evolve)
    }

    /// Asserts the command was accepted as a no-op (no events).
    #[track_caller]
    pub(crate) fn then_nothing(self) {
        self.then_events(&[]);
    }

    /// Asserts the command was rejected with exactly `expected`.
    #[track_caller]
    pub(crate) fn then_rejected(self, expected: Rejection) {
        assert_eq!(self.rejection(), expected);
    }

    /// The rejection, for tests that check only part of it.
    #[track_caller]
    pub(crate) fn rejection(self) -> Rejection {
        match self.result {
            Err(rejection) => rejection,
            Ok(events) => panic!("{} was accepted with {events:?}", self.command.kind()),
        }
    }
}
