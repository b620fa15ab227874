//! What an owner knows about one partition: the state of every resource in it, the recent
//! outcomes (for idempotent retries) and the hold-expiry timers.
//!
//! Everything here is rebuilt from the log on every claim (`restore`), so nothing in it is
//! ever written anywhere else.

use std::collections::{BTreeSet, HashMap, VecDeque};

use holdfast_domain::{ReservationId, ResourceId, ResourceState};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::envelope::Outcome;

/// How long and how many outcomes a partition remembers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory {
    /// Outcomes older than this (by decision time) are forgotten.
    pub window: Duration,
    /// At most this many outcomes are kept; the oldest go first.
    pub capacity: usize,
}

/// The in-memory state of one owned partition.
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionState {
    /// Every resource whose key hashes to this partition and has events.
    pub resources: HashMap<ResourceId, ResourceState>,
    /// Holds to expire, by deadline.
    pub timers: BTreeSet<(OffsetDateTime, ReservationId)>,
    outcomes: RecentOutcomes,
}

impl PartitionState {
    /// An empty partition remembering outcomes as `memory` says.
    #[must_use]
    pub fn new(memory: Memory) -> Self {
        Self {
            resources: HashMap::new(),
            timers: BTreeSet::new(),
            outcomes: RecentOutcomes { memory, order: VecDeque::new(), by_id: HashMap::new() },
        }
    }

    /// The state of `resource`, created empty when the partition has not seen it.
    pub fn resource_mut(&mut self, resource: &ResourceId) -> &mut ResourceState {
        // Looked up before inserting: `entry` would need an owned (allocated) key for every
        // event of a restore, though nearly all of them find their resource.
        if !self.resources.contains_key(resource) {
            self.resources.insert(resource.clone(), ResourceState::new(resource.clone()));
        }
        self.resources.get_mut(resource).expect("inserted above")
    }

    /// Re-arms the expiry timer of every hold in the partition (after a restore).
    pub fn arm_timers(&mut self) {
        self.timers = self
            .resources
            .values()
            .flat_map(|state| state.held_reservations().map(|(id, at)| (at, id)))
            .collect();
    }

    /// Takes the holds whose deadline is at or before `now`.
    pub fn due_timers(&mut self, now: OffsetDateTime) -> Vec<ReservationId> {
        let mut due = Vec::new();
        while self.timers.first().is_some_and(|(at, _)| *at <= now) {
            if let Some((_, id)) = self.timers.pop_first() {
                due.push(id);
            }
        }
        due
    }

    /// The earliest hold deadline in the partition.
    #[must_use]
    pub fn next_deadline(&self) -> Option<OffsetDateTime> {
        self.timers.first().map(|(at, _)| *at)
    }

    /// A remembered outcome of `command_id`.
    #[must_use]
    pub fn outcome(&self, command_id: Uuid) -> Option<&Outcome> {
        self.outcomes.by_id.get(&command_id)
    }

    /// Remembers an outcome (the first one of a command id wins), forgetting those older than
    /// the window and the oldest beyond the capacity.
    pub fn remember(&mut self, outcome: Outcome) {
        self.outcomes.insert(outcome);
    }

    /// Forgets every outcome decided before `horizon`, wherever it stands in the order.
    pub fn forget_before(&mut self, horizon: OffsetDateTime) {
        let RecentOutcomes { order, by_id, .. } = &mut self.outcomes;
        order.retain(|&(at, id)| {
            let keep = at >= horizon;
            if !keep {
                by_id.remove(&id);
            }
            keep
        });
    }

    /// Outcomes remembered.
    #[must_use]
    pub fn remembered(&self) -> usize {
        self.outcomes.by_id.len()
    }

    /// How long and how many outcomes this partition remembers.
    #[must_use]
    pub fn memory(&self) -> Memory {
        self.outcomes.memory
    }
}

/// Outcomes of the last `window`, at most `capacity`, oldest first.
#[derive(Debug, Clone, PartialEq)]
struct RecentOutcomes {
    memory: Memory,
    order: VecDeque<(OffsetDateTime, Uuid)>,
    by_id: HashMap<Uuid, Outcome>,
}

impl RecentOutcomes {
    fn insert(&mut self, outcome: Outcome) {
        if self.memory.capacity == 0 {
            return;
        }
        let horizon = outcome.decided_at - self.memory.window;
        // What aged out goes before the command is looked up: a command decided again after its
        // first outcome aged out is remembered with its new outcome (a fold that began before
        // the first one aged out then keeps what a fold begun later keeps).
        while let Some(&(_, id)) = self.order.front().filter(|(at, _)| *at < horizon) {
            self.order.pop_front();
            self.by_id.remove(&id);
        }
        if self.by_id.contains_key(&outcome.command_id) {
            return;
        }
        while let Some(&(at, id)) = self.order.front() {
            if at >= horizon && self.order.len() < self.memory.capacity {
                break;
            }
            self.order.pop_front();
            self.by_id.remove(&id);
        }
        self.order.push_back((outcome.decided_at, outcome.command_id));
        self.by_id.insert(outcome.command_id, outcome);
    }
}

#[cfg(test)]
mod tests {
    use holdfast_domain::Rejection;

    use super::*;
    use crate::envelope::{FORMAT_VERSION, Position, Verdict};

    fn outcome(n: u128, at: OffsetDateTime) -> Outcome {
        let resource_id = ResourceId::parse("room-1").expect("valid");
        Outcome {
            v: FORMAT_VERSION,
            command_id: Uuid::from_u128(n),
            resource_id: resource_id.clone(),
            command: "place-hold".into(),
            verdict: Verdict::Rejected { rejection: Rejection::UnknownResource { resource_id } },
            position: Position { partition: 0, next_offset: 1 },
            decided_at: at,
            fingerprint: 1,
            principal: None,
        }
    }

    #[test]
    fn outcomes_are_bounded_by_count_and_by_age() {
        let start = OffsetDateTime::UNIX_EPOCH;
        let mut state = PartitionState::new(Memory { window: Duration::minutes(10), capacity: 3 });
        for n in 0..5 {
            state.remember(outcome(n, start + Duration::seconds(i64::try_from(n).expect("small"))));
        }
        assert_eq!(state.remembered(), 3, "the count bound");
        assert!(state.outcome(Uuid::from_u128(1)).is_none() && state.outcome(Uuid::from_u128(4)).is_some());
        state.remember(outcome(9, start + Duration::minutes(20)));
        assert_eq!(state.remembered(), 1, "everything older than the window is gone");
        let mut none = PartitionState::new(Memory { window: Duration::minutes(10), capacity: 0 });
        none.remember(outcome(1, start));
        assert_eq!(none.remembered(), 0);
    }
}
