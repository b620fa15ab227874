//! One transaction: decide a batch of commands (and due hold expiries), produce their events
//! and outcomes, attach the consumed offsets with the group metadata, commit, and only then
//! publish the outcomes to waiting callers and remember them.

use std::collections::HashMap;
use std::time::Instant;

use futures::future::join_all;
use holdfast_domain::{Command, CommandMeta, EventPayload, ReservationId};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::envelope::{CommandEnvelope, FORMAT_VERSION, Outcome, Position};
use crate::processor::decision::{self, Decided};
use crate::processor::partition::PartitionState;
use crate::processor::rebalance::RebalanceHook;
use crate::processor::transaction::{self, CALL_TIMEOUT, Recovery};
use crate::processor::{Polled, ProcessorSettings, ProcessorShared};

/// A failed transaction: what went wrong and how to recover.
#[derive(Debug)]
pub struct Failure {
    /// The error.
    pub error: KafkaError,
    /// Abort and go on, or recreate the producer.
    pub recovery: Recovery,
    /// Short label for the aborts metric.
    pub reason: &'static str,
}

/// A decided command waiting for its transaction.
struct Pending<'a> {
    partition: i32,
    envelope: std::borrow::Cow<'a, CommandEnvelope>,
    decided: Decided,
    /// Index range of this command's events in the deliveries list.
    deliveries: std::ops::Range<usize>,
    /// Internal commands (hold expiries) have no caller and no reply.
    internal: bool,
}

/// Runs one transaction over `polled` commands and `expiries`.
///
/// # Errors
/// A [`Failure`] after the transaction was aborted (or the producer must be recreated); the
/// in-memory state of the touched partitions is then stale and must be restored.
pub fn execute(
    clients: &Clients<'_>,
    owned: &mut HashMap<i32, PartitionState>,
    polled: &[Polled],
    expiries: &[(i32, ReservationId)],
) -> Result<(), Failure> {
    let started = Instant::now();
    let producer = clients.producer;
    producer.begin_transaction().map_err(|e| failed(producer, e, "begin"))?;
    match decide_and_commit(clients, owned, polled, expiries, started) {
        Ok(()) => Ok(()),
        Err((error, reason)) => Err(failed(producer, error, reason)),
    }
}

/// What a transaction works with besides the partitions' state.
#[derive(Clone, Copy)]
#[allow(missing_debug_implementations)] // librdkafka clients have no Debug
pub struct Clients<'a> {
    /// The instance's transactional producer.
    pub producer: &'a FutureProducer,
    /// The commands consumer (for its group metadata).
    pub consumer: &'a BaseConsumer<RebalanceHook>,
    /// Topic names and limits.
    pub settings: &'a ProcessorSettings,
    /// Codec, dispatcher, metrics, runtime.
    pub shared: &'a ProcessorShared,
}

/// Aborts when that is the right recovery and describes the failure.
fn failed(producer: &FutureProducer, error: KafkaError, reason: &'static str) -> Failure {
    let mut recovery = transaction::recovery(&error);
    if recovery == Recovery::Abort {
        recovery = transaction::abort(producer);
    }
    Failure { error, recovery, reason }
}

