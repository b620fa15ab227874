//! Shared set-up: a test's own topics, database and Redis prefix; events produced the way the
//! command service writes them (decided by the domain, Avro-encoded, in Kafka transactions);
//! and the oracle — the log read back and folded — that PostgreSQL and Redis must equal.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use holdfast_domain::Event;
use holdfast_platform::codec::EventCodec;
use holdfast_platform::kafka::{read_to_end, reader_config, transactional_producer_config};
use holdfast_platform::redis::Redis;
use holdfast_platform::testing::{self, RunningService, TestDatabase};
use holdfast_platform::topics::TopicLayout;
use holdfast_platform::{RedisArgs, ServiceError, Shutdown, TopicArgs};
use holdfast_projection_workers::cache::format;
use holdfast_projection_workers::model::{EventPosition, ReadModel, ReservationRow};
use holdfast_projection_workers::store::rows;
use holdfast_projection_workers::{Config, run};
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use sqlx::PgPool;

/// Everything one test owns on the local stack.
pub struct Stack {
    /// Topic names and partition count.
    pub topics: TopicArgs,
    /// The layout derived from `topics`.
    pub layout: TopicLayout,
    /// The test's database.
    pub database: TestDatabase,
    /// The test's Redis settings (own key prefix).
    pub redis: RedisArgs,
    /// A pool on the database, for assertions.
    pub pool: PgPool,
    /// Codec of the events topic, schemas registered.
    pub codec: Arc<EventCodec>,
}

impl Stack {
    /// Creates topics, database and Redis prefix for test `name`.
    pub async fn new(name: &str, partitions: i32) -> Self {
        testing::init_logs();
        let topics = testing::topics(name, partitions);
        let layout = TopicLayout::from_args(&topics);
        // Fresh topics can take a moment to show in the metadata; provisioning says so.
        let provisioned = testing::eventually(Duration::from_secs(30), || async {
            layout.ensure(&testing::kafka()).await.ok()
        })
        .await;
        assert!(provisioned.is_some(), "topics created");
        let database = TestDatabase::create(name).await.expect("database");
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(4)
            .connect(database.url())
            .await
            .expect("pool");
        let codec = Arc::new(EventCodec::new(&testing::registry(), &layout.events).expect("codec"));
        codec.register_all().await.expect("schemas registered");
        Self { redis: testing::redis(name), topics, layout, database, pool, codec }
    }

    /// A worker configuration for this stack.
    pub fn config(&self) -> Config {
        let mut config = Config::parse_from(["projection-workers"]);
        config.kafka = testing::kafka();
        config.registry = testing::registry();
        config.topics = self.topics.clone();
        config.postgres = self.database.postgres_args();
        config.redis = self.redis.clone();
        config.session_timeout = Duration::from_secs(6);
        config.cache_check_interval = Duration::from_millis(200);
        config.max_batch = 2000;
        config
    }

    /// Starts a worker in-process.
    pub async fn start(&self) -> RunningService {
        let config = self.config();
        RunningService::start(|listener, shutdown| run(config, listener, shutdown)).await
    }

    /// Starts a worker that can be aborted like a killed process (no shutdown, no drain).
    pub async fn start_killable(&self) -> tokio::task::JoinHandle<Result<(), ServiceError>> {
        let config = self.config();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        tokio::spawn(run(config, listener, Shutdown::new()))
    }

    /// Produces `events` in Kafka transactions of `per_transaction` events, keyed by resource.
    pub async fn produce(&self, events: Vec<Event>, per_transaction: usize) {
        let payloads: Vec<(String, Vec<u8>)> = events
            .iter()
            .map(|e| (e.envelope.resource_id.to_string(), self.codec.encode(e).expect("encodes")))
            .collect();
        self.produce_raw(payloads.into_iter().map(|(k, v)| (k, None, v)).collect(), per_transaction).await;
    }

