//! The parallel replay against the real broker: every committed record of every partition
//! comes back decoded, in log order per partition, aborted ones never; undecodable records
//! come back as errors in their place instead of stopping the replay.

use std::collections::HashMap;
use std::time::Duration;

use holdfast_platform::codec::{EventCodec, samples};
use holdfast_platform::kafka::{reader_config, transactional_producer_config};
use holdfast_platform::replay::replay;
use holdfast_platform::testing;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

type TxProducer = ThreadedProducer<DefaultProducerContext>;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{Offset, TopicPartitionList};

const PARTITIONS: i32 = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_returns_committed_records_in_log_order_per_partition() {
    testing::init_logs();
    let kafka = testing::kafka();
    let topic = testing::unique("t.replay");
    testing::create_topic(&kafka, &topic, PARTITIONS).await.expect("topic");
    let codec = EventCodec::new(&testing::registry(), &topic).expect("codec");
    codec.register_all().await.expect("schemas");

    // Enough records for several chunks per partition; one aborted transaction in between;
    // one record that is not an event at all.
    let mut expected: HashMap<i32, Vec<holdfast_domain::Event>> = HashMap::new();
    let producer: TxProducer = transactional_producer_config(
        &kafka,
        "replay-test",
        &testing::unique("replay-test"),
        Duration::from_secs(30),
    )
    .create()
    .expect("producer");
    let topic_name = topic.clone();
    let producer = tokio::task::spawn_blocking(move || {
        producer.init_transactions(Duration::from_secs(30)).expect("init");
        await_metadata(&producer, &topic_name);
        producer
    })
    .await
    .expect("joined");
    let mut seed = 0;
    for round in 0..4 {
        producer.begin_transaction().expect("begin");
        for _ in 0..2_500 {
            seed += 1;
            let event = samples::event(
                holdfast_domain::EventType::ALL[usize::try_from(seed % 6).expect("small")],
                seed,
            );
            let partition = i32::try_from(seed % 3).expect("small");
            let payload = codec.encode(&event).expect("encoded");
            send(&producer, &topic, partition, &payload);
            if round != 2 {
                expected.entry(partition).or_default().push(event);
            }
        }
        if round == 1 {
            send(&producer, &topic, 1, b"not an event");
        }
        let producer_ref = &producer;
        tokio::task::block_in_place(|| {
            if round == 2 {
                producer_ref.abort_transaction(Duration::from_secs(30)).expect("abort");
            } else {
                producer_ref.commit_transaction(Duration::from_secs(30)).expect("commit");
            }
        });
    }

    let mut assignment = TopicPartitionList::new();
    for partition in 0..PARTITIONS {
        assignment.add_partition_offset(&topic, partition, Offset::Beginning).expect("tpl");
    }
    let runtime = tokio::runtime::Handle::current();
    let (replayed, undecodable) = tokio::task::block_in_place(|| {
        let mut replayed: HashMap<i32, Vec<(i64, holdfast_domain::Event)>> = HashMap::new();
        let mut undecodable = Vec::new();
        replay(
            &reader_config(&kafka, "replay-test"),
            &assignment,
            Duration::from_secs(60),
            &codec,
            &runtime,
            |r| match r.event {
                Ok(event) => replayed.entry(r.partition).or_default().push((r.offset, event)),
                Err(_) => undecodable.push((r.partition, r.offset)),
            },
        )
        .expect("replayed");
        (replayed, undecodable)
    });

    for partition in 0..PARTITIONS {
        let got = &replayed[&partition];
        assert!(got.windows(2).all(|w| w[0].0 < w[1].0), "partition {partition} in offset order");
        let events: Vec<_> = got.iter().map(|(_, e)| e.clone()).collect();
        assert_eq!(events.len(), expected[&partition].len(), "partition {partition}: committed records only");
        assert!(events == expected[&partition], "partition {partition}: the same events in the same order");
    }
    assert_eq!(undecodable.len(), 1, "the one broken record is reported, not skipped silently");
    assert_eq!(undecodable[0].0, 1);
}

fn send(producer: &TxProducer, topic: &str, partition: i32, payload: &[u8]) {
    let mut record = BaseRecord::<(), [u8]>::to(topic).partition(partition).payload(payload);
    loop {
        match producer.send(record) {
            Ok(()) => return,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err((error, _)) => panic!("produce to {topic}[{partition}] failed: {error}"),
        }
    }
}

/// Waits until the producer knows every partition of the new topic: before that, producing
/// to an explicit partition fails as unknown.
fn await_metadata(producer: &TxProducer, topic: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let known =
            producer.client().fetch_metadata(Some(topic), Duration::from_secs(10)).ok().and_then(|m| {
                m.topics().first().map(|t| t.error().is_none() && t.partitions().len() == PARTITIONS as usize)
            });
        if known == Some(true) {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "metadata of {topic} within 60 s");
        std::thread::sleep(Duration::from_millis(200));
    }
}
