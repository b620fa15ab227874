//! The one place Kafka clients are configured. Every producer and consumer in Holdfast is
//! built from these functions so that the settings the guarantees depend on (murmur2
//! partitioning, `acks=all` with idempotence, `read_committed`, manual offsets) cannot be
//! forgotten by a call site.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, Producer};

use crate::config::KafkaArgs;

/// Settings shared by every client: brokers and operator-supplied extra properties.
fn base_config(args: &KafkaArgs, client_id: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &args.brokers)
        .set("client.id", client_id)
        .set("socket.keepalive.enable", "true")
        .set("log_level", "6");
    for (key, value) in &args.properties {
        config.set(key, value);
    }
    config
}

/// An idempotent producer: `acks=all`, murmur2 partitioning like the Java client.
#[must_use]
pub fn producer_config(args: &KafkaArgs, client_id: &str) -> ClientConfig {
    let mut config = base_config(args, client_id);
    config
        .set("partitioner", "murmur2_random")
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("compression.type", "lz4")
        .set("linger.ms", "2");
    config
}

/// A transactional producer (one per processor instance). `transaction.timeout.ms` is kept
/// short: a dead producer's open transaction holds back every `read_committed` reader until
/// the broker aborts it.
#[must_use]
pub fn transactional_producer_config(
    args: &KafkaArgs,
    client_id: &str,
    transactional_id: &str,
    transaction_timeout: Duration,
) -> ClientConfig {
    let mut config = producer_config(args, client_id);
    config
        // A transaction is already a batch: waiting to fill librdkafka's batches only adds
        // latency to every phase of it.
        .set("linger.ms", "0")
        .set("transactional.id", transactional_id)
        .set("transaction.timeout.ms", millis(transaction_timeout));
    config
}

/// A consumer that sees only committed transactions and never commits offsets on its own:
/// offsets travel with the effect (a Kafka transaction or a PostgreSQL transaction).
#[must_use]
pub fn consumer_config(args: &KafkaArgs, client_id: &str, group_id: &str) -> ClientConfig {
    let mut config = base_config(args, client_id);
    config
        .set("group.id", group_id)
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("partition.assignment.strategy", "cooperative-sticky")
        .set("enable.partition.eof", "false");
    config
}

/// A consumer outside any group (restores, replays, audits): partitions are assigned by hand.
#[must_use]
pub fn reader_config(args: &KafkaArgs, client_id: &str) -> ClientConfig {
    let mut config = base_config(args, client_id);
    config
        // librdkafka needs a group id even for manual assignment; it is never joined.
        .set("group.id", format!("{client_id}.reader"))
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "true");
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

/// Milliseconds as the string librdkafka expects.
#[must_use]
pub fn millis(duration: Duration) -> String {
    duration.as_millis().to_string()
}
