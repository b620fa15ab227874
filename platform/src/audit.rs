//! The log audit: reads an events topic back from the start by the reader rule, decodes every
//! valid event and recomputes every resource's state from them alone, checking after every
//! event that no slot holds more than its capacity. Void records (a fenced writer's, records
//! after a hole in a tenure's sequence) are counted, never applied. Used by tests and the load
//! generator to judge Holdfast on the log itself, never on a service's word.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use holdfast_domain::{Event, EventPayload, ReservationId, ResourceId, ResourceState};
use rdkafka::error::KafkaError;

use crate::KafkaArgs;
use crate::codec::{EventCodec, LogRecord};
use crate::kafka::reader_config;
use crate::replay::{Entry, Plan, replay};

/// A slot found over capacity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overbooking {
    /// The resource.
    pub resource_id: ResourceId,
    /// The day.
    pub slot: holdfast_domain::Slot,
    /// Held + confirmed there.
    pub in_use: u32,
    /// Its capacity.
    pub capacity: u32,
    /// Offset of the event that overbooked it.
    pub offset: i64,
}

/// What the audit found.
#[derive(Debug, Default)]
pub struct AuditReport {
    /// Valid events read.
    pub events: u64,
    /// Valid records that could not be decoded (a reader would have to stop there).
    pub undecodable: u64,
    /// Claims read: tenures started.
    pub claims: u64,
    /// Valid `CommandRejected` records read.
    pub rejected: u64,
    /// Void records skipped, by reason (`holdfast_tenure::Void::label`).
    pub void: BTreeMap<&'static str, u64>,
    /// Every over-capacity slot seen after any event.
    pub overbookings: Vec<Overbooking>,
    /// How many `ReservationHeld` events each reservation has (exactly 1 is right).
    pub holds: HashMap<ReservationId, u32>,
    /// The final state of every resource.
    pub resources: HashMap<ResourceId, ResourceState>,
    /// Valid events and rejections by who issued their command (`None`: Holdfast itself,
    /// or a record written before principals were recorded).
    pub by_principal: BTreeMap<Option<String>, u64>,
}

impl AuditReport {
    /// Folds the committed event at `offset` into the report, checking every slot it touched.
    pub fn apply(&mut self, offset: i64, event: &Event) {
        self.events += 1;
        self.issued_by(event.envelope.principal.as_deref());
        let resource = &event.envelope.resource_id;
        let state =
            self.resources.entry(resource.clone()).or_insert_with(|| ResourceState::new(resource.clone()));
        state.apply(event);
        let slots: Vec<holdfast_domain::Slot> = match &event.payload {
            EventPayload::ReservationHeld { reservation_id, range, .. } => {
                *self.holds.entry(reservation_id.clone()).or_default() += 1;
                range.slots().collect()
            }
            EventPayload::CapacityChanged { range, .. } => range.slots().collect(),
            _ => Vec::new(),
        };
        for slot in slots {
            let in_use = state.usage_at(slot).in_use();
            let capacity = state.capacity_at(slot).get();
            if in_use > capacity {
                self.overbookings.push(Overbooking {
                    resource_id: resource.clone(),
                    slot,
                    in_use,
                    capacity,
                    offset,
                });
            }
        }
    }

    /// Counts a record issued by `principal`.
    fn issued_by(&mut self, principal: Option<&str>) {
        if let Some(n) = self.by_principal.get_mut(&principal.map(str::to_owned)) {
            *n += 1;
        } else {
            self.by_principal.insert(principal.map(str::to_owned), 1);
        }
    }

    /// Void records skipped, all reasons together.
    #[must_use]
    pub fn void_total(&self) -> u64 {
        self.void.values().sum()
    }

    /// Reservations held more than once in the log.
    #[must_use]
    pub fn duplicated_holds(&self) -> Vec<&ReservationId> {
        self.holds.iter().filter(|(_, n)| **n > 1).map(|(id, _)| id).collect()
    }
}

/// Reads every partition of `topic` to its end by the reader rule and audits it.
///
/// # Errors
/// When Kafka fails or the log cannot be read to its end within `deadline`.
pub async fn audit_log(
    kafka: &KafkaArgs,
    topic: &str,
    partitions: i32,
    codec: Arc<EventCodec>,
    deadline: Duration,
) -> Result<AuditReport, KafkaError> {
    let config = reader_config(kafka, "holdfast-audit");
    let plan = Plan::from_beginning(topic, 0..partitions)?;
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let mut report = AuditReport::default();
        replay(&config, &plan, deadline, &codec, &runtime, |replayed| match replayed.entry {
            Entry::Claim(_) => report.claims += 1,
            Entry::Void(why) => *report.void.entry(why.label()).or_default() += 1,
            Entry::Valid { record: Ok(LogRecord::Event(event)), .. } => report.apply(replayed.offset, &event),
            Entry::Valid { record: Ok(LogRecord::Rejected(rejected)), .. } => {
                report.rejected += 1;
                report.issued_by(rejected.principal.as_deref());
            }
            // A claim's body under data headers is not something a writer appends.
            Entry::Valid { record: Ok(LogRecord::Claim(_)) | Err(_), .. } => report.undecodable += 1,
        })?;
        Ok(report)
    })
    .await
    .unwrap_or(Err(KafkaError::Canceled))
}
