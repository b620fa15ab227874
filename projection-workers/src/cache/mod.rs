//! The Redis copy of availability: written after each PostgreSQL commit, refilled from
//! PostgreSQL whenever it is behind.
//!
//! Redis is a cache: the projection never waits for it. Every value is written by a Lua script
//! that compares versions field by field, so writes may arrive late, twice or out of order
//! (a zombie worker, a refill racing a batch) without a stale value replacing a newer one.
//! The positions hash is the cache's own bookkeeping: the position of a partition only moves
//! from `from` to `to` when Redis already reflects everything before `from`, so a gap (Redis
//! was down, flushed, or a worker died between its commit and its Redis write) shows up as a
//! position behind PostgreSQL's, and the worker refills the rows changed since then.

pub mod format;

use std::collections::HashMap;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use holdfast_platform::redis::Redis;
use redis::{RedisError, Script};

use crate::model::{ResourceChanges, ResourceRow, SlotRow};
use crate::store::apply::PartitionAdvance;
use format::{DEFINITION_FIELD, Update};

/// Writes fields whose stored version is older than the new one; publishes when any changed.
/// KEYS[1] the hash; ARGV[1] channel ('' for none), ARGV[2] message, then field/value pairs.
const WRITE_AVAILABILITY: &str = r"
local written = 0
for i = 3, #ARGV, 2 do
  local value = ARGV[i + 1]
  local new_version = tonumber(string.match(value, '^(%d+)|'))
  local old = redis.call('HGET', KEYS[1], ARGV[i])
  local old_version = old and tonumber(string.match(old, '^(%d+)|'))
  if not old_version or old_version < new_version then
    redis.call('HSET', KEYS[1], ARGV[i], value)
    written = written + 1
  end
end
if written > 0 and ARGV[1] ~= '' then
  redis.call('PUBLISH', ARGV[1], ARGV[2])
end
return written
";

