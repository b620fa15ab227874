//! Baselines measured right before a run: raw transactional produce rate and raw PostgreSQL
//! batched upsert rate on the same machine.
//!
//! A load run's end-to-end rate means little on its own on a shared machine; divided by what
//! the same Kafka and PostgreSQL do with nothing but Holdfast's write shapes in between, it
//! becomes an efficiency ratio that can be compared across machines. Each baseline uses the
//! write shape of the service it stands for:
//!
//! - [`produce`]: transactional producers (the command service's settings, from
//!   [`holdfast_platform::kafka::transactional_producer_config`]) each committing `batch`
//!   records of event size per transaction, waiting for every delivery before the commit as
//!   the partition processor does, into a topic of its own (warmed up first, see
//!   [`produce_into`]) that is deleted afterwards;
//! - [`upsert`]: `INSERT … SELECT FROM UNNEST(…) ON CONFLICT DO UPDATE` statements shaped like
//!   the projection's write to `reservations`, one transaction each, in a scratch schema that
//!   is dropped afterwards;
//! - [`typical_event_bytes`]: the record size [`produce`] should use, measured by encoding a
//!   typical `ReservationHeld` through the platform's codec.
//!
//! This module must leave nothing behind on the services it measures (topics, schemas), and
//! it never touches Holdfast's own topics or tables.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::future::join_all;
use holdfast_domain::{
    CommandMeta, CustomerId, Event, EventPayload, Quantity, ReservationId, ResourceId, SlotRange,
};
use holdfast_platform::codec::{CodecError, EventCodec};
use holdfast_platform::kafka::{admin, transactional_producer_config};
use holdfast_platform::{KafkaArgs, RegistryArgs, TopicArgs};
use rand::rngs::SmallRng;
use rand::{Rng as _, RngCore as _, SeedableRng as _};
use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};
use sqlx::{Connection as _, PgConnection};
use time::OffsetDateTime;

/// How long one blocking transaction call (init, commit, abort) may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Broker-side limit of a baseline transaction: an abandoned one only holds back readers of
/// the baseline topic, which has none, so this need not be short.
const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a full local producer queue may stay full before the baseline gives up.
const QUEUE_FULL_PATIENCE: Duration = Duration::from_secs(10);
/// How long a created topic may take to show every partition with a leader.
const VISIBLE_PATIENCE: Duration = Duration::from_secs(30);
/// Timeout of the admin requests (create, delete).
const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Distinct keys the produce baseline draws from: enough to spread over any partition count.
const KEY_SPACE: u32 = 100_000;
/// Resources the upsert baseline's rows are spread over (the `resource_id` index).
const UPSERT_RESOURCES: u64 = 1_000;

/// Settings of the baselines (sane defaults via [`Default`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaselineSettings {
    /// How long each baseline runs (10 s by default).
    pub seconds: Duration,
    /// Partitions of the produce baseline's topic (480 by default, like the events topic).
    pub partitions: i32,
    /// Records per transaction (200 by default).
    pub batch: usize,
    /// Concurrent transactional producers, one thread each (4 by default).
    pub producers: usize,
    /// Rows per upsert statement, one transaction each (500 by default).
    pub upsert_batch: usize,
}

impl Default for BaselineSettings {
    fn default() -> Self {
        Self {
            seconds: Duration::from_secs(10),
            partitions: 480,
            batch: 200,
            producers: 4,
            upsert_batch: 500,
        }
    }
}

impl BaselineSettings {
    /// The defaults with the partition count of the deployment's events topic.
    #[must_use]
    pub fn like(topics: &TopicArgs) -> Self {
        Self { partitions: topics.partitions, ..Self::default() }
    }

    /// Refuses settings that cannot measure anything.
    fn check(&self) -> Result<(), BaselineError> {
        let wrong = |what: &str| Err(BaselineError::Settings(what.to_owned()));
        if self.seconds.is_zero() {
            return wrong("seconds must be positive");
        }
        if self.partitions < 1 {
            return wrong("partitions must be at least 1");
        }
        if self.batch == 0 || self.upsert_batch == 0 {
            return wrong("batch and upsert_batch must be at least 1");
        }
        if self.producers == 0 {
            return wrong("producers must be at least 1");
        }
        Ok(())
    }
}

