//! Rebuild throughput: the whole log folded and loaded into a fresh PostgreSQL database (a
//! new generation, indexes, Redis prefix, switch), in records per second.
//!
//! Needs the local stack (`make up`). Writes `HOLDFAST_BENCH_EVENTS` events (default
//! 1,000,000) of the deterministic mixed workload (2,000 resources: holds, confirmations,
//! cancellations, expiries, capacity changes, decided by the domain) into fresh topics of
//! `HOLDFAST_BENCH_PARTITIONS` partitions (default 16), marked as partition owners write them:
//! each partition starts with a claim, every event carries its writer's token and next
//! sequence number, and half-way through each partition changes owner (a new claim), with a
//! few records of the fenced owner after it (void), so the reader rule has all its cases.
//! Then it rebuilds `HOLDFAST_BENCH_RUNS` times (default 3), each into a database of its own,
//! and prints the median, minimum and maximum. Topics and databases are removed at the end.
//!
//! `cargo bench -p holdfast-projection-workers --bench rebuild`

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use holdfast_platform::Shutdown;
use holdfast_platform::codec::{ClaimRecord, EventCodec};
use holdfast_platform::headers::RecordHeaders;
use holdfast_platform::kafka::producer_config;
use holdfast_platform::partitioner::partition_for;
use holdfast_platform::testing::{self, TestDatabase};
use holdfast_platform::topics::TopicLayout;
use holdfast_projection_workers::replay::rebuild::rebuild;
use holdfast_projection_workers::replay::{Context, Output, ReplayCommand, ReplayConfig};
use holdfast_projection_workers::testing::Workload;
use holdfast_tenure::{Mark, Token};
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;

const RESOURCES: usize = 2_000;
/// Records of the fenced owner after each partition's change of owner.
const ZOMBIE_RECORDS: u64 = 3;

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.replace('_', "").parse().ok()).unwrap_or(default)
}

/// One partition's writers: the current tenure and the one it fenced.
struct Owner {
    token: Token,
    seq: u64,
    fenced: Option<(Token, u64)>,
}

/// Sends one record, waiting for queue space instead of failing when the queue is full.
fn send(producer: &BaseProducer, topic: &str, partition: i32, key: &str, payload: &[u8], mark: Mark) {
    let headers = RecordHeaders { mark, fingerprint: None }.to_kafka();
    let mut record = BaseRecord::to(topic).partition(partition).key(key).payload(payload).headers(headers);
    loop {
        match producer.send(record) {
            Ok(()) => return,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                producer.poll(Duration::from_millis(5));
                record = back;
            }
            Err((error, _)) => panic!("produce: {error}"),
        }
    }
}

fn claim(codec: &EventCodec, producer: &BaseProducer, topic: &str, partition: i32) -> Token {
    let token = Token::fresh();
    let claim = ClaimRecord {
        token,
        partition,
        owner: "bench".to_owned(),
        address: None,
        claimed_at: time::OffsetDateTime::now_utc(),
    };
    send(producer, topic, partition, "claim", &codec.encode_claim(&claim).unwrap(), Mark::Claim { token });
    token
}

fn seed(layout: &TopicLayout, codec: &EventCodec, count: usize) -> usize {
    let mut workload = Workload::new("bench", RESOURCES, 42);
    let mut events = workload.definitions();
    events.extend(workload.events(count.saturating_sub(RESOURCES)));
    let producer: BaseProducer = producer_config(&testing::kafka(), &testing::unique("bench-rebuild"))
        .set("linger.ms", "5")
        .create()
        .unwrap();
    let topic = layout.events.as_str();
    let partitions = layout.partitions;
    // Records of one partition leave one idempotent producer in order, so each claim lands
    // before the records of its tenure.
    let mut owners: HashMap<i32, Owner> = (0..partitions)
        .map(|p| (p, Owner { token: claim(codec, &producer, topic, p), seq: 0, fenced: None }))
        .collect();
    let handover = events.len() / 2;
    let started = Instant::now();
    for (n, event) in events.iter().enumerate() {
        if n == handover {
            for (&partition, owner) in &mut owners {
                owner.fenced = Some((owner.token, owner.seq));
                owner.token = claim(codec, &producer, topic, partition);
                owner.seq = 0;
            }
        }
        let payload = codec.encode(event).unwrap();
        let key = event.envelope.resource_id.as_str();
        let partition = partition_for(key.as_bytes(), partitions);
        let owner = owners.get_mut(&partition).unwrap();
        if let Some((token, seq)) = owner.fenced.as_mut()
            && owner.seq < ZOMBIE_RECORDS
        {
            send(&producer, topic, partition, key, &payload, Mark::Data { token: *token, seq: *seq });
            *seq += 1;
        }
        send(&producer, topic, partition, key, &payload, Mark::Data { token: owner.token, seq: owner.seq });
        owner.seq += 1;
        if (n + 1) % 200_000 == 0 {
            #[allow(clippy::cast_precision_loss)]
            let rate = (n + 1) as f64 / started.elapsed().as_secs_f64();
            println!("  seeded {} events ({rate:.0}/s)", n + 1);
        }
    }
    producer.flush(Duration::from_secs(120)).unwrap();
    events.len()
}

/// Deletes the Redis keys a run wrote (every generation's, under the run's prefix).
async fn delete_keys(args: &holdfast_platform::RedisArgs) {
    let redis = holdfast_platform::redis::Redis::new(args).unwrap();
    let mut conn = redis.conn().await.unwrap();
    let keys: Vec<String> =
        redis::cmd("KEYS").arg(format!("{}*", args.key_prefix)).query_async(&mut conn).await.unwrap();
    for key in keys {
        let () = redis::cmd("DEL").arg(key).query_async(&mut conn).await.unwrap();
    }
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
            "run {run}: {} records ({} events, {} claims, {} void) in {:.2} s = {:.0} records/s (phases {:?}; rows {:?}; load before {load})",
            report.records,
            report.events,
            report.claims,
            report.void.values().sum::<u64>(),
            report.seconds,
            report.records_per_second,
            report.phases,
            report.rows
        );
        rates.push(report.records_per_second);
        for pool in context.shards.pools() {
            pool.close().await;
        }
        database.drop_database().await.expect("dropped");
        delete_keys(&context.config.redis).await;
    }
    rates.sort_by(f64::total_cmp);
    println!(
        "rebuild: median {:.0} records/s (min {:.0}, max {:.0}) over {runs} runs of {seeded} events; load now {}",
        rates[rates.len() / 2],
        rates[0],
        rates[rates.len() - 1],
        load_average()
    );
    if !keep {
        let _ = layout.delete(&testing::kafka()).await;
    }
}
