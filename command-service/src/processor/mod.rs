//! Partition processors: the single writers of the events topic.
//!
//! One processor per instance runs on a thread of its own (librdkafka's transaction calls
//! block). It is a member of the commands consumer group; for each partition it is assigned
//! it first waits for stable committed offsets (no other writer's transaction is open), then
//! restores the partition's state from the log, then consumes its commands. Each batch of
//! polled commands (plus due hold expiries) is decided in one Kafka transaction carrying the
//! events, the outcomes and the consumed offsets with the group metadata, so a processor
//! whose generation is stale (a zombie) cannot commit anything. Callers are answered only
//! after `commit_transaction` returns. On any failure the transaction is aborted, the touched
//! partitions' in-memory state is dropped and restored again from the log, and their
//! consumers rewind to the committed offsets.

mod batch;
pub mod decision;
pub mod partition;
mod rebalance;
pub mod restore;
pub mod transaction;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use holdfast_platform::codec::EventCodec;
use holdfast_platform::kafka::consumer_config;
use holdfast_platform::topics::TopicLayout;
use holdfast_platform::{KafkaArgs, Shutdown};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::FutureProducer;
use rdkafka::{Offset, TopicPartitionList};
use time::OffsetDateTime;

use crate::dispatch::Dispatcher;
use crate::envelope::CommandEnvelope;
use crate::metrics::Metrics;
use crate::processor::partition::PartitionState;
use crate::processor::rebalance::{AssignmentChange, RebalanceHook};
use crate::processor::restore::Restorer;

/// Settings of a processor.
#[derive(Debug, Clone)]
pub struct ProcessorSettings {
    /// Kafka connection.
    pub kafka: KafkaArgs,
    /// Topic names.
    pub layout: TopicLayout,
    /// Consumer group of the processors.
    pub group_id: String,
    /// This instance's transactional id (stable across restarts of the same instance).
    pub transactional_id: String,
    /// Broker-side transaction timeout.
    pub transaction_timeout: Duration,
    /// Most commands decided in one transaction.
    pub max_batch: usize,
    /// How long outcomes are remembered for idempotent retries.
    pub idempotency_window: time::Duration,
    /// Consumer session timeout (how fast a silent processor loses its partitions).
    pub session_timeout: Duration,
}

/// What the processor shares with the rest of the service.
#[derive(Debug, Clone)]
pub struct ProcessorShared {
    /// The event codec, registered.
    pub codec: Arc<EventCodec>,
    /// Where outcomes go after commit.
    pub dispatcher: Arc<Dispatcher>,
    /// Metrics.
    pub metrics: Metrics,
    /// Set while every assigned partition is restored.
    pub ready: Arc<AtomicBool>,
    /// For the async codec calls made from the processor thread.
    pub runtime: tokio::runtime::Handle,
}

/// Why the processor stopped.
#[derive(Debug, thiserror::Error)]
pub enum ProcessorError {
    /// A Kafka client could not be created or subscribed; check the configuration.
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
}

/// A command taken from the commands topic.
#[derive(Debug)]
struct Polled {
    partition: i32,
    offset: i64,
    envelope: Option<CommandEnvelope>,
}