/// What the produce baseline measured.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct ProduceBaseline {
    /// Committed records per second, all producers together.
    pub events_per_s: f64,
    /// Committed transactions per second, all producers together.
    pub transactions_per_s: f64,
    /// Payload size of every record.
    pub event_bytes: usize,
    /// Records per transaction.
    pub batch: usize,
    /// Concurrent producers.
    pub producers: usize,
    /// Partitions of the topic written to.
    pub partitions: i32,
    /// Measured duration, from the first transaction to the end of the last one.
    pub seconds: f64,
    /// Records in committed transactions.
    pub events: u64,
    /// Records committed before the clock started (one per partition, see [`produce_into`]);
    /// not in `events`.
    pub warmup_events: u64,
}

/// What the upsert baseline measured.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct UpsertBaseline {
    /// Rows written per second.
    pub rows_per_s: f64,
    /// Rows per statement (and transaction).
    pub batch: usize,
    /// Measured duration, from the first statement to the last commit.
    pub seconds: f64,
    /// Rows PostgreSQL reported written, in committed transactions.
    pub rows: u64,
}

/// Why a baseline could not be measured.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    /// The settings cannot measure anything: fix them.
    #[error("invalid baseline settings: {0}")]
    Settings(String),
    /// Kafka failed or did not answer: check the brokers and retry. The baseline topic was
    /// deleted (or the failure is reported as [`BaselineError::DeleteTopic`]).
    #[error("kafka failed during {during}")]
    Kafka {
        /// The step that failed.
        during: &'static str,
        /// The client's error.
        #[source]
        source: KafkaError,
    },
    /// The baseline topic exists already: another baseline with the same topic prefix is
    /// running, or an interrupted one left it. Wait for the other, or delete the topic.
    #[error("baseline topic {0} exists already")]
    TopicExists(String),
    /// The cluster refused to create the baseline topic (partition limit, replication factor
    /// above the broker count, policy): read the code and fix the settings or the cluster.
    #[error("cannot create baseline topic {topic}: {code}")]
    CreateTopic {
        /// The topic.
        topic: String,
        /// The broker's answer.
        code: RDKafkaErrorCode,
    },
    /// The topic did not show every partition with a leader in time: the cluster is
    /// overloaded or unhealthy; retry later.
    #[error("topic {0} did not become ready within {VISIBLE_PATIENCE:?}")]
    TopicNotReady(String),
    /// The local producer queue stayed full: the broker does not keep up at all; retry later
    /// or with fewer producers.
    #[error("the producer queue stayed full for {QUEUE_FULL_PATIENCE:?}")]
    QueueFull,
    /// The baseline topic could not be deleted: delete it by hand (`kafka-topics.sh --delete
    /// --topic …`), since every partition left behind slows the broker down.
    #[error("cannot delete baseline topic {topic}: {reason}{}", after(earlier.as_deref()))]
    DeleteTopic {
        /// The topic.
        topic: String,
        /// Why.
        reason: String,
        /// The error that ended the run before, if one did.
        earlier: Option<Box<BaselineError>>,
    },
    /// The event could not be encoded: check that the schema registry is reachable (retry),
    /// or read the codec's error.
    #[error("cannot encode the typical event")]
    Codec(#[from] CodecError),
    /// PostgreSQL failed: check the database URL and the server, and retry.
    #[error("postgres failed during {during}")]
    Postgres {
        /// The step that failed.
        during: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// The scratch schema could not be dropped: drop it by hand (`DROP SCHEMA … CASCADE`).
    #[error("cannot drop scratch schema {schema}: {source}{}", after(earlier.as_deref()))]
    DropSchema {
        /// The schema.
        schema: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
        /// The error that ended the run before, if one did.
        earlier: Option<Box<BaselineError>>,
    },
    /// A producer thread panicked: a bug, report it.
    #[error("a baseline producer thread ended abnormally: {0}")]
    Thread(String),
}

/// Refuses empty records, which would measure request overhead only.
fn check_event_bytes(event_bytes: usize) -> Result<(), BaselineError> {
    if event_bytes == 0 {
        return Err(BaselineError::Settings("event_bytes must be at least 1".to_owned()));
    }
    Ok(())
}

/// ` (after: <error>)` when a cleanup failed after another error.
fn after(earlier: Option<&BaselineError>) -> String {
    earlier.map(|e| format!(" (after: {e})")).unwrap_or_default()
}

fn kafka(during: &'static str) -> impl FnOnce(KafkaError) -> BaselineError {
    move |source| BaselineError::Kafka { during, source }
}

fn postgres(during: &'static str) -> impl FnOnce(sqlx::Error) -> BaselineError {
    move |source| BaselineError::Postgres { during, source }
}

/// A typical `ReservationHeld` as the command service writes it for the load generator: ids
/// of the generator's shape, a two-day hold of one unit, a 900 s hold time, no trace context
/// (the generator sends none).
#[must_use]
pub fn typical_event() -> Event {
    #[allow(clippy::expect_used, reason = "constant values within the domain's rules")]
    let (resource, reservation_id, command, range, quantity, customer) = (
        ResourceId::parse("lt-0f3a9c21-r42").expect("valid resource id"),
        ReservationId::parse("r1_019b7a3c5e2f7d41a8c3e5f7091b2d4f_lt-0f3a9c21-r42").expect("valid id"),
        // The domain re-exports no UUID type: borrow one from a parsed reservation id.
        ReservationId::parse("r1_4f1c2e8a9b3d4c5e8f7a6b5c4d3e2f10_lt-0f3a9c21-r42").expect("valid id"),
        SlotRange::parse("2026-03-14", "2026-03-16").expect("valid range"),
        Quantity::new(1).expect("valid quantity"),
        CustomerId::parse("lt-0f3a9c21-c1234").expect("valid customer"),
    );
    let now = time::macros::datetime!(2026-03-01 09:30:15.123456 UTC);
    let payload = EventPayload::ReservationHeld {
        reservation_id,
        range,
        quantity,
        customer_id: customer,
        expires_at: now + time::Duration::seconds(900),
    };
    Event::from_decision(&resource, &CommandMeta::new(command.uuid()), now, 0, payload)
}

/// The encoded size of [`typical_event`] as Holdfast writes it: the 5-byte Confluent header
/// and the Avro body, through the platform's [`EventCodec`]. Registers the current schemas
/// under `events_topic` first (idempotent, what every service does at start); pass the
/// deployment's events topic so no other subjects appear in the registry.
///
/// # Errors
/// [`BaselineError::Codec`] when the registry is unreachable or refuses a schema.
pub async fn typical_event_bytes(
    registry: &RegistryArgs,
    events_topic: &str,
) -> Result<usize, BaselineError> {
    let codec = EventCodec::new(registry, events_topic)?;
    codec.register_all().await?;
    Ok(codec.encode(&typical_event())?.len())
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

/// The upsert baseline: in a scratch schema `baseline_<random>` of the database at
/// `postgres_url`, a copy of the read model's `reservations` table (columns, checks, indexes)
/// receives `settings.upsert_batch`-row upserts, one transaction each, half new rows and half
/// updates of earlier ones (a hold's row, then its confirmation), until `settings.seconds`
/// have passed. The schema is dropped afterwards, also when the run failed.
///
/// # Errors
/// See [`BaselineError`]; a failed drop is reported even after a successful run.
pub async fn upsert(
    postgres_url: &SecretString,
    settings: &BaselineSettings,
) -> Result<UpsertBaseline, BaselineError> {
    settings.check()?;
    let schema = format!("baseline_{:016x}", rand::random::<u64>());
    let mut conn = PgConnection::connect(postgres_url.expose_secret()).await.map_err(postgres("connect"))?;
    // One simple-protocol query string runs as one transaction: all of it, or nothing to drop.
    sqlx::raw_sql(&scratch_ddl(&schema)).execute(&mut conn).await.map_err(postgres("create schema"))?;

    let measured = measure_upserts(&mut conn, &schema, settings).await;

    let drop_sql = format!("DROP SCHEMA IF EXISTS {schema} CASCADE");
    let dropped = if measured.is_ok() {
        let dropped = sqlx::raw_sql(&drop_sql).execute(&mut conn).await.map(|_| ());
        // The work is done; a failure to say goodbye cleanly loses nothing.
        let _ = conn.close().await;
        dropped
    } else {
        // The failed connection may be broken or inside a transaction holding locks on the
        // table: close it and drop from a fresh one.
        drop(conn);
        match PgConnection::connect(postgres_url.expose_secret()).await {
            Ok(mut fresh) => {
                let dropped = sqlx::raw_sql(&drop_sql).execute(&mut fresh).await.map(|_| ());
                let _ = fresh.close().await;
                dropped
            }
            Err(error) => Err(error),
        }
    };
    match (measured, dropped) {
        (measured, Ok(())) => measured,
        (measured, Err(source)) => {
            Err(BaselineError::DropSchema { schema, source, earlier: measured.err().map(Box::new) })
        }
    }
}

/// The scratch schema and its `reservations` table, as `projection-workers/migrations`
/// define the read model's.
fn scratch_ddl(schema: &str) -> String {
    format!(
        "CREATE SCHEMA {schema};
         CREATE TABLE {schema}.reservations (
             reservation_id  TEXT        PRIMARY KEY,
             resource_id     TEXT        NOT NULL,
             slot_from       DATE        NOT NULL,
             slot_to         DATE        NOT NULL CHECK (slot_to > slot_from),
             quantity        INTEGER     NOT NULL CHECK (quantity > 0),
             customer_id     TEXT        NOT NULL,
             status          TEXT        NOT NULL CHECK (status IN ('held', 'confirmed', 'cancelled', 'expired')),
             expires_at      TIMESTAMPTZ NOT NULL,
             payment_ref     TEXT,
             cancel_reason   TEXT,
             created_at      TIMESTAMPTZ NOT NULL,
             updated_at      TIMESTAMPTZ NOT NULL,
             version         BIGINT      NOT NULL
         );
         CREATE INDEX ON {schema}.reservations (customer_id, reservation_id);
         CREATE INDEX ON {schema}.reservations (resource_id, slot_from);"
    )
}

/// Runs upserts until `settings.seconds` have passed.
async fn measure_upserts(
    conn: &mut PgConnection,
    schema: &str,
    settings: &BaselineSettings,
) -> Result<UpsertBaseline, BaselineError> {
    // The projection's statement, word for word but for the schema.
    let statement = format!(
        "INSERT INTO {schema}.reservations (reservation_id, resource_id, slot_from, slot_to, quantity,
                                            customer_id, status, expires_at, payment_ref, cancel_reason,
                                            created_at, updated_at, version)
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::date[], $4::date[], $5::int[], $6::text[],
                              $7::text[], $8::timestamptz[], $9::text[], $10::text[], $11::timestamptz[],
                              $12::timestamptz[], $13::bigint[])
         ON CONFLICT (reservation_id) DO UPDATE SET
             status = EXCLUDED.status, payment_ref = EXCLUDED.payment_ref,
             cancel_reason = EXCLUDED.cancel_reason, updated_at = EXCLUDED.updated_at,
             version = EXCLUDED.version
         WHERE reservations.version < EXCLUDED.version"
    );
    let mut rng = SmallRng::from_rng(&mut rand::rng());
    let (mut keys, mut version, mut rows) = (0_u64, 0_i64, 0_u64);
    let started = Instant::now();
    while started.elapsed() < settings.seconds {
        let plan = plan_upsert(keys, settings.upsert_batch, &mut rng);
        keys += plan.new_keys;
        let batch = Rows::build(&plan, version, OffsetDateTime::now_utc());
        version += i64::try_from(settings.upsert_batch).unwrap_or(i64::MAX);
        let mut tx = conn.begin().await.map_err(postgres("begin"))?;
        let done = sqlx::query(&statement)
            .bind(&batch.ids)
            .bind(&batch.resources)
            .bind(&batch.from)
            .bind(&batch.to)
            .bind(&batch.quantities)
            .bind(&batch.customers)
            .bind(&batch.statuses)
            .bind(&batch.expires)
            .bind(&batch.payments)
            .bind(&batch.reasons)
            .bind(&batch.created)
            .bind(&batch.updated)
            .bind(&batch.versions)
            .execute(&mut *tx)
            .await
            .map_err(postgres("upsert"))?;
        tx.commit().await.map_err(postgres("commit"))?;
        rows += done.rows_affected();
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(UpsertBaseline { rows_per_s: rows as f64 / seconds, batch: settings.upsert_batch, seconds, rows })
}

/// Which rows one upsert writes: `updates` consecutive earlier keys from `first_update`, then
/// `new_keys` fresh keys from `first_new`. All distinct, as one `ON CONFLICT DO UPDATE`
/// statement may not touch a row twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct UpsertPlan {
    first_update: u64,
    updates: u64,
    first_new: u64,
    new_keys: u64,
}

