//! Rebuild throughput: the whole log folded and loaded into a fresh PostgreSQL database (a
//! new generation, indexes, Redis prefix, switch), in events per second.
//!
//! Needs the local stack (`make up`). Writes `HOLDFAST_BENCH_EVENTS` events (default
//! 1,000,000) of the deterministic mixed workload (2,000 resources: holds, confirmations,
//! cancellations, expiries, capacity changes, decided by the domain) into fresh topics of
//! `HOLDFAST_BENCH_PARTITIONS` partitions (default 16), then rebuilds `HOLDFAST_BENCH_RUNS`
//! times (default 3), each into a database of its own, and prints the median, minimum and
//! maximum. Topics and databases are removed at the end.
//!
//! `cargo bench -p holdfast-projection-workers --bench rebuild`

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use holdfast_platform::Shutdown;
use holdfast_platform::codec::EventCodec;
use holdfast_platform::kafka::transactional_producer_config;
use holdfast_platform::testing::{self, TestDatabase};
use holdfast_platform::topics::TopicLayout;
use holdfast_projection_workers::replay::rebuild::rebuild;
use holdfast_projection_workers::replay::{Context, Output, ReplayCommand, ReplayConfig};
use holdfast_projection_workers::testing::Workload;
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;

const RESOURCES: usize = 2_000;
const PER_TRANSACTION: usize = 5_000;

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.replace('_', "").parse().ok()).unwrap_or(default)
}

fn seed(layout: &TopicLayout, codec: &EventCodec, count: usize) -> usize {
    let mut workload = Workload::new("bench", RESOURCES, 42);
    let mut events = workload.definitions();
    events.extend(workload.events(count.saturating_sub(RESOURCES)));
    let txn = testing::unique("bench-rebuild");
    let mut config = transactional_producer_config(&testing::kafka(), &txn, &txn, Duration::from_secs(60));
    let producer: BaseProducer = config.set("linger.ms", "5").create().unwrap();
    producer.init_transactions(Duration::from_secs(30)).unwrap();
    let started = Instant::now();
    for (n, chunk) in events.chunks(PER_TRANSACTION).enumerate() {
        producer.begin_transaction().unwrap();
        for event in chunk {
            let payload = codec.encode(event).unwrap();
            let key = event.envelope.resource_id.to_string();
            let mut record = BaseRecord::to(&layout.events).key(key.as_str()).payload(payload.as_slice());
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        producer.poll(Duration::from_millis(5));
                        record = back;
                    }
                    Err((error, _)) => panic!("produce: {error}"),
                }
            }
        }
        producer.commit_transaction(Duration::from_secs(60)).unwrap();
        let written = (n + 1) * PER_TRANSACTION;
        if written % 200_000 < PER_TRANSACTION {
            #[allow(clippy::cast_precision_loss)]
            let rate = written as f64 / started.elapsed().as_secs_f64();
            println!("  seeded {written} events ({rate:.0}/s)");
        }
    }
    events.len()
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

#[tokio::main]
async fn main() {
    let count = env_number("HOLDFAST_BENCH_EVENTS", 1_000_000);
    let runs = env_number("HOLDFAST_BENCH_RUNS", 3).max(1);
    let partitions = i32::try_from(env_number("HOLDFAST_BENCH_PARTITIONS", 16)).unwrap();
    let mut topics = testing::topics("bench-rebuild", partitions);
    // `HOLDFAST_BENCH_TOPIC_PREFIX` rebuilds from the topics of an earlier run kept with
    // `HOLDFAST_BENCH_KEEP=1` instead of seeding new ones.
    let reuse = std::env::var("HOLDFAST_BENCH_TOPIC_PREFIX").ok();
    if let Some(prefix) = &reuse {
        topics.topic_prefix.clone_from(prefix);
    }
    let keep = reuse.is_some() || std::env::var("HOLDFAST_BENCH_KEEP").is_ok_and(|v| v == "1");
    let layout = TopicLayout::from_args(&topics);
    let ready = testing::eventually(Duration::from_secs(60), || async {
        layout.ensure(&testing::kafka()).await.ok()
    });
    ready.await.expect("topics");
    let codec = Arc::new(EventCodec::new(&testing::registry(), &layout.events).unwrap());
    codec.register_all().await.expect("schemas");
    let seeded = if reuse.is_some() {
        count
    } else {
        let seeding = Instant::now();
        let (layout, codec) = (layout.clone(), Arc::clone(&codec));
        let seeded = tokio::task::spawn_blocking(move || seed(&layout, &codec, count)).await.unwrap();
        println!(
            "seeded {seeded} events in {:.1} s over {partitions} partitions",
            seeding.elapsed().as_secs_f64()
        );
        seeded
    };
    println!("topic prefix {}", topics.topic_prefix);

    let mut rates = Vec::new();
    for run in 1..=runs {
        let database = TestDatabase::create("bench_rebuild").await.expect("database");
        let mut config = ReplayConfig::parse_from(["holdfast-replay", "rebuild"]);
        config.kafka = testing::kafka();
        config.registry = testing::registry();
        config.topics = topics.clone();
        config.postgres = database.postgres_args();
        config.redis = testing::redis("bench-rebuild");
        let ReplayCommand::Rebuild(args) = config.command.clone() else { unreachable!() };
        let context = Context::new(config).unwrap();
        let mut sink = std::io::sink();
        let output = Output::new(&mut sink, true);
        let load = load_average();
        let (_, report) = rebuild(&context, &args, &output, &Shutdown::new()).await.expect("rebuild");
        println!(
            "run {run}: {} events in {:.2} s = {:.0} events/s (phases {:?}; rows {:?}; load before {load})",
            report.events, report.seconds, report.events_per_second, report.phases, report.rows
        );
        rates.push(report.events_per_second);
        for pool in context.shards.pools() {
            pool.close().await;
        }
        database.drop_database().await.expect("dropped");
    }
    rates.sort_by(f64::total_cmp);
    println!(
        "rebuild: median {:.0} events/s (min {:.0}, max {:.0}) over {runs} runs of {seeded} events; load now {}",
        rates[rates.len() / 2],
        rates[0],
        rates[rates.len() - 1],
        load_average()
    );
    if !keep {
        let _ = layout.delete(&testing::kafka()).await;
    }
}
