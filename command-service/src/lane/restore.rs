//! Restoring partitions up to their owner's claims: every record before a claim, read by the
//! reader rule ([`holdfast_platform::replay`]) and folded by [`Rebuild`].
//!
//! The read stops at the claim's offset, not at the partition's end: records after the claim
//! belong to no earlier tenure (a zombie's are void), and the owner's own come later.
//!
//! Lanes claim together (an instance is assigned many partitions at once), so [`Restores`]
//! gathers the restores asked for at about the same time into one read: one consumer and one
//! set of decoder threads for all of them, instead of a client each.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use holdfast_platform::KafkaArgs;
use holdfast_platform::codec::EventCodec;
use holdfast_platform::kafka::reader_config;
use holdfast_platform::replay::{Plan, replay};
use rdkafka::ClientConfig;
use rdkafka::error::KafkaError;
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};

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

impl Restored {
    /// The state `rebuild` folded, and what it read in a restore that took `elapsed`.
    #[must_use]
    pub fn hand_over(rebuild: Rebuild, elapsed: Duration) -> (PartitionState, Self) {
        let restored = Self { valid: rebuild.valid, void: rebuild.void, claims: rebuild.claims, elapsed };
        (rebuild.finish(), restored)
    }
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

    /// The state of each partition of `claims` (partition → claim offset) folded from every
    /// record before its claim. A partition whose fold stops (see [`RebuildError`]) fails alone.
    /// Blocking: run it on the blocking pool.
    ///
    /// # Errors
    /// When Kafka fails while reading: every partition failed.
    pub fn restore(&self, claims: &HashMap<i32, i64>) -> Result<HashMap<i32, Restore>, KafkaError> {
        let started = Instant::now();
        let mut plan = Plan::from_beginning(&self.topic, claims.keys().copied())?;
        plan.ends.clone_from(claims);
        let now = OffsetDateTime::now_utc();
        let mut folds: HashMap<i32, Result<Rebuild, RebuildError>> =
            claims.keys().map(|&p| (p, Ok(Rebuild::new(p, self.memory, now)))).collect();
        replay(&self.reader, &plan, Duration::MAX, &self.codec, &self.runtime, |record| {
            let Some(fold) = folds.get_mut(&record.partition) else { return };
            if let Ok(rebuild) = fold
                && let Err(error) = rebuild.apply(record.offset, record.entry)
            {
                *fold = Err(error);
            }
        })?;
        let elapsed = started.elapsed();
        Ok(folds
            .into_iter()
            .map(|(partition, fold)| {
                let restore = fold.map(|rebuild| Restored::hand_over(rebuild, elapsed));
                (partition, restore.map_err(RestoreError::from))
            })
            .collect())
    }
}

/// A partition's restored state, or why it could not be restored.
pub type Restore = Result<(PartitionState, Restored), RestoreError>;

/// One lane's request: its partition, its claim's offset, where the result goes.
type Request = (i32, i64, oneshot::Sender<Restore>);

/// Gathers the restores lanes ask for at about the same time into one read.
#[derive(Debug, Clone)]
pub struct Restores {
    requests: mpsc::UnboundedSender<Request>,
}

/// How long the first request of a batch waits for others (lanes assigned together claim
/// within milliseconds of each other).
const GATHER: Duration = Duration::from_millis(20);

impl Restores {
    /// Starts the restoring task on the current runtime.
    #[must_use]
    pub fn start(restorer: Arc<Restorer>) -> Self {
        let (requests, mut queue) = mpsc::unbounded_channel::<Request>();
        tokio::spawn(async move {
            while let Some(first) = queue.recv().await {
                tokio::time::sleep(GATHER).await;
                let mut batch: HashMap<i32, (i64, oneshot::Sender<Restore>)> = HashMap::new();
                let mut next = Some(first);
                while let Some((partition, claim, answer)) = next.take().or_else(|| queue.try_recv().ok()) {
                    // Asked twice (an old lane and its successor): the older ask is retried.
                    if let Some((_, older)) = batch.insert(partition, (claim, answer)) {
                        let _ = older.send(Err(RestoreError::Kafka(KafkaError::Canceled)));
                    }
                }
                let claims: HashMap<i32, i64> = batch.iter().map(|(p, (c, _))| (*p, *c)).collect();
                let restorer = Arc::clone(&restorer);
                let read = tokio::task::spawn_blocking(move || restorer.restore(&claims)).await;
                let mut results = match read {
                    Ok(Ok(results)) => results,
                    Ok(Err(error)) => {
                        answer_all(batch, |_| Err(RestoreError::Kafka(error.clone())));
                        continue;
                    }
                    Err(_) => {
                        answer_all(batch, |_| Err(RestoreError::Kafka(KafkaError::Canceled)));
                        continue;
                    }
                };
                for (partition, (_, answer)) in batch {
                    let result =
                        results.remove(&partition).unwrap_or(Err(RestoreError::Kafka(KafkaError::Canceled)));
                    let _ = answer.send(result);
                }
            }
        });
        Self { requests }
    }

    /// The state of `partition` up to its claim at `claim_offset`.
    ///
    /// # Errors
    /// See [`RestoreError`].
    pub async fn restore(&self, partition: i32, claim_offset: i64) -> Restore {
        let (answer, result) = oneshot::channel();
        if self.requests.send((partition, claim_offset, answer)).is_err() {
            return Err(RestoreError::Kafka(KafkaError::Canceled));
        }
        result.await.unwrap_or(Err(RestoreError::Kafka(KafkaError::Canceled)))
    }
}

fn answer_all(batch: HashMap<i32, (i64, oneshot::Sender<Restore>)>, result: impl Fn(i32) -> Restore) {
    for (partition, (_, answer)) in batch {
        let _ = answer.send(result(partition));
    }
}
