//! Poison records, a flushed Redis and a Redis that goes away: the partition keeps moving,
//! PostgreSQL stays exact, and Redis is refilled from PostgreSQL until it is exact again.

use std::collections::HashMap;
use std::time::Duration;

use holdfast_platform::testing;
use holdfast_projection_workers::testing::Workload;
use holdfast_projection_workers::worker::dlq;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use secrecy::SecretString;

use crate::projection::metric;
use crate::support::Stack;

const DEADLINE: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_records_are_dead_lettered_and_their_partitions_keep_moving() {
    let stack = Stack::new("proj-poison", 4).await;
    let mut workload = Workload::new("seat", 16, 4);
    let mut events = workload.definitions();
    events.extend(workload.events(600));
    stack.produce(events).await;
    // Valid records (their owners' next sequence numbers) that never decode: not Avro at all,
    // and Confluent framing with a schema id no registry knows.
    stack.produce_valid_raw(1, "seat-1", b"{\"json\": \"is not avro\"}").await;
    stack.produce_valid_raw(2, "seat-2", &[0, 0x7f, 0xff, 0xff, 0x01, 2, 4, 6]).await;
    // The same bytes in void records (unmarked, and a zombie's): never decoded, never
    // dead-lettered.
    let zombie = holdfast_tenure::Mark::Data { token: holdfast_tenure::Token::fresh(), seq: 0 };
    let writer = stack.writer();
    writer.raw(1, "seat-1", b"{\"json\": \"is not avro\"}", holdfast_tenure::Mark::Unmarked).await;
    writer.raw(2, "seat-2", &[0, 0x7f, 0xff, 0xff, 0x01, 2, 4, 6], zombie).await;
    stack.produce(workload.events(600)).await;

    let service = stack.start().await;
    let (expected, ends) = stack.expected().await;
    assert!(stack.wait_applied(&ends, DEADLINE).await, "every partition moved past its poison");
    assert!(stack.wait_cached(&ends, DEADLINE).await, "redis caught up");
    stack.assert_postgres_exact(&expected).await;
    stack.assert_redis_exact(&expected).await;

    let letters = read_dead_letters(&stack, 2).await;
    let mut reasons: Vec<&str> = letters.iter().map(|l| l["holdfast.dlq.reason"].as_str()).collect();
    reasons.sort_unstable();
    assert_eq!(reasons, ["unknown_schema_id", "wrong_magic_byte"]);
    let log = stack.read_log().await;
    for letter in &letters {
        let partition: i32 = letter[dlq::SOURCE_PARTITION].parse().expect("partition header");
        let offset: i64 = letter[dlq::SOURCE_OFFSET].parse().expect("offset header");
        let (_, payload) =
            log[&partition].iter().find(|(o, _)| *o == offset).expect("the source record exists");
        assert!(stack.codec.decode(payload).await.is_err(), "the dead letter points at the poison record");
        assert_eq!(letter[dlq::SOURCE_TOPIC], stack.layout.events);
        assert!(!letter[dlq::ERROR].is_empty());
    }
    assert_eq!(dead_letter_count(&stack).await, 2, "void records are not dead-lettered");
    let metrics = service.metrics().await;
    assert_eq!(metric(&metrics, "holdfast_projection_dead_letters_total{reason=\"wrong_magic_byte\"}"), 1.0);
    assert_eq!(metric(&metrics, "holdfast_projection_dead_letters_total{reason=\"unknown_schema_id\"}"), 1.0);
    assert_eq!(metric(&metrics, "holdfast_projection_void_records_total{reason=\"unmarked\"}"), 1.0);
    assert_eq!(metric(&metrics, "holdfast_projection_void_records_total{reason=\"other-writer\"}"), 1.0);

    service.stop().await.expect("clean stop");
    stack.tear_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flushed_redis_is_refilled_from_postgres() {
    let stack = Stack::new("proj-flush", 4).await;
    let mut workload = Workload::new("court", 24, 5);
    let mut events = workload.definitions();
    events.extend(workload.events(1_500));
    stack.produce(events).await;
    let service = stack.start().await;
    let (expected, ends) = stack.expected().await;
    assert!(stack.wait_applied(&ends, DEADLINE).await);
    assert!(stack.wait_cached(&ends, DEADLINE).await);
    stack.assert_redis_exact(&expected).await;

    let deleted = stack.flush_redis().await;
    assert!(deleted > 20, "the test's keys were there ({deleted})");
    // Quiet partitions are noticed by the periodic check, busy ones by their next batch.
    stack.produce(workload.events(200)).await;
    let (expected, ends) = stack.expected().await;
    assert!(stack.wait_applied(&ends, DEADLINE).await);
    assert!(stack.wait_cached(&ends, DEADLINE).await, "positions restored");
    stack.assert_postgres_exact(&expected).await;
    stack.assert_redis_exact(&expected).await;
    assert!(metric(&service.metrics().await, "holdfast_projection_cache_refills_total") >= 4.0);

    service.stop().await.expect("clean stop");
    stack.tear_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_keeps_projecting_while_redis_is_down_and_redis_catches_up_after() {
    let mut redis_server = PrivateRedis::start();
    let mut stack = Stack::new("proj-redis-down", 4).await;
    stack.redis.urls = vec![SecretString::from(redis_server.url())];
    let mut workload = Workload::new("bay", 20, 6);
    let mut events = workload.definitions();
    events.extend(workload.events(800));
    stack.produce(events).await;
    let service = stack.start().await;
    let (_, ends) = stack.expected().await;
    assert!(stack.wait_applied(&ends, DEADLINE).await);
    assert!(stack.wait_cached(&ends, DEADLINE).await);

    redis_server.stop();
    stack.produce(workload.events(1_000)).await;
    let (expected, ends) = stack.expected().await;
    assert!(stack.wait_applied(&ends, DEADLINE).await, "PostgreSQL keeps up without Redis");
    stack.assert_postgres_exact(&expected).await;

    // Back, empty (as after a restart without persistence).
    redis_server.restart();
    assert!(stack.wait_cached(&ends, DEADLINE).await, "redis refilled");
    stack.assert_redis_exact(&expected).await;
    assert!(metric(&service.metrics().await, "holdfast_projection_cache_failures_total") >= 1.0);

    service.stop().await.expect("clean stop");
    stack.tear_down().await;
}

/// How many records the dead-letter topic holds (the sum of its partitions' ends).
async fn dead_letter_count(stack: &Stack) -> i64 {
    let (topic, partitions) = (stack.layout.events_dlq.clone(), stack.layout.partitions);
    tokio::task::spawn_blocking(move || {
        let config =
            holdfast_platform::kafka::reader_config(&testing::kafka(), &testing::unique("dlq-count"));
        let consumer: BaseConsumer = config.create().expect("consumer");
        (0..partitions)
            .map(|p| consumer.fetch_watermarks(&topic, p, Duration::from_secs(10)).expect("watermarks").1)
            .sum()
    })
    .await
    .expect("reader thread")
}

/// Reads `count` dead letters with their headers (name → value).
async fn read_dead_letters(stack: &Stack, count: usize) -> Vec<HashMap<String, String>> {
    let (topic, partitions) = (stack.layout.events_dlq.clone(), stack.layout.partitions);
    tokio::task::spawn_blocking(move || {
        let config =
            holdfast_platform::kafka::reader_config(&testing::kafka(), &testing::unique("dlq-reader"));
        let consumer: BaseConsumer = config.create().expect("consumer");
        let mut assignment = TopicPartitionList::new();
        for p in 0..partitions {
            assignment.add_partition_offset(&topic, p, Offset::Beginning).expect("partition");
        }
        consumer.assign(&assignment).expect("assigned");
        let mut letters = Vec::new();
        let started = std::time::Instant::now();
        while letters.len() < count && started.elapsed() < Duration::from_secs(30) {
            let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) else { continue };
            let mut headers = HashMap::new();
            if let Some(list) = message.headers() {
                for header in list.iter() {
                    let value =
                        header.value.map(|v| String::from_utf8_lossy(v).into_owned()).unwrap_or_default();
                    headers.insert(header.key.to_owned(), value);
                }
            }
            letters.push(headers);
        }
        letters
    })
    .await
    .expect("reader thread")
}

/// A Redis server of this test's own, on a free port, that the test can stop and restart.
struct PrivateRedis {
    port: u16,
    child: Option<std::process::Child>,
}

impl PrivateRedis {
    fn start() -> Self {
        let port =
            std::net::TcpListener::bind("127.0.0.1:0").expect("free port").local_addr().expect("addr").port();
        let mut server = Self { port, child: None };
        server.restart();
        server
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn restart(&mut self) {
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let up = (0..100).any(|_| {
            std::thread::sleep(Duration::from_millis(50));
            std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
        });
        assert!(up, "private redis listening");
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}
