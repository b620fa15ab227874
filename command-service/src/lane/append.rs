//! [`Appender`]: the producers the lanes append through, and the encoding of a record with its
//! headers. Each partition always goes through the same producer, so its records leave in the
//! order they were decided. Idempotent, `acks=all`, no transaction, no linger
//! (`holdfast_platform::kafka::producer_config`): a record is sent at once, and under load
//! whatever queued for a partition while its previous request was in flight travels as one
//! batch.
//!
//! librdkafka puts one partition in each produce request and allows five in flight per
//! connection, so an owner of many partitions appends through several producers (connections).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use holdfast_platform::KafkaArgs;
use holdfast_platform::codec::{ClaimRecord, CodecError, EventCodec, LogRecord};
use holdfast_platform::headers::RecordHeaders;
use holdfast_platform::kafka::{millis, producer_config};
use holdfast_platform::producer::Producer;
use holdfast_tenure::Mark;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::FutureRecord;

use super::core::Append;
use crate::metrics::Metrics;

/// Why a record could not be handed to a producer.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// The record could not be encoded (a defect, or the schemas are not registered).
    #[error("encoding: {0}")]
    Encode(#[from] CodecError),
    /// The producer refused it (its queue is closed or the client is failing).
    #[error("producing: {0}")]
    Kafka(#[from] KafkaError),
}

/// A delivery report: the record's offset, or `None` when it failed or its fate is unclear.
pub type Delivered = futures::future::BoxFuture<'static, Option<i64>>;

/// How the producers send.
#[derive(Debug, Clone, Copy)]
pub struct Sending {
    /// Producers (connections), at least one.
    pub producers: usize,
    /// librdkafka's `linger.ms`.
    pub linger: Duration,
    /// librdkafka's `message.timeout.ms`: past it a record is reported failed (its fate unclear).
    pub timeout: Duration,
}

/// The producers of one instance and what encoding needs.
#[derive(Clone)]
pub struct Appender {
    producers: Arc<[Producer]>,
    topic: String,
    codec: Arc<EventCodec>,
    metrics: Metrics,
}

impl std::fmt::Debug for Appender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Appender")
            .field("producers", &self.producers.len())
            .field("topic", &self.topic)
            .finish()
    }
}

impl Appender {
    /// Producers appending to `topic` as `sending` says.
    ///
    /// # Errors
    /// When a producer cannot be created.
    pub fn new(
        kafka: &KafkaArgs,
        client_id: &str,
        sending: Sending,
        topic: &str,
        codec: Arc<EventCodec>,
        metrics: Metrics,
    ) -> Result<Self, KafkaError> {
        let producers = (0..sending.producers.max(1))
            .map(|n| {
                Producer::new(
                    producer_config(kafka, &format!("{client_id}-append-{n}"))
                        .set("linger.ms", millis(sending.linger))
                        .set("message.timeout.ms", millis(sending.timeout)),
                )
            })
            .collect::<Result<Vec<Producer>, KafkaError>>()?;
        Ok(Self { producers: producers.into(), topic: topic.to_owned(), codec, metrics })
    }

    /// The events topic.
    #[must_use]
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Sends one decided record to `partition`.
    ///
    /// # Errors
    /// When it cannot be encoded or the producer refuses it; nothing was sent.
    pub fn append(&self, partition: i32, append: &Append) -> Result<Delivered, AppendError> {
        let (payload, key, kind) = match &append.record {
            LogRecord::Event(event) => {
                (self.codec.encode(event)?, event.envelope.resource_id.as_str(), "event")
            }
            LogRecord::Rejected(rejected) => {
                (self.codec.encode_rejected(rejected)?, rejected.resource_id.as_str(), "rejection")
            }
            LogRecord::Claim(claim) => (self.codec.encode_claim(claim)?, "", "claim"),
        };
        let headers = RecordHeaders { mark: append.mark, fingerprint: append.fingerprint };
        self.send(partition, key, &payload, headers, kind)
    }

    /// Sends a claim to its partition.
    ///
    /// # Errors
    /// When it cannot be encoded or the producer refuses it.
    pub fn claim(&self, claim: &ClaimRecord) -> Result<Delivered, AppendError> {
        let payload = self.codec.encode_claim(claim)?;
        let headers = RecordHeaders { mark: Mark::Claim { token: claim.token }, fingerprint: None };
        // Claims are keyed by the owner, not by a resource: nothing reads them by key.
        self.send(claim.partition, &claim.owner, &payload, headers, "claim")
    }

    fn send(
        &self,
        partition: i32,
        key: &str,
        payload: &[u8],
        headers: RecordHeaders,
        kind: &'static str,
    ) -> Result<Delivered, AppendError> {
        let index = usize::try_from(partition).unwrap_or_default() % self.producers.len();
        let producer = &self.producers[index];
        let mut record = FutureRecord::to(&self.topic)
            .partition(partition)
            .key(key)
            .payload(payload)
            .headers(headers.to_kafka());
        let started = Instant::now();
        let delivery = loop {
            match producer.send_result(record) {
                Ok(delivery) => break delivery,
                // The local queue is full: the broker is behind. Waiting here briefly keeps the
                // order of the partition's records; the lane's callers wait with it.
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err((error, _)) => return Err(error.into()),
            }
        };
        self.metrics.appends.with_label_values(&[kind]).inc();
        let metrics = self.metrics.clone();
        Ok(delivery
            .map(move |report| {
                metrics.append_seconds.observe(started.elapsed().as_secs_f64());
                match report {
                    Ok(delivered) if delivered.partition == partition => Some(delivered.offset),
                    Ok(_) | Err(_) => None,
                }
            })
            .boxed())
    }
}
