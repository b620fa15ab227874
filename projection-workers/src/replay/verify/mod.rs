//! `verify`: the read model recomputed from the log (the same fold as the workers) and
//! compared with what PostgreSQL and Redis hold; every difference is listed and the exit
//! code is non-zero when there is any.
//!
//! The live model moves while it is verified, so each shard is read in one repeatable-read
//! snapshot together with its positions, and the log is folded by the reader rule exactly up
//! to those offsets: valid events are folded; claims, refused commands and void records are
//! counted and reported. The reader rule's tenure at each stored offset must equal the tenure
//! stored beside it (the workers resume from it), or it is a difference too.
//! Redis is compared field by field where both sides are settled (see [`diff::availability`]).
//!
//! Partitions are read from their beginning even for a generation rebuilt `--since` an
//! instant (the reader rule needs every claim); only events at or after the instant's offsets
//! are folded, as the rebuild did.

pub mod diff;

use std::collections::{BTreeMap, HashMap};

use holdfast_domain::ResourceId;
use holdfast_platform::codec::LogRecord;
use holdfast_platform::partitioner::partition_for;
use holdfast_platform::replay::Entry;
use holdfast_tenure::{ReaderRule, Tenure};
use serde::Serialize;
use time::OffsetDateTime;

use super::config::VerifyArgs;
use super::log::{Offsets, Rules, Span, retrace};
use super::rebuild::redis::pointed;
use super::{Context, Outcome, Output, ReplayError};
use crate::cache::format;
use crate::model::{EventPosition, ReadModel, ReservationRow, ResourceRow, SlotRow};
use crate::store::generation::{self, Hold};
use crate::store::offsets::{self, Position};
use crate::store::rows;
pub use diff::Difference;

/// What a verification found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyReport {
    /// The live generation verified.
    pub generation: i64,
    /// Valid events folded.
    pub events: u64,
    /// Claims read (tenures started).
    pub claims: u64,
    /// Valid refused commands read (they change no state).
    pub rejected: u64,
    /// Void records skipped, by reason (`holdfast_tenure::Void::label`).
    pub void: BTreeMap<&'static str, u64>,
    /// Valid records that could not be decoded (the workers dead-letter them).
    pub undecodable: u64,
    /// Records in the log the read model has not reached yet (not differences).
    pub behind: u64,
    /// Rows compared in PostgreSQL.
    pub rows: usize,
    /// Resources compared in Redis.
    pub cached_resources: usize,
    /// Differences found.
    pub differences: u64,
}

/// One shard's snapshot.
struct Snapshot {
    generation: i64,
    since: Option<OffsetDateTime>,
    positions: HashMap<i32, Position>,
    resources: Vec<ResourceRow>,
    slots: Vec<SlotRow>,
    reservations: Vec<ReservationRow>,
}

/// Verifies and prints the differences and a summary.
///
/// # Errors
/// When the log, PostgreSQL or Redis cannot be read.
pub async fn run(
    context: &Context,
    args: &VerifyArgs,
    output: &mut Output<'_>,
) -> Result<Outcome, ReplayError> {
    let (report, differences) = verify(context, output).await?;
    for difference in differences.iter().take(args.max_listed) {
        output.report(difference, |d| {
            format!(
                "{} {} {}: expected {} but found {}",
                d.store,
                d.table,
                d.key,
                d.expected.as_deref().unwrap_or("nothing"),
                d.actual.as_deref().unwrap_or("nothing")
            )
        })?;
    }
    output.report(&report, |r| {
        format!(
            "generation {}: {} events recomputed ({} claims, {} rejected, {}{}), {} rows and {} cached resources compared, {} differences{}",
            r.generation,
            r.events,
            r.claims,
            r.rejected,
            super::void_summary(&r.void),
            if r.undecodable > 0 { format!(", {} undecodable", r.undecodable) } else { String::new() },
            r.rows,
            r.cached_resources,
            r.differences,
            if r.behind > 0 { format!(" ({} events not projected yet)", r.behind) } else { String::new() }
        )
    })?;
    Ok(if report.differences == 0 { Outcome::Done } else { Outcome::Differences(report.differences) })
}

