//! How readers (the query service) follow the live generation of the read model, so that a
//! rebuild's switch is invisible to them: they never see an empty or half-built model.
//!
//! - PostgreSQL: select from the `read_model` views (`read_model.availability`, …). A switch
//!   redefines them in the same transaction that moves `read_model_pointer`, so every
//!   statement reads one whole generation.
//! - Redis: read `<prefix>generation` (absent: 0), then the keys under
//!   [`format::generation_prefix`]. A reader may keep the number and refresh it on a message
//!   on `<prefix>generation-changes`; the previous generation's keys stay readable until the
//!   rebuild retires them after the switch.
//!
//! This module holds the reference implementation of both paths; it writes nothing.

use std::collections::BTreeMap;

use holdfast_domain::ResourceId;
use holdfast_platform::redis::Redis;
use redis::RedisError;
use sqlx::PgPool;

use crate::cache::format::{self, CachedSlot};
use crate::model::SlotRow;
use crate::store::StoreError;
use crate::store::rows;

/// A resource's availability rows from the live generation in PostgreSQL, earliest first.
///
/// # Errors
/// When PostgreSQL fails or a row is corrupt.
pub async fn availability(pool: &PgPool, resource: &ResourceId) -> Result<Vec<SlotRow>, StoreError> {
    let rows = sqlx::query(
        "SELECT resource_id, slot, capacity, held, confirmed, version FROM read_model.availability
         WHERE resource_id = $1 ORDER BY slot",
    )
    .bind(resource.as_str())
    .fetch_all(pool)
    .await?;
    rows.iter().map(rows::slot).collect()
}

/// The live generation as Redis readers see it.
///
/// # Errors
/// When Redis fails.
pub async fn cached_generation(redis: &Redis) -> Result<i64, RedisError> {
    let mut conn = redis.conn().await?;
    let value: Option<i64> =
        redis::cmd("GET").arg(format::generation_key(&redis.key_prefix)).query_async(&mut conn).await?;
    Ok(value.unwrap_or(0))
}

/// A resource's cached slots (day → value) from the live generation, and that generation.
/// `redis` carries the configured prefix.
///
/// # Errors
/// When Redis fails.
pub async fn cached_availability(
    redis: &Redis,
    resource: &ResourceId,
) -> Result<(i64, BTreeMap<String, CachedSlot>), RedisError> {
    let generation = cached_generation(redis).await?;
    let prefix = format::generation_prefix(&redis.key_prefix, generation);
    let mut conn = redis.conn().await?;
    let fields: BTreeMap<String, String> =
        redis::cmd("HGETALL").arg(format::availability_key(&prefix, resource)).query_async(&mut conn).await?;
    let slots = fields
        .into_iter()
        .filter(|(field, _)| format::field_slot(field).is_some())
        .filter_map(|(field, value)| Some((field, format::parse_slot(&value)?)))
        .collect();
    Ok((generation, slots))
}
