//! The HTTP side of the command path: hands a command to the lane that owns its partition when
//! that lane runs in this instance, and otherwise queues it on the commands topic for the
//! partition's owner and waits, bounded, for the outcome on this instance's replies partition.
//!
//! Recent outcomes are kept so that a retry with the same idempotency key is answered without
//! a second decision, and so that a caller who got `202 Accepted` can poll.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use holdfast_platform::partitioner::partition_for;
use holdfast_platform::producer::Producer;
use rdkafka::producer::FutureRecord;
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::envelope::{CommandEnvelope, Outcome};
use crate::lane::core::Answer;
use crate::lane::{Caller, Reply};
use crate::metrics::Metrics;
use crate::owners::Owners;

/// Why a command has no outcome to show (yet).
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The command sits in the commands topic (acknowledged by Kafka) but was not decided
    /// within the wait; the caller should poll `/v1/commands/{command_id}` (or retry with the
    /// same idempotency key).
    #[error("command {command_id} accepted but not decided yet")]
    Pending {
        /// The command to poll for.
        command_id: Uuid,
    },
    /// The command may or may not have been decided: its append failed or is unclear, its
    /// owner was fenced, or the wait ended before the decision was confirmed. The caller
    /// retries with the same idempotency key and gets the outcome if there is one.
    #[error("the decision of command {command_id} could not be confirmed")]
    Undecided {
        /// The command.
        command_id: Uuid,
    },
    /// The command could not be handed to Kafka; nothing was decided. Retry later.
    #[error("commands cannot be accepted right now: {0}")]
    Unavailable(String),
}

type Waiters = HashMap<Uuid, Vec<oneshot::Sender<Arc<Outcome>>>>;

/// Where this instance's commands go.
#[derive(Debug, Clone)]
pub struct Route {
    /// The commands topic.
    pub commands_topic: String,
    /// Its partition count (the same as the events topic's).
    pub partitions: i32,
    /// The replies partition this instance follows.
    pub reply_partition: i32,
}

/// Sends commands and matches outcomes to the callers waiting for them.
pub struct Dispatcher {
    producer: Producer,
    route: Route,
    owners: Arc<Owners>,
    wait: Duration,
    waiters: Mutex<Waiters>,
    recent: Mutex<RecentOutcomes>,
    metrics: Metrics,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher").field("route", &self.route).finish_non_exhaustive()
    }
}

impl Dispatcher {
    /// A dispatcher for `route` that hands commands to the lanes in `owners`, produces the others
    /// with `producer`, waits up to `wait` for outcomes and remembers the last `remember`.
    #[must_use]
    pub fn new(
        producer: Producer,
        route: Route,
        owners: Arc<Owners>,
        wait: Duration,
        remember: usize,
        metrics: Metrics,
    ) -> Self {
        Self {
            producer,
            route,
            owners,
            wait,
            waiters: Mutex::new(HashMap::new()),
            recent: Mutex::new(RecentOutcomes::new(remember)),
            metrics,
        }
    }

    /// The replies partition this instance follows.
    #[must_use]
    pub fn reply_partition(&self) -> i32 {
        self.route.reply_partition
    }

    /// The events partition of `envelope`'s resource.
    #[must_use]
    pub fn partition_of(&self, envelope: &CommandEnvelope) -> i32 {
        partition_for(envelope.command.resource_id().as_str().as_bytes(), self.route.partitions)
    }

    /// When a request arriving now must have its answer.
    #[must_use]
    pub fn deadline(&self) -> tokio::time::Instant {
        tokio::time::Instant::now() + self.wait
    }

    /// Decides `envelope` through its partition's owner and waits for the outcome.
    ///
    /// # Errors
    /// See [`SubmitError`].
    pub async fn submit(&self, envelope: &CommandEnvelope) -> Result<Arc<Outcome>, SubmitError> {
        self.submit_by(envelope, self.deadline()).await
    }

