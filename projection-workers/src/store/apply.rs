//! One batch into one shard, in one transaction: lock the partitions' offset rows, drop the
//! events already applied, load the rows the rest need, fold, write the changed rows and the
//! new positions (offsets with the reader rule's tenure), commit.

use std::collections::HashMap;

use holdfast_domain::Event;
use holdfast_tenure::Tenure;
use sqlx::PgPool;

use super::generation::{self, Hold};
use super::offsets::Position;
use super::{StoreError, offsets, rows, write};
use crate::model::{Changes, EventPosition, Needs, ReadModel};

/// A decoded event and where it sits in the log.
#[derive(Debug, Clone)]
pub struct Positioned {
    /// Partition and offset.
    pub position: EventPosition,
    /// The event.
    pub event: Event,
}

/// What a committed batch did to one shard.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    /// Rows changed (what the cache must mirror).
    pub changes: Changes,
    /// Per partition: the stored next offset before the batch and after it. Events in
    /// `[from, to)` are in the read model now.
    pub offsets: Vec<PartitionAdvance>,
    /// Events folded.
    pub applied: usize,
    /// Events skipped because an earlier transaction had applied them.
    pub skipped: usize,
    /// The generation the batch was applied to (its Redis key prefix follows from it).
    pub generation: i64,
    /// Per partition of `offsets`: the reader rule's tenure stored at its new next offset
    /// (`to`). The batch's own where it moved the partition; the stored one where another
    /// transaction had moved it further already.
    pub tenures: HashMap<i32, Option<Tenure>>,
}

/// How far one partition moved in a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionAdvance {
    /// The partition.
    pub partition: i32,
    /// Stored next offset before the batch.
    pub from: i64,
    /// Stored next offset after it (at least `from`).
    pub to: i64,
}

/// Applies `events` (in log order within each partition) and moves each partition of `ends`
/// to its position (next offset and the reader rule's tenure there), all in one transaction on
/// `pool`.
///
/// `ends` must name every partition of `events`; a partition may be named without events
/// (its records were claims, rejections, void or dead-lettered). `expected` is the
/// generation the caller positioned its partitions under; when another one is live now,
/// nothing is applied ([`StoreError::GenerationChanged`]).
///
/// # Errors
/// When PostgreSQL fails (nothing was applied), a loaded row is corrupt, or the generation
/// changed.
#[tracing::instrument(skip_all, fields(events = events.len(), partitions = ends.len()), err(level = "warn"))]
pub async fn apply_batch(
    pool: &PgPool,
    topic: &str,
    events: &[Positioned],
    ends: &[(i32, Position)],
    expected: Option<i64>,
) -> Result<Applied, StoreError> {
    let mut tx = pool.begin().await?;
    let live = generation::enter(&mut tx, Hold::Write).await?;
    if let Some(expected) = expected.filter(|e| *e != live.number) {
        return Err(StoreError::GenerationChanged { expected, current: live.number });
    }
    let partitions: Vec<i32> = ends.iter().map(|(p, _)| *p).collect();
    let stored = offsets::lock(&mut tx, topic, &partitions).await?;
    let start = |partition: i32| stored.get(&partition).map_or(0, |p| p.next_offset);
    let fresh: Vec<&Positioned> =
        events.iter().filter(|e| e.position.offset >= start(e.position.partition)).collect();

    let mut needs = Needs::of(fresh.iter().map(|e| &e.event));
    let reservations = rows::reservations(&mut tx, &needs.reservations).await?;
    needs.add_reservation_slots(&reservations);
    let resources = rows::resources(&mut tx, &needs.resources).await?;
    let slots = rows::slots(&mut tx, &needs.slots).await?;
    let mut model = ReadModel::from_rows(resources, slots, reservations);
    for event in &fresh {
        model.apply(&event.event, event.position);
    }
    let changes = model.take_changes();
    write::changes(&mut tx, &changes).await?;

    let mut advances: Vec<PartitionAdvance> = Vec::with_capacity(ends.len());
    let mut tenures: HashMap<i32, Option<Tenure>> = HashMap::with_capacity(ends.len());
    let mut moved: Vec<(i32, Position)> = Vec::new();
    for &(partition, end) in ends {
        let before = stored.get(&partition).copied().unwrap_or_default();
        if end.next_offset > before.next_offset {
            moved.push((partition, end));
        }
        // Where another transaction got further, its position stands (the rule's state is a
        // function of the log, so both agree where they overlap).
        let after = if end.next_offset > before.next_offset { end } else { before };
        advances.push(PartitionAdvance { partition, from: before.next_offset, to: after.next_offset });
        tenures.insert(partition, after.tenure);
    }
    if !moved.is_empty() {
        offsets::advance(&mut tx, topic, &moved).await?;
    }
    tx.commit().await?;
    Ok(Applied {
        changes,
        offsets: advances,
        applied: fresh.len(),
        skipped: events.len() - fresh.len(),
        generation: live.number,
        tenures,
    })
}

/// The stored next offsets of the partitions in `advances`, as a map.
#[must_use]
pub fn ends_of(advances: &[PartitionAdvance]) -> HashMap<i32, i64> {
    advances.iter().map(|a| (a.partition, a.to)).collect()
}
