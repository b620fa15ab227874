//! The projection worker: a member of the events consumer group that applies what it polls,
//! by the reader rule.
//!
//! Newly assigned partitions stay paused until the worker has read their positions from
//! PostgreSQL (the source of truth; Kafka's committed offsets are only written for tooling):
//! the next offset, and the reader rule's tenure there. It seeks to the offset and resumes the
//! partition's [`ReaderRule`] from the tenure, so every record is judged exactly as a reader
//! from the partition's beginning would judge it. Each poll drains what is ready (up to
//! `max_batch` records over any number of partitions) into one batch: every record is judged,
//! valid events are applied in one PostgreSQL transaction per shard together with the
//! partitions' new positions, and claims, rejections and void records only move the positions.
//! Then Redis is written. A partition whose transaction failed is paused and positioned again
//! from PostgreSQL, so nothing is skipped, and the offset guard in the transaction makes sure
//! nothing is applied twice — even when another worker applied the same records meanwhile (a
//! rebalance, a zombie).
//!
//! The loop is one task: rebalance and statistics callbacks run inside its polls, so
//! assignment changes are handled between batches, never during one. Aborting the task at
//! any await point (a crash) leaves PostgreSQL at the last committed batch.

mod batch;
mod cache_sync;
pub mod dlq;
pub mod hook;
mod judge;
pub mod progress;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use holdfast_platform::codec::EventCodec;
use holdfast_platform::kafka::consumer_config;
use holdfast_platform::{KafkaArgs, Shutdown};
use holdfast_tenure::ReaderRule;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::{Offset, TopicPartitionList};

use crate::cache::Cache;
use crate::metrics::Metrics;
use crate::store::Shards;
use crate::store::offsets::{self, Position};
use cache_sync::CacheSync;
use dlq::DeadLetters;
use hook::{AssignmentChange, Hook};
use progress::Progress;

/// How long a poll waits for the first record of a batch (a local wait on the consumer's
/// queue; it bounds how soon assignments and cache checks are handled when nothing comes).
const POLL_WAIT: Duration = Duration::from_millis(100);
/// Pause before positioning partitions again after a failure.
const RETRY_AFTER: Duration = Duration::from_millis(500);

/// Settings of a worker.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Kafka connection.
    pub kafka: KafkaArgs,
    /// The events topic.
    pub topic: String,
    /// Consumer group of the projection workers.
    pub group_id: String,
    /// Client id of this worker's consumer.
    pub client_id: String,
    /// Most records per batch.
    pub max_batch: usize,
    /// Consumer session timeout.
    pub session_timeout: Duration,
    /// How often Redis is compared with PostgreSQL.
    pub cache_check_interval: Duration,
    /// Longest the broker holds a fetch to gather records.
    pub fetch_wait: Duration,
    /// Bytes that answer a fetch before [`WorkerSettings::fetch_wait`].
    pub fetch_min_bytes: u32,
}

/// Everything a worker uses.
#[derive(Debug)]
pub struct Worker {
    /// Settings.
    pub settings: WorkerSettings,
    /// Decodes events (fetching unseen writer schemas from the registry).
    pub codec: Arc<EventCodec>,
    /// The read-model shards.
    pub shards: Shards,
    /// The Redis copy.
    pub cache: Cache,
    /// The dead-letter topic.
    pub dead_letters: DeadLetters,
    /// Metrics.
    pub metrics: Metrics,
    /// Lag and readiness.
    pub progress: Arc<Progress>,
}

/// An owned, positioned partition.
#[derive(Debug, Clone, Copy)]
struct Owned {
    /// Stored next offset in PostgreSQL: records below it are already judged (and applied if
    /// they count).
    next: i64,
    /// The reader rule at `next` (as stored beside it).
    rule: ReaderRule,
    /// Whether the consumer's position of the partition reflects records read since the
    /// last seek (only then may it move the offset past control records, the markers a
    /// foreign transactional producer leaves; they carry no mark and change no rule).
    position_trusted: bool,
}

type Events = StreamConsumer<Hook>;