/// Runs the processor until `shutdown` is cancelled. Blocking: call it on a thread of its own.
///
/// # Errors
/// When the Kafka clients cannot be created.
pub fn run(
    settings: &ProcessorSettings,
    shared: &ProcessorShared,
    shutdown: &Shutdown,
) -> Result<(), ProcessorError> {
    let (changes_tx, changes) = mpsc::channel();
    let mut config = consumer_config(&settings.kafka, &settings.transactional_id, &settings.group_id);
    config
        .set("session.timeout.ms", settings.session_timeout.as_millis().to_string())
        .set("heartbeat.interval.ms", (settings.session_timeout.as_millis() / 4).max(100).to_string())
        .set("max.poll.interval.ms", "300000");
    let consumer: BaseConsumer<RebalanceHook> = config.create_with_context(RebalanceHook::new(changes_tx))?;
    consumer.subscribe(&[settings.layout.commands.as_str()])?;
    let restorer = Restorer::new(
        &settings.kafka,
        &format!("{}-restore", settings.transactional_id),
        settings.layout.events.clone(),
        settings.layout.replies.clone(),
        Arc::clone(&shared.codec),
        shared.runtime.clone(),
        settings.idempotency_window,
    );
    // Two transactional producers taking turns. Right after a commit the coordinator is still
    // writing that transaction's markers; the same producer's next transaction is refused
    // (CONCURRENT_TRANSACTIONS) until they are written, and librdkafka retries only after a
    // fixed 20 ms. The other producer has no transaction in flight, so it starts at once.
    // Turns never overlap: a transaction begins only after the previous one committed, so
    // decisions reach the log in the order they were made. Both carry the group metadata.
    let mut producers = [
        transaction::create(&settings.kafka, &turn_id(settings, 0), settings.transaction_timeout)?,
        transaction::create(&settings.kafka, &turn_id(settings, 1), settings.transaction_timeout)?,
    ];
    let mut turn = 0;
    let mut owned: HashMap<i32, PartitionState> = HashMap::new();
    let mut pending: BTreeSet<i32> = BTreeSet::new();
    // Ready once the group handed us our first assignment (possibly empty) and it is restored;
    // a member left without partitions for long (more replicas than partitions) is ready too.
    let subscribed = Instant::now();
    let mut joined = false;
    // Several processors share the gauge: each adds what it owns.
    let mut reported_owned = 0;

    tracing::info!(group = %settings.group_id, transactional_id = %settings.transactional_id, "processor started");
    while !shutdown.is_cancelled() {
        let mut polled = poll_batch(&consumer, settings.max_batch, poll_timeout(&owned));
        joined |= apply_changes(&changes, &mut owned, &mut pending, &mut polled);
        reported_owned = report_owned(shared, reported_owned, owned.len());
        let settled = joined || subscribed.elapsed() > settings.session_timeout * 3;
        shared.ready.store(settled && pending.is_empty(), Ordering::Release);
        if !pending.is_empty() {
            restore_pending(&consumer, &restorer, settings, shared, &mut owned, &mut pending);
        }
        // Commands of partitions not (yet) ours are left for their owner, or re-read after restore.
        polled.retain(|p| owned.contains_key(&p.partition));
        let expiries = due_expiries(&mut owned);
        if polled.is_empty() && expiries.is_empty() {
            continue;
        }
        let touched: BTreeSet<i32> =
            polled.iter().map(|p| p.partition).chain(expiries.iter().map(|e| e.0)).collect();
        let clients = batch::Clients { producer: &producers[turn], consumer: &consumer, settings, shared };
        let outcome = batch::execute(&clients, &mut owned, &polled, &expiries);
        if let Err(failure) = outcome {
            shared.metrics.aborts.with_label_values(&[failure.reason]).inc();
            tracing::warn!(error = %failure.error, partitions = ?touched, "transaction failed; restoring the touched partitions");
            if failure.recovery == transaction::Recovery::Recreate {
                match recreate_producer(settings, &turn_id(settings, turn), shutdown) {
                    Some(fresh) => producers[turn] = fresh,
                    None => break,
                }
            }
            for partition in touched {
                if owned.remove(&partition).is_some() {
                    pending.insert(partition);
                }
            }
        }
        turn = 1 - turn;
    }
    report_owned(shared, reported_owned, 0);
    tracing::info!("processor stopping");
    consumer.unsubscribe();
    drop(producers);
    Ok(())
}

/// Moves this processor's share of the owned-partitions gauge from `reported` to `owned`.
fn report_owned(shared: &ProcessorShared, reported: i64, owned: usize) -> i64 {
    let owned = i64::try_from(owned).unwrap_or(i64::MAX);
    shared.metrics.owned_partitions.add(owned - reported);
    owned
}

/// Polls up to `max` commands: waits up to `timeout` for the first, then takes what is ready.
fn poll_batch(consumer: &BaseConsumer<RebalanceHook>, max: usize, timeout: Duration) -> Vec<Polled> {
    let mut polled = Vec::new();
    let mut wait = timeout;
    while polled.len() < max {
        match consumer.poll(wait) {
            Some(Ok(message)) => {
                let envelope =
                    message.payload().and_then(|bytes| serde_json::from_slice::<CommandEnvelope>(bytes).ok());
                if envelope.is_none() {
                    tracing::error!(
                        partition = message.partition(),
                        offset = message.offset(),
                        "undecodable command skipped"
                    );
                }
                polled.push(Polled { partition: message.partition(), offset: message.offset(), envelope });
            }
            Some(Err(error)) => {
                tracing::warn!(%error, "commands consumer error");
                break;
            }
            None => break,
        }
        wait = Duration::ZERO;
    }
    polled
}

/// How long to wait for commands: until the next hold deadline, at most 100 ms.
fn poll_timeout(owned: &HashMap<i32, PartitionState>) -> Duration {
    let limit = Duration::from_millis(100);
    let now = OffsetDateTime::now_utc();
    owned
        .values()
        .filter_map(PartitionState::next_deadline)
        .min()
        .map_or(limit, |deadline| Duration::try_from(deadline - now).unwrap_or(Duration::ZERO).min(limit))
}