fn decide_and_commit(
    clients: &Clients<'_>,
    owned: &mut HashMap<i32, PartitionState>,
    polled: &[Polled],
    expiries: &[(i32, ReservationId)],
    started: Instant,
) -> Result<(), (KafkaError, &'static str)> {
    let Clients { producer, consumer, settings, shared } = *clients;
    let now = now_micros();
    let events_topic = settings.layout.events.as_str();
    let mut pending: Vec<Pending<'_>> = Vec::with_capacity(polled.len() + expiries.len());
    let mut deliveries: Vec<DeliveryFuture> = Vec::new();

    let commands = polled
        .iter()
        .filter_map(|p| p.envelope.as_ref().map(|e| (p.partition, std::borrow::Cow::Borrowed(e), false)));
    let timers =
        expiries.iter().map(|(partition, id)| (*partition, std::borrow::Cow::Owned(expiry(id, now)), true));
    for (partition, envelope, internal) in commands.chain(timers) {
        let Some(state) = owned.get_mut(&partition) else { continue };
        let decided = decision::decide_one(state, &envelope, now);
        let first = deliveries.len();
        for event in &decided.events {
            let payload =
                shared.codec.encode(event).map_err(|e| (KafkaError::Canceled, encode_failure(&e)))?;
            let record = FutureRecord::to(events_topic)
                .partition(partition)
                .key(event.envelope.resource_id.as_str())
                .payload(&payload);
            deliveries.push(send(producer, record)?);
        }
        pending.push(Pending { partition, envelope, decided, deliveries: first..deliveries.len(), internal });
    }

    let decided_at = started.elapsed();
    // Event offsets give each outcome its read-your-writes position.
    let delivered = shared.runtime.block_on(join_all(deliveries));
    let mut offsets = Vec::with_capacity(delivered.len());
    for delivery in delivered {
        match delivery {
            Ok(Ok(d)) => offsets.push(d.offset),
            Ok(Err((error, _))) => return Err((error, "produce")),
            Err(_) => return Err((KafkaError::Canceled, "produce")),
        }
    }
    // Running next offset of each events partition in the batch, in decision order.
    let mut next_event: HashMap<i32, i64> = HashMap::new();
    let mut outcomes = Vec::with_capacity(pending.len());
    let mut replies = Vec::with_capacity(pending.len());
    for item in &pending {
        let next = next_event
            .entry(item.partition)
            .or_insert_with(|| owned.get(&item.partition).map_or(0, |state| state.next_event_offset));
        if let Some(last) = offsets[item.deliveries.clone()].iter().max() {
            *next = (*next).max(last + 1);
        }
        let outcome = Outcome {
            v: FORMAT_VERSION,
            command_id: item.envelope.meta.command_id,
            resource_id: item.envelope.command.resource_id().clone(),
            command: item.envelope.command.kind().to_owned(),
            verdict: item.decided.verdict.clone(),
            position: Position { partition: item.partition, next_offset: *next },
            decided_at: now,
            fingerprint: item.envelope.fingerprint,
        };
        if !item.internal {
            let payload =
                serde_json::to_vec(&outcome).map_err(|_| (KafkaError::Canceled, "encode-outcome"))?;
            let key = outcome.command_id.as_bytes().to_vec();
            let record = FutureRecord::to(&settings.layout.replies)
                .partition(item.partition)
                .key(&key)
                .payload(&payload);
            replies.push(send(producer, record)?);
        }
        outcomes.push(outcome);
    }

    // Wait for the replies here rather than in `commit_transaction`'s internal flush: with the
    // producer's own poll thread serving delivery reports, that flush only notices an empty
    // queue at its next 100 ms poll tick, which would put a floor under every transaction.
    for delivery in shared.runtime.block_on(join_all(replies)) {
        match delivery {
            Ok(Ok(_)) => {}
            Ok(Err((error, _))) => return Err((error, "produce")),
            Err(_) => return Err((KafkaError::Canceled, "produce")),
        }
    }

    let produced_at = started.elapsed();
    let consumed = consumed_offsets(&settings.layout.commands, polled).map_err(|e| (e, "offsets"))?;
    if consumed.count() > 0 {
        let group = consumer.group_metadata().ok_or((KafkaError::Canceled, "group-metadata"))?;
        producer
            .send_offsets_to_transaction(&consumed, &group, CALL_TIMEOUT)
            .map_err(|e| (e, "send-offsets"))?;
    }
    let offsets_at = started.elapsed();
    producer.commit_transaction(CALL_TIMEOUT).map_err(|e| (e, "commit"))?;
    tracing::debug!(
        commands = pending.len(), ?decided_at, ?produced_at, ?offsets_at, committed_at = ?started.elapsed(),
        "transaction committed"
    );

    // Committed: the decisions are durable. Now, and only now, tell the callers.
    shared.metrics.commit_seconds.observe(started.elapsed().as_secs_f64());
    shared.metrics.batch_size.observe(pending.len() as f64);
    for element in consumed.elements() {
        if let (Some(state), Offset::Offset(next)) = (owned.get_mut(&element.partition()), element.offset()) {
            state.next_command_offset = next;
        }
    }
    for (partition, next) in next_event {
        if let Some(state) = owned.get_mut(&partition) {
            state.next_event_offset = next;
        }
    }
    for (item, outcome) in pending.iter().zip(outcomes) {
        shared
            .metrics
            .decisions
            .with_label_values(&[item.envelope.command.kind(), decision::outcome_label(&outcome.verdict)])
            .inc();
        if let Some(state) = owned.get_mut(&item.partition) {
            for event in &item.decided.events {
                if let EventPayload::ReservationHeld { reservation_id, expires_at, .. } = &event.payload {
                    state.timers.insert((*expires_at, reservation_id.clone()));
                }
            }
            if !item.internal && !item.decided.remembered {
                state.remember(outcome.clone());
            }
        }
        if !item.internal {
            shared.dispatcher.resolve(outcome);
        }
    }
    Ok(())
}

/// The internal command that expires a hold, with an id derived from the reservation so a
/// repeated expiry is recognisable in the log.
fn expiry(reservation_id: &ReservationId, now: OffsetDateTime) -> CommandEnvelope {
    let command_id = Uuid::new_v5(&Uuid::NAMESPACE_OID, format!("expire {reservation_id}").as_bytes());
    CommandEnvelope {
        v: FORMAT_VERSION,
        command: Command::ExpireHold { reservation_id: reservation_id.clone() },
        meta: CommandMeta::new(command_id),
        fingerprint: 0,
        submitted_at: now,
    }
}

/// Queues a record, waiting for room when the producer queue is full.
fn send(
    producer: &FutureProducer,
    mut record: FutureRecord<
        '_,
        impl rdkafka::message::ToBytes + ?Sized,
        impl rdkafka::message::ToBytes + ?Sized,
    >,
) -> Result<DeliveryFuture, (KafkaError, &'static str)> {
    loop {
        match producer.send_result(record) {
            Ok(delivery) => return Ok(delivery),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            Err((error, _)) => return Err((error, "produce")),
        }
    }
}

/// The next offset to consume of each partition in the batch.
fn consumed_offsets(topic: &str, polled: &[Polled]) -> Result<TopicPartitionList, KafkaError> {
    let mut next: HashMap<i32, i64> = HashMap::new();
    for item in polled {
        let entry = next.entry(item.partition).or_insert(0);
        *entry = (*entry).max(item.offset + 1);
    }
    let mut list = TopicPartitionList::new();
    for (partition, offset) in next {
        list.add_partition_offset(topic, partition, Offset::Offset(offset))?;
    }
    Ok(list)
}

/// A codec failure on our own events is a bug; it aborts the batch.
fn encode_failure(error: &holdfast_platform::codec::CodecError) -> &'static str {
    tracing::error!(%error, "an event could not be encoded");
    "encode-event"
}

/// The current time at the precision events are stored with (microseconds), so state rebuilt
/// from the log equals the state the decision was made in.
fn now_micros() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1_000 * 1_000).unwrap_or(now)
}