/// Moves each partition's position from `from` to `to` if Redis has reached `from`; returns
/// the partitions whose position is behind `from` (Redis misses something before the batch).
/// KEYS[1] the positions hash; ARGV partition/from/to triples.
const ADVANCE_POSITIONS: &str = r"
local behind = {}
for i = 1, #ARGV, 3 do
  local current = tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or '0') or 0
  if current >= tonumber(ARGV[i + 1]) then
    if current < tonumber(ARGV[i + 2]) then
      redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 2])
    end
  else
    behind[#behind + 1] = ARGV[i]
  end
end
return behind
";

/// Longest wait for a probe of a Redis that was down.
const PING_TIMEOUT: Duration = Duration::from_millis(250);

/// Resources written to Redis at once (each is one script call on the multiplexed connection).
const CONCURRENT_WRITES: usize = 128;

/// The Redis side of the projection.
#[derive(Debug, Clone)]
pub struct Cache {
    redis: Redis,
    /// The configured prefix, before any generation's.
    base: String,
    timeout: Duration,
    write_availability: Script,
    advance_positions: Script,
}

/// Why a cache operation failed. Redis is then treated as down until it answers again.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// Redis refused or failed the command; it is retried after the next check.
    #[error("redis: {0}")]
    Redis(#[from] RedisError),
    /// Redis did not answer in time.
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
}

/// One resource's availability fields to write, with the live update to publish.
#[derive(Debug, Clone)]
struct ResourceWrite {
    key: String,
    channel: String,
    message: String,
    fields: Vec<(String, String)>,
}

impl Cache {
    /// The cache on `redis` (generation 0: its key prefix as configured); each operation is
    /// bounded by `timeout`.
    #[must_use]
    pub fn new(redis: Redis, timeout: Duration) -> Self {
        Self {
            base: redis.key_prefix.clone(),
            redis,
            timeout,
            write_availability: Script::new(WRITE_AVAILABILITY),
            advance_positions: Script::new(ADVANCE_POSITIONS),
        }
    }

    /// The key prefix.
    #[must_use]
    pub fn prefix(&self) -> &str {
        &self.redis.key_prefix
    }

    /// The same cache writing generation `generation`'s keys (sharing the connection).
    #[must_use]
    pub fn at(&self, generation: i64) -> Self {
        let mut redis = self.redis.clone();
        redis.key_prefix = format::generation_prefix(&self.base, generation);
        Self { redis, ..self.clone() }
    }

    /// The Redis handle (its key prefix is this cache's generation's).
    #[must_use]
    pub fn redis(&self) -> &Redis {
        &self.redis
    }

    /// Writes the changed availability of a committed batch, then moves the positions of its
    /// partitions. Returns the partitions Redis was already behind on (to refill).
    ///
    /// # Errors
    /// When Redis fails or does not answer in time.
    pub async fn write_batch(
        &self,
        changes: &[ResourceChanges<'_>],
        advances: &[PartitionAdvance],
    ) -> Result<Vec<i32>, CacheError> {
        let writes: Vec<ResourceWrite> = changes
            .iter()
            .map(|c| self.resource_write(c.resource_id, c.definition, &c.slots, c.version()))
            .collect();
        self.bounded(async {
            self.write_resources(writes).await?;
            self.advance(advances).await
        })
        .await
    }

    /// Writes `resources` and `slots` (a refill), then moves `partition`'s position from
    /// `since` to `next_offset`. Returns whether the position moved (it does not when Redis
    /// lost data again meanwhile).
    ///
    /// # Errors
    /// When Redis fails or does not answer in time.
    pub async fn refill(
        &self,
        partition: i32,
        since: i64,
        next_offset: i64,
        resources: &[ResourceRow],
        slots: &[SlotRow],
    ) -> Result<bool, CacheError> {
        let mut grouped: std::collections::BTreeMap<
            &holdfast_domain::ResourceId,
            (Option<&ResourceRow>, Vec<&SlotRow>),
        > = std::collections::BTreeMap::new();
        for row in resources {
            grouped.entry(&row.resource_id).or_default().0 = Some(row);
        }
        for row in slots {
            grouped.entry(&row.resource_id).or_default().1.push(row);
        }
        let writes: Vec<ResourceWrite> = grouped
            .into_iter()
            .map(|(id, (definition, slots))| {
                let version =
                    definition.map(|d| d.version).into_iter().chain(slots.iter().map(|s| s.version)).max();
                self.resource_write(id, definition, &slots, version.unwrap_or(0))
            })
            .collect();
        let advance = PartitionAdvance { partition, from: since, to: next_offset.max(since) };
        self.bounded(async {
            self.write_resources(writes).await?;
            Ok(self.advance(&[advance]).await?.is_empty())
        })
        .await
    }

    /// The positions of `partitions` (0 for a partition Redis has no position for).
    ///
    /// # Errors
    /// When Redis fails or does not answer in time.
    pub async fn positions(&self, partitions: &[i32]) -> Result<HashMap<i32, i64>, CacheError> {
        if partitions.is_empty() {
            return Ok(HashMap::new());
        }
        let key = format::positions_key(self.prefix());
        self.bounded(async {
            let mut conn = self.redis.conn().await?;
            let values: Vec<Option<i64>> =
                redis::cmd("HMGET").arg(&key).arg(partitions).query_async(&mut conn).await?;
            Ok(partitions.iter().zip(values).map(|(p, v)| (*p, v.unwrap_or(0))).collect())
        })
        .await
    }

    /// Whether Redis answers, within a short bound: the worker probes a Redis it lost between
    /// batches, and a hanging Redis must not hold the projection back for long.
    ///
    /// # Errors
    /// When it does not.
    pub async fn ping(&self) -> Result<(), CacheError> {
        let bound = self.timeout.min(PING_TIMEOUT);
        tokio::time::timeout(bound, async { Ok(self.redis.ping().await?) })
            .await
            .unwrap_or(Err(CacheError::Timeout(bound)))
    }

    fn resource_write(
        &self,
        resource: &holdfast_domain::ResourceId,
        definition: Option<&ResourceRow>,
        slots: &[&SlotRow],
        version: i64,
    ) -> ResourceWrite {
        let mut fields: Vec<(String, String)> = Vec::with_capacity(slots.len() + 1);
        if let Some(row) = definition {
            fields.push((DEFINITION_FIELD.to_owned(), format::definition_value(row)));
        }
        fields.extend(slots.iter().map(|row| format::slot_field(row)));
        let update = Update {
            resource_id: resource.to_string(),
            version,
            capacity: definition.map(|d| d.capacity),
            slots: slots.iter().map(|row| format::updated_slot(row)).collect(),
        };
        ResourceWrite {
            key: format::availability_key(self.prefix(), resource),
            channel: format::channel(self.prefix(), resource),
            message: serde_json::to_string(&update).unwrap_or_default(),
            fields,
        }
    }

    /// Runs the availability script for every write, many at once on the multiplexed
    /// connection (works the same against a cluster: each call goes to its key's node).
    async fn write_resources(&self, writes: Vec<ResourceWrite>) -> Result<(), CacheError> {
        if writes.is_empty() {
            return Ok(());
        }
        let conn = self.redis.conn().await?;
        futures::stream::iter(writes)
            .map(|write| {
                let mut conn = conn.clone();
                async move {
                    let mut invocation = self.write_availability.prepare_invoke();
                    invocation.key(&write.key).arg(&write.channel).arg(&write.message);
                    for (field, value) in &write.fields {
                        invocation.arg(field).arg(value);
                    }
                    invocation.invoke_async::<i64>(&mut conn).await.map(|_| ())
                }
            })
            .buffer_unordered(CONCURRENT_WRITES)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }

    /// Runs the positions script; returns the partitions Redis is behind on.
    async fn advance(&self, advances: &[PartitionAdvance]) -> Result<Vec<i32>, CacheError> {
        if advances.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.redis.conn().await?;
        let mut invocation = self.advance_positions.prepare_invoke();
        invocation.key(format::positions_key(self.prefix()));
        for advance in advances {
            invocation.arg(advance.partition).arg(advance.from).arg(advance.to);
        }
        let behind: Vec<String> = invocation.invoke_async(&mut conn).await?;
        Ok(behind.iter().filter_map(|p| p.parse().ok()).collect())
    }

    async fn bounded<T>(
        &self,
        work: impl std::future::Future<Output = Result<T, CacheError>>,
    ) -> Result<T, CacheError> {
        tokio::time::timeout(self.timeout, work).await.unwrap_or(Err(CacheError::Timeout(self.timeout)))
    }
}