    /// Produces raw records (key, partition or none for the key's, payload) transactionally.
    pub async fn produce_raw(&self, records: Vec<(String, Option<i32>, Vec<u8>)>, per_transaction: usize) {
        let topic = self.layout.events.clone();
        tokio::task::spawn_blocking(move || -> Result<(), KafkaError> {
            let txn = testing::unique("proj-producer");
            let producer: BaseProducer =
                transactional_producer_config(&testing::kafka(), &txn, &txn, Duration::from_secs(10))
                    .create()?;
            producer.init_transactions(Duration::from_secs(30))?;
            for chunk in records.chunks(per_transaction.max(1)) {
                producer.begin_transaction()?;
                for (key, partition, payload) in chunk {
                    send(&producer, &topic, key, *partition, payload)?;
                }
                producer.commit_transaction(Duration::from_secs(30))?;
            }
            Ok(())
        })
        .await
        .expect("producer thread")
        .expect("produced");
    }

    /// Every committed record of the events topic: partition → [(offset, payload)].
    pub async fn read_log(&self) -> BTreeMap<i32, Vec<(i64, Vec<u8>)>> {
        let (topic, partitions) = (self.layout.events.clone(), self.layout.partitions);
        tokio::task::spawn_blocking(move || {
            let mut assignment = TopicPartitionList::new();
            for p in 0..partitions {
                assignment.add_partition_offset(&topic, p, Offset::Beginning).expect("partition");
            }
            let mut log: BTreeMap<i32, Vec<(i64, Vec<u8>)>> = BTreeMap::new();
            let config = reader_config(&testing::kafka(), &testing::unique("proj-oracle"));
            read_to_end(&config, &assignment, Duration::from_secs(60), |p, o, payload| {
                log.entry(p).or_default().push((o, payload.to_vec()));
            })
            .expect("log read");
            log
        })
        .await
        .expect("reader thread")
    }

    /// The oracle: the log folded from scratch, and each partition's next offset after its
    /// last record (decodable or not).
    pub async fn expected(&self) -> (ReadModel, HashMap<i32, i64>) {
        let log = self.read_log().await;
        let mut model = ReadModel::default();
        let mut ends = HashMap::new();
        for (partition, records) in log {
            for (offset, payload) in records {
                ends.insert(partition, offset + 1);
                if let Ok(event) = self.codec.decode(&payload).await {
                    model.apply(&event, EventPosition { partition, offset });
                }
            }
        }
        (model, ends)
    }

    /// Stored next offsets in PostgreSQL (none before the worker has migrated the database).
    pub async fn stored_offsets(&self) -> HashMap<i32, i64> {
        let rows: Vec<(i32, i64)> =
            sqlx::query_as("SELECT partition, next_offset FROM projection_offsets WHERE topic = $1")
                .bind(&self.layout.events)
                .fetch_all(&self.pool)
                .await
                .unwrap_or_default();
        rows.into_iter().collect()
    }

    /// Waits until PostgreSQL has every partition at least at `ends`.
    pub async fn wait_applied(&self, ends: &HashMap<i32, i64>, deadline: Duration) -> bool {
        testing::eventually(deadline, || async {
            let stored = self.stored_offsets().await;
            ends.iter().all(|(p, end)| stored.get(p).is_some_and(|s| s >= end)).then_some(())
        })
        .await
        .is_some()
    }

    /// Waits until Redis's positions have reached PostgreSQL's on every partition of `ends`.
    pub async fn wait_cached(&self, ends: &HashMap<i32, i64>, deadline: Duration) -> bool {
        let redis = Redis::new(&self.redis).expect("redis");
        testing::eventually(deadline, || async {
            let positions = positions(&redis).await?;
            ends.iter().all(|(p, end)| positions.get(p).is_some_and(|s| s >= end)).then_some(())
        })
        .await
        .is_some()
    }

    /// Asserts PostgreSQL holds exactly the rows of `expected` (versions included).
    pub async fn assert_postgres_exact(&self, expected: &ReadModel) {
        let mut conn = self.pool.acquire().await.expect("connection");
        let (resources, slots, reservations) = rows::everything(&mut conn).await.expect("rows");
        assert_rows_equal("resources", &resources, &expected.resources().cloned().collect::<Vec<_>>());
        assert_rows_equal("availability", &slots, &expected.slots().cloned().collect::<Vec<_>>());
        assert_rows_equal(
            "reservations",
            &reservations,
            &expected.reservations().cloned().collect::<Vec<ReservationRow>>(),
        );
    }

