//! The read model as this service sees it: availability from Redis when Redis has it and is
//! current, otherwise from the PostgreSQL shard that owns the resource's partition;
//! reservations and customers' lists from PostgreSQL.
//!
//! This module owns every Redis read and SQL statement of the service and the choice between
//! the two sources. It knows nothing about HTTP. It reads the live key prefix and tables: a
//! generation switch of rebuilt read models (replay CLI) would hook in here, by resolving the
//! Redis prefix and the schema per read instead of taking them from the configuration.

pub mod layout;
pub mod postgres;
pub mod redis;
pub mod view;

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use holdfast_domain::{CapacityRange, CustomerId, ReservationId, ResourceId};
use holdfast_platform::partitioner::partition_for;
use holdfast_platform::redis::Redis;
use sqlx::PgPool;

use crate::metrics::Metrics;
use crate::position::Position;
pub use view::{Availability, ReservationView, SlotView};

/// Where an answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The Redis availability cache.
    Redis,
    /// The PostgreSQL read model.
    Postgres,
}

impl Source {
    /// The metric label.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Redis => "redis",
            Self::Postgres => "postgres",
        }
    }
}

/// Why a read failed. Redis failures never surface: they fall back to PostgreSQL.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// PostgreSQL failed or is unreachable; the client should retry shortly (503).
    #[error("postgres: {0}")]
    Postgres(#[from] sqlx::Error),
    /// A stored row breaks the read model's rules; an operator must rebuild it (500).
    #[error("corrupt read model: {0}")]
    Corrupt(String),
}

/// Settings of [`ReadModel`].
#[derive(Debug, Clone)]
pub struct ReadSettings {
    /// Name of the events topic (the key of `projection_offsets`).
    pub events_topic: String,
    /// Partitions of the events topic.
    pub partitions: i32,
    /// Whether Redis is a cluster (no pipelines across hash slots).
    pub cluster: bool,
    /// Longest one Redis read may take.
    pub redis_timeout: Duration,
    /// How long Redis is skipped after a failure.
    pub redis_retry: Duration,
}

/// Reads of the read model, Redis first where that applies.
#[derive(Debug)]
pub struct ReadModel {
    redis: Redis,
    generation: redis::Generation,
    shards: Vec<PgPool>,
    settings: ReadSettings,
    gate: RedisGate,
    metrics: Metrics,
}

impl ReadModel {
    /// The read model on `redis` and the PostgreSQL `shards` (partition `p` on `p mod n`).
    ///
    /// # Panics
    /// When `shards` is empty (the configuration always has one URL).
    #[must_use]
    pub fn new(redis: Redis, shards: Vec<PgPool>, settings: ReadSettings, metrics: Metrics) -> Self {
        assert!(!shards.is_empty(), "at least one read-model shard");
        let gate = RedisGate::new(settings.redis_retry);
        let generation = redis::Generation::new(&redis.key_prefix);
        Self { redis, generation, shards, settings, gate, metrics }
    }

    /// Partitions of the events topic.
    #[must_use]
    pub fn partitions(&self) -> i32 {
        self.settings.partitions
    }

    /// The events partition of `resource`, by the writers' partitioner.
    #[must_use]
    pub fn partition_of(&self, resource: &ResourceId) -> i32 {
        partition_for(resource.as_str().as_bytes(), self.settings.partitions)
    }

    /// The pool of the shard that owns `partition`.
    #[must_use]
    pub fn shard(&self, partition: i32) -> &PgPool {
        &self.shards[usize::try_from(partition).unwrap_or(0) % self.shards.len()]
    }

    /// Every shard.
    #[must_use]
    pub fn shards(&self) -> &[PgPool] {
        &self.shards
    }

    /// The Redis handle.
    #[must_use]
    pub fn redis(&self) -> &Redis {
        &self.redis
    }

    /// Whether Redis may be tried now (it has not failed within the retry interval).
    #[must_use]
    pub fn redis_allowed(&self) -> bool {
        self.gate.allowed()
    }

    /// Records a Redis failure seen elsewhere (the watcher, the live-update hub).
    pub fn redis_failed(&self) {
        self.gate.failed();
    }

    /// Availability of `resource` over `range`; `None` when the resource is unknown.
    /// With `prefer == Postgres` Redis is skipped (a wait was satisfied by PostgreSQL only).
    ///
    /// # Errors
    /// When PostgreSQL fails (Redis failures fall back to PostgreSQL).
    pub async fn availability(
        &self,
        resource: &ResourceId,
        range: &CapacityRange,
        prefer: Source,
        at_least: Option<Position>,
    ) -> Result<Option<Availability>, ReadError> {
        let partition = self.partition_of(resource);
        let reason = if prefer == Source::Postgres {
            "behind"
        } else if !self.gate.allowed() {
            "redis_down"
        } else {
            let read = redis::availability(
                &self.redis,
                &self.generation,
                self.settings.cluster,
                resource,
                partition,
                range,
            );
            match tokio::time::timeout(self.settings.redis_timeout, read).await {
                // A requested position of this partition must be reflected; otherwise PostgreSQL,
                // which is written first, answers.
                Ok(Ok(redis::Cached::Hit(found)))
                    if at_least.is_none_or(|w| w.partition != partition || found.position.reaches(w)) =>
                {
                    self.gate.answered();
                    self.metrics.reads.with_label_values(&["availability", "redis"]).inc();
                    return Ok(Some(found));
                }
                Ok(Ok(redis::Cached::Hit(_))) => {
                    self.gate.answered();
                    "behind"
                }
                Ok(Ok(redis::Cached::Miss(reason))) => {
                    self.gate.answered();
                    reason
                }
                Ok(Err(error)) => {
                    tracing::debug!(%error, "redis read failed; answering from postgres");
                    self.gate.failed();
                    "redis_error"
                }
                Err(_) => {
                    self.gate.timed_out();
                    "redis_timeout"
                }
            }
        };
        self.metrics.fallbacks.with_label_values(&[reason]).inc();
        let found = postgres::availability(
            self.shard(partition),
            &self.settings.events_topic,
            resource,
            partition,
            range,
        )
        .await?;
        self.metrics.reads.with_label_values(&["availability", "postgres"]).inc();
        Ok(found)
    }

