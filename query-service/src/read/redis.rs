//! Availability and positions from Redis, in the layout the projection writes
//! (`holdfast_projection_workers::cache::format`).
//!
//! One round trip per read: the partition's position and the resource's fields in one
//! pipeline, the position first, so the answer's position is a lower bound of what the fields
//! reflect (the projection moves a position only after writing the fields before it). A
//! cluster cannot pipeline across hash slots, so there the two are read one after the other.

use super::layout::{self as format, DEFINITION_FIELD};
use holdfast_domain::{CapacityRange, ResourceId};
use holdfast_platform::redis::Redis;
use redis::RedisError;

use super::Source;
use super::view::{Availability, assemble};
use crate::position::Position;

/// What Redis had.
#[derive(Debug)]
pub enum Cached {
    /// Everything needed, with the position it reflects.
    Hit(Availability),
    /// Not usable; the reason is a metric label.
    Miss(&'static str),
}

/// Availability of `resource` (in `partition`) over `range`.
///
/// # Errors
/// When Redis fails.
pub async fn availability(
    redis: &Redis,
    generation: &Generation,
    cluster: bool,
    resource: &ResourceId,
    partition: i32,
    range: &CapacityRange,
) -> Result<Cached, RedisError> {
    let mut conn = redis.conn().await?;
    let prefix = generation.prefix(&mut conn).await?;
    let key = format::availability_key(&prefix, resource.as_str());
    let positions = format::positions_key(&prefix);
    let mut fields = Vec::with_capacity(range.len() + 1);
    fields.push(DEFINITION_FIELD.to_owned());
    fields.extend(range.slots().map(|day| day.to_string()));
    let (position, values): (Option<i64>, Vec<Option<String>>) = if cluster {
        let position = redis::cmd("HGET").arg(&positions).arg(partition).query_async(&mut conn).await?;
        let values = redis::cmd("HMGET").arg(&key).arg(&fields).query_async(&mut conn).await?;
        (position, values)
    } else {
        redis::pipe()
            .cmd("HGET")
            .arg(&positions)
            .arg(partition)
            .cmd("HMGET")
            .arg(&key)
            .arg(&fields)
            .query_async(&mut conn)
            .await?
    };
    // No position: Redis reflects nothing of the partition (flushed, or never filled).
    let Some(next_offset) = position.filter(|p| *p > 0) else { return Ok(Cached::Miss("not_cached")) };
    let mut values = values.into_iter();
    // No definition: unknown before the position, evicted, or written after it; PostgreSQL knows.
    let Some(definition) = values.next().flatten().as_deref().and_then(format::parse_definition) else {
        return Ok(Cached::Miss("not_cached"));
    };
    let mut stored = Vec::new();
    for (day, value) in range.slots().zip(values) {
        if let Some(value) = value {
            let Some(slot) = format::parse_slot(&value) else {
                tracing::warn!(resource = %resource, %day, "malformed cached slot; answering from postgres");
                return Ok(Cached::Miss("malformed"));
            };
            stored.push((day, slot));
        }
    }
    let (slots, version) = assemble(range, definition.capacity, definition.version, stored);
    Ok(Cached::Hit(Availability {
        resource_id: resource.to_string(),
        slots,
        position: Position { partition, next_offset },
        version,
        source: Source::Redis,
    }))
}

/// Positions of `partitions` (0 where Redis has none).
///
/// # Errors
/// When Redis fails.
pub async fn positions(
    redis: &Redis,
    generation: &Generation,
    partitions: &[i32],
) -> Result<Vec<i64>, RedisError> {
    if partitions.is_empty() {
        return Ok(Vec::new());
    }
    let mut conn = redis.conn().await?;
    let prefix = generation.prefix(&mut conn).await?;
    let values: Vec<Option<i64>> = redis::cmd("HMGET")
        .arg(format::positions_key(&prefix))
        .arg(partitions)
        .query_async(&mut conn)
        .await?;
    Ok(values.into_iter().map(|v| v.unwrap_or(0)).collect())
}

/// The key prefix of the live read-model generation (`docs/replay.md`): the configured prefix
/// for generation 0, `<prefix>g<n>:` after a rebuild switched to generation `n`. Read from
/// `<prefix>generation` at most once per [`GENERATION_TTL`], so a switch reaches reads within
/// that time; until then they read the retired generation's keys, which a rebuild removes, and
/// such a miss is answered from PostgreSQL.
#[derive(Debug)]
pub struct Generation {
    base: String,
    current: std::sync::RwLock<(String, Option<std::time::Instant>)>,
}

/// How long a resolved generation is used before it is read again.
const GENERATION_TTL: std::time::Duration = std::time::Duration::from_secs(1);

impl Generation {
    /// Generations under the configured prefix `base`.
    pub fn new(base: &str) -> Self {
        Self { base: base.to_owned(), current: std::sync::RwLock::new((base.to_owned(), None)) }
    }

    /// The live generation's prefix.
    async fn prefix(&self, conn: &mut holdfast_platform::redis::RedisConn) -> Result<String, RedisError> {
        {
            let current = self.current.read().unwrap_or_else(std::sync::PoisonError::into_inner);
            if current.1.is_some_and(|at| at.elapsed() < GENERATION_TTL) {
                return Ok(current.0.clone());
            }
        }
        let number: Option<i64> =
            redis::cmd("GET").arg(format::generation_key(&self.base)).query_async(conn).await?;
        let prefix = format::generation_prefix(&self.base, number.unwrap_or(0));
        *self.current.write().unwrap_or_else(std::sync::PoisonError::into_inner) =
            (prefix.clone(), Some(std::time::Instant::now()));
        Ok(prefix)
    }
}
