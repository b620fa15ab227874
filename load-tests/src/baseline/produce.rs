//! The produce baseline: transactional producers writing records of event size, in the
//! command service's transaction shape, to a topic of the baseline's own.
//!
//! It owns that topic (created and deleted by [`produce`]) and must never write to any other
//! but the one [`produce_into`] is given.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::future::join_all;
use holdfast_platform::kafka::{admin, transactional_producer_config};
use holdfast_platform::{KafkaArgs, TopicArgs};
use rand::rngs::SmallRng;
use rand::{Rng as _, RngCore as _, SeedableRng as _};
use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

use super::{BaselineError, BaselineSettings, ProduceBaseline};

/// How long one blocking transaction call (init, commit, abort) may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Broker-side limit of a baseline transaction: an abandoned one only holds back readers of
/// the baseline topic, which has none, so this need not be short.
const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a full local producer queue may stay full before the baseline gives up.
pub(super) const QUEUE_FULL_PATIENCE: Duration = Duration::from_secs(10);
/// How long a created topic may take to show every partition with a leader.
pub(super) const VISIBLE_PATIENCE: Duration = Duration::from_secs(30);
/// Timeout of the admin requests (create, delete).
const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Distinct keys the produce baseline draws from: enough to spread over any partition count.
const KEY_SPACE: u32 = 100_000;

/// Refuses empty records, which would measure request overhead only.
fn check_event_bytes(event_bytes: usize) -> Result<(), BaselineError> {
    if event_bytes == 0 {
        return Err(BaselineError::Settings("event_bytes must be at least 1".to_owned()));
    }
    Ok(())
}

fn kafka(during: &'static str) -> impl FnOnce(KafkaError) -> BaselineError {
    move |source| BaselineError::Kafka { during, source }
}

