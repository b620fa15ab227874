//! Consistent reads of one partition's availability, for refilling the Redis cache: every
//! resource and slot row changed at or after an offset, together with the partition's stored
//! next offset, from one snapshot.

use sqlx::PgPool;

use super::StoreError;
use super::generation::{self, Hold};
use super::rows::{self, RESOURCE_COLUMNS};
use crate::model::{ResourceRow, SlotRow};

/// A partition's availability rows as of `next_offset`.
#[derive(Debug, Clone, Default)]
pub struct PartitionSnapshot {
    /// The generation the rows were read from.
    pub generation: i64,
    /// The stored next offset of the partition when the rows were read.
    pub next_offset: i64,
    /// Resource rows of the partition changed at or after the requested offset.
    pub resources: Vec<ResourceRow>,
    /// Slot rows of the partition's resources changed at or after the requested offset.
    pub slots: Vec<SlotRow>,
}

/// Rows of `partition` with `version >= since` in the live generation, read in one
/// repeatable-read transaction.
///
/// # Errors
/// When PostgreSQL fails or a row is corrupt.
pub async fn partition_since(
    pool: &PgPool,
    topic: &str,
    partition: i32,
    since: i64,
) -> Result<PartitionSnapshot, StoreError> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY").execute(&mut *tx).await?;
    let live = generation::enter(&mut tx, Hold::Read).await?;
    let next_offset: Option<i64> =
        sqlx::query_scalar("SELECT next_offset FROM projection_offsets WHERE topic = $1 AND partition = $2")
            .bind(topic)
            .bind(partition)
            .fetch_optional(&mut *tx)
            .await?;
    let sql = format!("SELECT {RESOURCE_COLUMNS} FROM resources WHERE partition = $1 AND version >= $2");
    let resources = sqlx::query(&sql).bind(partition).bind(since).fetch_all(&mut *tx).await?;
    let slots = sqlx::query(
        "SELECT a.resource_id, a.slot, a.capacity, a.held, a.confirmed, a.version
         FROM availability AS a JOIN resources AS r ON r.resource_id = a.resource_id
         WHERE r.partition = $1 AND a.version >= $2",
    )
    .bind(partition)
    .bind(since)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(PartitionSnapshot {
        generation: live.number,
        next_offset: next_offset.unwrap_or(0),
        resources: resources.iter().map(rows::resource).collect::<Result<_, _>>()?,
        slots: slots.iter().map(rows::slot).collect::<Result<_, _>>()?,
    })
}
