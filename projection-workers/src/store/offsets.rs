//! `projection_offsets`: how far the read model of each shard has come in each partition, and
//! the reader rule's state there.
//!
//! The row of a partition is the guard that makes the projection exactly-once: a batch locks
//! the rows of its partitions first, skips every event below the stored next offset (another
//! worker, or an earlier attempt of this one, applied it already) and advances the rows in the
//! same transaction as its effects. Beside the offset the row holds the tenure the reader rule
//! had reached there (`holdfast_tenure::ReaderRule::tenure`): a reader that starts at a stored
//! offset must judge the next record exactly as a reader coming from the partition's
//! beginning would, and the tenure is all the rule remembers.

use std::collections::HashMap;

use holdfast_tenure::{ReaderRule, Tenure, Token};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::StoreError;
use super::generation::{self, Generation, Hold};

/// Where the projection stands in one partition.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Position {
    /// Every record before this offset is judged, and applied if it counts.
    pub next_offset: i64,
    /// The reader rule's tenure after the records before `next_offset` (`None`: no claim yet).
    pub tenure: Option<Tenure>,
}

impl Position {
    /// The position at `next_offset` with the tenure `rule` has reached.
    #[must_use]
    pub fn new(next_offset: i64, rule: &ReaderRule) -> Self {
        Self { next_offset, tenure: rule.tenure() }
    }

    /// The reader rule as it stands at this position, to judge the records from it on.
    #[must_use]
    pub fn rule(&self) -> ReaderRule {
        ReaderRule::resume(self.tenure)
    }

    /// The tenure as its two columns (`tenure_token`, `tenure_next_seq`).
    #[must_use]
    pub fn tenure_columns(&self) -> (Option<Uuid>, Option<i64>) {
        match self.tenure {
            Some(tenure) => (Some(tenure.token.0), Some(i64::try_from(tenure.next_seq).unwrap_or(i64::MAX))),
            None => (None, None),
        }
    }
}

/// A stored row: partition, next offset, tenure token, tenure's next sequence number.
pub(crate) type PositionRow = (i32, i64, Option<Uuid>, Option<i64>);

/// The columns of [`PositionRow`], in order.
pub(crate) const POSITION_COLUMNS: &str = "partition, next_offset, tenure_token, tenure_next_seq";

/// A stored row as a position.
///
/// # Errors
/// [`StoreError::Corrupt`] when only one of the tenure columns is set or the sequence number
/// is negative (the table's constraints refuse both).
pub(crate) fn position_of(row: PositionRow) -> Result<(i32, Position), StoreError> {
    let (partition, next_offset, token, next_seq) = row;
    let tenure = match (token, next_seq) {
        (None, None) => None,
        (Some(token), Some(next_seq)) => Some(Tenure {
            token: Token(token),
            next_seq: u64::try_from(next_seq).map_err(|_| StoreError::Corrupt {
                table: "projection_offsets",
                detail: format!("partition {partition}: negative tenure_next_seq {next_seq}"),
            })?,
        }),
        _ => {
            return Err(StoreError::Corrupt {
                table: "projection_offsets",
                detail: format!(
                    "partition {partition}: tenure_token and tenure_next_seq must be set together"
                ),
            });
        }
    };
    Ok((partition, Position { next_offset, tenure }))
}

fn positions_of(rows: Vec<PositionRow>) -> Result<HashMap<i32, Position>, StoreError> {
    rows.into_iter().map(position_of).collect()
}

/// Locks the offset rows of `partitions` (creating missing ones at 0, no tenure) and returns
/// their positions. Rows are created and locked in partition order, so concurrent batches over
/// overlapping partitions queue instead of deadlocking.
///
/// # Errors
/// When PostgreSQL fails or a row is corrupt.
pub async fn lock(
    conn: &mut PgConnection,
    topic: &str,
    partitions: &[i32],
) -> Result<HashMap<i32, Position>, StoreError> {
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
    let rows: Vec<PositionRow> = sqlx::query_as(&format!(
        "SELECT {POSITION_COLUMNS} FROM projection_offsets
         WHERE topic = $1 AND partition = ANY($2) ORDER BY partition FOR UPDATE"
    ))
    .bind(topic)
    .bind(&sorted)
    .fetch_all(&mut *conn)
    .await?;
    positions_of(rows)
}

