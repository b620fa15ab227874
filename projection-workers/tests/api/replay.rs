//! The replay CLI against the real stack: `verify` after a mixed workload and after
//! tampering, `rebuild` while queries and live traffic run (atomic switch, workers follow),
//! `rebuild` resumed after an interruption (the second run through the real binary), `dump`
//! and `tail`.

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Parser;
use holdfast_domain::{EventPayload, ResourceId};
use holdfast_platform::Shutdown;
use holdfast_platform::redis::Redis;
use holdfast_platform::testing;
use holdfast_projection_workers::cache::format;
use holdfast_projection_workers::follow;
use holdfast_projection_workers::model::ReadModel;
use holdfast_projection_workers::replay::{self, Context, Outcome, ReplayConfig};
use holdfast_projection_workers::store::generation::{self, Hold};
use holdfast_projection_workers::store::rows;
use holdfast_projection_workers::testing::Workload;
use secrecy::ExposeSecret;

use crate::support::Stack;

const DEADLINE: Duration = Duration::from_secs(120);

/// A replay configuration for `stack` running `command`.
fn replay_config(stack: &Stack, command: &[&str]) -> ReplayConfig {
    let mut argv = vec!["holdfast-replay"];
    argv.extend_from_slice(command);
    let mut config = ReplayConfig::parse_from(argv);
    config.kafka = testing::kafka();
    config.registry = testing::registry();
    config.topics = stack.topics.clone();
    config.postgres = stack.database.postgres_args();
    config.redis = stack.redis.clone();
    config.deadline = Duration::from_secs(60);
    config
}

/// Runs `command` in-process; returns the outcome and what it printed.
async fn replay(stack: &Stack, command: &[&str]) -> (Outcome, String) {
    let mut out: Vec<u8> = Vec::new();
    let outcome =
        replay::run(replay_config(stack, command), &mut out, Shutdown::new()).await.expect("replay runs");
    (outcome, String::from_utf8(out).expect("utf-8"))
}

/// The live generation's offsets (what readers and workers follow).
async fn live_offsets(stack: &Stack) -> HashMap<i32, i64> {
    let rows: Vec<(i32, i64)> =
        sqlx::query_as("SELECT partition, next_offset FROM read_model.projection_offsets WHERE topic = $1")
            .bind(&stack.layout.events)
            .fetch_all(&stack.pool)
            .await
            .unwrap_or_default();
    rows.into_iter().collect()
}

async fn wait_live_applied(stack: &Stack, ends: &HashMap<i32, i64>) -> bool {
    testing::eventually(DEADLINE, || async {
        let stored = live_offsets(stack).await;
        ends.iter().all(|(p, end)| stored.get(p).is_some_and(|s| s >= end)).then_some(())
    })
    .await
    .is_some()
}

/// The live generation's number and every row of it.
async fn live_rows(stack: &Stack) -> (i64, ReadModel) {
    let mut tx = stack.pool.begin().await.expect("transaction");
    let live = generation::enter(&mut tx, Hold::Read).await.expect("generation");
    let (resources, slots, reservations) = rows::everything(&mut tx).await.expect("rows");
    tx.commit().await.expect("commit");
    (live.number, ReadModel::from_rows(resources, slots, reservations))
}

fn assert_same_rows(actual: &ReadModel, expected: &ReadModel) {
    assert_eq!(actual.resources().collect::<Vec<_>>(), expected.resources().collect::<Vec<_>>(), "resources");
    assert_eq!(actual.slots().collect::<Vec<_>>(), expected.slots().collect::<Vec<_>>(), "availability");
    let (a, e): (Vec<_>, Vec<_>) = (actual.reservations().collect(), expected.reservations().collect());
    assert_eq!(a.len(), e.len(), "reservation count");
    assert!(a == e, "reservations differ");
}

