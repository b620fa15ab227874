//! Shared set-up: a test's own topics, database and Redis prefix; events appended the way a
//! partition's owner appends them (decided by the domain, Avro-encoded, a claim then records of
//! its tenure, through `holdfast_platform::testing::LogWriter`); and the oracle — the log read
//! back by the reader rule and folded — that PostgreSQL and Redis must equal.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use holdfast_domain::Event;
use holdfast_platform::codec::{EventCodec, LogRecord};
use holdfast_platform::kafka::{read_to_end, reader_config};
use holdfast_platform::partitioner::partition_for;
use holdfast_platform::redis::Redis;
use holdfast_platform::replay::{Entry, Plan, replay};
use holdfast_platform::testing::{self, LogWriter, RunningService, TestDatabase};
use holdfast_platform::topics::TopicLayout;
use holdfast_platform::{RedisArgs, ServiceError, Shutdown, TopicArgs};
use holdfast_projection_workers::cache::format;
use holdfast_projection_workers::model::{EventPosition, ReadModel, ReservationRow};
use holdfast_projection_workers::store::rows;
use holdfast_projection_workers::testing::Workload;
use holdfast_projection_workers::{Config, run};
use holdfast_tenure::{Mark, Tenure, Token};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use sqlx::PgPool;
use tokio::sync::Mutex;

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
    /// The owner of each partition, created on its first append.
    owners: Vec<Mutex<Option<Owner>>>,
}

/// A partition's owner as the tests drive it: its writer, and how many valid records it has
/// appended since its claim (which `LogWriter` keeps to itself).
struct Owner {
    log: LogWriter,
    appended: u64,
    /// A raw valid record went out under the writer's next sequence number, which the writer
    /// does not know: it must claim again before its next event.
    claim_again: bool,
}

/// The log as the reader rule judges it, folded.
#[derive(Debug, Default)]
pub struct Oracle {
    /// The valid events folded from scratch.
    pub model: ReadModel,
    /// Each partition's next offset after its last record (whatever the rule made of it).
    pub ends: HashMap<i32, i64>,
    /// Valid events.
    pub events: u64,
    /// Claims.
    pub claims: u64,
    /// Valid refused commands.
    pub rejected: u64,
    /// Void records by reason.
    pub void: BTreeMap<&'static str, u64>,
    /// Valid records that do not decode.
    pub undecodable: u64,
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
        let owners = (0..partitions).map(|_| Mutex::new(None)).collect();
        Self { redis: testing::redis(name), topics, layout, database, pool, codec, owners }
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

    /// A writer of the events topic of its own (a second owner, or a zombie).
    pub fn writer(&self) -> LogWriter {
        LogWriter::new(&testing::kafka(), &self.layout.events, Arc::clone(&self.codec))
    }

    /// The partition of `resource`.
    pub fn partition_of(&self, resource: &str) -> i32 {
        partition_for(resource.as_bytes(), self.layout.partitions)
    }

    /// Appends `events` as their partitions' owners do: each partition's in order, as valid
    /// records of its owner's tenure (claimed on the first append); partitions in parallel.
    pub async fn produce(&self, events: Vec<Event>) {
        let mut by_partition: BTreeMap<i32, Vec<Event>> = BTreeMap::new();
        for event in events {
            by_partition
                .entry(self.partition_of(event.envelope.resource_id.as_str()))
                .or_default()
                .push(event);
        }
        let appends = by_partition.into_iter().map(|(partition, events)| async move {
            let mut owner = self.owner(partition).await;
            let owner = owner.as_mut().expect("owner");
            if owner.claim_again {
                owner.log.claim(partition).await;
                (owner.appended, owner.claim_again) = (0, false);
            }
            for event in &events {
                owner.log.event(event, self.layout.partitions).await;
                owner.appended += 1;
            }
        });
        futures::future::join_all(appends).await;
    }

    /// Appends `payload` to `partition` as the next valid record of its owner's tenure, whatever
    /// it holds (a poison record the rule counts). Returns its offset.
    pub async fn produce_valid_raw(&self, partition: i32, key: &str, payload: &[u8]) -> i64 {
        let mut owner = self.owner(partition).await;
        let owner = owner.as_mut().expect("owner");
        if owner.claim_again || owner.log.token(partition).is_none() {
            owner.log.claim(partition).await;
            (owner.appended, owner.claim_again) = (0, false);
        }
        let token = owner.log.token(partition).expect("claimed");
        let offset = owner.log.raw(partition, key, payload, Mark::Data { token, seq: owner.appended }).await;
        owner.appended += 1;
        owner.claim_again = true;
        offset
    }

