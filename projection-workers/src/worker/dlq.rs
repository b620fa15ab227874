//! The dead-letter topic: valid records (by the reader rule) the projection can never apply
//! (undecodable, unknown schema or event type, empty, a claim's body under writer headers) are
//! copied there with why and where they came from, and the partition moves on. Void records
//! are not: they are not part of the log's history, and are only counted.
//!
//! Dead letters are produced and acknowledged (`acks=all`) before the PostgreSQL transaction
//! that moves the partition past them commits, so none is lost; a crash between the two sends
//! a record again on retry (at least once). The source topic, partition and offset headers
//! identify duplicates.

use std::time::Duration;

/// How long dead letters may take to be acknowledged before the batch is retried.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);

use holdfast_platform::producer::Producer;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Headers, Message, OwnedHeaders, OwnedMessage};
use rdkafka::producer::FutureRecord;

/// Header: the reason code (stable, low cardinality; see `CodecError::reason_code`).
pub const REASON: &str = "holdfast.dlq.reason";
/// Header: the full error text.
pub const ERROR: &str = "holdfast.dlq.error";
/// Header: the topic the record was read from.
pub const SOURCE_TOPIC: &str = "holdfast.dlq.source.topic";
/// Header: the partition it was read from.
pub const SOURCE_PARTITION: &str = "holdfast.dlq.source.partition";
/// Header: its offset there.
pub const SOURCE_OFFSET: &str = "holdfast.dlq.source.offset";
/// Header: the consumer group that gave up on it.
pub const GROUP: &str = "holdfast.dlq.group";

/// A record to dead-letter and why.
#[derive(Debug)]
pub struct DeadLetter<'a> {
    /// The record as read.
    pub message: &'a OwnedMessage,
    /// Stable reason code.
    pub reason: &'static str,
    /// Human-readable error.
    pub detail: String,
}

/// Producer of dead letters.
pub struct DeadLetters {
    producer: Producer,
    topic: String,
    group: String,
}

impl std::fmt::Debug for DeadLetters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadLetters").field("topic", &self.topic).finish_non_exhaustive()
    }
}

impl DeadLetters {
    /// Dead letters go to `topic` on behalf of consumer group `group`.
    #[must_use]
    pub fn new(producer: Producer, topic: String, group: String) -> Self {
        Self { producer, topic, group }
    }

    /// Sends every letter and waits until each is acknowledged.
    ///
    /// # Errors
    /// When Kafka refuses one or does not acknowledge it in time; the batch is then retried.
    pub async fn send(&self, letters: &[DeadLetter<'_>]) -> Result<(), KafkaError> {
        let mut deliveries = Vec::with_capacity(letters.len());
        for letter in letters {
            let message = letter.message;
            let partition = message.partition().to_string();
            let offset = message.offset().to_string();
            let mut headers = OwnedHeaders::new();
            if let Some(original) = message.headers() {
                for header in original.iter() {
                    headers = headers.insert(Header { key: header.key, value: header.value });
                }
            }
            let headers = headers
                .insert(Header { key: REASON, value: Some(letter.reason) })
                .insert(Header { key: ERROR, value: Some(letter.detail.as_str()) })
                .insert(Header { key: SOURCE_TOPIC, value: Some(message.topic()) })
                .insert(Header { key: SOURCE_PARTITION, value: Some(partition.as_str()) })
                .insert(Header { key: SOURCE_OFFSET, value: Some(offset.as_str()) })
                .insert(Header { key: GROUP, value: Some(self.group.as_str()) });
            let mut record: FutureRecord<'_, [u8], [u8]> =
                FutureRecord::to(&self.topic).partition(message.partition()).headers(headers);
            if let Some(key) = message.key() {
                record = record.key(key);
            }
            if let Some(payload) = message.payload() {
                record = record.payload(payload);
            }
            deliveries.push(self.producer.send_result(record).map_err(|(error, _)| error)?);
        }
        let acknowledged = tokio::time::timeout(DELIVERY_TIMEOUT, futures::future::join_all(deliveries))
            .await
            .map_err(|_| KafkaError::Canceled)?;
        acknowledged.into_iter().try_for_each(|delivery| delivery.map(|_| ()))
    }
}
