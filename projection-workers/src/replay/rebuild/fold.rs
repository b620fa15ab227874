//! The rebuild's fold: the whole read model in memory, folded from the log's valid events by
//! [`crate::model::ReadModel::apply`] (exactly the live workers' fold), with the next offset
//! and the reader rule of every partition and periodic checkpoints into the shadow generation.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use holdfast_domain::ResourceId;
use holdfast_platform::Shutdown;
use holdfast_platform::codec::LogRecord;
use holdfast_platform::partitioner::partition_for;
use holdfast_platform::replay::{Entry, Replayed};
use indicatif::ProgressBar;

use super::shadow::{self, Build, Rows};
use crate::model::{EventPosition, ReadModel};
use crate::replay::ReplayError;
use crate::replay::log::{Offsets, Rules, Span, retrace};
use crate::store::Shards;
use crate::store::offsets::Position;

/// Everything a checkpoint needs, owned so it can travel to the reader thread.
#[derive(Debug, Clone)]
pub struct Sink {
    /// The shards.
    pub shards: Shards,
    /// The generation being built.
    pub build: Build,
    /// The events topic (the offsets' key).
    pub topic: String,
    /// Its partition count (routing of rows whose resource was not seen in the log).
    pub partitions: i32,
    /// COPY streams per shard for a first load.
    pub copy_streams: usize,
}

/// The model being folded and where it stands.
#[derive(Debug)]
pub struct Fold {
    /// The rows.
    pub model: ReadModel,
    /// Next offset of every partition (all records before it are judged, valid events folded).
    pub next: Offsets,
    /// The reader rule of every partition at its `next` offset.
    pub rules: Rules,
    /// First offset of each partition whose events are projected (`--since`); earlier events
    /// are read, to keep the reader rule, but not folded. Empty: everything is projected.
    pub project_from: Offsets,
    /// Resource → the partition its events were read from (used with several shards).
    pub partitions: HashMap<ResourceId, i32>,
    /// Shards whose first checkpoint is still to come (their rows are copied whole).
    pub first_load: Vec<bool>,
    /// Records read by this run (whatever the reader rule made of them).
    pub read: u64,
    /// Events folded by this run.
    pub folded: u64,
    /// Valid events read but not folded, being older than `--since`.
    pub before_since: u64,
    /// Records read since the last checkpoint.
    pub since_checkpoint: u64,
    /// Checkpoints written by this run.
    pub checkpoints: u64,
    /// Claims read by this run.
    pub claims: u64,
    /// Valid refused commands read by this run (they change no state).
    pub rejected: u64,
    /// Void records skipped by this run, by reason.
    pub void: BTreeMap<&'static str, u64>,
    /// Valid records that could not be decoded (skipped, as the workers dead-letter them).
    pub undecodable: u64,
    /// Why the fold stopped early, if it failed.
    pub failure: Option<ReplayError>,
    /// Whether the fold stopped early (interrupted).
    pub stopped: bool,
}

/// When the fold checkpoints and stops.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Records read between checkpoints.
    pub checkpoint_events: u64,
    /// Stop (as if interrupted) after this many checkpoints.
    pub stop_after: Option<u64>,
    /// Stop when cancelled.
    pub shutdown: Shutdown,
    /// Ticks per record.
    pub bar: ProgressBar,
}

impl Fold {
    /// The shard of `resource`'s rows.
    pub fn route(&self, sink: &Sink, resource: &ResourceId) -> usize {
        let partition = self
            .partitions
            .get(resource)
            .copied()
            .unwrap_or_else(|| partition_for(resource.as_str().as_bytes(), sink.partitions));
        sink.shards.shard_of(partition)
    }

