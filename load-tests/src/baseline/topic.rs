//! The Kafka baselines' scratch topic and what both of them share: an idempotent producer
//! with the command service's settings, ready on the topic, and records of event size.
//!
//! [`kafka`] owns the topic (created, warmed up by each producer, deleted also when a
//! baseline failed) and must never write to any other.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use futures::future::join_all;
use holdfast_platform::kafka::{admin, producer_config};
use holdfast_platform::producer::{Delivery, DeliveryFuture, Producer};
use holdfast_platform::{KafkaArgs, TopicArgs};
use rand::rngs::SmallRng;
use rand::{Rng as _, RngCore as _, SeedableRng as _};
use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::FutureRecord;

use super::{BaselineError, BaselineSettings, KafkaBaselines, append_into, produce_into};

/// How long a full local producer queue may stay full before the baseline gives up.
pub(super) const QUEUE_FULL_PATIENCE: Duration = Duration::from_secs(10);
/// How long a created topic may take to show every partition with a leader.
pub(super) const VISIBLE_PATIENCE: Duration = Duration::from_secs(30);
/// Timeout of the admin requests (create, delete).
const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Distinct keys the records are drawn from: resource-like, as the events topic's are.
const KEY_SPACE: u32 = 100_000;

/// A [`BaselineError::Kafka`] for `during`.
pub(super) fn kafka_error(during: &'static str) -> impl FnOnce(KafkaError) -> BaselineError {
    move |source| BaselineError::Kafka { during, source }
}

/// Refuses empty records, which would measure request overhead only.
pub(super) fn check_event_bytes(event_bytes: usize) -> Result<(), BaselineError> {
    if event_bytes == 0 {
        return Err(BaselineError::Settings("event_bytes must be at least 1".to_owned()));
    }
    Ok(())
}

/// Both Kafka baselines: creates `<prefix>baseline` with `settings.partitions` partitions
/// (replication factor and `min.insync.replicas` from `topics`; `topics.partitions` is not
/// used, see [`BaselineSettings::like`]), writes to it for `settings.warmup` unmeasured,
/// measures the single appends ([`append_into`]), then the produce throughput with each
/// producer count of `settings.producers` ([`produce_into`]), and deletes the topic, also
/// when a baseline failed.
///
/// # Errors
/// See [`BaselineError`]; a failed deletion is reported even after successful baselines.
pub async fn kafka(
    kafka_args: &KafkaArgs,
    topics: &TopicArgs,
    event_bytes: usize,
    settings: &BaselineSettings,
) -> Result<KafkaBaselines, BaselineError> {
    settings.check()?;
    check_event_bytes(event_bytes)?;
    let topic = format!("{}baseline", topics.topic_prefix);
    let admin = admin(kafka_args, "holdfast-baseline").map_err(kafka_error("admin client"))?;
    let options = AdminOptions::new().operation_timeout(Some(ADMIN_TIMEOUT));
    let isr = topics.min_insync_replicas.to_string();
    let new = NewTopic::new(&topic, settings.partitions, TopicReplication::Fixed(topics.replication_factor))
        .set("min.insync.replicas", &isr);
    let created = admin.create_topics(&[new], &options).await.map_err(kafka_error("create topic"))?;
    for result in created {
        match result {
            Ok(_) => {}
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => return Err(BaselineError::TopicExists(topic)),
            Err((_, code)) => return Err(BaselineError::CreateTopic { topic, code }),
        }
    }

    let measured = async {
        let warmup_records = if settings.warmup.is_zero() {
            0
        } else {
            let warm = produce_into(kafka_args, &topic, event_bytes, 1, settings.warmup).await?;
            warm.records + warm.warmup_records
        };
        let append = append_into(kafka_args, &topic, event_bytes, settings.appends).await?;
        let mut produce = Vec::with_capacity(settings.producers.len());
        for &producers in &settings.producers {
            produce.push(produce_into(kafka_args, &topic, event_bytes, producers, settings.seconds).await?);
        }
        Ok(KafkaBaselines { warmup_records, append, produce })
    }
    .await;

    let deleted = match admin.delete_topics(&[topic.as_str()], &options).await {
        Ok(results) => match results.into_iter().find_map(Result::err) {
            None | Some((_, RDKafkaErrorCode::UnknownTopicOrPartition)) => Ok(()),
            Some((_, code)) => Err(code.to_string()),
        },
        Err(error) => Err(error.to_string()),
    };
    match (measured, deleted) {
        (measured, Ok(())) => measured,
        (measured, Err(reason)) => {
            Err(BaselineError::DeleteTopic { topic, reason, earlier: measured.err().map(Box::new) })
        }
    }
}

