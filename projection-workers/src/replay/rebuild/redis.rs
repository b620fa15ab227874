//! The shadow generation in Redis: filling its key prefix from the rebuilt model, pointing
//! readers at it after the switch, and removing the previous generation's keys.

use std::collections::BTreeMap;

use futures::{StreamExt, TryStreamExt};
use holdfast_domain::ResourceId;

use crate::cache::{Cache, format};
use crate::model::ReadModel;
use crate::replay::ReplayError;
use crate::replay::log::Offsets;

/// Commands in flight at once on the multiplexed connection.
const CONCURRENT: usize = 64;

/// Writes every resource's availability hash and the positions under `cache`'s prefix.
///
/// # Errors
/// When Redis fails.
pub async fn fill(cache: &Cache, model: &ReadModel, next: &Offsets) -> Result<(), ReplayError> {
    let prefix = cache.prefix().to_owned();
    let mut hashes: BTreeMap<&ResourceId, Vec<(String, String)>> = BTreeMap::new();
    for row in model.resources() {
        hashes
            .entry(&row.resource_id)
            .or_default()
            .push((format::DEFINITION_FIELD.to_owned(), format::definition_value(row)));
    }
    for row in model.slots() {
        hashes.entry(&row.resource_id).or_default().push(format::slot_field(row));
    }
    let conn = cache.redis().conn().await?;
    futures::stream::iter(hashes)
        .map(|(resource, fields)| {
            let mut conn = conn.clone();
            let key = format::availability_key(&prefix, resource);
            async move {
                let mut command = redis::cmd("HSET");
                command.arg(key);
                for (field, value) in fields {
                    command.arg(field).arg(value);
                }
                command.query_async::<i64>(&mut conn).await.map(|_| ())
            }
        })
        .buffer_unordered(CONCURRENT)
        .try_collect::<Vec<()>>()
        .await?;
    if !next.is_empty() {
        let mut command = redis::cmd("HSET");
        command.arg(format::positions_key(&prefix));
        for (partition, offset) in next {
            command.arg(partition).arg(offset);
        }
        command.query_async::<i64>(&mut conn.clone()).await?;
    }
    Ok(())
}

/// Points readers at `generation` and announces it.
///
/// # Errors
/// When Redis fails.
pub async fn point(cache: &Cache, base: &str, generation: i64) -> Result<(), ReplayError> {
    let mut conn = cache.redis().conn().await?;
    let () =
        redis::cmd("SET").arg(format::generation_key(base)).arg(generation).query_async(&mut conn).await?;
    let _: i64 = redis::cmd("PUBLISH")
        .arg(format::generation_channel(base))
        .arg(generation)
        .query_async(&mut conn)
        .await?;
    Ok(())
}

/// The live generation Redis readers follow (0 when never switched).
///
/// # Errors
/// When Redis fails.
pub async fn pointed(cache: &Cache, base: &str) -> Result<i64, ReplayError> {
    let mut conn = cache.redis().conn().await?;
    let value: Option<i64> =
        redis::cmd("GET").arg(format::generation_key(base)).query_async(&mut conn).await?;
    Ok(value.unwrap_or(0))
}

/// Deletes generation `generation`'s availability hashes and positions (single Redis only:
/// a cluster would need a SCAN per node; there the keys are left and reported).
///
/// # Errors
/// When Redis fails.
pub async fn remove(cache: &Cache, cluster: bool) -> Result<u64, ReplayError> {
    let prefix = cache.prefix().to_owned();
    if cluster {
        tracing::warn!(%prefix, "previous generation's keys left in place (no SCAN across a cluster); delete them by hand");
        return Ok(0);
    }
    let mut conn = cache.redis().conn().await?;
    let mut cursor: u64 = 0;
    let mut removed = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}avail:*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await?;
        if !keys.is_empty() {
            removed += redis::cmd("UNLINK").arg(&keys).query_async::<u64>(&mut conn).await?;
        }
        if next == 0 {
            break;
        }
        cursor = next;
    }
    removed += redis::cmd("UNLINK").arg(format::positions_key(&prefix)).query_async::<u64>(&mut conn).await?;
    Ok(removed)
}
