//! The baselines against the real local stack, each test with topics and a database of its
//! own: short runs with small settings must count exactly what was acknowledged and leave no
//! topic or database behind.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use holdfast_load_tests::baseline::{self, BaselineError, BaselineSettings};
use holdfast_platform::KafkaArgs;
use holdfast_platform::kafka::{producer_config, read_to_end, reader_config};
use holdfast_platform::testing::{self, TestDatabase};
use holdfast_platform::topics::TopicLayout;
use rdkafka::Message as _;
use rdkafka::admin::AdminOptions;
use rdkafka::producer::{BaseProducer, Producer as _};
use rdkafka::{Offset, TopicPartitionList};
use sqlx::{Connection as _, PgConnection};

/// About a second of each baseline, small enough for a shared 2-core machine.
fn small() -> BaselineSettings {
    BaselineSettings {
        seconds: Duration::from_secs(1),
        warmup: Duration::from_millis(500),
        partitions: 8,
        appends: 50,
        producers: vec![1, 2],
        upsert_batch: 100,
    }
}

/// Whether the cluster lists `topic` (all-topics metadata, which never creates one).
async fn topic_listed(kafka: &KafkaArgs, topic: &str) -> bool {
    let config = producer_config(kafka, "holdfast-baseline-test");
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let client: BaseProducer = config.create().expect("metadata client");
        let metadata = client.client().fetch_metadata(None, Duration::from_secs(10)).expect("metadata");
        metadata.topics().iter().any(|t| t.name() == topic)
    })
    .await
    .expect("metadata thread")
}

async fn delete_topic(kafka: &KafkaArgs, topic: &str) {
    let admin = holdfast_platform::kafka::admin(kafka, "holdfast-baseline-test").expect("admin client");
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    admin.delete_topics(&[topic], &options).await.expect("topic deleted");
}

