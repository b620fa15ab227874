//! The events consumer's context: assignment changes and statistics.
//!
//! Newly assigned partitions are paused inside the rebalance callback, before any of their
//! records can be fetched, and handed to the worker loop, which seeks them to the offsets
//! stored in PostgreSQL and only then resumes them. Revocations are handed over too. The
//! statistics callback feeds each partition's last stable offset into [`Progress`].

use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};

use rdkafka::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::statistics::Statistics;

use super::progress::Progress;

/// What changed in the assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssignmentChange {
    /// These partitions are ours now (paused until positioned).
    Assigned(Vec<i32>),
    /// These partitions are no longer ours.
    Revoked(Vec<i32>),
}

/// Consumer context of a projection worker.
#[derive(Debug)]
pub struct Hook {
    changes: Mutex<Sender<AssignmentChange>>,
    progress: Arc<Progress>,
    topic: String,
}

impl Hook {
    /// Forwards changes to `changes` and ends of `topic`'s partitions to `progress`.
    #[must_use]
    pub fn new(changes: Sender<AssignmentChange>, progress: Arc<Progress>, topic: String) -> Self {
        Self { changes: Mutex::new(changes), progress, topic }
    }

    fn send(&self, change: AssignmentChange) {
        if let Ok(sender) = self.changes.lock() {
            let _ = sender.send(change);
        }
    }
}

impl ClientContext for Hook {
    fn stats(&self, statistics: Statistics) {
        let Some(topic) = statistics.topics.get(&self.topic) else { return };
        // Partition -1 is librdkafka's "unassigned" bucket.
        let ends = topic.partitions.values().filter(|p| p.partition >= 0).map(|p| (p.partition, p.ls_offset));
        self.progress.ends(ends);
    }
}

impl ConsumerContext for Hook {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(list) = rebalance {
            let partitions: Vec<i32> = list.elements().iter().map(|e| e.partition()).collect();
            tracing::info!(?partitions, "partitions revoked");
            self.progress.revoked(&partitions);
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
                self.progress.assigned(&partitions);
                self.send(AssignmentChange::Assigned(partitions));
            }
            Rebalance::Revoke(_) => {}
            Rebalance::Error(error) => tracing::warn!(%error, "rebalance error"),
        }
    }
}
