//! The switch: the shadow generation becomes the live one, atomically per shard.
//!
//! 1. Catch up without locks until the shadow is close to the end of the log.
//! 2. Per shard, lock the pointer row `FOR UPDATE`: live workers' batches (which lock it
//!    `FOR SHARE`) finish first and new ones wait. Nothing moves the live offsets now.
//! 3. Catch up to the end of the log once more and write that into the shadow (and its
//!    Redis prefix) in the locked transactions: the shadow's offsets are now at or past
//!    every live offset, so no event is lost whatever the workers had applied. Each offset
//!    is stored with the reader rule's tenure there, which the workers resume from.
//! 4. In each locked transaction: move the pointer, redefine the `read_model` views, mark
//!    the builds; commit. Readers see the old generation or the new one, whole.
//! 5. Point Redis readers at the new prefix and announce it; retire the previous generation.
//!
//! Waiting workers then find the new generation in their batch, apply nothing, position their
//! partitions at the new generation's offsets and go on (see `crate::worker`).

use std::time::Instant;

use sqlx::{Postgres, Transaction};

use super::fold::{self, Fold, Plan, Sink};
use super::shadow;
use crate::cache::Cache;
use crate::replay::ReplayError;
use crate::replay::log::{Log, distance};
use crate::store::generation::{self, Generation, Hold};

/// Catch-up rounds before the lock are enough when one reads fewer events than this.
const CLOSE_ENOUGH: u64 = 5_000;
/// Most catch-up rounds before the lock (the last round under the lock catches the rest).
const ROUNDS: usize = 10;
/// Views readers select from, one per table.
const VIEWS: [&str; 4] = ["resources", "availability", "reservations", "projection_offsets"];

/// What the switch did.
#[derive(Debug, Clone, Default)]
pub struct Switched {
    /// Generations live before, per shard.
    pub previous: Vec<Generation>,
    /// Events folded while catching up (before and under the lock).
    pub caught_up: u64,
    /// How long the live workers were held (the locks' lifetime), in milliseconds.
    pub held_ms: u64,
}

