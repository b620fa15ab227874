//! Appends with the idempotent producer on a 480-partition topic: every record is read back
//! exactly once, on the partition Java clients would choose for its key.

use std::collections::{BTreeSet, HashSet};
use std::time::{Duration, Instant};

use holdfast_platform::kafka::{producer_config, reader_config};
use holdfast_platform::partitioner::partition_for;
use holdfast_platform::testing::{self, TopicsGuard};
use holdfast_platform::topics::TopicLayout;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

const PARTITIONS: i32 = 480;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appended_records_are_read_once_on_murmur2_partitions() {
    testing::init_logs();
    let kafka = testing::kafka();
    // Only the events topic matters here; the layout names it uniquely for this test.
    let topics = testing::topics("append", PARTITIONS);
    let _deleted_at_end = TopicsGuard::new(&topics);
    let topic = TopicLayout::from_args(&topics).events;
    testing::create_topic(&kafka, &topic, PARTITIONS).await.expect("topic created");

    let sent = tokio::task::spawn_blocking({
        let (kafka, topic) = (kafka.clone(), topic.clone());
        move || -> Result<Vec<String>, KafkaError> {
            let producer: BaseProducer = producer_config(&kafka, "append-test").create()?;
            let keys: Vec<String> = (0..2_000).map(|i| format!("resource-{i}")).collect();
            for key in &keys {
                send(&producer, &topic, key)?;
            }
            // Everything acknowledged, or the test fails here.
            producer.flush(Duration::from_secs(30))?;
            Ok(keys)
        }
    })
    .await
    .expect("producer thread")
    .expect("appends succeed");

    let seen = tokio::task::spawn_blocking(move || read_all(&kafka, &topic))
        .await
        .expect("consumer thread")
        .expect("read back");

    let keys: Vec<&str> = seen.iter().map(|(key, _)| key.as_str()).collect();
    let unique: HashSet<&str> = keys.iter().copied().collect();
    assert_eq!(keys.len(), sent.len(), "every record exactly once");
    assert_eq!(unique, sent.iter().map(String::as_str).collect::<HashSet<_>>());
    for (key, partition) in &seen {
        assert_eq!(*partition, partition_for(key.as_bytes(), PARTITIONS), "partition of {key}");
    }
    let used: BTreeSet<i32> = seen.iter().map(|(_, p)| *p).collect();
    assert!(used.len() > 400, "2,000 keys spread over most of the 480 partitions, got {}", used.len());
}

/// Sends one record, waiting for queue space instead of failing when the queue is full.
fn send(producer: &BaseProducer, topic: &str, key: &str) -> Result<(), KafkaError> {
    let mut record = BaseRecord::to(topic).key(key).payload("appended");
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

/// Reads every partition from the beginning up to its end and returns (key, partition) of
/// each record.
fn read_all(kafka: &holdfast_platform::KafkaArgs, topic: &str) -> Result<Vec<(String, i32)>, KafkaError> {
    let consumer: BaseConsumer = reader_config(kafka, &testing::unique("append-reader")).create()?;
    let mut assignment = TopicPartitionList::new();
    for partition in 0..PARTITIONS {
        assignment.add_partition_offset(topic, partition, Offset::Beginning)?;
    }
    consumer.assign(&assignment)?;
    let mut at_end = HashSet::new();
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while at_end.len() < usize::try_from(PARTITIONS).unwrap_or(0) && Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(message)) => {
                let key = String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned();
                at_end.remove(&message.partition());
                seen.push((key, message.partition()));
            }
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                at_end.insert(partition);
            }
            Some(Err(error)) => return Err(error),
            None => {}
        }
    }
    assert_eq!(at_end.len(), 480, "every partition read to its end within the deadline");
    Ok(seen)
}