impl Worker {
    /// Runs the worker until `shutdown` is cancelled.
    ///
    /// # Errors
    /// When the consumer cannot be created or subscribed.
    pub async fn run(&self, shutdown: &Shutdown) -> Result<(), KafkaError> {
        let (changes_tx, changes) = mpsc::channel();
        let settings = &self.settings;
        let mut config = consumer_config(&settings.kafka, &settings.client_id, &settings.group_id);
        config
            .set("session.timeout.ms", settings.session_timeout.as_millis().to_string())
            .set("heartbeat.interval.ms", (settings.session_timeout.as_millis() / 4).max(100).to_string())
            .set("statistics.interval.ms", "1000")
            // Held by the broker until enough gathers or the wait passes, not answered at the
            // first record: see `Config::fetch_wait` for why.
            .set("fetch.wait.max.ms", holdfast_platform::kafka::millis(settings.fetch_wait))
            .set("fetch.min.bytes", settings.fetch_min_bytes.to_string())
            // When the local queue is full librdkafka pauses fetching for this long (1 s by
            // default); a worker catching up drains the queue much faster than that.
            .set("fetch.queue.backoff.ms", "20");
        let hook = Hook::new(changes_tx, Arc::clone(&self.progress), settings.topic.clone());
        let consumer: Arc<Events> = Arc::new(config.create_with_context(hook)?);
        consumer.subscribe(&[settings.topic.as_str()])?;
        tracing::info!(group = %settings.group_id, topic = %settings.topic, "projection worker started");

        let mut owned: HashMap<i32, Owned> = HashMap::new();
        let mut pending: BTreeSet<i32> = BTreeSet::new();
        // Shard → the read-model generation its partitions were positioned under.
        let mut generations: HashMap<usize, i64> = HashMap::new();
        let mut retry_at = Instant::now();
        let mut cache = CacheSync::new(settings.cache_check_interval);
        loop {
            let polled = tokio::select! {
                () = shutdown.cancelled() => break,
                polled = poll_batch(&consumer, settings.max_batch) => polled,
            };
            let started = Instant::now();
            let mut polled = polled;
            for change in changes.try_iter() {
                match change {
                    AssignmentChange::Assigned(partitions) => pending.extend(partitions),
                    AssignmentChange::Revoked(partitions) => {
                        for partition in &partitions {
                            owned.remove(partition);
                            pending.remove(partition);
                        }
                    }
                }
            }
            // Records of partitions not positioned (they may predate a seek), or already
            // applied, are not ours to apply. Filtered before positioning, so records read
            // before a partition's seek can never count as following it.
            polled.retain(|m| owned.get(&m.partition()).is_some_and(|o| m.offset() >= o.next));
            if !pending.is_empty() && Instant::now() >= retry_at {
                self.position(&consumer, &mut pending, &mut owned, &mut generations).await;
                if !pending.is_empty() {
                    retry_at = Instant::now() + RETRY_AFTER;
                }
            }
            let ends = batch_ends(&consumer, &settings.topic, &polled, &mut owned);
            if !ends.is_empty() {
                let switched = self
                    .apply(
                        &consumer,
                        &polled,
                        &ends,
                        &mut owned,
                        &mut pending,
                        &generations,
                        &mut cache,
                        started,
                    )
                    .await;
                // After a switch of generation, positioning again is the way on, not a retry.
                if !pending.is_empty() && !switched {
                    retry_at = retry_at.max(Instant::now() + RETRY_AFTER);
                }
            }
            if cache.due() {
                let stored: HashMap<i32, i64> = owned.iter().map(|(p, o)| (*p, o.next)).collect();
                cache.check(self, &stored, &generations).await;
            }
        }
        tracing::info!("projection worker stopping");
        consumer.unsubscribe();
        Ok(())
    }