    /// Decides `envelope` in this instance's lane when it owns the partition, and otherwise
    /// through the commands topic; waits for the outcome until `deadline`.
    ///
    /// # Errors
    /// See [`SubmitError`].
    pub async fn submit_by(
        &self,
        envelope: &CommandEnvelope,
        deadline: tokio::time::Instant,
    ) -> Result<Arc<Outcome>, SubmitError> {
        if let Some(known) = self.outcome(envelope.meta.command_id) {
            return Ok(known);
        }
        match self.decide_here(envelope, deadline).await {
            Some(answer) => answer,
            None => self.through_topic(envelope, deadline).await,
        }
    }

    /// Decides `envelope` in this instance's lane of its partition and waits for the outcome
    /// until `deadline`; `None` when this instance has no ready lane for the partition, or the
    /// lane gave it up before deciding (nothing was decided here).
    pub async fn decide_here(
        &self,
        envelope: &CommandEnvelope,
        deadline: tokio::time::Instant,
    ) -> Option<Result<Arc<Outcome>, SubmitError>> {
        let command_id = envelope.meta.command_id;
        if let Some(known) = self.outcome(command_id) {
            return Some(Ok(known));
        }
        let lane = self.owners.ready(self.partition_of(envelope))?;
        let _in_flight = self.metrics.in_flight.guard();
        let (reply, answer) = oneshot::channel();
        lane.send(envelope.clone(), Caller::Http(reply)).ok()?;
        match tokio::time::timeout_at(deadline, answer).await {
            Ok(Ok(Reply::Answer(Answer::Decided(outcome)))) => {
                self.remember(&outcome);
                Some(Ok(outcome))
            }
            Ok(Ok(Reply::Answer(Answer::Undecided))) => Some(Err(SubmitError::Undecided { command_id })),
            // Decided in memory, perhaps appended, but not known valid within the wait.
            Err(_) => {
                self.metrics.undecided.inc();
                Some(Err(SubmitError::Undecided { command_id }))
            }
            // The lane gave the partition up before deciding.
            Ok(Ok(Reply::NotOwner) | Err(_)) => None,
        }
    }

    /// Queues the command on the commands topic and waits for its outcome until `deadline`.
    async fn through_topic(
        &self,
        envelope: &CommandEnvelope,
        deadline: tokio::time::Instant,
    ) -> Result<Arc<Outcome>, SubmitError> {
        let command_id = envelope.meta.command_id;
        let _in_flight = self.metrics.in_flight.guard();
        let (sender, receiver) = oneshot::channel();
        lock(&self.waiters).entry(command_id).or_default().push(sender);
        let envelope = CommandEnvelope { reply_to: Some(self.route.reply_partition), ..envelope.clone() };
        let payload = serde_json::to_vec(&envelope).map_err(|e| SubmitError::Unavailable(e.to_string()))?;
        let key = envelope.command.resource_id().as_str();
        let record = FutureRecord::to(&self.route.commands_topic).key(key).payload(&payload);
        match tokio::time::timeout_at(deadline, self.producer.send(record, self.wait)).await {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => {
                self.forget_closed(command_id);
                return Err(SubmitError::Unavailable(error.to_string()));
            }
            // Not acknowledged yet: it may still land and be decided, so this is no 202.
            Err(_) => {
                self.forget_closed(command_id);
                self.metrics.undecided.inc();
                return Err(SubmitError::Undecided { command_id });
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

    /// Records an outcome published by another instance and wakes everyone waiting for it.
    pub fn resolve(&self, outcome: Outcome) {
        let outcome = Arc::new(outcome);
        self.remember(&outcome);
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

    /// Keeps `outcome` for retries and polls (the first outcome of a command id stays).
    pub fn remember(&self, outcome: &Arc<Outcome>) {
        lock(&self.recent).insert(Arc::clone(outcome));
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

    /// Keeps the first outcome of a command id: a later one (a repeat after a move) never
    /// replaces what a caller may already have been told.
    fn insert(&mut self, outcome: Arc<Outcome>) {
        if self.by_id.contains_key(&outcome.command_id) {
            return;
        }
        self.by_id.insert(outcome.command_id, Arc::clone(&outcome));
        self.order.push_back(outcome.command_id);
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
