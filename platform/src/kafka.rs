//! The one place Kafka clients are configured. Every producer and consumer in Holdfast is
//! built from these functions so that the settings the guarantees depend on (murmur2
//! partitioning, `acks=all` with idempotence, manual offsets) cannot be
//! forgotten by a call site.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, Producer};
use secrecy::ExposeSecret as _;

use crate::config::KafkaArgs;

/// Settings shared by every client: brokers and operator-supplied extra properties.
fn base_config(args: &KafkaArgs, client_id: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &args.brokers)
        .set("client.id", client_id)
        .set("socket.keepalive.enable", "true")
        // Produce and fetch requests are small and pipelined (up to five in flight): Nagle's
        // algorithm would hold one back until the broker acknowledges the previous one.
        .set("socket.nagle.disable", "true")
        .set("log_level", "6");
    for (key, value) in &args.properties {
        config.set(key, value);
    }
    if let Some(password) = &args.sasl_password {
        config.set("sasl.password", password.expose_secret());
    }
    config
}

/// An idempotent producer: `acks=all`, murmur2 partitioning like the Java client, no linger.
///
/// Without linger a lone record is sent at once; under load records still travel together,
/// because whatever queues for a partition while its previous request is in flight goes out as
/// one batch (group commit without a timer).
#[must_use]
pub fn producer_config(args: &KafkaArgs, client_id: &str) -> ClientConfig {
    let mut config = base_config(args, client_id);
    config
        .set("partitioner", "murmur2_random")
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("compression.type", "lz4")
        .set("linger.ms", "0");
    config
}

/// A group member that never commits offsets on its own: offsets travel with the effect (a
/// PostgreSQL transaction) or are committed once the commands before them are decided.
///
/// Reads are `read_uncommitted`: no Holdfast component writes in Kafka transactions, and the
/// events topic's readers go by the reader rule (`holdfast_tenure`), not by transaction
/// markers, so a foreign producer's open transaction must not hold them back (its records
/// are void anyway). Consumers only ever see records the brokers acknowledged.
#[must_use]
pub fn consumer_config(args: &KafkaArgs, client_id: &str, group_id: &str) -> ClientConfig {
    let mut config = base_config(args, client_id);
    config
        .set("group.id", group_id)
        .set("isolation.level", "read_uncommitted")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("partition.assignment.strategy", "cooperative-sticky")
        .set("enable.partition.eof", "false");
    config
}

/// A consumer outside any group (restores, replays, audits): partitions are assigned by hand.
/// `read_uncommitted` like [`consumer_config`], for the same reason.
#[must_use]
pub fn reader_config(args: &KafkaArgs, client_id: &str) -> ClientConfig {
    let mut config = base_config(args, client_id);
    config
        // librdkafka needs a group id even for manual assignment; it is never joined.
        .set("group.id", format!("{client_id}.reader"))
        .set("isolation.level", "read_uncommitted")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "true")
        // Readers go through whole partitions as fast as they can. librdkafka stops fetching
        // a partition once `queued.min.messages` are waiting and then sleeps for
        // `fetch.queue.backoff.ms` (1 s by default): with the defaults a restore spends most
        // of its time idle. Bigger fetches and a short backoff keep the queue full.
        .set("queued.min.messages", "1000000")
        .set("fetch.queue.backoff.ms", "5")
        .set("max.partition.fetch.bytes", "16777216");
    config
}

/// An admin client for topic provisioning.
///
/// # Errors
/// When librdkafka rejects the configuration.
pub fn admin(args: &KafkaArgs, client_id: &str) -> Result<AdminClient<DefaultClientContext>, KafkaError> {
    base_config(args, client_id).create()
}

/// A long-lived client that asks the cluster for its metadata: the readiness probe for
/// "Kafka is reachable". The blocking call runs off the async reactor.
#[derive(Clone)]
pub struct KafkaProbe {
    producer: std::sync::Arc<BaseProducer>,
}

impl std::fmt::Debug for KafkaProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaProbe").finish_non_exhaustive()
    }
}

impl KafkaProbe {
    /// Creates the probe's client; it connects lazily.
    ///
    /// # Errors
    /// When librdkafka rejects the configuration.
    pub fn new(args: &KafkaArgs, client_id: &str) -> Result<Self, KafkaError> {
        let producer: BaseProducer = base_config(args, client_id).create()?;
        Ok(Self { producer: std::sync::Arc::new(producer) })
    }

    /// Fetches cluster metadata and returns the number of brokers seen.
    ///
    /// # Errors
    /// When no broker answers within `timeout`.
    pub async fn check(&self, timeout: Duration) -> Result<usize, KafkaError> {
        let producer = std::sync::Arc::clone(&self.producer);
        tokio::task::spawn_blocking(move || {
            let metadata = producer.client().fetch_metadata(None, timeout)?;
            Ok(metadata.brokers().len())
        })
        .await
        .unwrap_or(Err(KafkaError::Canceled))
    }
}

