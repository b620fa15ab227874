//! [`Owners`]: the lanes of the partitions this instance was assigned, shared by the HTTP side
//! (which hands a command straight to the lane of its partition) and the group member (which
//! starts and closes lanes as the assignment changes).

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

use crate::lane::LaneHandle;

/// The lanes by partition.
#[derive(Debug, Default)]
pub struct Owners {
    lanes: RwLock<HashMap<i32, LaneHandle>>,
}

impl Owners {
    /// The lane of `partition`, if this instance has one and it takes commands.
    #[must_use]
    pub fn ready(&self, partition: i32) -> Option<LaneHandle> {
        self.read().get(&partition).filter(|lane| lane.is_ready()).cloned()
    }

    /// The lane of `partition`, ready or not.
    #[must_use]
    pub fn get(&self, partition: i32) -> Option<LaneHandle> {
        self.read().get(&partition).cloned()
    }

    /// Records the lane of `partition`.
    pub fn insert(&self, partition: i32, lane: LaneHandle) {
        self.write().insert(partition, lane);
    }

    /// Forgets the lane of `partition`, returning it.
    pub fn remove(&self, partition: i32) -> Option<LaneHandle> {
        self.write().remove(&partition)
    }

    /// Every lane.
    #[must_use]
    pub fn all(&self) -> Vec<(i32, LaneHandle)> {
        self.read().iter().map(|(p, lane)| (*p, lane.clone())).collect()
    }

    /// Whether every lane has claimed and restored its partition.
    #[must_use]
    pub fn all_ready(&self) -> bool {
        self.read().values().all(LaneHandle::is_ready)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<i32, LaneHandle>> {
        // A poisoned lock only means a panic elsewhere while holding it; every update is a
        // single insert or remove, so the map is consistent.
        self.lanes.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<i32, LaneHandle>> {
        self.lanes.write().unwrap_or_else(PoisonError::into_inner)
    }
}
