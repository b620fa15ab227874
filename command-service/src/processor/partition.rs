//! What a processor knows about one partition it owns: the state of every resource in it,
//! the recent outcomes (for idempotent retries), the hold-expiry timers and how far the
//! events partition has come.

use std::collections::{BTreeSet, HashMap, VecDeque};

use holdfast_domain::{ReservationId, ResourceId, ResourceState};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::envelope::Outcome;

/// The in-memory state of one owned partition.
#[derive(Debug)]
pub struct PartitionState {
    /// The partition number (the same in the commands, events and replies topics).
    pub partition: i32,
    /// Every resource whose key hashes to this partition and has events.
    pub resources: HashMap<ResourceId, ResourceState>,
    /// Next offset of the events partition after everything applied to `resources`.
    pub next_event_offset: i64,
    /// Next offset of the commands partition to consume (what the last transaction committed).
    pub next_command_offset: i64,
    /// Holds to expire, by deadline.
    pub timers: BTreeSet<(OffsetDateTime, ReservationId)>,
    outcomes: RecentOutcomes,
}

impl PartitionState {
    /// An empty partition; `window` bounds how long outcomes are remembered.
    #[must_use]
    pub fn new(partition: i32, window: Duration) -> Self {
        Self {
            partition,
            resources: HashMap::new(),
            next_event_offset: 0,
            next_command_offset: 0,
            timers: BTreeSet::new(),
            outcomes: RecentOutcomes { window, order: VecDeque::new(), by_id: HashMap::new() },
        }
    }

    /// The state of `resource`, created empty when the partition has not seen it.
    pub fn resource_mut(&mut self, resource: &ResourceId) -> &mut ResourceState {
        self.resources.entry(resource.clone()).or_insert_with(|| ResourceState::new(resource.clone()))
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
        while let Some(first) = self.timers.first() {
            if first.0 > now {
                break;
            }
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

    /// Remembers a committed outcome (the first one of a command id wins), forgetting those
    /// older than the window.
    pub fn remember(&mut self, outcome: Outcome) {
        self.outcomes.insert(outcome);
    }
}

/// Outcomes of the last `window`, oldest first.
#[derive(Debug)]
struct RecentOutcomes {
    window: Duration,
    order: VecDeque<(OffsetDateTime, Uuid)>,
    by_id: HashMap<Uuid, Outcome>,
}

impl RecentOutcomes {
    fn insert(&mut self, outcome: Outcome) {
        if self.by_id.contains_key(&outcome.command_id) {
            return;
        }
        let horizon = outcome.decided_at - self.window;
        while let Some(&(at, id)) = self.order.front() {
            if at >= horizon {
                break;
            }
            self.order.pop_front();
            self.by_id.remove(&id);
        }
        self.order.push_back((outcome.decided_at, outcome.command_id));
        self.by_id.insert(outcome.command_id, outcome);
    }
}