/// Where to start reading `partitions` of `topic` to see every record written at or after
/// `since` (milliseconds since the Unix epoch): the broker's offsets for that time, or
/// `otherwise` for every partition when it cannot say. Partitions with nothing that recent
/// start at their end.
///
/// # Errors
/// When the partition list cannot be built (an invalid topic name).
pub fn offsets_since<C: rdkafka::consumer::ConsumerContext>(
    consumer: &rdkafka::consumer::BaseConsumer<C>,
    topic: &str,
    partitions: impl IntoIterator<Item = i32> + Clone,
    since: i64,
    otherwise: rdkafka::Offset,
) -> Result<rdkafka::TopicPartitionList, KafkaError> {
    use rdkafka::consumer::Consumer;
    let list = |offset: rdkafka::Offset| -> Result<rdkafka::TopicPartitionList, KafkaError> {
        let mut list = rdkafka::TopicPartitionList::new();
        for partition in partitions.clone() {
            list.add_partition_offset(topic, partition, offset)?;
        }
        Ok(list)
    };
    match consumer.offsets_for_times(list(rdkafka::Offset::Offset(since))?, Duration::from_secs(30)) {
        Ok(offsets) => Ok(offsets),
        Err(error) => {
            tracing::warn!(topic, %error, ?otherwise, "offsets by time unavailable");
            list(otherwise)
        }
    }
}

/// Milliseconds as the string librdkafka expects.
#[must_use]
pub fn millis(duration: Duration) -> String {
    duration.as_millis().to_string()
}

/// Reads every partition of `assignment` from its given offset up to its end (the high
/// watermark: every record the brokers acknowledged), calling `each` with every record.
/// Blocking: call it off the async reactor.
///
/// # Errors
/// When Kafka fails, or the end is not reached within `deadline`.
pub fn read_to_end(
    config: &ClientConfig,
    assignment: &rdkafka::TopicPartitionList,
    deadline: Duration,
    each: impl FnMut(&rdkafka::message::BorrowedMessage<'_>),
) -> Result<(), KafkaError> {
    read_until(config, assignment, &std::collections::HashMap::new(), deadline, each)
}

/// Like [`read_to_end`], but a partition listed in `ends` is read only up to that offset
/// (exclusive): a restore reads up to its own claim, a writer the records before its own.
///
/// A fresh consumer is made per call and partitions with nothing to read (empty, or starting
/// at their end) are never assigned: librdkafka reports the end of such partitions, and of
/// partitions of an earlier assignment, on its main queue, where a poll loop never sees them.
///
/// # Errors
/// When Kafka fails, or the ends are not reached within `deadline`.
pub fn read_until(
    config: &ClientConfig,
    assignment: &rdkafka::TopicPartitionList,
    ends: &std::collections::HashMap<i32, i64>,
    deadline: Duration,
    mut each: impl FnMut(&rdkafka::message::BorrowedMessage<'_>),
) -> Result<(), KafkaError> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Message;
    use rdkafka::{Offset, TopicPartitionList};

    let reader: BaseConsumer = config.create()?;
    let mut readable = TopicPartitionList::new();
    for element in assignment.elements() {
        let empty = match (ends.get(&element.partition()), element.offset()) {
            // A bounded read needs no watermarks: the records at and after its end exist (a
            // claim, an append), so reading stops at the end even when retention emptied the
            // range. Saves a round trip per partition when hundreds are restored at once.
            (Some(&end), Offset::Offset(start)) => start >= end,
            (Some(&end), Offset::Beginning) => end <= 0,
            _ => {
                let (low, high) =
                    reader.fetch_watermarks(element.topic(), element.partition(), Duration::from_secs(10))?;
                match element.offset() {
                    Offset::Offset(start) => start >= high,
                    Offset::End => true,
                    _ => high <= low,
                }
            }
        };
        if !empty {
            readable.add_partition_offset(element.topic(), element.partition(), element.offset())?;
        }
    }
    let wanted = readable.count();
    if wanted == 0 {
        return Ok(());
    }
    // The leaders must be known before the assignment: a partition assigned without one waits
    // for librdkafka's offset-query retry timer (about 500 ms) before its first fetch, which
    // was a quarter of the time to restore a million events.
    let elements = readable.elements();
    let topics: std::collections::BTreeSet<&str> = elements.iter().map(|e| e.topic()).collect();
    for topic in topics {
        reader.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    }
    reader.assign(&readable)?;
    let mut done = std::collections::HashSet::new();
    let started = std::time::Instant::now();
    let mut read = 0_u32;
    while done.len() < wanted {
        // Checked every few thousand records, not per record: reading the clock shows up in
        // profiles of long replays.
        if read.is_multiple_of(4096) && started.elapsed() > deadline {
            return Err(KafkaError::Canceled);
        }
        match reader.poll(Duration::from_millis(200)) {
            Some(Ok(message)) => {
                read = read.wrapping_add(1);
                let (partition, offset) = (message.partition(), message.offset());
                let end = ends.get(&partition).copied().unwrap_or(i64::MAX);
                if offset < end && !done.contains(&partition) {
                    each(&message);
                }
                if offset + 1 >= end && done.insert(partition) {
                    let mut finished = TopicPartitionList::new();
                    finished.add_partition(message.topic(), partition);
                    // Records past the end are not wanted; stop fetching them.
                    reader.pause(&finished)?;
                }
            }
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                done.insert(partition);
            }
            Some(Err(error)) => return Err(error),
            None => read = 0,
        }
    }
    Ok(())
}