    /// The reservation `id` with the position of its partition; `None` when unknown.
    ///
    /// # Errors
    /// When PostgreSQL fails or the row is corrupt.
    pub async fn reservation(&self, id: &ReservationId) -> Result<Option<ReservationView>, ReadError> {
        let partition = self.partition_of(id.resource_id());
        let found =
            postgres::reservation(self.shard(partition), &self.settings.events_topic, id, partition).await?;
        self.metrics.reads.with_label_values(&["reservation", "postgres"]).inc();
        Ok(found)
    }

    /// Up to `limit` reservations of `customer` after `after` (in id order) from every shard,
    /// and whether more follow.
    ///
    /// # Errors
    /// When a shard fails or a row is corrupt.
    pub async fn customer_reservations(
        &self,
        customer: &CustomerId,
        after: Option<&ReservationId>,
        limit: usize,
    ) -> Result<(Vec<ReservationView>, bool), ReadError> {
        let page = postgres::customer_reservations(&self.shards, customer, after, limit).await?;
        self.metrics.reads.with_label_values(&["customer", "postgres"]).inc();
        Ok(page)
    }

    /// Redis's positions of `partitions` (0 where Redis has none).
    ///
    /// # Errors
    /// When Redis fails or does not answer in time.
    pub async fn redis_positions(&self, partitions: &[i32]) -> Result<Vec<i64>, ::redis::RedisError> {
        let read = redis::positions(&self.redis, &self.generation, partitions);
        match tokio::time::timeout(self.settings.redis_timeout, read).await {
            Ok(result) => result,
            Err(_) => {
                Err(::redis::RedisError::from((::redis::ErrorKind::IoError, "redis did not answer in time")))
            }
        }
    }

    /// PostgreSQL's positions of `partitions` (0 where none is stored), each from its shard.
    ///
    /// # Errors
    /// When a shard fails.
    pub async fn postgres_positions(&self, partitions: &[i32]) -> Result<Vec<(i32, i64)>, ReadError> {
        let mut by_shard: Vec<Vec<i32>> = vec![Vec::new(); self.shards.len()];
        for &p in partitions {
            by_shard[usize::try_from(p).unwrap_or(0) % self.shards.len()].push(p);
        }
        let reads = by_shard
            .iter()
            .enumerate()
            .filter(|(_, ps)| !ps.is_empty())
            .map(|(shard, ps)| postgres::positions(&self.shards[shard], &self.settings.events_topic, ps));
        let mut all = Vec::with_capacity(partitions.len());
        for found in futures::future::try_join_all(reads).await? {
            all.extend(found);
        }
        Ok(all)
    }
}

/// Timeouts in a row after which Redis counts as down. A single slow answer (a busy machine)
/// only sends that read to PostgreSQL: diverting every read would move load onto the slower
/// source exactly when the service is busiest.
const TIMEOUTS_BEFORE_CLOSING: u32 = 8;

/// Skips Redis for a while after it failed (an error, or several timeouts in a row), so a Redis
/// outage costs one failed attempt per retry interval instead of one per request.
#[derive(Debug)]
struct RedisGate {
    started: Instant,
    retry: Duration,
    /// Milliseconds since `started` before which Redis is not tried.
    closed_until: AtomicU64,
    /// Timeouts since Redis last answered.
    timeouts: AtomicU32,
}

impl RedisGate {
    fn new(retry: Duration) -> Self {
        Self { started: Instant::now(), retry, closed_until: AtomicU64::new(0), timeouts: AtomicU32::new(0) }
    }

    fn answered(&self) {
        if self.timeouts.load(Ordering::Relaxed) != 0 {
            self.timeouts.store(0, Ordering::Relaxed);
        }
    }

    fn timed_out(&self) {
        if self.timeouts.fetch_add(1, Ordering::Relaxed) + 1 >= TIMEOUTS_BEFORE_CLOSING {
            self.timeouts.store(0, Ordering::Relaxed);
            self.failed();
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn allowed(&self) -> bool {
        self.now_ms() >= self.closed_until.load(Ordering::Relaxed)
    }

    fn failed(&self) {
        let until = self.now_ms().saturating_add(u64::try_from(self.retry.as_millis()).unwrap_or(u64::MAX));
        self.closed_until.fetch_max(until, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gate_closes_for_the_retry_interval() {
        let gate = RedisGate::new(Duration::from_millis(50));
        assert!(gate.allowed());
        gate.failed();
        assert!(!gate.allowed());
        std::thread::sleep(Duration::from_millis(60));
        assert!(gate.allowed());
        for _ in 1..TIMEOUTS_BEFORE_CLOSING {
            gate.timed_out();
        }
        gate.answered();
        gate.timed_out();
        assert!(gate.allowed(), "an answer resets the count of timeouts");
        for _ in 0..TIMEOUTS_BEFORE_CLOSING {
            gate.timed_out();
        }
        assert!(!gate.allowed(), "timeouts in a row close the gate");
    }
}
