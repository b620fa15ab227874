//! Restoring owned partitions from the log: every committed event of the partition is folded
//! into its resources' state, and the recent outcomes on the replies partition are loaded so
//! that retries of commands decided before the move are still recognised.
//!
//! Reads are `read_committed`, so events of aborted transactions (a zombie's, or our own
//! failed batches) never enter the state. The caller waits for stable committed offsets on
//! the commands topic first, so no other writer's transaction on these partitions is open.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use holdfast_platform::KafkaArgs;
use holdfast_platform::codec::EventCodec;
use holdfast_platform::kafka::{self, reader_config};
use holdfast_platform::replay;
use rdkafka::consumer::BaseConsumer;
use rdkafka::error::KafkaError;
use rdkafka::{Offset, TopicPartitionList};
use time::OffsetDateTime;

use crate::envelope::{Outcome, Verdict};
use crate::processor::partition::PartitionState;

/// Reads partitions of the events and replies topics back into memory.
pub struct Restorer {
    /// Settings of the reader made for every pass.
    reader: rdkafka::ClientConfig,
    events_topic: String,
    replies_topic: String,
    codec: Arc<EventCodec>,
    runtime: tokio::runtime::Handle,
    window: time::Duration,
}

impl std::fmt::Debug for Restorer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Restorer").field("events_topic", &self.events_topic).finish_non_exhaustive()
    }
}

/// What a restore read.
#[derive(Debug, Default, Clone, Copy)]
pub struct Restored {
    /// Events folded into state.
    pub events: u64,
    /// Events that could not be decoded and were skipped (logged at ERROR).
    pub undecodable: u64,
    /// Outcomes loaded for idempotent retries.
    pub outcomes: u64,
}

impl Restorer {
    /// A restorer reading with `client_id`.
    pub fn new(
        kafka: &KafkaArgs,
        client_id: &str,
        events_topic: String,
        replies_topic: String,
        codec: Arc<EventCodec>,
        runtime: tokio::runtime::Handle,
        window: time::Duration,
    ) -> Self {
        let reader = reader_config(kafka, client_id);
        Self { reader, events_topic, replies_topic, codec, runtime, window }
    }

    /// Restores `partitions` into fresh [`PartitionState`]s.
    ///
    /// # Errors
    /// When Kafka fails while reading.
    pub fn restore(
        &self,
        partitions: &[i32],
    ) -> Result<(HashMap<i32, PartitionState>, Restored), KafkaError> {
        let mut states: HashMap<i32, PartitionState> =
            partitions.iter().map(|&p| (p, PartitionState::new(p, self.window))).collect();
        let mut restored = Restored::default();

        let mut events = TopicPartitionList::new();
        for &partition in partitions {
            events.add_partition_offset(&self.events_topic, partition, Offset::Beginning)?;
        }
        // `next_event_offset` is the offset after the last event, not the partition's end: a
        // projection that applied that event has reached every answer given from this state.
        replay::replay(&self.reader, &events, Duration::MAX, &self.codec, &self.runtime, |record| {
            let Some(state) = states.get_mut(&record.partition) else { return };
            state.next_event_offset = record.offset + 1;
            match record.event {
                Ok(event) => {
                    state.resource_mut(&event.envelope.resource_id).apply(&event);
                    restored.events += 1;
                }
                Err(error) => {
                    restored.undecodable += 1;
                    tracing::error!(partition = record.partition, offset = record.offset, %error, "event cannot be decoded; skipped while restoring");
                }
            }
        })?;

        let horizon = OffsetDateTime::now_utc() - self.window;
        let replies = self.replies_since(partitions, horizon)?;
        self.read_to_end(&replies, |partition, _, payload| {
            let Some(state) = states.get_mut(&partition) else { return };
            let Ok(outcome) = serde_json::from_slice::<Outcome>(payload) else { return };
            if outcome.decided_at >= horizon && !matches!(outcome.verdict, Verdict::KeyReused) {
                state.remember(outcome);
                restored.outcomes += 1;
            }
        })?;

        for state in states.values_mut() {
            state.arm_timers();
        }
        Ok((states, restored))
    }

    /// Reads every assigned partition up to its end, however long the log is.
    fn read_to_end(
        &self,
        assignment: &TopicPartitionList,
        each: impl FnMut(i32, i64, &[u8]),
    ) -> Result<(), KafkaError> {
        kafka::read_to_end(&self.reader, assignment, Duration::MAX, each)
    }

    /// Where to start reading the replies partitions: the first record at or after `since`
    /// (from the beginning when the broker cannot say).
    fn replies_since(
        &self,
        partitions: &[i32],
        since: OffsetDateTime,
    ) -> Result<TopicPartitionList, KafkaError> {
        let millis = i64::try_from(since.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
        let reader: BaseConsumer = self.reader.create()?;
        kafka::offsets_since(
            &reader,
            &self.replies_topic,
            partitions.iter().copied(),
            millis,
            Offset::Beginning,
        )
    }
}