/// One idempotent producer (`acks=all`, linger 0: the command service's settings) on the
/// baseline topic, with a buffer for records of event size. Every method blocks.
pub(super) struct Appender {
    pub(super) producer: Producer,
    topic: String,
    partitions: i32,
    rng: SmallRng,
    payload: Vec<u8>,
    key: String,
}

impl Appender {
    /// Creates the producer and waits until `topic` shows every partition with a leader.
    pub(super) fn ready(
        kafka_args: &KafkaArgs,
        client_id: &str,
        topic: &str,
        event_bytes: usize,
    ) -> Result<Self, BaselineError> {
        let mut config = producer_config(kafka_args, client_id);
        // A missing topic must fail the baseline, not be created with the broker's defaults.
        config.set("allow.auto.create.topics", "false");
        let producer = Producer::new(&config).map_err(kafka_error("create producer"))?;
        let deadline = Instant::now() + VISIBLE_PATIENCE;
        let partitions = loop {
            let metadata = producer
                .fetch_metadata(Some(topic), Duration::from_secs(10))
                .map_err(kafka_error("metadata"))?;
            let ready = metadata.topics().iter().find(|t| t.name() == topic).filter(|t| {
                t.error().is_none()
                    && !t.partitions().is_empty()
                    && t.partitions().iter().all(|p| p.error().is_none() && p.leader() >= 0)
            });
            if let Some(ready) = ready {
                break i32::try_from(ready.partitions().len()).unwrap_or(i32::MAX);
            }
            if Instant::now() >= deadline {
                return Err(BaselineError::TopicNotReady(topic.to_owned()));
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        Ok(Self {
            producer,
            topic: topic.to_owned(),
            partitions,
            rng: SmallRng::from_rng(&mut rand::rng()),
            payload: vec![0_u8; event_bytes],
            key: String::with_capacity(16),
        })
    }

    /// Partitions of the topic.
    pub(super) fn partitions(&self) -> i32 {
        self.partitions
    }

    /// Appends one record to every partition and waits for all of them: the producer gets
    /// its producer id and connections, and each partition its first write (which costs a
    /// fresh topic's broker far more than the next ones), before any clock starts. Returns the
    /// records appended.
    pub(super) fn warm_up(&mut self) -> Result<u64, BaselineError> {
        let mut deliveries = Vec::new();
        for partition in 0..self.partitions {
            deliveries.push(self.send(partition)?);
        }
        let count = deliveries.len() as u64;
        for delivery in futures::executor::block_on(join_all(deliveries)) {
            acknowledged(delivery)?;
        }
        Ok(count)
    }

    /// Queues a record for `partition`, waiting for room while the local queue is full, for
    /// a bounded time.
    pub(super) fn send(&mut self, partition: i32) -> Result<DeliveryFuture, BaselineError> {
        let mut full_since = None;
        loop {
            if let Some(delivery) = self.try_send(partition)? {
                return Ok(delivery);
            }
            if full_since.get_or_insert_with(Instant::now).elapsed() > QUEUE_FULL_PATIENCE {
                return Err(BaselineError::QueueFull);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Queues a record of fresh random bytes (incompressible: the producer compresses) under
    /// a random resource-like key for `partition`; `None` when the local queue is full.
    pub(super) fn try_send(&mut self, partition: i32) -> Result<Option<DeliveryFuture>, BaselineError> {
        self.rng.fill_bytes(&mut self.payload);
        self.key.clear();
        let _ = write!(self.key, "bl-r{}", self.rng.random_range(0..KEY_SPACE));
        let record = FutureRecord::to(&self.topic).key(&self.key).payload(&self.payload).partition(partition);
        match self.producer.send_result(record) {
            Ok(delivery) => Ok(Some(delivery)),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => Ok(None),
            Err((error, _)) => Err(kafka_error("produce")(error)),
        }
    }
}

/// A delivery's outcome as the baseline sees it: acknowledged, or the error that ends it.
pub(super) fn acknowledged(delivery: Delivery) -> Result<(), BaselineError> {
    delivery.map(|_| ()).map_err(kafka_error("produce"))
}
