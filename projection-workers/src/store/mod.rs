//! The PostgreSQL side of the read model: shards, the offsets table, loading and writing rows.
//!
//! This module owns every SQL statement of the projection. It knows nothing about Kafka:
//! [`apply::apply_batch`] takes decoded events with their positions and applies them in one
//! transaction per shard together with the partitions' next offsets. Writes are set-based
//! (`UNNEST` of arrays, one statement per table per batch), never a statement per event.
//! Every transaction first enters the live generation ([`generation::enter`]).

pub mod apply;
pub mod generation;
pub mod offsets;
pub mod rows;
pub mod snapshot;
pub mod write;

use sqlx::PgPool;

/// Why the read model could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// PostgreSQL failed or is unreachable. Retry: the transaction rolled back, and the
    /// partitions are re-read from the offsets stored in the shard.
    #[error("postgres: {0}")]
    Postgres(#[from] sqlx::Error),
    /// A stored row breaks a domain rule (a hand-edited or corrupt read model). Rebuild the
    /// read model from the log.
    #[error("corrupt read-model row in {table}: {detail}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// A rebuild switched the live generation since the caller positioned its partitions:
    /// nothing was applied. Position the shard's partitions again from the new generation's
    /// offsets, then retry.
    #[error("the read model switched to generation {current} (expected {expected})")]
    GenerationChanged {
        /// The generation the caller positioned under.
        expected: i64,
        /// The live generation now.
        current: i64,
    },
}

/// The read-model shards: partition `p` belongs to shard `p mod n`.
#[derive(Debug, Clone)]
pub struct Shards {
    pools: Vec<PgPool>,
}

impl Shards {
    /// Shards over `pools`, in shard order.
    ///
    /// # Panics
    /// When `pools` is empty (the configuration always has at least one URL).
    #[must_use]
    pub fn new(pools: Vec<PgPool>) -> Self {
        assert!(!pools.is_empty(), "at least one read-model shard");
        Self { pools }
    }

    /// Number of shards.
    #[must_use]
    pub fn len(&self) -> usize {
        self.pools.len()
    }

    /// Always `false`: there is at least one shard.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The shard index of `partition`.
    #[must_use]
    pub fn shard_of(&self, partition: i32) -> usize {
        usize::try_from(partition).unwrap_or(0) % self.pools.len()
    }

    /// The pool of `partition`'s shard.
    #[must_use]
    pub fn for_partition(&self, partition: i32) -> &PgPool {
        &self.pools[self.shard_of(partition)]
    }

    /// The pool of shard `index`.
    #[must_use]
    pub fn pool(&self, index: usize) -> &PgPool {
        &self.pools[index]
    }

    /// Every pool, in shard order.
    #[must_use]
    pub fn pools(&self) -> &[PgPool] {
        &self.pools
    }
}

/// Saturating conversion of a count to the database's `INTEGER`.
pub(crate) fn to_i32(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// A stored count back to `u32`; negative values (refused by the schema) read as zero.
pub(crate) fn to_u32(n: i32) -> u32 {
    u32::try_from(n).unwrap_or(0)
}
