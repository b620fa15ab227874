//! Restoring a partition up to its owner's claim: every record before the claim, read by the
//! reader rule ([`holdfast_platform::replay`]) and folded by [`Rebuild`]. Blocking: run it on
//! the blocking pool.
//!
//! The read stops at the claim's offset, not at the partition's end: records after the claim
//! belong to no earlier tenure (a zombie's are void), and the owner's own come later.

use std::sync::Arc;
use std::time::{Duration, Instant};

use holdfast_platform::KafkaArgs;
use holdfast_platform::codec::EventCodec;
use holdfast_platform::kafka::reader_config;
use holdfast_platform::replay::{Plan, replay};
use rdkafka::ClientConfig;
use rdkafka::error::KafkaError;
use time::OffsetDateTime;

use super::rebuild::{Rebuild, RebuildError};
use super::state::{Memory, PartitionState};

/// Why a restore did not finish.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// Kafka failed while reading: retry.
    #[error("reading the partition: {0}")]
    Kafka(#[from] KafkaError),
    /// The fold stopped; see [`RebuildError`].
    #[error(transparent)]
    Rebuild(#[from] RebuildError),
}

/// What a restore read.
#[derive(Debug, Default, Clone, Copy)]
pub struct Restored {
    /// Valid records folded.
    pub valid: u64,
    /// Void records skipped.
    pub void: u64,
    /// Claims read (earlier tenures).
    pub claims: u64,
    /// How long it took.
    pub elapsed: Duration,
}

/// Reads partitions of the events topic back into memory.
pub struct Restorer {
    reader: ClientConfig,
    topic: String,
    codec: Arc<EventCodec>,
    runtime: tokio::runtime::Handle,
    memory: Memory,
}

impl std::fmt::Debug for Restorer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Restorer").field("topic", &self.topic).finish_non_exhaustive()
    }
}

impl Restorer {
    /// A restorer of `topic` reading with `client_id`; restored partitions remember outcomes
    /// as `memory` says.
    #[must_use]
    pub fn new(
        kafka: &KafkaArgs,
        client_id: &str,
        topic: &str,
        codec: Arc<EventCodec>,
        runtime: tokio::runtime::Handle,
        memory: Memory,
    ) -> Self {
        Self { reader: reader_config(kafka, client_id), topic: topic.to_owned(), codec, runtime, memory }
    }

    /// The state of `partition` folded from every record before `claim_offset`.
    ///
    /// # Errors
    /// See [`RestoreError`]; a registry outage is [`RebuildError::Registry`] (retry), a valid
    /// record that does not decode [`RebuildError::Undecodable`] (stop).
    pub fn restore(
        &self,
        partition: i32,
        claim_offset: i64,
    ) -> Result<(PartitionState, Restored), RestoreError> {
        let started = Instant::now();
        let mut plan = Plan::from_beginning(&self.topic, [partition])?;
        plan.ends.insert(partition, claim_offset);
        let mut rebuild = Rebuild::new(partition, self.memory, OffsetDateTime::now_utc());
        let mut failure = None;
        replay(&self.reader, &plan, Duration::MAX, &self.codec, &self.runtime, |record| {
            if failure.is_none()
                && let Err(error) = rebuild.apply(record.offset, record.entry)
            {
                failure = Some(error);
            }
        })?;
        if let Some(error) = failure {
            return Err(error.into());
        }
        let restored = Restored {
            valid: rebuild.valid,
            void: rebuild.void,
            claims: rebuild.claims,
            elapsed: started.elapsed(),
        };
        Ok((rebuild.finish(), restored))
    }
}