    /// Folds one record (called on the reader thread, in log order): a valid event at or
    /// after `project_from` changes the model; every record moves the partition's offset and
    /// reader rule past it.
    pub fn apply(&mut self, record: Replayed, sink: &Sink, plan: &Plan, runtime: &tokio::runtime::Handle) {
        if self.stopped || self.failure.is_some() {
            return;
        }
        let position = EventPosition { partition: record.partition, offset: record.offset };
        let rule = self.rules.entry(record.partition).or_default();
        let before = *rule;
        retrace(rule, &record.entry);
        match record.entry {
            Entry::Claim(_) => self.claims += 1,
            Entry::Void(why) => *self.void.entry(why.label()).or_default() += 1,
            Entry::Valid { record: Ok(LogRecord::Event(event)), .. } => {
                if self.project_from.get(&position.partition).is_some_and(|from| position.offset < *from) {
                    self.before_since += 1;
                } else {
                    if sink.shards.len() > 1 && !self.partitions.contains_key(&event.envelope.resource_id) {
                        self.partitions.insert(event.envelope.resource_id.clone(), record.partition);
                    }
                    self.model.apply(&event, position);
                    self.folded += 1;
                }
            }
            Entry::Valid { record: Ok(LogRecord::Rejected(_)), .. } => self.rejected += 1,
            Entry::Valid { record: Ok(LogRecord::Claim(_)), .. } => {
                tracing::debug!(
                    partition = position.partition,
                    offset = position.offset,
                    "a claim's body under data headers skipped"
                );
                self.undecodable += 1;
            }
            Entry::Valid { record: Err(error), .. } if error.is_retriable() => {
                // Not past this record after all: the rule stays where the offset stays.
                self.rules.insert(position.partition, before);
                self.failure = Some(ReplayError::Codec(error));
                return;
            }
            Entry::Valid { record: Err(error), .. } => {
                tracing::debug!(partition = position.partition, offset = position.offset, %error, "undecodable record skipped");
                self.undecodable += 1;
            }
        }
        self.next.insert(record.partition, record.offset + 1);
        self.read += 1;
        self.since_checkpoint += 1;
        if self.read.is_multiple_of(1024) {
            plan.bar.inc(1024);
            if plan.shutdown.is_cancelled() {
                self.stopped = true;
                return;
            }
        }
        if self.since_checkpoint >= plan.checkpoint_events {
            if let Err(error) = runtime.block_on(self.checkpoint(sink)) {
                self.failure = Some(error);
                return;
            }
            if plan.stop_after.is_some_and(|n| self.checkpoints >= n) {
                self.stopped = true;
            }
        }
    }

    /// Writes what changed since the last checkpoint, and the offsets, to every shard.
    ///
    /// # Errors
    /// When PostgreSQL fails.
    pub async fn checkpoint(&mut self, sink: &Sink) -> Result<(), ReplayError> {
        let shards = sink.shards.len();
        let copied: Vec<usize> = (0..shards).filter(|s| self.first_load[*s]).collect();
        for &shard in &copied {
            let rows = self.rows_of(sink, shard);
            let offsets = self.positions(shards, shard);
            shadow::copy_all(
                sink.shards.pool(shard),
                &sink.build,
                &sink.topic,
                &rows,
                &offsets,
                sink.copy_streams,
            )
            .await?;
        }
        let changes = self.model.take_changes();
        let parts = shadow::split_changes(changes, shards, |r| self.route(sink, r));
        for (shard, changes) in parts.iter().enumerate() {
            if self.first_load[shard] {
                continue;
            }
            let offsets = self.positions(shards, shard);
            let mut tx = sink.shards.pool(shard).begin().await?;
            shadow::write_changes(&mut tx, &sink.build, &sink.topic, changes, &offsets).await?;
            tx.commit().await?;
        }
        for shard in copied {
            self.first_load[shard] = false;
        }
        self.model.track_changes(true);
        self.checkpoints += 1;
        self.since_checkpoint = 0;
        tracing::info!(checkpoint = self.checkpoints, folded = self.folded, "rebuild checkpoint written");
        Ok(())
    }

    /// The positions (next offset and reader rule's tenure) of shard `shard`'s partitions.
    #[must_use]
    pub fn positions(&self, shards: usize, shard: usize) -> Vec<(i32, Position)> {
        shadow::shard_offsets(&self.next, shards, shard)
            .into_iter()
            .map(|(p, next)| (p, Position::new(next, &self.rules.get(&p).copied().unwrap_or_default())))
            .collect()
    }

    /// Every row of `shard`, by reference.
    fn rows_of(&self, sink: &Sink, shard: usize) -> Rows<'_> {
        let single = sink.shards.len() == 1;
        Rows::All {
            resources: self
                .model
                .resources()
                .filter(|r| single || self.route(sink, &r.resource_id) == shard)
                .collect(),
            slots: self
                .model
                .slots()
                .filter(|r| single || self.route(sink, &r.resource_id) == shard)
                .collect(),
            reservations: self
                .model
                .reservations()
                .filter(|r| single || self.route(sink, r.reservation_id.resource_id()) == shard)
                .collect(),
        }
    }
}

/// Replays the log from `fold.next` (with the reader rule as it stood there) to its end into
/// `fold`.
///
/// # Errors
/// When Kafka fails; failures inside the fold are left in `fold.failure`.
pub async fn read(
    log: &crate::replay::log::Log,
    fold: Fold,
    sink: &Sink,
    plan: &Plan,
) -> Result<Fold, ReplayError> {
    let span = Span { from: fold.next.clone(), rules: fold.rules.clone(), until: Offsets::new() };
    let (sink, plan) = (Arc::new(sink.clone()), Arc::new(plan.clone()));
    let runtime = tokio::runtime::Handle::current();
    log.replay(&span, fold, move |fold, record| fold.apply(record, &sink, &plan, &runtime)).await
}
