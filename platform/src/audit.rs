//! The log audit: reads an events topic back from the start, decodes every committed event
//! and recomputes every resource's state from them alone, checking after every event that no
//! slot holds more than its capacity. Used by tests and the load generator to judge Holdfast
//! on the log itself, never on a service's word.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use holdfast_domain::{Event, EventPayload, ReservationId, ResourceId, ResourceState};
use rdkafka::error::KafkaError;
use rdkafka::{Offset, TopicPartitionList};

use crate::KafkaArgs;
use crate::codec::EventCodec;
use crate::kafka::{read_to_end, reader_config};

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
    /// Committed events read.
    pub events: u64,
    /// Events that could not be decoded.
    pub undecodable: u64,
    /// Every over-capacity slot seen after any event.
    pub overbookings: Vec<Overbooking>,
    /// How many `ReservationHeld` events each reservation has (exactly 1 is right).
    pub holds: HashMap<ReservationId, u32>,
    /// The final state of every resource.
    pub resources: HashMap<ResourceId, ResourceState>,
}

impl AuditReport {
    /// Folds the committed event at `offset` into the report, checking every slot it touched.
    pub fn apply(&mut self, offset: i64, event: &Event) {
        self.events += 1;
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

    /// Reservations held more than once in the log.
    #[must_use]
    pub fn duplicated_holds(&self) -> Vec<&ReservationId> {
        self.holds.iter().filter(|(_, n)| **n > 1).map(|(id, _)| id).collect()
    }
}

/// Reads every partition of `topic` to its end (`read_committed`) and audits it.
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
    let records = read_all(kafka, topic, partitions, deadline).await?;
    let mut report = AuditReport::default();
    for (offset, bytes) in records {
        let event = match codec.decode(&bytes).await {
            Ok(event) => event,
            Err(_) => {
                report.undecodable += 1;
                continue;
            }
        };
        report.apply(offset, &event);
    }
    Ok(report)
}

/// (offset, payload) of every committed record, partition after partition.
async fn read_all(
    kafka: &KafkaArgs,
    topic: &str,
    partitions: i32,
    deadline: Duration,
) -> Result<Vec<(i64, Vec<u8>)>, KafkaError> {
    let config = reader_config(kafka, "holdfast-audit");
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions {
        assignment.add_partition_offset(topic, partition, Offset::Beginning)?;
    }
    tokio::task::spawn_blocking(move || {
        let mut records = Vec::new();
        read_to_end(&config, &assignment, deadline, |_, offset, payload| {
            records.push((offset, payload.to_vec()))
        })?;
        Ok(records)
    })
    .await
    .unwrap_or(Err(KafkaError::Canceled))
}
