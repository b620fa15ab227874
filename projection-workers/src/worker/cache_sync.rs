//! Keeping Redis in step with PostgreSQL.
//!
//! After each commit the loop writes the batch's changes to Redis, unless Redis is down, in
//! which case nothing waits for it. Every check interval the loop compares Redis's position of
//! each owned partition with PostgreSQL's; where Redis is behind (it was down, flushed, or the
//! previous owner died between its commit and its Redis write) the rows changed since Redis's
//! position are read from PostgreSQL and written again, version-guarded.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use super::Worker;
use crate::cache::CacheError;
use crate::store::snapshot;

/// Partitions refilled per check; the next check follows at once while more are behind, so
/// a flushed Redis is refilled in slices without stalling the projection.
const REFILLS_PER_CHECK: usize = 16;

/// Whether Redis is usable and when to compare it with PostgreSQL next.
#[derive(Debug)]
pub(super) struct CacheSync {
    healthy: bool,
    next_check: Instant,
    interval: Duration,
}

impl CacheSync {
    /// Checks every `interval`, starting at once.
    pub fn new(interval: Duration) -> Self {
        Self { healthy: true, next_check: Instant::now(), interval }
    }

    /// Whether batch writes should go to Redis.
    pub fn healthy(&self) -> bool {
        self.healthy
    }

    /// Redis failed: stop writing to it until a check finds it answering.
    pub fn failed(&mut self, worker: &Worker, error: &CacheError) {
        worker.metrics.cache_failures.inc();
        if self.healthy {
            tracing::warn!(%error, "redis write failed; projecting into PostgreSQL only until it answers");
        }
        self.healthy = false;
    }

    /// Checks as soon as possible (some partition is known to be behind).
    pub fn soon(&mut self) {
        self.next_check = Instant::now();
    }

    /// Whether a check is due.
    pub fn due(&self) -> bool {
        Instant::now() >= self.next_check
    }

    /// Compares Redis with PostgreSQL for `owned` partitions (partition → stored next offset)
    /// and refills where Redis is behind. Each partition is compared in the generation its
    /// shard is positioned under (`generations`, shard → generation).
    pub async fn check(
        &mut self,
        worker: &Worker,
        owned: &HashMap<i32, i64>,
        generations: &HashMap<usize, i64>,
    ) {
        self.next_check = Instant::now() + self.interval;
        if !self.healthy {
            if worker.cache.ping().await.is_err() {
                return;
            }
            tracing::info!("redis answers again; refilling what it missed");
            self.healthy = true;
        }
        let mut by_generation: BTreeMap<i64, Vec<i32>> = BTreeMap::new();
        for &partition in owned.keys() {
            let generation = generations.get(&worker.shards.shard_of(partition)).copied().unwrap_or(0);
            by_generation.entry(generation).or_default().push(partition);
        }
        let mut behind: Vec<(i32, i64, i64)> = Vec::new();
        for (generation, partitions) in by_generation {
            let positions = match worker.cache.at(generation).positions(&partitions).await {
                Ok(positions) => positions,
                Err(error) => return self.failed(worker, &error),
            };
            behind.extend(
                positions
                    .into_iter()
                    .filter(|(p, cached)| owned.get(p).is_some_and(|stored| cached < stored))
                    .map(|(p, cached)| (p, cached, generation)),
            );
        }
        behind.sort_unstable();
        if behind.len() > REFILLS_PER_CHECK {
            self.soon();
        }
        for &(partition, since, generation) in behind.iter().take(REFILLS_PER_CHECK) {
            let pool = worker.shards.for_partition(partition);
            let rows = match snapshot::partition_since(pool, &worker.settings.topic, partition, since).await {
                Ok(rows) => rows,
                Err(error) => {
                    tracing::warn!(partition, %error, "cannot read rows to refill redis; retrying later");
                    continue;
                }
            };
            if rows.generation != generation {
                // A switch happened meanwhile; the next check compares in the new generation.
                continue;
            }
            let refilled = worker
                .cache
                .at(generation)
                .refill(partition, since, rows.next_offset, &rows.resources, &rows.slots)
                .await;
            match refilled {
                Ok(moved) => {
                    worker.metrics.cache_refills.inc();
                    tracing::debug!(
                        partition,
                        since,
                        next_offset = rows.next_offset,
                        moved,
                        rows = rows.slots.len(),
                        "redis refilled"
                    );
                }
                Err(error) => return self.failed(worker, &error),
            }
        }
    }
}