/// Records per partition of `topic`, and whether every payload had `bytes` bytes.
async fn records(
    kafka: &KafkaArgs,
    topic: &str,
    partitions: i32,
    bytes: usize,
) -> (BTreeMap<i32, u64>, bool) {
    let config = reader_config(kafka, &testing::unique("holdfast-baseline-test"));
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions {
        assignment.add_partition_offset(topic, partition, Offset::Beginning).expect("partition");
    }
    tokio::task::spawn_blocking(move || {
        let mut counts = BTreeMap::new();
        let mut sizes_right = true;
        read_to_end(&config, &assignment, Duration::from_secs(60), |message| {
            *counts.entry(message.partition()).or_insert(0) += 1;
            sizes_right &= message.payload().map_or(0, <[u8]>::len) == bytes;
        })
        .expect("topic read to its end");
        (counts, sizes_right)
    })
    .await
    .expect("reader thread")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_record_is_in_the_topic_and_they_spread_over_partitions() {
    testing::init_logs();
    let kafka = testing::kafka();
    let topic = testing::unique("t.baseline_into");
    testing::create_topic(&kafka, &topic, 8).await.expect("topic created");

    let appended = baseline::append_into(&kafka, &topic, 120, 50).await;
    let produced = baseline::produce_into(&kafka, &topic, 120, 2, Duration::from_secs(1)).await;
    let (counts, sizes_right) = records(&kafka, &topic, 8, 120).await;
    delete_topic(&kafka, &topic).await;

    let appended = appended.expect("append baseline");
    let produced = produced.expect("produce baseline");
    assert_eq!((appended.appends, appended.warmup_records, appended.partitions), (50, 8, 8), "{appended:?}");
    assert!(
        0.0 < appended.p50_ms && appended.p50_ms <= appended.p99_ms && appended.p99_ms <= appended.max_ms,
        "{appended:?}"
    );
    assert!(produced.records > 0 && produced.records_per_s > 0.0, "{produced:?}");
    assert_eq!(produced.warmup_records, 16, "one warm-up record per partition and producer");
    assert_eq!((produced.partitions, produced.producers, produced.event_bytes), (8, 2, 120));
    assert!(produced.seconds >= 1.0, "ran for the asked time: {produced:?}");
    assert_eq!(
        counts.values().sum::<u64>(),
        appended.appends + appended.warmup_records + produced.records + produced.warmup_records,
        "acknowledged == in the topic, once each ({counts:?})"
    );
    assert!(counts.len() == 8 && counts.values().all(|n| *n > 3), "every partition written: {counts:?}");
    assert!(sizes_right, "every record has the asked size");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kafka_baselines_measure_every_producer_count_and_delete_their_topic() {
    testing::init_logs();
    let kafka = testing::kafka();
    let topics = testing::topics("baseline", 8);
    let topic = format!("{}baseline", topics.topic_prefix);

    let measured = baseline::kafka(&kafka, &topics, 200, &small()).await.expect("kafka baselines");

    assert!(measured.warmup_records > 0, "the topic was warmed up: {measured:?}");
    assert_eq!(measured.append.appends, 50);
    assert!(measured.append.p99_ms > 0.0);
    let producers: Vec<usize> = measured.produce.iter().map(|p| p.producers).collect();
    assert_eq!(producers, vec![1, 2]);
    assert!(
        measured.produce.iter().all(|p| p.records_per_s > 0.0 && p.partitions == 8 && p.event_bytes == 200)
    );
    let gone = testing::eventually(Duration::from_secs(30), || async {
        (!topic_listed(&kafka, &topic).await).then_some(())
    })
    .await;
    assert!(gone.is_some(), "topic {topic} deleted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kafka_baselines_leave_a_topic_they_did_not_create_alone() {
    let kafka = testing::kafka();
    let topics = testing::topics("baseline_taken", 1);
    let topic = format!("{}baseline", topics.topic_prefix);
    testing::create_topic(&kafka, &topic, 1).await.expect("topic created");

    let refused = baseline::kafka(&kafka, &topics, 200, &small()).await;

    let still_there = topic_listed(&kafka, &topic).await;
    delete_topic(&kafka, &topic).await;
    assert!(matches!(refused, Err(BaselineError::TopicExists(ref t)) if *t == topic), "{refused:?}");
    assert!(still_there, "another run's topic is not deleted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_typical_event_has_a_plausible_encoded_size() {
    let layout = TopicLayout::from_args(&testing::topics("baseline_codec", 1));
    let bytes = baseline::typical_event_bytes(&testing::registry(), &layout.events).await.expect("encoded");
    // 5 header bytes, then ids, dates and timestamps: a few hundred bytes.
    assert!((100..1_000).contains(&bytes), "{bytes} bytes");
    let again = baseline::typical_event_bytes(&testing::registry(), &layout.events).await.expect("encoded");
    assert_eq!(again, bytes, "registration is idempotent and the size stable");
}

/// The upsert baselines' scratch databases on the server of `url`.
async fn scratch_databases(url: &str) -> BTreeSet<String> {
    let mut conn = PgConnection::connect(url).await.expect("connect");
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'baseline\\_%'")
            .fetch_all(&mut conn)
            .await
            .expect("databases");
    conn.close().await.expect("close");
    names.into_iter().collect()
}

/// Tables and views in `url`'s database outside the system schemas.
async fn relations(url: &str) -> i64 {
    let mut conn = PgConnection::connect(url).await.expect("connect");
    let count = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.tables
         WHERE table_schema NOT IN ('pg_catalog', 'information_schema')",
    )
    .fetch_one(&mut conn)
    .await
    .expect("tables");
    conn.close().await.expect("close");
    count
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upserts_apply_every_row_and_drop_their_database() {
    let database = TestDatabase::create("baseline").await.expect("test database");
    let before = scratch_databases(database.url()).await;

    let measured = baseline::upsert(&database.url, &small()).await;

    // Another run's scratch database may come and go meanwhile; ours must be gone.
    let dropped = testing::eventually(Duration::from_secs(30), || async {
        scratch_databases(database.url()).await.is_subset(&before).then_some(())
    })
    .await;
    let untouched = relations(database.url()).await;
    database.drop_database().await.expect("database dropped");

    let measured = measured.expect("upsert baseline");
    assert!(measured.rows > 0 && measured.rows_per_s > 0.0, "{measured:?}");
    assert_eq!(measured.rows % 100, 0, "whole batches of `upsert_batch` rows: {measured:?}");
    assert!(measured.rows >= 200, "updates after the first batch: {measured:?}");
    assert!(measured.seconds >= 1.0);
    assert!(dropped.is_some(), "the scratch database is dropped");
    assert_eq!(untouched, 0, "the database of the URL is left alone");
}