/// Verifies; returns the summary and every difference.
///
/// # Errors
/// When the log, PostgreSQL or Redis cannot be read.
pub async fn verify(
    context: &Context,
    output: &Output<'_>,
) -> Result<(VerifyReport, Vec<Difference>), ReplayError> {
    let mut snapshots = Vec::new();
    for pool in context.shards.pools() {
        snapshots.push(snapshot(pool, &context.log.topic).await?);
    }
    let generation = snapshots[0].generation;
    let mut applied: Offsets = BTreeMap::new();
    let mut stored: BTreeMap<i32, Position> = BTreeMap::new();
    for snapshot in &snapshots {
        applied.extend(snapshot.positions.iter().map(|(p, position)| (*p, position.next_offset)));
        stored.extend(snapshot.positions.iter().map(|(p, position)| (*p, *position)));
    }
    let project_from = match snapshots[0].since {
        Some(since) => context.log.starts(Some(since)).await?,
        None => Offsets::new(),
    };
    let ends = context.log.ends().await?;
    // Every partition from its beginning up to what the snapshot applied (nothing of a
    // partition without a stored position).
    let until: Offsets =
        (0..context.log.partitions).map(|p| (p, applied.get(&p).copied().unwrap_or(0))).collect();
    let span = Span { until, ..Span::from_beginning(context.log.partitions) };
    let bar = output.bar(super::log::distance(&span.from, &applied), "verify");
    let fold = Recompute::new(bar.clone(), project_from);
    let fold = context.log.replay(&span, fold, Recompute::apply).await?;
    bar.finish_and_clear();
    if let Some(failure) = fold.failure {
        return Err(failure);
    }
    let Recompute { mut model, partitions, rules, events, claims, rejected, void, undecodable, .. } = fold;
    model.clear_changes();
    let behind = ends
        .iter()
        .map(|(p, end)| u64::try_from(end - applied.get(p).copied().unwrap_or(0)).unwrap_or(0))
        .sum();
    let partition_of = |resource: &ResourceId| {
        partitions
            .get(resource)
            .copied()
            .unwrap_or_else(|| partition_for(resource.as_str().as_bytes(), context.log.partitions))
    };
    let shard_of = |resource: &ResourceId| context.shards.shard_of(partition_of(resource));

    let mut differences = tenure_differences(&context.log.topic, &stored, &rules);
    let mut report = VerifyReport {
        generation,
        events,
        claims,
        rejected,
        void,
        undecodable,
        behind,
        ..VerifyReport::default()
    };
    for (shard, snapshot) in snapshots.iter().enumerate() {
        if snapshot.generation != generation {
            differences.push(Difference {
                store: "postgres",
                table: "generation",
                key: format!("shard {shard}"),
                expected: Some(generation.to_string()),
                actual: Some(snapshot.generation.to_string()),
            });
        }
        let mine = |r: &&ResourceId| shard_of(r) == shard;
        differences.extend(diff::rows(
            "resources",
            model.resources().filter(|r| mine(&&r.resource_id)),
            &snapshot.resources,
        ));
        differences.extend(diff::rows(
            "availability",
            model.slots().filter(|r| mine(&&r.resource_id)),
            &snapshot.slots,
        ));
        differences.extend(diff::rows(
            "reservations",
            model.reservations().filter(|r| mine(&r.reservation_id.resource_id())),
            &snapshot.reservations,
        ));
        report.rows += snapshot.resources.len() + snapshot.slots.len() + snapshot.reservations.len();
    }
    report.cached_resources =
        redis_differences(context, generation, &model, &applied, &partition_of, &mut differences).await?;
    report.differences = u64::try_from(differences.len()).unwrap_or(u64::MAX);
    Ok((report, differences))
}

/// Adds the differences of Redis (generation `generation`'s prefix) to `differences`;
/// returns how many resources were compared.
async fn redis_differences(
    context: &Context,
    generation: i64,
    model: &ReadModel,
    applied: &Offsets,
    partition_of: &(dyn Fn(&ResourceId) -> i32 + Sync),
    differences: &mut Vec<Difference>,
) -> Result<usize, ReplayError> {
    let base = context.base_prefix();
    let pointed = pointed(&context.cache, base).await?;
    if pointed != generation {
        differences.push(Difference {
            store: "redis",
            table: "generation",
            key: format::generation_key(base),
            expected: Some(generation.to_string()),
            actual: Some(pointed.to_string()),
        });
    }
    let cache = context.cache.at(generation);
    let partitions: Vec<i32> = (0..context.log.partitions).collect();
    let positions = cache.positions(&partitions).await?;
    let expected = diff::expected_fields(model.resources(), model.slots());
    let mut conn = cache.redis().conn().await?;
    for (resource, fields) in &expected {
        let key = format::availability_key(cache.prefix(), resource);
        let actual: BTreeMap<String, String> = redis::cmd("HGETALL").arg(&key).query_async(&mut conn).await?;
        let partition = partition_of(resource);
        let (next, cached) =
            (applied.get(&partition).copied().unwrap_or(0), positions.get(&partition).copied().unwrap_or(0));
        differences.extend(diff::availability(&key, fields, &actual, next, cached));
    }
    Ok(expected.len())
}