/// A stack with a worker that has applied a mixed workload (PostgreSQL and Redis).
async fn projected(name: &str, resources: usize, events: usize, seed: u64) -> (Stack, Workload) {
    let stack = Stack::new(name, 4).await;
    let mut workload = Workload::new("suite", resources, seed);
    let mut first = workload.definitions();
    first.extend(workload.events(events));
    stack.produce(first, 500).await;
    (stack, workload)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_passes_on_an_exact_model_and_lists_a_tampered_row_and_field() {
    let (stack, _) = projected("replay-verify", 30, 6_000, 11).await;
    let service = stack.start().await;
    let (expected, ends) = stack.expected().await;
    assert!(stack.wait_applied(&ends, DEADLINE).await, "applied");
    assert!(stack.wait_cached(&ends, DEADLINE).await, "cached");

    let (outcome, printed) = replay(&stack, &["verify"]).await;
    assert_eq!(outcome, Outcome::Done, "{printed}");
    assert!(printed.contains(" 0 differences"), "{printed}");

    // Tamper with one availability row and one cached field.
    let slot = expected.slots().find(|s| s.held > 0).expect("a slot with holds").clone();
    sqlx::query("UPDATE availability SET held = held + 1 WHERE resource_id = $1 AND slot = $2")
        .bind(slot.resource_id.as_str())
        .bind(slot.slot.date())
        .execute(&stack.pool)
        .await
        .expect("tampered row");
    let other = expected.slots().find(|s| s.resource_id != slot.resource_id).expect("another slot").clone();
    let redis = Redis::new(&stack.redis).expect("redis");
    let mut conn = redis.conn().await.expect("redis connection");
    let key = format::availability_key(&stack.redis.key_prefix, &other.resource_id);
    let tampered = format!("{}|{}|{}|{}", other.version, other.capacity + 5, other.held, other.confirmed);
    let () = redis::cmd("HSET")
        .arg(&key)
        .arg(other.slot.to_string())
        .arg(&tampered)
        .query_async(&mut conn)
        .await
        .expect("hset");

    // Through the real binary, as an operator would run it.
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_holdfast-replay"))
        .args(["--json", "verify"])
        .env("HOLDFAST_KAFKA_BROKERS", &testing::kafka().brokers)
        .env("HOLDFAST_TOPIC_PREFIX", &stack.topics.topic_prefix)
        .env("HOLDFAST_PARTITIONS", stack.topics.partitions.to_string())
        .env("HOLDFAST_SCHEMA_REGISTRY_URL", &testing::registry().url)
        .env("HOLDFAST_POSTGRES_URLS", stack.database.url())
        .env("HOLDFAST_REDIS_URLS", stack.redis.urls[0].expose_secret())
        .env("HOLDFAST_REDIS_KEY_PREFIX", &stack.redis.key_prefix)
        .env("HOLDFAST_LOG", "warn")
        .output()
        .await
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(1),
        "non-zero exit on differences:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<serde_json::Value> =
        stdout.lines().map(|l| serde_json::from_str(l).expect("JSON lines")).collect();
    let row_key = format!("{}/{}", slot.resource_id, slot.slot);
    assert!(
        lines.iter().any(|l| l["store"] == "postgres"
            && l["table"] == "availability"
            && l["key"] == row_key.as_str()),
        "the tampered row is listed: {stdout}"
    );
    assert!(
        lines.iter().any(|l| l["store"] == "redis" && l["actual"] == tampered.as_str()),
        "the tampered field is listed: {stdout}"
    );
    assert_eq!(lines.last().expect("a summary")["differences"], 2, "{stdout}");

    service.stop().await.expect("clean stop");
    stack.tear_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuild_switches_atomically_while_queries_and_live_traffic_run() {
    let (stack, mut workload) = projected("replay-rebuild", 40, 20_000, 12).await;
    let service = stack.start().await;
    let (before, ends) = stack.expected().await;
    assert!(stack.wait_applied(&ends, DEADLINE).await, "applied");
    assert!(stack.wait_cached(&ends, DEADLINE).await, "cached");

    // Readers: the resources' availability through the query path, PostgreSQL and Redis.
    let watched: Vec<(ResourceId, usize)> = before
        .resources()
        .map(|r| (r.resource_id.clone(), before.slots().filter(|s| s.resource_id == r.resource_id).count()))
        .filter(|(_, n)| *n > 0)
        .take(8)
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let readers = {
        let (pool, redis) = (stack.pool.clone(), Redis::new(&stack.redis).expect("redis"));
        let (stop, reads, watched) = (Arc::clone(&stop), Arc::clone(&reads), watched.clone());
        tokio::spawn(async move {
            let mut generations = std::collections::BTreeSet::new();
            while !stop.load(Ordering::Relaxed) {
                for (resource, minimum) in &watched {
                    let rows = follow::availability(&pool, resource).await.expect("postgres read");
                    assert!(
                        rows.len() >= *minimum,
                        "{resource}: {} rows in postgres, at least {minimum} before",
                        rows.len()
                    );
                    let (generation, cached) =
                        follow::cached_availability(&redis, resource).await.expect("redis read");
                    assert!(
                        cached.len() >= *minimum,
                        "{resource}: {} cached slots in generation {generation}",
                        cached.len()
                    );
                    generations.insert(generation);
                    reads.fetch_add(1, Ordering::Relaxed);
                }
            }
            generations
        })
    };
    // Live traffic during the rebuild.
    let traffic: Vec<_> = (0..6).map(|_| workload.events(300)).collect();
    let producing = async {
        for round in traffic {
            stack.produce(round, 25).await;
        }
    };
    let rebuilding = async {
        let mut out: Vec<u8> = Vec::new();
        let config = replay_config(&stack, &["--json", "rebuild", "--checkpoint-events", "7000"]);
        let outcome = replay::run(config, &mut out, Shutdown::new()).await.expect("rebuild");
        (outcome, String::from_utf8(out).expect("utf-8"))
    };
    let ((), (outcome, printed)) = tokio::join!(producing, rebuilding);
    assert_eq!(outcome, Outcome::Done, "{printed}");
    let report: serde_json::Value = serde_json::from_str(printed.trim()).expect("a JSON report");
    assert_eq!(report["generation"], 1);
    assert_eq!(report["switched"], true);
    eprintln!("rebuild report: {printed}");

    // The workers follow the new generation and apply what comes after.
    stack.produce(workload.events(500), 50).await;
    let (expected, ends) = stack.expected().await;
    assert!(wait_live_applied(&stack, &ends).await, "workers apply into the new generation");
    stop.store(true, Ordering::Relaxed);
    let generations = readers.await.expect("readers never saw an empty or partial model");
    assert!(reads.load(Ordering::Relaxed) > 0);
    eprintln!("readers saw generations {generations:?} in {} reads", reads.load(Ordering::Relaxed));
    let (generation, rows) = live_rows(&stack).await;
    assert_eq!(generation, 1);
    assert_same_rows(&rows, &expected);
    let redis = Redis::new(&stack.redis).expect("redis");
    assert_eq!(follow::cached_generation(&redis).await.expect("generation"), 1);
    let verified = testing::eventually(DEADLINE, || async {
        let (outcome, printed) = replay(&stack, &["verify"]).await;
        (outcome == Outcome::Done).then_some(printed)
    })
    .await;
    assert!(verified.is_some(), "verify passes on the rebuilt and followed generation");
    let public: i64 = sqlx::query_scalar("SELECT count(*) FROM public.reservations")
        .fetch_one(&stack.pool)
        .await
        .expect("count");
    assert_eq!(public, 0, "the previous generation is retired");

    service.stop().await.expect("clean stop");
    stack.tear_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_rebuild_resumes_where_it_stopped() {
    let (stack, _) = projected("replay-resume", 30, 12_000, 13).await;
    let service = stack.start().await;
    let (expected, ends) = stack.expected().await;
    assert!(stack.wait_applied(&ends, DEADLINE).await, "applied");

    let (outcome, printed) = replay(
        &stack,
        &["--json", "rebuild", "--checkpoint-events", "3000", "--stop-after-checkpoints", "2"],
    )
    .await;
    assert_eq!(outcome, Outcome::Interrupted, "{printed}");
    let (generation, _) = live_rows(&stack).await;
    assert_eq!(generation, 0, "nothing switched");
    let shadow: i64 =
        sqlx::query_scalar("SELECT coalesce(sum(next_offset), 0)::bigint FROM rm_1.projection_offsets")
            .fetch_one(&stack.pool)
            .await
            .expect("shadow offsets");
    assert!(shadow >= 6_000, "two checkpoints stored: {shadow}");

    // The second run is the real binary.
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_holdfast-replay"))
        .args(["rebuild", "--json", "--checkpoint-events", "3000"])
        .env("HOLDFAST_KAFKA_BROKERS", &testing::kafka().brokers)
        .env("HOLDFAST_TOPIC_PREFIX", &stack.topics.topic_prefix)
        .env("HOLDFAST_PARTITIONS", stack.topics.partitions.to_string())
        .env("HOLDFAST_SCHEMA_REGISTRY_URL", &testing::registry().url)
        .env("HOLDFAST_POSTGRES_URLS", stack.database.url())
        .env("HOLDFAST_REDIS_URLS", stack.redis.urls[0].expose_secret())
        .env("HOLDFAST_REDIS_KEY_PREFIX", &stack.redis.key_prefix)
        .env("HOLDFAST_LOG", "warn")
        .output()
        .await
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).expect("a JSON report");
    assert_eq!(report["resumed"], true, "{stdout}");
    assert_eq!(report["generation"], 1, "{stdout}");
    let before = report["events_before"].as_u64().expect("events_before");
    assert!(before >= 6_000, "continued after the checkpoints: {stdout}");
    let total: u64 = ends.values().map(|e| u64::try_from(*e).expect("offset")).sum();
    assert!(
        report["events"].as_u64().expect("events") <= total - before,
        "did not fold again what was stored: {stdout}"
    );

    let (generation, rows) = live_rows(&stack).await;
    assert_eq!(generation, 1);
    assert_same_rows(&rows, &expected);
    service.stop().await.expect("clean stop");
    stack.tear_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dump_prints_exactly_one_resources_or_reservations_events_in_order() {
    let stack = Stack::new("replay-dump", 4).await;
    let mut workload = Workload::new("dumped", 12, 14);
    let mut events = workload.definitions();
    events.extend(workload.events(2_000));
    stack.produce(events.clone(), 200).await;

    let resource = events[3].envelope.resource_id.clone();
    let wanted: Vec<_> = events.iter().filter(|e| e.envelope.resource_id == resource).collect();
    let (outcome, printed) = replay(&stack, &["dump", "--resource", resource.as_str()]).await;
    assert_eq!(outcome, Outcome::Done);
    let lines: Vec<serde_json::Value> =
        printed.lines().map(|l| serde_json::from_str(l).expect("JSON")).collect();
    assert_eq!(lines.len(), wanted.len(), "every event of the resource and no other");
    for (line, event) in lines.iter().zip(&wanted) {
        assert_eq!(line["event"], serde_json::to_value(event).expect("serialises"));
    }
    let offsets: Vec<i64> = lines.iter().map(|l| l["offset"].as_i64().expect("offset")).collect();
    assert!(offsets.windows(2).all(|w| w[0] < w[1]), "in log order");

    let reservation = events
        .iter()
        .find_map(|e| match &e.payload {
            EventPayload::ReservationConfirmed { reservation_id, .. } => Some(reservation_id.clone()),
            _ => None,
        })
        .expect("a confirmed reservation");
    let (_, printed) = replay(&stack, &["dump", "--reservation", &reservation.to_string()]).await;
    let types: Vec<String> = printed
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).expect("JSON")["event"]["payload"]["type"]
                .to_string()
        })
        .collect();
    assert_eq!(types.first().map(String::as_str), Some("\"ReservationHeld\""), "{printed}");
    assert!(types.iter().any(|t| t == "\"ReservationConfirmed\""), "{printed}");
    stack.tear_down().await;
}