/// Folds the log from `fold.next` to its end and writes the changes to every shard (through
/// `txs` when given, else in a transaction per shard) and to the shadow's Redis prefix.
async fn catch_up(
    log: &Log,
    fold: Fold,
    sink: &Sink,
    plan: &Plan,
    cache: &Cache,
    txs: Option<&mut [Transaction<'static, Postgres>]>,
) -> Result<(Fold, u64), ReplayError> {
    let before = fold.folded;
    let previous = fold.next.clone();
    let clock = Instant::now();
    let mut fold = fold::read(log, fold, sink, plan).await?;
    tracing::debug!(events = fold.folded - before, read_ms = clock.elapsed().as_millis(), "catch-up read");
    if let Some(failure) = fold.failure.take() {
        return Err(failure);
    }
    let changes = fold.model.take_changes();
    let shards = sink.shards.len();
    let advances: Vec<crate::store::apply::PartitionAdvance> = fold
        .next
        .iter()
        .map(|(&partition, &to)| crate::store::apply::PartitionAdvance {
            partition,
            from: previous.get(&partition).copied().unwrap_or(0),
            to,
        })
        .filter(|a| a.to > a.from)
        .collect();
    let behind = cache.write_batch(&changes.by_resource(), &advances).await?;
    if !behind.is_empty() {
        tracing::warn!(
            ?behind,
            "shadow positions in redis were behind; refill them with a verify after the switch"
        );
    }
    let parts = shadow::split_changes(changes, shards, |r| fold.route(sink, r));
    match txs {
        Some(txs) => {
            for (shard, tx) in txs.iter_mut().enumerate() {
                let positions = fold.positions(shards, shard);
                shadow::write_changes(tx, &sink.build, &sink.topic, &parts[shard], &positions).await?;
            }
        }
        None => {
            for (shard, part) in parts.iter().enumerate() {
                let positions = fold.positions(shards, shard);
                let mut tx = sink.shards.pool(shard).begin().await?;
                shadow::write_changes(&mut tx, &sink.build, &sink.topic, part, &positions).await?;
                tx.commit().await?;
            }
        }
    }
    let read = fold.folded - before;
    Ok((fold, read))
}

/// Catches up, switches every shard to the shadow, points Redis at it.
///
/// # Errors
/// When Kafka, PostgreSQL or Redis fail (the live generation is then unchanged on every
/// shard not yet committed; run again to finish), or another switch happened meanwhile.
pub async fn switch(
    log: &Log,
    fold: Fold,
    sink: &Sink,
    plan: &Plan,
    cache: &Cache,
) -> Result<(Fold, Switched), ReplayError> {
    let mut fold = fold;
    let mut switched = Switched::default();
    for _ in 0..ROUNDS {
        // A record or so per partition is not worth a read; whatever the workers applied
        // meanwhile is caught up under the lock.
        let ends = log.ends().await?;
        if distance(&fold.next, &ends) <= u64::try_from(ends.len()).unwrap_or(0) {
            break;
        }
        let (next, read) = catch_up(log, fold, sink, plan, cache, None).await?;
        fold = next;
        switched.caught_up += read;
        if read < CLOSE_ENOUGH {
            break;
        }
    }

    let held = Instant::now();
    let mut live_applied: Vec<(i32, i64)> = Vec::new();
    let mut txs: Vec<Transaction<'static, Postgres>> = Vec::new();
    for pool in sink.shards.pools() {
        let mut tx = pool.begin().await?;
        sqlx::query("SET LOCAL lock_timeout = '30s'").execute(&mut *tx).await?;
        let live = generation::enter(&mut tx, Hold::Switch).await?;
        if live.number >= sink.build.generation {
            return Err(ReplayError::Refused(format!(
                "generation {} is live already; this rebuild of generation {} is obsolete",
                live.number, sink.build.generation
            )));
        }
        // What the live workers have applied (the live schema is the search path now).
        let applied: Vec<(i32, i64)> =
            sqlx::query_as("SELECT partition, next_offset FROM projection_offsets WHERE topic = $1")
                .bind(&sink.topic)
                .fetch_all(&mut *tx)
                .await?;
        live_applied.extend(applied);
        switched.previous.push(live);
        txs.push(tx);
    }
    // The shadow must hold at least what readers of the live generation could see; when it
    // does already, the workers are released at once (they apply the rest after the switch).
    let behind = live_applied.iter().any(|(p, applied)| fold.next.get(p).copied().unwrap_or(0) < *applied);
    if behind {
        tracing::info!(
            waited_ms = held.elapsed().as_millis(),
            "live writers held; catching up the rest of the log"
        );
        let (next, read) = catch_up(log, fold, sink, plan, cache, Some(&mut txs)).await?;
        tracing::info!(events = read, held_ms = held.elapsed().as_millis(), "caught up under the lock");
        fold = next;
        switched.caught_up += read;
    }
    let build = &sink.build;
    for (tx, previous) in txs.iter_mut().zip(&switched.previous) {
        sqlx::query(
            "UPDATE public.read_model_pointer SET generation = $1, schema_name = $2, switched_at = now()",
        )
        .bind(build.generation)
        .bind(&build.schema)
        .execute(&mut **tx)
        .await?;
        for view in VIEWS {
            sqlx::query(&format!(
                "CREATE OR REPLACE VIEW read_model.{view} AS SELECT * FROM \"{}\".{view}",
                build.schema
            ))
            .execute(&mut **tx)
            .await?;
        }
        sqlx::query(
            "UPDATE public.read_model_builds SET phase = CASE WHEN generation = $1 THEN 'live' ELSE 'retired' END,
                 updated_at = now()
             WHERE generation = $1 OR generation = $2",
        )
        .bind(build.generation)
        .bind(previous.number)
        .execute(&mut **tx)
        .await?;
    }
    for tx in txs {
        tx.commit().await?;
    }
    switched.held_ms = u64::try_from(held.elapsed().as_millis()).unwrap_or(u64::MAX);
    Ok((fold, switched))
}

/// Drops (or, for generation 0 in `public`, empties) the previous generation's tables.
///
/// # Errors
/// When PostgreSQL fails.
pub async fn retire(pool: &sqlx::PgPool, previous: &Generation) -> Result<(), ReplayError> {
    if previous.schema == "public" {
        sqlx::query(
            "TRUNCATE public.resources, public.availability, public.reservations, public.projection_offsets",
        )
        .execute(pool)
        .await?;
    } else {
        sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", previous.schema)).execute(pool).await?;
    }
    Ok(())
}