/// The produce baseline: creates `<prefix>baseline` with `settings.partitions` partitions
/// (replication factor and `min.insync.replicas` from `topics`; `topics.partitions` is not
/// used, see [`BaselineSettings::like`]), runs [`produce_into`] on it and deletes it, also when
/// the run failed.
///
/// # Errors
/// See [`BaselineError`]; a failed deletion is reported even after a successful run.
pub async fn produce(
    kafka_args: &KafkaArgs,
    topics: &TopicArgs,
    event_bytes: usize,
    settings: &BaselineSettings,
) -> Result<ProduceBaseline, BaselineError> {
    settings.check()?;
    check_event_bytes(event_bytes)?;
    let topic = format!("{}baseline", topics.topic_prefix);
    let admin = admin(kafka_args, "holdfast-baseline").map_err(kafka("admin client"))?;
    let options = AdminOptions::new().operation_timeout(Some(ADMIN_TIMEOUT));
    let isr = topics.min_insync_replicas.to_string();
    let new = NewTopic::new(&topic, settings.partitions, TopicReplication::Fixed(topics.replication_factor))
        .set("min.insync.replicas", &isr);
    let created = admin.create_topics(&[new], &options).await.map_err(kafka("create topic"))?;
    for result in created {
        match result {
            Ok(_) => {}
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => return Err(BaselineError::TopicExists(topic)),
            Err((_, code)) => return Err(BaselineError::CreateTopic { topic, code }),
        }
    }

    let measured = produce_into(kafka_args, &topic, event_bytes, settings).await;

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

/// Runs the produce baseline on an existing `topic`, leaving it as it is: `settings.producers`
/// transactional producers on threads of their own, each committing transactions of
/// `settings.batch` records of `event_bytes` random (incompressible) bytes under random
/// resource-like keys until `settings.seconds` have passed. `settings.partitions` is not
/// used: the topic has the partitions it has.
///
/// Before the clock starts, the producers commit one record to every partition (reported as
/// `warmup_events`): on a fresh topic the first transactional writes cost the broker seconds,
/// which would otherwise dominate a short baseline.
///
/// # Errors
/// See [`BaselineError`]; the first error of any producer stops them all.
pub async fn produce_into(
    kafka_args: &KafkaArgs,
    topic: &str,
    event_bytes: usize,
    settings: &BaselineSettings,
) -> Result<ProduceBaseline, BaselineError> {
    settings.check()?;
    check_event_bytes(event_bytes)?;
    let run = rand::random::<u32>();
    // Producers get ready (coordinator, metadata, a first write to every partition) before
    // the clock starts.
    let producers = settings.producers;
    let ready = (0..producers).map(|index| {
        let config = transactional_producer_config(
            kafka_args,
            &format!("holdfast-baseline-{run:08x}-{index}"),
            &format!("holdfast-baseline-{run:08x}-{index}"),
            TRANSACTION_TIMEOUT,
        );
        let topic = topic.to_owned();
        tokio::task::spawn_blocking(move || {
            let (mut writer, partitions) = Writer::ready(&config, topic, event_bytes)?;
            let warmed = writer.warm_up(index, producers, partitions)?;
            Ok::<_, BaselineError>((writer, partitions, warmed))
        })
    });
    let mut writers = Vec::with_capacity(producers);
    let (mut partitions, mut warmup_events) = (0, 0);
    let mut first_error = None;
    for joined in join_all(ready).await {
        match joined.map_err(|e| BaselineError::Thread(e.to_string())).and_then(|r| r) {
            Ok((writer, count, warmed)) => {
                writers.push(writer);
                partitions = count;
                warmup_events += warmed;
            }
            Err(error) => first_error = first_error.or(Some(error)),
        }
    }
    if let Some(error) = first_error {
        // Dropping a producer blocks (it flushes and joins its poll thread).
        let _ = tokio::task::spawn_blocking(move || drop(writers)).await;
        return Err(error);
    }

    let started = Instant::now();
    let until = started + settings.seconds;
    let stop = Arc::new(AtomicBool::new(false));
    let runs = writers.into_iter().map(|mut writer| {
        let (stop, batch) = (Arc::clone(&stop), settings.batch);
        tokio::task::spawn_blocking(move || {
            let result = writer.run(batch, until, &stop);
            if result.is_err() {
                stop.store(true, Ordering::Relaxed);
            }
            result
        })
    });
    let mut tally = Tally::default();
    let mut failed = None;
    for joined in join_all(runs).await {
        match joined.map_err(|e| BaselineError::Thread(e.to_string())).and_then(|r| r) {
            Ok(one) => tally.add(one),
            Err(error) => failed = failed.or(Some(error)),
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    if let Some(error) = failed {
        return Err(error);
    }
    Ok(ProduceBaseline {
        events_per_s: tally.events as f64 / seconds,
        transactions_per_s: tally.transactions as f64 / seconds,
        event_bytes,
        batch: settings.batch,
        producers,
        partitions,
        seconds,
        events: tally.events,
        warmup_events,
    })
}

/// Committed work of one producer.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    events: u64,
    transactions: u64,
}

impl Tally {
    fn add(&mut self, other: Self) {
        self.events += other.events;
        self.transactions += other.transactions;
    }
}

/// One transactional producer with its buffers. Every method blocks.
struct Writer {
    producer: FutureProducer,
    topic: String,
    rng: SmallRng,
    payload: Vec<u8>,
    key: String,
}

impl Writer {
    /// Creates a transactional producer, registers it with the coordinator and waits until the
    /// topic shows every partition with a leader; returns it with the partition count.
    fn ready(
        config: &rdkafka::ClientConfig,
        topic: String,
        event_bytes: usize,
    ) -> Result<(Self, i32), BaselineError> {
        let mut config = config.clone();
        // A missing topic must fail the baseline, not be created with the broker's defaults.
        config.set("allow.auto.create.topics", "false");
        let producer: FutureProducer = config.create().map_err(kafka("create producer"))?;
        producer.init_transactions(CALL_TIMEOUT).map_err(kafka("init transactions"))?;
        let deadline = Instant::now() + VISIBLE_PATIENCE;
        let partitions = loop {
            let metadata = producer
                .client()
                .fetch_metadata(Some(&topic), Duration::from_secs(10))
                .map_err(kafka("metadata"))?;
            let ready = metadata.topics().iter().find(|t| t.name() == topic).filter(|t| {
                t.error().is_none()
                    && !t.partitions().is_empty()
                    && t.partitions().iter().all(|p| p.error().is_none() && p.leader() >= 0)
            });
            if let Some(ready) = ready {
                break i32::try_from(ready.partitions().len()).unwrap_or(i32::MAX);
            }
            if Instant::now() >= deadline {
                return Err(BaselineError::TopicNotReady(topic));
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let writer = Self {
            producer,
            topic,
            rng: SmallRng::from_rng(&mut rand::rng()),
            payload: vec![0_u8; event_bytes],
            key: String::with_capacity(16),
        };
        Ok((writer, partitions))
    }

    /// Commits one record to each partition `index`, `index + producers`, …: the first
    /// transactional write to a partition of a fresh topic costs the broker far more than the
    /// next ones (seconds for the first transactions over 480 partitions), which a long-lived
    /// events topic never pays. Returns the records written.
    fn warm_up(&mut self, index: usize, producers: usize, partitions: i32) -> Result<u64, BaselineError> {
        let start = i32::try_from(index).unwrap_or(i32::MAX);
        let targets: Vec<Option<i32>> = (start..partitions).step_by(producers).map(Some).collect();
        if !targets.is_empty() {
            self.transaction(&targets)?;
        }
        Ok(targets.len() as u64)
    }

    /// Commits transactions of `batch` keyed records until `until`, or until another producer
    /// failed.
    fn run(&mut self, batch: usize, until: Instant, stop: &AtomicBool) -> Result<Tally, BaselineError> {
        let keyed = vec![None; batch];
        let mut tally = Tally::default();
        while Instant::now() < until && !stop.load(Ordering::Relaxed) {
            self.transaction(&keyed)?;
            tally.events += batch as u64;
            tally.transactions += 1;
        }
        Ok(tally)
    }

    /// One committed transaction: a record of random bytes under a random resource-like key
    /// per target, on the target partition or where the partitioner puts the key (`None`).
    /// Aborts on failure.
    fn transaction(&mut self, targets: &[Option<i32>]) -> Result<(), BaselineError> {
        self.producer.begin_transaction().map_err(kafka("begin transaction"))?;
        let result = self.send_and_commit(targets);
        if let Err(error) = &result {
            let fatal = matches!(error, BaselineError::Kafka { source: KafkaError::Transaction(e), .. } if e.is_fatal());
            if !fatal {
                // Best effort: the producer is dropped right after, which fences it anyway.
                let _ = self.producer.abort_transaction(CALL_TIMEOUT);
            }
        }
        result
    }

    fn send_and_commit(&mut self, targets: &[Option<i32>]) -> Result<(), BaselineError> {
        let mut deliveries = Vec::with_capacity(targets.len());
        for target in targets {
            self.rng.fill_bytes(&mut self.payload);
            self.key.clear();
            let _ = write!(self.key, "bl-r{}", self.rng.random_range(0..KEY_SPACE));
            let mut record = FutureRecord::to(&self.topic).key(&self.key).payload(&self.payload);
            if let Some(partition) = *target {
                record = record.partition(partition);
            }
            deliveries.push(send(&self.producer, record)?);
        }
        // Every delivery before the commit, as the partition processor does: the commit's own
        // flush only notices an empty queue at its next poll tick.
        for delivery in futures::executor::block_on(join_all(deliveries)) {
            match delivery {
                Ok(Ok(_)) => {}
                Ok(Err((error, _))) => return Err(kafka("produce")(error)),
                Err(_) => return Err(kafka("produce")(KafkaError::Canceled)),
            }
        }
        self.producer.commit_transaction(CALL_TIMEOUT).map_err(kafka("commit transaction"))
    }
}

/// Queues a record, waiting for room while the local queue is full, for a bounded time.
fn send<K, P>(
    producer: &FutureProducer,
    mut record: FutureRecord<'_, K, P>,
) -> Result<rdkafka::producer::DeliveryFuture, BaselineError>
where
    K: rdkafka::message::ToBytes + ?Sized,
    P: rdkafka::message::ToBytes + ?Sized,
{
    let mut full_since = None;
    loop {
        match producer.send_result(record) {
            Ok(delivery) => return Ok(delivery),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                let since = *full_since.get_or_insert_with(Instant::now);
                if since.elapsed() > QUEUE_FULL_PATIENCE {
                    return Err(BaselineError::QueueFull);
                }
                record = back;
                std::thread::sleep(Duration::from_millis(1));
            }
            Err((error, _)) => return Err(kafka("produce")(error)),
        }
    }
}