/// A writer tests can read while the command runs.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_prints_new_events_until_stopped() {
    let stack = Stack::new("replay-tail", 2).await;
    let mut workload = Workload::new("tailed", 4, 15);
    stack.produce(workload.definitions(), 10).await;
    let shutdown = Shutdown::new();
    let shared = Shared::default();
    let mut out = shared.clone();
    let tail = replay::run(replay_config(&stack, &["tail"]), &mut out, shutdown.clone());
    // The tail starts at the end: produce until it prints what came after it started.
    let events = workload.events(20);
    let driver = async {
        let printed = testing::eventually(DEADLINE, || async {
            stack.produce(events.clone(), 20).await;
            let text = String::from_utf8(shared.0.lock().expect("lock").clone()).expect("utf-8");
            (text.lines().count() >= events.len()).then_some(text)
        })
        .await;
        shutdown.cancel();
        printed
    };
    let (outcome, printed) = tokio::join!(tail, driver);
    assert_eq!(outcome.expect("tail ran"), Outcome::Done);
    let printed = printed.expect("the tail prints new events");
    let first: serde_json::Value =
        serde_json::from_str(printed.lines().next().expect("a line")).expect("JSON");
    assert!(first["event"]["envelope"]["event_id"].is_string(), "{first}");
    stack.tear_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shadow_schema_matches_the_migrated_one() {
    let stack = Stack::new("replay-schema", 2).await;
    let context = Context::new(replay_config(&stack, &["rebuild"])).expect("context");
    replay::migrate(&context.shards).await.expect("migrated");
    let build = replay::rebuild::shadow::prepare(context.shards.pools(), None).await.expect("shadow");
    replay::rebuild::shadow::finalize(context.shards.pool(0), &build).await.expect("indexed");
    let columns = |schema: &'static str| {
        let pool = stack.pool.clone();
        async move {
            let rows: Vec<(String, String, String, String)> = sqlx::query_as(
                "SELECT table_name::text, column_name::text, data_type::text, is_nullable::text
                 FROM information_schema.columns WHERE table_schema = $1
                   AND table_name IN ('resources', 'availability', 'reservations', 'projection_offsets')
                 ORDER BY table_name, ordinal_position",
            )
            .bind(schema)
            .fetch_all(&pool)
            .await
            .expect("columns");
            rows
        }
    };
    assert_eq!(columns("rm_1").await, columns("public").await, "same columns in the same order");
    let indexes = |schema: &'static str| {
        let pool = stack.pool.clone();
        async move {
            let rows: Vec<(String, String)> = sqlx::query_as(
                "SELECT indexname::text, replace(indexdef, $1 || '.', '') FROM pg_indexes WHERE schemaname = $1
                   AND tablename IN ('resources', 'availability', 'reservations', 'projection_offsets')
                 ORDER BY indexname",
            )
            .bind(schema)
            .fetch_all(&pool)
            .await
            .expect("indexes");
            rows
        }
    };
    assert_eq!(indexes("rm_1").await, indexes("public").await, "same indexes");
    stack.tear_down().await;
}