/// Moves the offset rows forward to `next` with their tenures (never backwards: a row already
/// at or past its new offset keeps its offset and tenure).
///
/// # Errors
/// When PostgreSQL fails.
pub async fn advance(
    conn: &mut PgConnection,
    topic: &str,
    next: &[(i32, Position)],
) -> Result<(), sqlx::Error> {
    let partitions: Vec<i32> = next.iter().map(|(p, _)| *p).collect();
    let offsets: Vec<i64> = next.iter().map(|(_, position)| position.next_offset).collect();
    let (tokens, seqs): (Vec<Option<Uuid>>, Vec<Option<i64>>) =
        next.iter().map(|(_, position)| position.tenure_columns()).unzip();
    sqlx::query(
        "UPDATE projection_offsets AS o
         SET next_offset = u.next_offset, tenure_token = u.tenure_token,
             tenure_next_seq = u.tenure_next_seq, updated_at = now()
         FROM UNNEST($2::int[], $3::bigint[], $4::uuid[], $5::bigint[])
              AS u(partition, next_offset, tenure_token, tenure_next_seq)
         WHERE o.topic = $1 AND o.partition = u.partition AND o.next_offset < u.next_offset",
    )
    .bind(topic)
    .bind(&partitions)
    .bind(&offsets)
    .bind(&tokens)
    .bind(&seqs)
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

/// The live generation and, in it, the stored positions of `partitions` (offset 0 and no
/// tenure for partitions never applied), read from one snapshot: where a worker seeks on
/// assignment, and how its reader rule resumes there.
///
/// # Errors
/// When PostgreSQL fails or a row is corrupt.
pub async fn read_live(
    pool: &PgPool,
    topic: &str,
    partitions: &[i32],
) -> Result<(Generation, HashMap<i32, Position>), StoreError> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY").execute(&mut *tx).await?;
    let live = generation::enter(&mut tx, Hold::Read).await?;
    let rows: Vec<PositionRow> = sqlx::query_as(&format!(
        "SELECT {POSITION_COLUMNS} FROM projection_offsets WHERE topic = $1 AND partition = ANY($2)"
    ))
    .bind(topic)
    .bind(partitions)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    let stored = positions_of(rows)?;
    Ok((live, partitions.iter().map(|p| (*p, stored.get(p).copied().unwrap_or_default())).collect()))
}

/// Every stored position of `topic` in the tables the connection's `search_path` finds
/// (inside the caller's transaction: a verification's snapshot, a rebuild's shadow).
///
/// # Errors
/// When PostgreSQL fails or a row is corrupt.
pub async fn all(conn: &mut PgConnection, topic: &str) -> Result<HashMap<i32, Position>, StoreError> {
    let rows: Vec<PositionRow> =
        sqlx::query_as(&format!("SELECT {POSITION_COLUMNS} FROM projection_offsets WHERE topic = $1"))
            .bind(topic)
            .fetch_all(conn)
            .await?;
    positions_of(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_round_trip_through_their_columns() {
        let token = Token(Uuid::from_u128(9));
        for position in [
            Position { next_offset: 0, tenure: None },
            Position { next_offset: 12, tenure: Some(Tenure { token, next_seq: 0 }) },
            Position { next_offset: 40, tenure: Some(Tenure { token, next_seq: 27 }) },
        ] {
            let (token, seq) = position.tenure_columns();
            let (partition, back) = position_of((3, position.next_offset, token, seq)).expect("valid row");
            assert_eq!((partition, back), (3, position));
            assert_eq!(back.rule().tenure(), position.tenure);
        }
    }

    #[test]
    fn half_a_tenure_or_a_negative_sequence_is_corrupt() {
        let token = Some(Uuid::from_u128(9));
        assert!(position_of((0, 5, token, None)).is_err());
        assert!(position_of((0, 5, None, Some(1))).is_err());
        assert!(position_of((0, 5, token, Some(-1))).is_err());
    }
}