    async fn owner(&self, partition: i32) -> tokio::sync::MutexGuard<'_, Option<Owner>> {
        let mut owner = self.owners[usize::try_from(partition).expect("partition")].lock().await;
        if owner.is_none() {
            *owner = Some(Owner { log: self.writer(), appended: 0, claim_again: false });
        }
        owner
    }

    /// Every record of the events topic: partition → [(offset, payload)].
    pub async fn read_log(&self) -> BTreeMap<i32, Vec<(i64, Vec<u8>)>> {
        let (topic, partitions) = (self.layout.events.clone(), self.layout.partitions);
        tokio::task::spawn_blocking(move || {
            let mut assignment = TopicPartitionList::new();
            for p in 0..partitions {
                assignment.add_partition_offset(&topic, p, Offset::Beginning).expect("partition");
            }
            let mut log: BTreeMap<i32, Vec<(i64, Vec<u8>)>> = BTreeMap::new();
            let config = reader_config(&testing::kafka(), &testing::unique("proj-log"));
            read_to_end(&config, &assignment, Duration::from_secs(60), |message| {
                let payload = message.payload().unwrap_or_default().to_vec();
                log.entry(message.partition()).or_default().push((message.offset(), payload));
            })
            .expect("log read");
            log
        })
        .await
        .expect("reader thread")
    }

    /// The oracle: the log read back from the beginning by the reader rule, its valid events
    /// folded from scratch, the rest counted.
    pub async fn oracle(&self) -> Oracle {
        let config = reader_config(&testing::kafka(), &testing::unique("proj-oracle"));
        let plan = Plan::from_beginning(&self.layout.events, 0..self.layout.partitions).expect("plan");
        let codec = Arc::clone(&self.codec);
        let runtime = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            let mut oracle = Oracle::default();
            replay(&config, &plan, Duration::from_secs(60), &codec, &runtime, |record| {
                oracle.ends.insert(record.partition, record.offset + 1);
                match record.entry {
                    Entry::Claim(_) => oracle.claims += 1,
                    Entry::Void(why) => *oracle.void.entry(why.label()).or_default() += 1,
                    Entry::Valid { record: Ok(LogRecord::Event(event)), .. } => {
                        oracle.events += 1;
                        let position = EventPosition { partition: record.partition, offset: record.offset };
                        oracle.model.apply(&event, position);
                    }
                    Entry::Valid { record: Ok(LogRecord::Rejected(_)), .. } => oracle.rejected += 1,
                    Entry::Valid { .. } => oracle.undecodable += 1,
                }
            })
            .expect("log read");
            oracle
        })
        .await
        .expect("reader thread")
    }

    /// The oracle's model and ends.
    pub async fn expected(&self) -> (ReadModel, HashMap<i32, i64>) {
        let oracle = self.oracle().await;
        (oracle.model, oracle.ends)
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

    /// Stored tenures in PostgreSQL, per partition (live generation 0's table).
    pub async fn stored_tenures(&self) -> HashMap<i32, Option<Tenure>> {
        let rows: Vec<(i32, Option<uuid::Uuid>, Option<i64>)> = sqlx::query_as(
            "SELECT partition, tenure_token, tenure_next_seq FROM projection_offsets WHERE topic = $1",
        )
        .bind(&self.layout.events)
        .fetch_all(&self.pool)
        .await
        .unwrap_or_default();
        rows.into_iter()
            .map(|(partition, token, seq)| {
                let tenure = token.zip(seq).map(|(token, seq)| Tenure {
                    token: Token(token),
                    next_seq: u64::try_from(seq).expect("non-negative"),
                });
                (partition, tenure)
            })
            .collect()
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
        delete_keys(&self.redis).await.expect("redis keys deleted")
    }

    /// Drops the database, the topics and every Redis key of the test (the generations a
    /// rebuild made included: their prefixes start with the test's).
    pub async fn tear_down(self) {
        self.pool.close().await;
        self.database.drop_database().await.expect("database dropped");
        let _ = self.layout.delete(&testing::kafka()).await;
        if let Err(error) = delete_keys(&self.redis).await {
            eprintln!("redis keys of {} left behind: {error}", self.redis.key_prefix);
        }
    }
}