/// Applies assignment changes reported by the rebalance hook; tells whether any assignment
/// arrived.
fn apply_changes(
    changes: &mpsc::Receiver<AssignmentChange>,
    owned: &mut HashMap<i32, PartitionState>,
    pending: &mut BTreeSet<i32>,
    polled: &mut Vec<Polled>,
) -> bool {
    let mut assigned = false;
    while let Ok(change) = changes.try_recv() {
        match change {
            AssignmentChange::Assigned(partitions) => {
                pending.extend(partitions);
                assigned = true;
            }
            AssignmentChange::Revoked(partitions) => {
                for partition in &partitions {
                    owned.remove(partition);
                    pending.remove(partition);
                }
                polled.retain(|p| !partitions.contains(&p.partition));
            }
        }
    }
    assigned
}

/// Restores pending partitions: stable committed offsets first, then the log, then resume.
fn restore_pending(
    consumer: &BaseConsumer<RebalanceHook>,
    restorer: &Restorer,
    settings: &ProcessorSettings,
    shared: &ProcessorShared,
    owned: &mut HashMap<i32, PartitionState>,
    pending: &mut BTreeSet<i32>,
) {
    let partitions: Vec<i32> = pending.iter().copied().collect();
    let started = Instant::now();
    let committed = match committed_offsets(consumer, &settings.layout.commands, &partitions) {
        Ok(committed) => committed,
        Err(error) => {
            tracing::warn!(%error, "committed offsets not available yet; retrying");
            return;
        }
    };
    let (states, restored) = match restorer.restore(&partitions) {
        Ok(result) => result,
        Err(error) => {
            tracing::warn!(%error, "restore failed; retrying");
            return;
        }
    };
    let mut resume = TopicPartitionList::new();
    for (partition, mut state) in states {
        let next = committed.get(&partition).copied().unwrap_or(0);
        state.next_command_offset = next;
        if let Err(error) =
            consumer.seek(&settings.layout.commands, partition, Offset::Offset(next), Duration::from_secs(10))
        {
            tracing::debug!(partition, %error, "seek before resume failed; the committed offset applies");
        }
        let _ = resume.add_partition(&settings.layout.commands, partition);
        owned.insert(partition, state);
        pending.remove(&partition);
    }
    if let Err(error) = consumer.resume(&resume) {
        tracing::error!(%error, "cannot resume restored partitions");
    }
    let elapsed = started.elapsed();
    shared.metrics.restore_seconds.observe(elapsed.as_secs_f64());
    shared.metrics.restored_events.inc_by(restored.events);
    tracing::info!(
        partitions = partitions.len(),
        events = restored.events,
        outcomes = restored.outcomes,
        undecodable = restored.undecodable,
        ?elapsed,
        "partitions restored"
    );
}

/// The stable committed offsets of `partitions` (librdkafka waits for pending transactional
/// offsets to resolve because the consumer is `read_committed`).
fn committed_offsets(
    consumer: &BaseConsumer<RebalanceHook>,
    topic: &str,
    partitions: &[i32],
) -> Result<HashMap<i32, i64>, KafkaError> {
    let mut list = TopicPartitionList::new();
    for &partition in partitions {
        list.add_partition(topic, partition);
    }
    let committed = consumer.committed_offsets(list, Duration::from_secs(30))?;
    Ok(committed
        .elements()
        .iter()
        .map(|e| (e.partition(), if let Offset::Offset(o) = e.offset() { o } else { 0 }))
        .collect())
}

/// Holds whose deadline has passed, as (partition, reservation) pairs.
fn due_expiries(owned: &mut HashMap<i32, PartitionState>) -> Vec<(i32, holdfast_domain::ReservationId)> {
    let now = OffsetDateTime::now_utc();
    owned
        .iter_mut()
        .flat_map(|(&partition, state)| state.due_timers(now).into_iter().map(move |id| (partition, id)))
        .collect()
}

/// The transactional id of producer `turn` (0 or 1): stable across restarts, so a restarted
/// instance fences both of its predecessor's producers.
fn turn_id(settings: &ProcessorSettings, turn: usize) -> String {
    format!("{}-{}", settings.transactional_id, ["a", "b"][turn])
}

/// Makes a new transactional producer, retrying until it works; `None` on shutdown.
fn recreate_producer(
    settings: &ProcessorSettings,
    transactional_id: &str,
    shutdown: &Shutdown,
) -> Option<FutureProducer> {
    let mut backoff = Duration::from_millis(200);
    loop {
        match transaction::create(&settings.kafka, transactional_id, settings.transaction_timeout) {
            Ok(producer) => return Some(producer),
            Err(error) if shutdown.is_cancelled() => {
                tracing::warn!(%error, "cannot recreate the producer while shutting down");
                return None;
            }
            Err(error) => tracing::warn!(%error, retry_in = ?backoff, "cannot recreate the producer"),
        }
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}
