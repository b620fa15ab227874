//! Hand-written event logs of one resource, with whatever the service would never write
//! (overbookings, duplicated holds), to show that the audit catches them. Used by the audit's
//! tests, in memory and through a real topic.

use holdfast_domain::{
    Capacity, CustomerId, Envelope, Event, EventPayload, Quantity, ReleasedFrom, ReservationId, ResourceId,
    ResourceName, SlotRange,
};
use holdfast_platform::audit::AuditReport as LogAudit;
use time::OffsetDateTime;
use uuid::Uuid;

use super::judge::AcceptedRecord;
use crate::workload::Status;

/// The events of one resource, written in order.
#[derive(Debug, Clone)]
pub struct Scenario {
    resource: ResourceId,
    events: Vec<Event>,
    at: OffsetDateTime,
}

impl Scenario {
    /// A log that starts by defining `resource` with `capacity` units per day.
    ///
    /// # Panics
    /// When `resource` is not a valid resource id or `capacity` is 0.
    #[must_use]
    #[allow(clippy::expect_used, reason = "scenarios are written by tests with valid values")]
    pub fn define(resource: &str, capacity: u32) -> Self {
        let mut scenario = Self {
            resource: ResourceId::parse(resource).expect("a valid resource id"),
            events: Vec::new(),
            at: OffsetDateTime::now_utc(),
        };
        scenario.push(EventPayload::ResourceDefined {
            name: ResourceName::parse(resource).expect("a valid name"),
            capacity: Capacity::new(capacity).expect("a positive capacity"),
        });
        scenario
    }

    /// Writes `ReservationHeld` of `quantity` units on `from..to` (expiring in an hour), and
    /// returns the reservation's id, whether or not capacity allowed it.
    #[must_use]
    pub fn hold(&mut self, from: &str, to: &str, quantity: u32) -> ReservationId {
        let id = ReservationId::new(&self.resource, Uuid::now_v7());
        self.hold_again(&id, from, to, quantity);
        id
    }

    /// Writes another `ReservationHeld` for `id` (a duplicated decision).
    ///
    /// # Panics
    /// When the range or quantity are not valid.
    #[allow(clippy::expect_used, reason = "scenarios are written by tests with valid values")]
    pub fn hold_again(&mut self, id: &ReservationId, from: &str, to: &str, quantity: u32) {
        self.push(EventPayload::ReservationHeld {
            reservation_id: id.clone(),
            range: SlotRange::parse(from, to).expect("a valid range"),
            quantity: Quantity::new(quantity).expect("a positive quantity"),
            customer_id: CustomerId::parse("audit-scenario").expect("a valid customer"),
            expires_at: self.at + time::Duration::hours(1),
        });
    }

    /// Writes `ReservationConfirmed` for `id`.
    pub fn confirm(&mut self, id: &ReservationId) {
        self.push(EventPayload::ReservationConfirmed { reservation_id: id.clone(), payment_ref: None });
    }

    /// Writes `ReservationCancelled` (from held) for `id`.
    pub fn cancel(&mut self, id: &ReservationId) {
        self.push(EventPayload::ReservationCancelled {
            reservation_id: id.clone(),
            reason: None,
            released: ReleasedFrom::Held,
        });
    }

    /// The events written so far.
    #[must_use]
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// The log audit of these events, as if read from one partition from offset 0.
    #[must_use]
    pub fn log_audit(&self) -> LogAudit {
        let mut report = LogAudit::default();
        for (offset, event) in (0_i64..).zip(&self.events) {
            report.apply(offset, event);
        }
        report
    }

    /// What a run answered 2xx for `id`, as it would list it in `accepted.jsonl`.
    #[must_use]
    pub fn accepted(
        &self,
        id: &ReservationId,
        from: &str,
        to: &str,
        quantity: u32,
        status: Status,
    ) -> AcceptedRecord {
        AcceptedRecord {
            reservation_id: id.to_string(),
            resource_id: self.resource.to_string(),
            from: from.to_owned(),
            to: to.to_owned(),
            quantity,
            status,
            uncertain: false,
        }
    }

    fn push(&mut self, payload: EventPayload) {
        let command_id = Uuid::now_v7();
        self.events.push(Event {
            envelope: Envelope {
                event_id: Uuid::now_v7(),
                event_type: payload.event_type(),
                event_version: 1,
                resource_id: self.resource.clone(),
                occurred_at: self.at,
                command_id,
                causation_id: command_id,
                correlation_id: command_id,
                traceparent: None,
                tracestate: None,
                principal: None,
            },
            payload,
        });
    }
}