pub use holdfast_platform::testing::delete_keys;

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

/// A one-partition log two owners fought over, as [`contested_log`] writes it, and what a
/// reader must make of it.
pub struct Contested {
    /// Generates the valid events (continue it for more).
    pub workload: Workload,
    /// The current owner (its tenure continues with the next valid records).
    pub owner: LogWriter,
    /// Valid events written.
    pub events: u64,
    /// The sequence number the owner's next valid record carries.
    pub next_seq: u64,
    /// Claims written.
    pub claims: u64,
    /// Valid refused commands written.
    pub rejected: u64,
    /// Void records written, by reason.
    pub void: BTreeMap<&'static str, u64>,
    /// Resources only void records define or touch: they must never show in a read model.
    pub ghosts: Vec<String>,
}

/// Writes to partition 0 of `stack` (one partition): a record before any claim; owner A's
/// claim and valid events; owner B's claim and valid events; A's appends after B's claim (a
/// zombie's); B's record with a sequence number from the future; an unmarked record; B's valid
/// refused command; B's claim again and more valid events. Every void record carries an event
/// that would change the read model if it were applied (resources `ghost-*`).
pub async fn contested_log(stack: &Stack, prefix: &str, seed: u64) -> Contested {
    assert_eq!(stack.layout.partitions, 1, "a one-partition log");
    let partitions = stack.layout.partitions;
    let mut workload = Workload::new(prefix, 6, seed);
    let mut ghosts = Workload::new("ghost", 2, seed + 1);
    let mut ghost_events = ghosts.definitions();
    ghost_events.extend(ghosts.events(12));
    let ghost_payload = stack.codec.encode(&ghost_events[0]).expect("encodes");
    let (mut owner, mut zombie) = (stack.writer(), stack.writer());
    let mut voided: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut void = |reason: &'static str| *voided.entry(reason).or_default() += 1;

    // Before any claim: no tenure.
    let stray = holdfast_tenure::Mark::Data { token: Token::fresh(), seq: 0 };
    stack.writer().raw(0, "ghost-0", &ghost_payload, stray).await;
    void("no-tenure");
    // A owns the partition.
    let mut first = workload.definitions();
    first.extend(workload.events(60));
    zombie.claim(0).await;
    for event in &first {
        zombie.event(event, partitions).await;
    }
    // B takes over; A goes on appending, fenced.
    owner.claim(0).await;
    let second = workload.events(40);
    for event in &second {
        owner.event(event, partitions).await;
    }
    for event in &ghost_events[..5] {
        zombie.event(event, partitions).await;
        void("other-writer");
    }
    // B's record from the future (a hole in its sequence), and an unmarked record.
    let token = owner.token(0).expect("B claimed");
    let far = holdfast_tenure::Mark::Data { token, seq: 1_000 };
    owner.raw(0, "ghost-1", &ghost_payload, far).await;
    void("out-of-sequence");
    owner.raw(0, "ghost-1", &ghost_payload, Mark::Unmarked).await;
    void("unmarked");
    // A valid refused command (B's next sequence number), then B claims again, since its
    // writer does not know that number went out.
    let refused = holdfast_platform::codec::RejectedRecord {
        resource_id: workload.states()[0].resource_id().clone(),
        occurred_at: time::OffsetDateTime::now_utc(),
        command_id: uuid::Uuid::now_v7(),
        correlation_id: uuid::Uuid::now_v7(),
        traceparent: None,
        principal: None,
        command: "place-hold".to_owned(),
        rejection: holdfast_domain::Rejection::UnknownResource {
            resource_id: workload.states()[0].resource_id().clone(),
        },
    };
    let payload = stack.codec.encode_rejected(&refused).expect("encodes");
    let seq = u64::try_from(second.len()).expect("small");
    owner.raw(0, refused.resource_id.as_str(), &payload, Mark::Data { token, seq }).await;
    owner.claim(0).await;
    let third = workload.events(40);
    for event in &third {
        owner.event(event, partitions).await;
    }
    Contested {
        workload,
        owner,
        events: u64::try_from(first.len() + second.len() + third.len()).expect("small"),
        next_seq: u64::try_from(third.len()).expect("small"),
        claims: 3,
        rejected: 1,
        void: voided,
        ghosts: ghosts.states().iter().map(|s| s.resource_id().to_string()).collect(),
    }
}
