//! `projection_offsets`: how far the read model of each shard has come in each partition.
//!
//! The row of a partition is the guard that makes the projection exactly-once: a batch locks
//! the rows of its partitions first, skips every event below the stored next offset (another
//! worker, or an earlier attempt of this one, applied it already) and advances the rows in the
//! same transaction as its effects.

use std::collections::HashMap;

use sqlx::{PgConnection, PgPool};

use super::generation::{self, Generation, Hold};

/// Locks the offset rows of `partitions` (creating missing ones at 0) and returns their next
/// offsets. Rows are created and locked in partition order, so concurrent batches over
/// overlapping partitions queue instead of deadlocking.
///
/// # Errors
/// When PostgreSQL fails.
pub async fn lock(
    conn: &mut PgConnection,
    topic: &str,
    partitions: &[i32],
) -> Result<HashMap<i32, i64>, sqlx::Error> {
    let mut sorted = partitions.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    sqlx::query(
        "INSERT INTO projection_offsets (topic, partition, next_offset)
         SELECT $1, p, 0 FROM UNNEST($2::int[]) AS p ORDER BY p
         ON CONFLICT (topic, partition) DO NOTHING",
    )
    .bind(topic)
    .bind(&sorted)
    .execute(&mut *conn)
    .await?;
    let rows: Vec<(i32, i64)> = sqlx::query_as(
        "SELECT partition, next_offset FROM projection_offsets
         WHERE topic = $1 AND partition = ANY($2) ORDER BY partition FOR UPDATE",
    )
    .bind(topic)
    .bind(&sorted)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().collect())
}

/// Moves the offset rows forward to `next` (never backwards).
///
/// # Errors
/// When PostgreSQL fails.
pub async fn advance(conn: &mut PgConnection, topic: &str, next: &[(i32, i64)]) -> Result<(), sqlx::Error> {
    let (partitions, offsets): (Vec<i32>, Vec<i64>) = next.iter().copied().unzip();
    sqlx::query(
        "UPDATE projection_offsets AS o SET next_offset = u.next_offset, updated_at = now()
         FROM UNNEST($2::int[], $3::bigint[]) AS u(partition, next_offset)
         WHERE o.topic = $1 AND o.partition = u.partition AND o.next_offset < u.next_offset",
    )
    .bind(topic)
    .bind(&partitions)
    .bind(&offsets)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The stored next offsets of `partitions` (0 for partitions never applied) in the tables the
/// connection's `search_path` finds, without locking. Workers use [`read_live`].
///
/// # Errors
/// When PostgreSQL fails.
pub async fn read(pool: &PgPool, topic: &str, partitions: &[i32]) -> Result<HashMap<i32, i64>, sqlx::Error> {
    let rows: Vec<(i32, i64)> = sqlx::query_as(
        "SELECT partition, next_offset FROM projection_offsets WHERE topic = $1 AND partition = ANY($2)",
    )
    .bind(topic)
    .bind(partitions)
    .fetch_all(pool)
    .await?;
    let stored: HashMap<i32, i64> = rows.into_iter().collect();
    Ok(partitions.iter().map(|p| (*p, stored.get(p).copied().unwrap_or(0))).collect())
}

/// The live generation and, in it, the stored next offsets of `partitions` (0 for partitions
/// never applied), read from one snapshot: where a worker seeks on assignment.
///
/// # Errors
/// When PostgreSQL fails.
pub async fn read_live(
    pool: &PgPool,
    topic: &str,
    partitions: &[i32],
) -> Result<(Generation, HashMap<i32, i64>), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY").execute(&mut *tx).await?;
    let live = generation::enter(&mut tx, Hold::Read).await?;
    let rows: Vec<(i32, i64)> = sqlx::query_as(
        "SELECT partition, next_offset FROM projection_offsets WHERE topic = $1 AND partition = ANY($2)",
    )
    .bind(topic)
    .bind(partitions)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    let stored: HashMap<i32, i64> = rows.into_iter().collect();
    Ok((live, partitions.iter().map(|p| (*p, stored.get(p).copied().unwrap_or(0))).collect()))
}