/// One shard's live generation, offsets and rows, from one snapshot.
async fn snapshot(pool: &sqlx::PgPool, topic: &str) -> Result<Snapshot, ReplayError> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY").execute(&mut *tx).await?;
    let live = generation::enter(&mut tx, Hold::Read).await?;
    let since: Option<OffsetDateTime> =
        sqlx::query_scalar("SELECT since FROM public.read_model_builds WHERE generation = $1")
            .bind(live.number)
            .fetch_optional(&mut *tx)
            .await?
            .flatten();
    let positions = offsets::all(&mut tx, topic).await?;
    let (resources, slots, reservations) = rows::everything(&mut tx).await?;
    tx.commit().await?;
    Ok(Snapshot { generation: live.number, since, positions, resources, slots, reservations })
}

/// The log folded by the reader rule up to the snapshot's offsets.
#[derive(Debug)]
struct Recompute {
    model: ReadModel,
    /// Resource → the partition its events were read from.
    partitions: HashMap<ResourceId, i32>,
    /// The reader rule of each partition after the records read.
    rules: Rules,
    /// First offsets whose events are folded (`--since`); empty: all.
    project_from: Offsets,
    progress: indicatif::ProgressBar,
    read: u64,
    events: u64,
    claims: u64,
    rejected: u64,
    void: BTreeMap<&'static str, u64>,
    undecodable: u64,
    failure: Option<ReplayError>,
}

impl Recompute {
    fn new(progress: indicatif::ProgressBar, project_from: Offsets) -> Self {
        Self {
            model: ReadModel::default(),
            partitions: HashMap::new(),
            rules: Rules::new(),
            project_from,
            progress,
            read: 0,
            events: 0,
            claims: 0,
            rejected: 0,
            void: BTreeMap::new(),
            undecodable: 0,
            failure: None,
        }
    }

    fn apply(&mut self, record: holdfast_platform::replay::Replayed) {
        self.read += 1;
        if self.read.is_multiple_of(1024) {
            self.progress.inc(1024);
        }
        retrace(self.rules.entry(record.partition).or_default(), &record.entry);
        match record.entry {
            Entry::Claim(_) => self.claims += 1,
            Entry::Void(why) => *self.void.entry(why.label()).or_default() += 1,
            Entry::Valid { record: Ok(LogRecord::Event(event)), .. } => {
                let position = EventPosition { partition: record.partition, offset: record.offset };
                if self.project_from.get(&position.partition).is_some_and(|from| position.offset < *from) {
                    return;
                }
                if !self.partitions.contains_key(&event.envelope.resource_id) {
                    self.partitions.insert(event.envelope.resource_id.clone(), record.partition);
                }
                self.model.apply(&event, position);
                self.events += 1;
            }
            Entry::Valid { record: Ok(LogRecord::Rejected(_)), .. } => self.rejected += 1,
            Entry::Valid { record: Err(error), .. } if error.is_retriable() => {
                self.failure.get_or_insert(ReplayError::Codec(error));
            }
            Entry::Valid { record: Ok(LogRecord::Claim(_)) | Err(_), .. } => self.undecodable += 1,
        }
    }
}

/// A tenure as verification prints it.
fn describe_tenure(tenure: Option<Tenure>) -> String {
    match tenure {
        Some(tenure) => format!("tenure {} next_seq {}", tenure.token, tenure.next_seq),
        None => "no tenure".to_owned(),
    }
}

/// Stored tenures that are not what the reader rule reached at their offsets (`rules`: the
/// rule of each partition after the records before its stored offset). A worker resuming
/// from a wrong one would judge the following records wrongly.
fn tenure_differences(topic: &str, stored: &BTreeMap<i32, Position>, rules: &Rules) -> Vec<Difference> {
    stored
        .iter()
        .filter_map(|(partition, position)| {
            let expected = rules.get(partition).copied().unwrap_or_else(ReaderRule::default).tenure();
            (expected != position.tenure).then(|| Difference {
                store: "postgres",
                table: "projection_offsets",
                key: format!("{topic}/{partition}@{}", position.next_offset),
                expected: Some(describe_tenure(expected)),
                actual: Some(describe_tenure(position.tenure)),
            })
        })
        .collect()
}
