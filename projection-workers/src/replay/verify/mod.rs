//! `verify`: the read model recomputed from the log (the same fold as the workers) and
//! compared with what PostgreSQL and Redis hold; every difference is listed and the exit
//! code is non-zero when there is any.
//!
//! The live model moves while it is verified, so each shard is read in one repeatable-read
//! snapshot together with its offsets, and the log is folded exactly up to those offsets.
//! Redis is compared field by field where both sides are settled (see [`diff::availability`]).

pub mod diff;

use std::collections::{BTreeMap, HashMap};

use holdfast_domain::ResourceId;
use holdfast_platform::partitioner::partition_for;
use serde::Serialize;
use time::OffsetDateTime;

use super::config::VerifyArgs;
use super::log::Offsets;
use super::rebuild::redis::pointed;
use super::{Context, Outcome, Output, ReplayError};
use crate::cache::format;
use crate::model::{EventPosition, ReadModel, ReservationRow, ResourceRow, SlotRow};
use crate::store::generation::{self, Hold};
use crate::store::rows;
pub use diff::Difference;

/// What a verification found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyReport {
    /// The live generation verified.
    pub generation: i64,
    /// Events folded.
    pub events: u64,
    /// Events in the log the read model has not applied yet (not differences).
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
    offsets: HashMap<i32, i64>,
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
            "generation {}: {} events recomputed, {} rows and {} cached resources compared, {} differences{}",
            r.generation,
            r.events,
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
    for snapshot in &snapshots {
        applied.extend(snapshot.offsets.iter().map(|(p, o)| (*p, *o)));
    }
    let starts = context.log.starts(snapshots[0].since).await?;
    let ends = context.log.ends().await?;
    let bar = output.bar(super::log::distance(&starts, &ends), "verify");
    let progress = bar.clone();
    let limits = applied.clone();
    type State = (ReadModel, HashMap<ResourceId, i32>, u64, Option<ReplayError>);
    let state: State = (ReadModel::default(), HashMap::new(), 0, None);
    let (mut model, partitions, events, failure) = context
        .log
        .replay(&starts, state, move |(model, partitions, events, failure): &mut State, record| {
            *events += 1;
            if (*events).is_multiple_of(1024) {
                progress.inc(1024);
            }
            if record.offset >= limits.get(&record.partition).copied().unwrap_or(0) {
                return;
            }
            match record.event {
                Ok(event) => {
                    if !partitions.contains_key(&event.envelope.resource_id) {
                        partitions.insert(event.envelope.resource_id.clone(), record.partition);
                    }
                    let position = EventPosition { partition: record.partition, offset: record.offset };
                    model.apply(&event, position);
                }
                Err(error) if error.is_retriable() => *failure = Some(ReplayError::Codec(error)),
                Err(_) => {}
            }
        })
        .await?;
    bar.finish_and_clear();
    if let Some(failure) = failure {
        return Err(failure);
    }
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

    let mut differences = Vec::new();
    let mut report = VerifyReport { generation, events, behind, ..VerifyReport::default() };
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
    let offsets: Vec<(i32, i64)> =
        sqlx::query_as("SELECT partition, next_offset FROM projection_offsets WHERE topic = $1")
            .bind(topic)
            .fetch_all(&mut *tx)
            .await?;
    let (resources, slots, reservations) = rows::everything(&mut tx).await?;
    tx.commit().await?;
    Ok(Snapshot {
        generation: live.number,
        since,
        offsets: offsets.into_iter().collect(),
        resources,
        slots,
        reservations,
    })
}
