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
    cluster: bool,
    resource: &ResourceId,
    partition: i32,
    range: &CapacityRange,
) -> Result<Cached, RedisError> {
    let mut conn = redis.conn().await?;
    let key = format::availability_key(&redis.key_prefix, resource.as_str());
    let positions = format::positions_key(&redis.key_prefix);
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
pub async fn positions(redis: &Redis, partitions: &[i32]) -> Result<Vec<i64>, RedisError> {
    if partitions.is_empty() {
        return Ok(Vec::new());
    }
    let mut conn = redis.conn().await?;
    let values: Vec<Option<i64>> = redis::cmd("HMGET")
        .arg(format::positions_key(&redis.key_prefix))
        .arg(partitions)
        .query_async(&mut conn)
        .await?;
    Ok(values.into_iter().map(|v| v.unwrap_or(0)).collect())
}