    /// Applies one batch and records what moved; failed partitions become pending again.
    /// Returns whether a shard switched generation (its partitions must be positioned anew).
    #[allow(clippy::too_many_arguments)]
    async fn apply(
        &self,
        consumer: &Arc<Events>,
        polled: &[OwnedMessage],
        ends: &BTreeMap<i32, i64>,
        owned: &mut HashMap<i32, Owned>,
        pending: &mut BTreeSet<i32>,
        generations: &HashMap<usize, i64>,
        cache: &mut CacheSync,
        started: Instant,
    ) -> bool {
        let rules: HashMap<i32, ReaderRule> =
            ends.keys().filter_map(|p| owned.get(p).map(|o| (*p, o.rule))).collect();
        let outcome = batch::process(self, polled, ends, &rules, generations).await;
        let switched = !outcome.switched.is_empty();
        let mut commit = TopicPartitionList::new();
        for (applied, advance) in outcome.applied.iter().flat_map(|a| a.offsets.iter().map(move |o| (a, o))) {
            if let Some(entry) = owned.get_mut(&advance.partition)
                && advance.to >= entry.next
            {
                // The offset and the rule move together: both as stored by the commit.
                entry.next = advance.to;
                entry.rule = ReaderRule::resume(applied.tenures.get(&advance.partition).copied().flatten());
            }
            self.progress.applied(
                advance.partition,
                advance.to,
                outcome.newest.get(&advance.partition).copied(),
            );
            let _ = commit.add_partition_offset(
                &self.settings.topic,
                advance.partition,
                Offset::Offset(advance.to),
            );
        }
        if !outcome.failed.is_empty() {
            let mut paused = TopicPartitionList::new();
            for &partition in &outcome.failed {
                owned.remove(&partition);
                pending.insert(partition);
                self.progress.repositioning(partition);
                paused.add_partition(&self.settings.topic, partition);
            }
            if let Err(error) = consumer.pause(&paused) {
                tracing::warn!(%error, "cannot pause partitions to re-read");
            }
        }
        if outcome.applied.is_empty() {
            return switched;
        }
        let applied: usize = outcome.applied.iter().map(|a| a.applied).sum();
        let skipped: usize = outcome.applied.iter().map(|a| a.skipped).sum();
        self.metrics.applied.inc_by(u64::try_from(applied).unwrap_or(0));
        self.metrics.skipped.inc_by(u64::try_from(skipped).unwrap_or(0));
        #[allow(clippy::cast_precision_loss)]
        self.metrics.batch_events.observe(applied as f64);

        if cache.healthy() {
            // Each shard's changes go to the keys of the generation they were applied to.
            let mut by_generation: BTreeMap<i64, Vec<&crate::store::apply::Applied>> = BTreeMap::new();
            for applied in &outcome.applied {
                by_generation.entry(applied.generation).or_default().push(applied);
            }
            for (generation, applied) in by_generation {
                let changes: Vec<_> = applied.iter().flat_map(|a| a.changes.by_resource()).collect();
                let advances: Vec<_> = applied.iter().flat_map(|a| a.offsets.iter().copied()).collect();
                match self.cache.at(generation).write_batch(&changes, &advances).await {
                    Ok(behind) if !behind.is_empty() => {
                        tracing::debug!(?behind, "redis is behind on some partitions; refilling");
                        cache.soon();
                    }
                    Ok(_) => {}
                    Err(error) => {
                        cache.failed(self, &error);
                        break;
                    }
                }
            }
        }
        self.metrics.batch_seconds.observe(started.elapsed().as_secs_f64());
        // For tooling only (lag dashboards); PostgreSQL's offsets are the ones that count.
        if commit.count() > 0
            && let Err(error) = consumer.commit(&commit, CommitMode::Async)
        {
            tracing::debug!(%error, "informational offset commit failed");
        }
        switched
    }

