//! The replay CLI against the real stack: `verify` after a mixed workload and after
//! tampering, `rebuild` while queries and live traffic run (atomic switch, workers follow),
//! `rebuild` resumed after an interruption (the second run through the real binary), `dump`
//! and `tail`; and all of them over a log two owners fought over, by the reader rule.

use std::collections::{BTreeMap, HashMap};
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

use crate::support::{Stack, contested_log};

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
    stack.produce(first).await;
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
            stack.produce(round).await;
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
    stack.produce(workload.events(500)).await;
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
    let before = report["records_before"].as_u64().expect("records_before");
    assert!(before >= 6_000, "continued after the checkpoints: {stdout}");
    let total: u64 = ends.values().map(|e| u64::try_from(*e).expect("offset")).sum();
    assert!(
        report["records"].as_u64().expect("records") <= total - before,
        "did not read again what was stored: {stdout}"
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
    stack.produce(events.clone()).await;

    let resource = events[3].envelope.resource_id.clone();
    let wanted: Vec<_> = events.iter().filter(|e| e.envelope.resource_id == resource).collect();
    let (outcome, printed) = replay(&stack, &["dump", "--resource", resource.as_str()]).await;
    assert_eq!(outcome, Outcome::Done);
    let mut lines: Vec<serde_json::Value> =
        printed.lines().map(|l| serde_json::from_str(l).expect("JSON")).collect();
    let summary = lines.pop().expect("a summary line");
    assert_eq!(summary["summary"]["selected"], wanted.len(), "{summary}");
    assert_eq!(summary["summary"]["void"], serde_json::json!({}), "{summary}");
    assert_eq!(lines.len(), wanted.len(), "every event of the resource and no other");
    for (line, event) in lines.iter().zip(&wanted) {
        assert_eq!(line["verdict"], "valid");
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
        .filter(|l| !l.starts_with("{\"summary\""))
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

/// Runs `tail` with `args` until `done` says what it printed is enough (producing with
/// `produce` between looks), then stops it; returns the printed lines.
async fn tail_until<F, Fut>(
    stack: &Stack,
    args: &[&str],
    mut produce: F,
    done: impl Fn(&[serde_json::Value]) -> bool,
) -> Vec<serde_json::Value>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let shutdown = Shutdown::new();
    let shared = Shared::default();
    let mut out = shared.clone();
    let mut command = vec!["tail"];
    command.extend_from_slice(args);
    let tail = replay::run(replay_config(stack, &command), &mut out, shutdown.clone());
    let driver = async {
        let printed = testing::eventually(DEADLINE, || {
            let produced = produce();
            let shared = shared.clone();
            let done = &done;
            async move {
                produced.await;
                let text = String::from_utf8(shared.0.lock().expect("lock").clone()).expect("utf-8");
                let lines: Vec<serde_json::Value> =
                    text.lines().map(|l| serde_json::from_str(l).expect("JSON lines")).collect();
                done(&lines).then_some(lines)
            }
        })
        .await;
        shutdown.cancel();
        printed
    };
    let (outcome, printed) = tokio::join!(tail, driver);
    assert_eq!(outcome.expect("tail ran"), Outcome::Done);
    printed.expect("the tail printed what was expected")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_follows_the_log_and_judges_it_from_what_it_has_seen() {
    let stack = Stack::new("replay-tail", 1).await;
    let mut workload = Workload::new("tailed", 4, 15);
    stack.produce(workload.definitions()).await;

    // From the end, the owners' claims came before the tail started: their records are printed
    // unjudged, after a notice that says so.
    let events = workload.events(20);
    let lines = tail_until(
        &stack,
        &[],
        || stack.produce(events.clone()),
        |lines| lines.iter().filter(|l| l["event"].is_object()).count() >= events.len(),
    )
    .await;
    assert_eq!(lines[0]["notice"], replay::tail::UNJUDGED_NOTICE, "{:?}", lines[0]);
    let records = &lines[1..];
    assert!(records.iter().all(|l| l["verdict"] == "unjudged"), "{records:?}");
    assert!(records[0]["event"]["envelope"]["event_id"].is_string(), "{:?}", records[0]);

    // From the beginning every record is judged: claims, valid events, and a zombie's void
    // record (shown with --include-void).
    let zombie = holdfast_tenure::Mark::Data { token: holdfast_tenure::Token::fresh(), seq: 0 };
    stack.writer().raw(0, "tailed-0", b"never decoded", zombie).await;
    let lines = tail_until(
        &stack,
        &["--from-beginning", "--include-void"],
        || async {},
        |lines| lines.iter().any(|l| l["verdict"] == "void"),
    )
    .await;
    assert!(lines.iter().all(|l| l["notice"].is_null()), "no notice from the beginning");
    assert!(lines.iter().any(|l| l["verdict"] == "claim" && l["claim"].is_string()), "{lines:?}");
    assert!(lines.iter().any(|l| l["verdict"] == "valid" && l["event"].is_object()), "{lines:?}");
    let void = lines.iter().find(|l| l["verdict"] == "void").expect("a void line");
    assert_eq!(void["void"], "other-writer");
    assert!(void["event"].is_null(), "void records are not decoded");
    assert!(lines.iter().all(|l| l["verdict"] != "unjudged"), "{lines:?}");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_and_dump_report_void_records_by_reason() {
    let stack = Stack::new("replay-void", 1).await;
    let contested = contested_log(&stack, "lane", 41).await;
    let oracle = stack.oracle().await;
    // Before any worker ran, nothing is projected and nothing is expected: the whole log is
    // behind, not different.
    holdfast_projection_workers::MIGRATOR.run(&stack.pool).await.expect("migrated");
    let (outcome, printed) = replay(&stack, &["--json", "verify"]).await;
    assert_eq!(outcome, Outcome::Done, "{printed}");
    let report: serde_json::Value = serde_json::from_str(printed.trim()).expect("one JSON summary");
    assert_eq!(report["behind"], oracle.ends[&0], "{report}");
    assert_eq!(report["events"], 0, "{report}");

    let service = stack.start().await;
    assert!(stack.wait_applied(&oracle.ends, DEADLINE).await, "applied");
    assert!(stack.wait_cached(&oracle.ends, DEADLINE).await, "cached");
    let void = serde_json::to_value(&contested.void).expect("serialises");

    // verify: no differences, the void records counted by reason.
    let (outcome, printed) = replay(&stack, &["--json", "verify"]).await;
    assert_eq!(outcome, Outcome::Done, "{printed}");
    let report: serde_json::Value = serde_json::from_str(printed.trim()).expect("one JSON summary");
    assert_eq!(report["void"], void, "{report}");
    assert_eq!(report["claims"], contested.claims, "{report}");
    assert_eq!(report["rejected"], contested.rejected, "{report}");
    assert_eq!(report["events"], contested.events, "{report}");
    assert_eq!(report["differences"], 0, "{report}");
    let (_, text) = replay(&stack, &["verify"]).await;
    assert!(text.contains("8 void (no-tenure 1, other-writer 5, out-of-sequence 1, unmarked 1)"), "{text}");

    // A stored tenure the log does not support is a difference: a worker resuming from it
    // would judge what follows wrongly.
    sqlx::query("UPDATE projection_offsets SET tenure_next_seq = tenure_next_seq + 1")
        .execute(&stack.pool)
        .await
        .expect("tampered tenure");
    let (outcome, printed) = replay(&stack, &["--json", "verify"]).await;
    assert_eq!(outcome, Outcome::Differences(1), "{printed}");
    let difference: serde_json::Value =
        serde_json::from_str(printed.lines().next().expect("a difference")).expect("JSON");
    assert_eq!(difference["table"], "projection_offsets", "{difference}");
    let token = contested.owner.token(0).expect("owner");
    let expected = format!("tenure {token} next_seq {}", contested.next_seq);
    assert_eq!(difference["expected"], expected.as_str(), "{difference}");
    sqlx::query("UPDATE projection_offsets SET tenure_next_seq = tenure_next_seq - 1")
        .execute(&stack.pool)
        .await
        .expect("restored tenure");

    // dump: the resource's valid history, the partition's void records by reason in the
    // summary, and with --include-void the claims and void records themselves.
    let resource = contested.workload.states()[0].resource_id().to_string();
    let (_, printed) = replay(&stack, &["dump", "--resource", &resource]).await;
    let lines: Vec<serde_json::Value> =
        printed.lines().map(|l| serde_json::from_str(l).expect("JSON")).collect();
    let summary = &lines.last().expect("a summary")["summary"];
    assert_eq!(summary["void"], void, "{summary}");
    assert_eq!((summary["claims"].as_u64(), summary["rejected"].as_u64()), (Some(3), Some(1)), "{summary}");
    let history = &lines[..lines.len() - 1];
    assert!(history.iter().all(|l| l["verdict"] == "valid"), "only valid records by default");
    assert!(
        history.iter().any(|l| l["rejected"]["rejection"]["code"] == "unknown-resource"),
        "the refused command"
    );
    let events = history.iter().filter(|l| l["event"].is_object()).count();
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM reservations WHERE resource_id = $1")
        .bind(&resource)
        .fetch_one(&stack.pool)
        .await
        .expect("count");
    assert!(
        events > usize::try_from(applied).expect("count"),
        "its definition and every reservation's events"
    );

    let (_, printed) = replay(&stack, &["dump", "--resource", &resource, "--include-void"]).await;
    let lines: Vec<serde_json::Value> =
        printed.lines().map(|l| serde_json::from_str(l).expect("JSON")).collect();
    let claims = lines.iter().filter(|l| l["verdict"] == "claim").count();
    let mut voids: BTreeMap<String, u64> = BTreeMap::new();
    for line in lines.iter().filter(|l| l["verdict"] == "void") {
        assert!(line["event"].is_null(), "void records are not decoded: {line}");
        *voids.entry(line["void"].as_str().expect("a reason").to_owned()).or_default() += 1;
    }
    assert_eq!(claims, 3);
    assert_eq!(serde_json::to_value(&voids).expect("serialises"), void);
    let offsets: Vec<i64> =
        lines[..lines.len() - 1].iter().map(|l| l["offset"].as_i64().expect("offset")).collect();
    assert!(offsets.windows(2).all(|w| w[0] < w[1]), "in log order");

    service.stop().await.expect("clean stop");
    stack.tear_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuild_since_judges_from_the_beginning_and_folds_from_the_instant() {
    let stack = Stack::new("replay-since", 1).await;
    let mut workload = Workload::new("since", 5, 51);
    let mut owner = stack.writer();
    let mut older = workload.definitions();
    older.extend(workload.events(200));
    for event in &older {
        owner.event(event, 1).await;
    }
    // The instant: a millisecond after the last older record was acknowledged, and passed
    // before the first newer one is appended (the brokers' time index has milliseconds).
    let now = time::OffsetDateTime::now_utc();
    let since = now.replace_nanosecond(0).expect("whole second")
        + time::Duration::milliseconds(i64::from(now.millisecond()) + 1);
    let passed =
        testing::eventually(DEADLINE, || async { (time::OffsetDateTime::now_utc() > since).then_some(()) });
    assert!(passed.await.is_some());
    // The same tenure goes on: only a reader that knows the claim before the instant counts
    // these records.
    let newer = workload.events(150);
    let mut first_newer = None;
    for event in &newer {
        let (_, offset) = owner.event(event, 1).await;
        first_newer.get_or_insert(offset);
    }
    let first_newer = first_newer.expect("appended");

    let instant = since.format(&time::format_description::well_known::Rfc3339).expect("formats");
    let (outcome, printed) = replay(&stack, &["--json", "rebuild", "--since", &instant]).await;
    assert_eq!(outcome, Outcome::Done, "{printed}");
    let report: serde_json::Value = serde_json::from_str(printed.trim()).expect("a JSON report");
    assert_eq!(report["before_since"], older.len(), "{report}");
    assert_eq!(report["events"], newer.len(), "{report}");
    assert_eq!(report["void"], serde_json::json!({}), "{report}");

    let mut expected = ReadModel::default();
    let mut oracle_events = 0;
    let oracle = stack.oracle().await;
    assert_eq!(oracle.events, u64::try_from(older.len() + newer.len()).expect("small"));
    for line in stack.read_log().await[&0].iter().filter(|(offset, _)| *offset >= first_newer) {
        let event = stack.codec.decode(&line.1).await.expect("an event");
        expected.apply(
            &event,
            holdfast_projection_workers::model::EventPosition { partition: 0, offset: line.0 },
        );
        oracle_events += 1;
    }
    assert_eq!(oracle_events, newer.len());
    let (generation, rows) = live_rows(&stack).await;
    assert_eq!(generation, 1);
    assert_same_rows(&rows, &expected);
    let (outcome, printed) = replay(&stack, &["verify"]).await;
    assert_eq!(outcome, Outcome::Done, "verify recomputes from the same instant: {printed}");
    stack.tear_down().await;
}
