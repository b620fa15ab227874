//! The commands consumer's rebalance hook. Newly assigned partitions are paused inside the
//! callback, before any of their records can be fetched, and handed to the group member's
//! loop, which starts their lanes (claim, restore) and resumes them only once a lane is ready.
//! Revocations are handed over too, so the loop closes their lanes.

use std::sync::Mutex;
use std::sync::mpsc::Sender;

use rdkafka::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};

/// What changed in the assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssignmentChange {
    /// These partitions are ours now (paused until restored).
    Assigned(Vec<i32>),
    /// These partitions are no longer ours.
    Revoked(Vec<i32>),
}

/// Consumer context forwarding assignment changes to the processor loop.
#[derive(Debug)]
pub struct RebalanceHook {
    changes: Mutex<Sender<AssignmentChange>>,
}

impl RebalanceHook {
    /// Forwards changes to `changes`.
    #[must_use]
    pub fn new(changes: Sender<AssignmentChange>) -> Self {
        Self { changes: Mutex::new(changes) }
    }

    fn send(&self, change: AssignmentChange) {
        if let Ok(sender) = self.changes.lock() {
            let _ = sender.send(change);
        }
    }
}

impl ClientContext for RebalanceHook {}

impl ConsumerContext for RebalanceHook {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(list) = rebalance {
            let partitions: Vec<i32> = list.elements().iter().map(|e| e.partition()).collect();
            tracing::info!(?partitions, "partitions revoked");
            self.send(AssignmentChange::Revoked(partitions));
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(list) => {
                if let Err(error) = consumer.pause(list) {
                    tracing::error!(%error, "cannot pause newly assigned partitions");
                }
                let partitions: Vec<i32> = list.elements().iter().map(|e| e.partition()).collect();
                tracing::info!(?partitions, "partitions assigned");
                self.send(AssignmentChange::Assigned(partitions));
            }
            Rebalance::Revoke(_) => {}
            Rebalance::Error(error) => tracing::warn!(%error, "rebalance error"),
        }
    }
}
