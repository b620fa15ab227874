//! The HTTP side of the command path: sends a command to the partition that owns its
//! resource and waits, bounded, for its committed outcome.
//!
//! Outcomes reach the [`Dispatcher`] in-process from this instance's partition processors
//! (right after their transaction commits) and from the replies topic for commands decided
//! by other instances. Recent outcomes are kept so that a retry with the same idempotency key
//! is answered without a second decision, and so that a caller who got `202 Accepted` can poll.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::envelope::{CommandEnvelope, Outcome};
use crate::metrics::Metrics;

/// Why a command has no outcome to show (yet).
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The command was handed to its partition but not decided within the wait; the caller
    /// should poll `/v1/commands/{command_id}` (or retry with the same idempotency key).
    #[error("command {command_id} accepted but not decided yet")]
    Pending {
        /// The command to poll for.
        command_id: Uuid,
    },
    /// The command could not be handed to Kafka; nothing was decided. Retry later.
    #[error("commands cannot be accepted right now: {0}")]
    Unavailable(String),
}

type Waiters = HashMap<Uuid, Vec<oneshot::Sender<Arc<Outcome>>>>;

/// Sends commands and matches outcomes to the callers waiting for them.
pub struct Dispatcher {
    producer: FutureProducer,
    commands_topic: String,
    wait: Duration,
    waiters: Mutex<Waiters>,
    recent: Mutex<RecentOutcomes>,
    metrics: Metrics,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher").field("commands_topic", &self.commands_topic).finish_non_exhaustive()
    }
}

impl Dispatcher {
    /// A dispatcher producing to `commands_topic` that waits up to `wait` for outcomes and
    /// remembers the last `remember` outcomes.
    #[must_use]
    pub fn new(
        producer: FutureProducer,
        commands_topic: String,
        wait: Duration,
        remember: usize,
        metrics: Metrics,
    ) -> Self {
        Self {
            producer,
            commands_topic,
            wait,
            waiters: Mutex::new(HashMap::new()),
            recent: Mutex::new(RecentOutcomes::new(remember)),
            metrics,
        }
    }

    /// Sends `envelope` to its partition and waits for the committed outcome.
    ///
    /// # Errors
    /// [`SubmitError::Pending`] when the outcome takes longer than the wait,
    /// [`SubmitError::Unavailable`] when Kafka does not take the command.
    pub async fn submit(&self, envelope: &CommandEnvelope) -> Result<Arc<Outcome>, SubmitError> {
        let command_id = envelope.meta.command_id;
        if let Some(known) = self.outcome(command_id) {
            return Ok(known);
        }
        let (sender, receiver) = oneshot::channel();
        lock(&self.waiters).entry(command_id).or_default().push(sender);
        let _in_flight = self.metrics.in_flight.guard();

        // One deadline for queueing the command and waiting for its outcome, so a slow
        // produce cannot stretch the request past the wait (and into the request timeout).
        let deadline = tokio::time::Instant::now() + self.wait;
        let payload = serde_json::to_vec(envelope).map_err(|e| SubmitError::Unavailable(e.to_string()))?;
        let key = envelope.command.resource_id().as_str();
        let record = FutureRecord::to(&self.commands_topic).key(key).payload(&payload);
        match tokio::time::timeout_at(deadline, self.producer.send(record, self.wait)).await {
            Ok(Ok(_)) => {}
            Ok(Err((error, _))) => {
                self.forget_closed(command_id);
                return Err(SubmitError::Unavailable(error.to_string()));
            }
            // Still being delivered: it may yet be decided, so the caller polls for it.
            Err(_) => {
                self.forget_closed(command_id);
                return Err(SubmitError::Pending { command_id });
            }
        }
        match tokio::time::timeout_at(deadline, receiver).await {
            Ok(Ok(outcome)) => Ok(outcome),
            Ok(Err(_)) | Err(_) => {
                self.forget_closed(command_id);
                // The outcome may have landed between the timeout and now.
                self.outcome(command_id).ok_or(SubmitError::Pending { command_id })
            }
        }
    }

    /// Records a committed outcome and wakes everyone waiting for it.
    pub fn resolve(&self, outcome: Outcome) {
        let outcome = Arc::new(outcome);
        // A refused reuse of a key must not replace the outcome the key's owner will retry for.
        if !matches!(outcome.verdict, crate::envelope::Verdict::KeyReused) {
            lock(&self.recent).insert(Arc::clone(&outcome));
        }
        if let Some(senders) = lock(&self.waiters).remove(&outcome.command_id) {
            for sender in senders {
                let _ = sender.send(Arc::clone(&outcome));
            }
        }
    }

    /// The outcome of a recent command, if this instance has seen it.
    #[must_use]
    pub fn outcome(&self, command_id: Uuid) -> Option<Arc<Outcome>> {
        lock(&self.recent).get(command_id)
    }

    /// Drops waiters whose callers have gone.
    fn forget_closed(&self, command_id: Uuid) {
        let mut waiters = lock(&self.waiters);
        if let Some(senders) = waiters.get_mut(&command_id) {
            senders.retain(|sender| !sender.is_closed());
            if senders.is_empty() {
                waiters.remove(&command_id);
            }
        }
    }
}

/// A poisoned lock only means another thread panicked while holding it; the maps inside
/// stay consistent (every update is a single insert or remove), so keep going.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The last `capacity` outcomes, oldest evicted first.
struct RecentOutcomes {
    capacity: usize,
    order: VecDeque<Uuid>,
    by_id: HashMap<Uuid, Arc<Outcome>>,
}

impl RecentOutcomes {
    fn new(capacity: usize) -> Self {
        Self { capacity: capacity.max(1), order: VecDeque::new(), by_id: HashMap::new() }
    }

    fn insert(&mut self, outcome: Arc<Outcome>) {
        if self.by_id.insert(outcome.command_id, Arc::clone(&outcome)).is_none() {
            self.order.push_back(outcome.command_id);
        }
        while self.order.len() > self.capacity {
            if let Some(oldest) = self.order.pop_front() {
                self.by_id.remove(&oldest);
            }
        }
    }

    fn get(&self, command_id: Uuid) -> Option<Arc<Outcome>> {
        self.by_id.get(&command_id).cloned()
    }
}