    /// Seeks pending partitions to their stored offsets in the live generation and resumes
    /// them. When a shard's live generation is not the one its owned partitions were
    /// positioned under (a rebuild switched), those are positioned again too.
    async fn position(
        &self,
        consumer: &Arc<Events>,
        pending: &mut BTreeSet<i32>,
        owned: &mut HashMap<i32, Owned>,
        generations: &mut HashMap<usize, i64>,
    ) {
        let mut by_shard: BTreeMap<usize, Vec<i32>> = BTreeMap::new();
        for &partition in pending.iter() {
            by_shard.entry(self.shards.shard_of(partition)).or_default().push(partition);
        }
        let mut stored: Vec<(i32, Position)> = Vec::new();
        for (shard, mut partitions) in by_shard {
            let shard_owned: Vec<i32> =
                owned.keys().copied().filter(|p| self.shards.shard_of(*p) == shard).collect();
            partitions.extend(&shard_owned);
            let pool = self.shards.pool(shard);
            let (live, positions) = match offsets::read_live(pool, &self.settings.topic, &partitions).await {
                Ok(read) => read,
                Err(error) => {
                    tracing::warn!(shard, %error, "cannot read stored offsets; retrying");
                    continue;
                }
            };
            if generations.get(&shard).is_some_and(|known| *known != live.number) && !shard_owned.is_empty() {
                tracing::info!(
                    shard,
                    generation = live.number,
                    "read model switched generation; positioning every partition of the shard again"
                );
                let mut paused = TopicPartitionList::new();
                for partition in &shard_owned {
                    owned.remove(partition);
                    pending.insert(*partition);
                    self.progress.repositioning(*partition);
                    paused.add_partition(&self.settings.topic, *partition);
                }
                if let Err(error) = consumer.pause(&paused) {
                    tracing::warn!(%error, "cannot pause partitions to re-read");
                }
            }
            generations.insert(shard, live.number);
            stored.extend(positions.into_iter().filter(|(p, _)| pending.contains(p)));
        }
        if stored.is_empty() {
            return;
        }
        let consumer = Arc::clone(consumer);
        let topic = self.settings.topic.clone();
        let seeks: Vec<(i32, i64)> = stored.iter().map(|(p, position)| (*p, position.next_offset)).collect();
        let sought = tokio::task::spawn_blocking(move || seek_and_resume(&consumer, &topic, &seeks))
            .await
            .unwrap_or_default();
        for (partition, position) in stored {
            if !sought.contains(&partition) {
                continue;
            }
            pending.remove(&partition);
            let next = position.next_offset;
            owned.insert(partition, Owned { next, rule: position.rule(), position_trusted: false });
            self.progress.applied(partition, next, None);
        }
        if !sought.is_empty() {
            tracing::info!(partitions = sought.len(), "partitions positioned at their stored offsets");
        }
    }
}

/// Seeks each partition and resumes those sought; returns them. Blocking.
fn seek_and_resume(consumer: &Events, topic: &str, stored: &[(i32, i64)]) -> Vec<i32> {
    let mut resume = TopicPartitionList::new();
    let mut sought = Vec::new();
    for &(partition, next) in stored {
        match consumer.seek(topic, partition, Offset::Offset(next), Duration::from_secs(5)) {
            Ok(()) => {
                resume.add_partition(topic, partition);
                sought.push(partition);
            }
            Err(error) => tracing::debug!(partition, %error, "seek not possible yet; retrying"),
        }
    }
    if let Err(error) = consumer.resume(&resume) {
        tracing::warn!(%error, "cannot resume positioned partitions");
        return Vec::new();
    }
    sought
}

/// Polls up to `max` records: waits up to [`POLL_WAIT`] for the first, then takes what is
/// ready.
async fn poll_batch(consumer: &Events, max: usize) -> Vec<OwnedMessage> {
    let mut polled = Vec::new();
    match tokio::time::timeout(POLL_WAIT, consumer.recv()).await {
        Ok(Ok(message)) => polled.push(message.detach()),
        Ok(Err(error)) => {
            tracing::warn!(%error, "events consumer error");
            return polled;
        }
        Err(_) => return polled,
    }
    while polled.len() < max {
        match consumer.recv().now_or_never() {
            Some(Ok(message)) => polled.push(message.detach()),
            Some(Err(error)) => {
                tracing::warn!(%error, "events consumer error");
                break;
            }
            None => break,
        }
    }
    polled
}

/// The next offset of every partition the batch moves: past its last record, or past control
/// records the consumer has skipped since (its position, once trusted).
fn batch_ends(
    consumer: &Events,
    topic: &str,
    polled: &[OwnedMessage],
    owned: &mut HashMap<i32, Owned>,
) -> BTreeMap<i32, i64> {
    let mut ends: BTreeMap<i32, i64> = BTreeMap::new();
    for message in polled {
        let end = ends.entry(message.partition()).or_insert(0);
        *end = (*end).max(message.offset() + 1);
        if let Some(entry) = owned.get_mut(&message.partition()) {
            entry.position_trusted = true;
        }
    }
    let Ok(positions) = consumer.position() else { return ends };
    for element in positions.elements_for_topic(topic) {
        let (Offset::Offset(position), Some(entry)) = (element.offset(), owned.get(&element.partition()))
        else {
            continue;
        };
        if entry.position_trusted && position > entry.next {
            let end = ends.entry(element.partition()).or_insert(position);
            *end = (*end).max(position);
        }
    }
    ends
}