    /// Asserts Redis holds exactly the availability of `expected` and positions equal to
    /// PostgreSQL's offsets.
    pub async fn assert_redis_exact(&self, expected: &ReadModel) {
        let redis = Redis::new(&self.redis).expect("redis");
        let mut conn = redis.conn().await.expect("redis connection");
        let mut wanted: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for row in expected.resources() {
            wanted
                .entry(format::availability_key(&self.redis.key_prefix, &row.resource_id))
                .or_default()
                .insert(format::DEFINITION_FIELD.to_owned(), format::definition_value(row));
        }
        for row in expected.slots() {
            let (field, value) = format::slot_field(row);
            wanted
                .entry(format::availability_key(&self.redis.key_prefix, &row.resource_id))
                .or_default()
                .insert(field, value);
        }
        let mut mismatches = Vec::new();
        for (key, fields) in &wanted {
            let actual: BTreeMap<String, String> =
                redis::cmd("HGETALL").arg(key).query_async(&mut conn).await.expect("hgetall");
            if &actual != fields {
                let missing: Vec<_> =
                    fields.iter().filter(|(f, v)| actual.get(*f) != Some(v)).take(3).collect();
                mismatches.push(format!(
                    "{key}: {} fields expected, {} found; e.g. {missing:?}",
                    fields.len(),
                    actual.len()
                ));
            }
        }
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}avail:*", self.redis.key_prefix))
            .query_async(&mut conn)
            .await
            .expect("keys");
        assert_eq!(keys.len(), wanted.len(), "one availability hash per resource");
        assert!(mismatches.is_empty(), "redis differs from the log:\n{}", mismatches.join("\n"));
        let cached = positions(&redis).await.expect("positions");
        let stored = self.stored_offsets().await;
        for (partition, next) in stored {
            if next > 0 {
                assert_eq!(cached.get(&partition), Some(&next), "redis position of partition {partition}");
            }
        }
    }

    /// Deletes every Redis key of this test (what FLUSHALL does to a shared server).
    pub async fn flush_redis(&self) -> usize {
        let redis = Redis::new(&self.redis).expect("redis");
        let mut conn = redis.conn().await.expect("redis connection");
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}*", self.redis.key_prefix))
            .query_async(&mut conn)
            .await
            .expect("keys");
        for key in &keys {
            let () = redis::cmd("DEL").arg(key).query_async(&mut conn).await.expect("del");
        }
        keys.len()
    }

    /// Drops the database and the topics.
    pub async fn tear_down(self) {
        self.pool.close().await;
        self.database.drop_database().await.expect("database dropped");
        let _ = self.layout.delete(&testing::kafka()).await;
    }
}

/// The Redis positions hash.
pub async fn positions(redis: &Redis) -> Option<HashMap<i32, i64>> {
    let mut conn = redis.conn().await.ok()?;
    let raw: HashMap<String, i64> = redis::cmd("HGETALL")
        .arg(format::positions_key(&redis.key_prefix))
        .query_async(&mut conn)
        .await
        .ok()?;
    Some(raw.into_iter().filter_map(|(p, o)| Some((p.parse().ok()?, o))).collect())
}

fn assert_rows_equal<T: PartialEq + std::fmt::Debug>(table: &str, actual: &[T], expected: &[T]) {
    if actual == expected {
        return;
    }
    let first =
        actual.iter().zip(expected).position(|(a, e)| a != e).unwrap_or(actual.len().min(expected.len()));
    panic!(
        "{table}: {} rows stored, {} expected; first difference at row {first}:\n stored   {:?}\n expected {:?}",
        actual.len(),
        expected.len(),
        actual.get(first),
        expected.get(first)
    );
}

/// Sends one record, waiting for queue space instead of failing when the queue is full.
fn send(
    producer: &BaseProducer,
    topic: &str,
    key: &str,
    partition: Option<i32>,
    payload: &[u8],
) -> Result<(), KafkaError> {
    let mut record = BaseRecord::to(topic).key(key).payload(payload);
    if let Some(partition) = partition {
        record = record.partition(partition);
    }
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                producer.poll(Duration::from_millis(10));
                record = back;
            }
            Err((error, _)) => return Err(error),
        }
    }
}