/// Half the batch updates a random run of the `existing` keys (all of them while there are
/// fewer), the rest are new keys.
fn plan_upsert(existing: u64, batch: usize, rng: &mut SmallRng) -> UpsertPlan {
    let batch = batch as u64;
    let updates = (batch / 2).min(existing);
    let first_update = rng.random_range(0..=existing - updates);
    UpsertPlan { first_update, updates, first_new: existing, new_keys: batch - updates }
}

/// The columns of one upsert statement.
#[derive(Debug, Default)]
struct Rows {
    ids: Vec<String>,
    resources: Vec<String>,
    from: Vec<time::Date>,
    to: Vec<time::Date>,
    quantities: Vec<i32>,
    customers: Vec<String>,
    statuses: Vec<&'static str>,
    expires: Vec<OffsetDateTime>,
    payments: Vec<Option<String>>,
    reasons: Vec<Option<String>>,
    created: Vec<OffsetDateTime>,
    updated: Vec<OffsetDateTime>,
    versions: Vec<i64>,
}

impl Rows {
    /// Updates confirm an earlier hold; new keys are holds. Versions count up from `version`.
    fn build(plan: &UpsertPlan, version: i64, now: OffsetDateTime) -> Self {
        let updates = (plan.first_update..plan.first_update + plan.updates).map(|k| (k, true));
        let news = (plan.first_new..plan.first_new + plan.new_keys).map(|k| (k, false));
        let mut rows = Self::default();
        let first_day = now.date();
        for ((key, confirmed), version) in updates.chain(news).zip(version..) {
            let resource = format!("bl-r{}", key % UPSERT_RESOURCES);
            let from = first_day.saturating_add(time::Duration::days(i64::try_from(key % 90).unwrap_or(0)));
            rows.ids.push(format!("r1_{key:032x}_{resource}"));
            rows.resources.push(resource);
            rows.from.push(from);
            rows.to.push(from.saturating_add(time::Duration::days(2)));
            rows.quantities.push(1);
            rows.customers.push(format!("bl-c{}", key % 10_000));
            rows.statuses.push(if confirmed { "confirmed" } else { "held" });
            rows.expires.push(now + time::Duration::seconds(900));
            rows.payments.push(confirmed.then(|| format!("pay-{key}")));
            rows.reasons.push(None);
            rows.created.push(now);
            rows.updated.push(now);
            rows.versions.push(version);
        }
        rows
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use holdfast_domain::EventType;

    use super::*;

    #[test]
    fn settings_that_measure_nothing_are_refused() {
        assert!(BaselineSettings::default().check().is_ok());
        let zero = |change: fn(&mut BaselineSettings)| {
            let mut settings = BaselineSettings::default();
            change(&mut settings);
            settings.check().is_err()
        };
        assert!(zero(|s| s.seconds = Duration::ZERO));
        assert!(zero(|s| s.partitions = 0));
        assert!(zero(|s| s.batch = 0));
        assert!(zero(|s| s.producers = 0));
        assert!(zero(|s| s.upsert_batch = 0));
    }

    #[test]
    fn defaults_follow_the_events_topic() {
        let topics = TopicArgs {
            topic_prefix: String::new(),
            partitions: 15,
            replication_factor: 3,
            min_insync_replicas: 2,
        };
        assert_eq!(BaselineSettings::like(&topics).partitions, 15);
        assert_eq!(BaselineSettings::default().partitions, 480);
    }

    #[test]
    fn the_typical_event_is_a_hold() {
        let event = typical_event();
        assert_eq!(event.envelope.event_type, EventType::ReservationHeld);
        assert_eq!(event.envelope.resource_id.as_str(), "lt-0f3a9c21-r42");
        assert!(event.envelope.traceparent.is_none());
    }

    #[test]
    fn upserts_are_half_updates_of_distinct_earlier_keys() {
        let mut rng = SmallRng::seed_from_u64(7);
        let first = plan_upsert(0, 500, &mut rng);
        assert_eq!((first.updates, first.new_keys, first.first_new), (0, 500, 0));
        let few = plan_upsert(100, 500, &mut rng);
        assert_eq!((few.first_update, few.updates, few.new_keys), (0, 100, 400));
        for _ in 0..100 {
            let plan = plan_upsert(10_000, 501, &mut rng);
            assert_eq!((plan.updates, plan.new_keys), (250, 251));
            assert!(plan.first_update + plan.updates <= 10_000);
            let rows = Rows::build(&plan, 40, OffsetDateTime::now_utc());
            let ids: HashSet<&String> = rows.ids.iter().collect();
            assert_eq!(ids.len(), 501, "no key twice in one statement");
            assert_eq!(rows.statuses.iter().filter(|s| **s == "confirmed").count(), 250);
            assert_eq!(rows.versions.first(), Some(&40));
            assert_eq!(rows.versions.last(), Some(&540));
        }
    }

    #[test]
    fn rows_respect_the_read_model_checks() {
        let plan = UpsertPlan { first_update: 0, updates: 3, first_new: 3, new_keys: 3 };
        let rows = Rows::build(&plan, 0, OffsetDateTime::now_utc());
        assert!(rows.from.iter().zip(&rows.to).all(|(from, to)| to > from));
        assert!(rows.ids.iter().all(|id| ReservationId::parse(id).is_ok()), "ids of the real shape");
        assert!(rows.payments.iter().zip(&rows.statuses).all(|(p, s)| p.is_some() == (*s == "confirmed")));
    }
}
