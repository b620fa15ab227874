//! The baselines against the real local stack, each test with topics and a database of its
//! own: short runs with small settings must count exactly what was committed and leave no
//! topic or database behind.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use holdfast_load_tests::baseline::{self, BaselineError, BaselineSettings};
use holdfast_platform::KafkaArgs;
use holdfast_platform::kafka::{producer_config, read_to_end, reader_config};
use holdfast_platform::testing::{self, TestDatabase};
use holdfast_platform::topics::TopicLayout;
use rdkafka::admin::AdminOptions;
use rdkafka::producer::{BaseProducer, Producer as _};
use rdkafka::{Offset, TopicPartitionList};
use sqlx::{Connection as _, PgConnection};

/// About a second of each baseline, small enough for a shared 2-core machine.
fn small() -> BaselineSettings {
    BaselineSettings {
        seconds: Duration::from_secs(1),
        partitions: 8,
        batch: 50,
        producers: 2,
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

/// Records per partition of `topic` as a `read_committed` reader sees them, and whether every
/// payload had `bytes` bytes.
async fn committed_records(
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
        read_to_end(&config, &assignment, Duration::from_secs(60), |partition, _, payload| {
            *counts.entry(partition).or_insert(0) += 1;
            sizes_right &= payload.len() == bytes;
        })
        .expect("topic read to its end");
        (counts, sizes_right)
    })
    .await
    .expect("reader thread")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_counted_event_is_committed_and_they_spread_over_partitions() {
    testing::init_logs();
    let kafka = testing::kafka();
    let topic = testing::unique("t.baseline_into");
    testing::create_topic(&kafka, &topic, 8).await.expect("topic created");

    let measured = baseline::produce_into(&kafka, &topic, 120, &small()).await;
    let (counts, sizes_right) = committed_records(&kafka, &topic, 8, 120).await;
    delete_topic(&kafka, &topic).await;

    let measured = measured.expect("produce baseline");
    assert!(measured.events > 0 && measured.events_per_s > 0.0, "{measured:?}");
    assert_eq!(measured.warmup_events, 8, "one warm-up record per partition");
    assert_eq!(
        counts.values().sum::<u64>(),
        measured.events + measured.warmup_events,
        "counted == committed ({counts:?})"
    );
    assert!(counts.len() == 8 && counts.values().all(|n| *n > 1), "keys reach every partition: {counts:?}");
    assert!(sizes_right, "every record has the asked size");
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "a small positive count")]
    let transactions = (measured.transactions_per_s * measured.seconds).round() as u64;
    assert_eq!(transactions * 50, measured.events, "whole transactions of `batch` records");
    assert_eq!((measured.partitions, measured.producers, measured.batch), (8, 2, 50));
    assert!(measured.seconds >= 1.0, "ran for the asked time: {measured:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_deletes_the_topic_it_created() {
    testing::init_logs();
    let kafka = testing::kafka();
    let topics = testing::topics("baseline", 8);
    let topic = format!("{}baseline", topics.topic_prefix);

    let measured = baseline::produce(&kafka, &topics, 200, &small()).await.expect("produce baseline");

    assert!(measured.events > 0 && measured.events_per_s > 0.0 && measured.transactions_per_s > 0.0);
    assert_eq!((measured.partitions, measured.event_bytes), (8, 200));
    let gone = testing::eventually(Duration::from_secs(30), || async {
        (!topic_listed(&kafka, &topic).await).then_some(())
    })
    .await;
    assert!(gone.is_some(), "topic {topic} deleted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_leaves_a_topic_it_did_not_create_alone() {
    let kafka = testing::kafka();
    let topics = testing::topics("baseline_taken", 1);
    let topic = format!("{}baseline", topics.topic_prefix);
    testing::create_topic(&kafka, &topic, 1).await.expect("topic created");

    let refused = baseline::produce(&kafka, &topics, 200, &small()).await;

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
