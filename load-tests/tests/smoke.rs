//! The load generator against a real command service and projection worker, started
//! in-process on port 0 with topics, a database and a Redis prefix of their own on the local
//! stack: a short run at a low rate must be answered in full, with business rejections
//! reported by problem type and every accepted hold written out, and the audit of the log,
//! PostgreSQL and Redis at the end must pass, with the report and its plots written. The
//! test deletes its topics, database and Redis keys afterwards.

use std::time::Duration;

use clap::Parser as _;
use holdfast_command_service::Config;
use holdfast_load_tests::RunArgs;
use holdfast_load_tests::output::{ACCEPTED_JSONL, SUMMARY_JSON, SUMMARY_MD};
use holdfast_platform::testing::{self, RunningService, TestDatabase};
use holdfast_platform::topics::TopicLayout;
use holdfast_platform::{PostgresArgs, RedisArgs, TopicArgs};

const INSUFFICIENT_CAPACITY: &str = "https://holdfast.dev/problems/insufficient-capacity";

async fn command_service(topics: &TopicArgs) -> RunningService {
    let mut config = Config::parse_from(["command-service"]);
    config.auth = testing::auth();
    config.kafka = testing::kafka();
    config.topics = topics.clone();
    config.registry = testing::registry();
    config.session_timeout = Duration::from_secs(6);
    let service =
        RunningService::start(|listener, shutdown| holdfast_command_service::run(config, listener, shutdown))
            .await;
    assert!(service.wait_ready(Duration::from_secs(90)).await, "command service ready within 90 s");
    service
}

async fn projection_worker(topics: &TopicArgs, postgres: PostgresArgs, redis: RedisArgs) -> RunningService {
    let mut config = holdfast_projection_workers::Config::parse_from(["projection-workers"]);
    config.kafka = testing::kafka();
    config.registry = testing::registry();
    config.topics = topics.clone();
    config.postgres = postgres;
    config.redis = redis;
    config.session_timeout = Duration::from_secs(6);
    let worker = RunningService::start(|listener, shutdown| {
        holdfast_projection_workers::run(config, listener, shutdown)
    })
    .await;
    // Ready means caught up; the topics may not exist yet, so only wait for it to answer.
    assert!(
        testing::eventually(Duration::from_secs(60), || async {
            (worker.get_json("/healthz").await.0 == 200).then_some(())
        })
        .await
        .is_some(),
        "projection worker alive within 60 s"
    );
    worker
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_open_model_run_is_answered_and_reported() {
    testing::init_logs();
    let topics = testing::topics("load_smoke", 8);
    let database = TestDatabase::create("load_smoke").await.expect("database");
    let redis = testing::redis("load_smoke");
    let service = command_service(&topics).await;
    let worker = projection_worker(&topics, database.postgres_args(), redis.clone()).await;
    let out = std::env::temp_dir().join(testing::unique("holdfast-load-smoke"));
    let target = service.url("");
    // 5 resources × 2 days × capacity 3: about 120 one-unit holds must run out of capacity.
    let flags = [
        "--target",
        &target,
        "--rate",
        "50",
        "--duration",
        "3s",
        "--warmup",
        "0s",
        "--resources",
        "5",
        "--capacity",
        "3",
        "--date-window",
        "2",
        "--days-max",
        "1",
        "--quantity-max",
        "1",
        "--hold-seconds",
        "600",
        "--seed",
        "7",
        "--quiet",
        "--out",
        out.to_str().expect("utf-8 temp dir"),
    ];
    let mut args = RunArgs::from_flags(flags).expect("valid flags");
    args.token = Some(testing::admin_token().into());
    args.harness.services.topics = topics.clone();
    args.harness.services.kafka = testing::kafka();
    args.harness.services.registry = testing::registry();
    args.harness.services.postgres = database.postgres_args();
    args.harness.services.redis = redis.clone();
    args.harness.audit_wait = Duration::from_secs(60);
    args.harness.projection_metrics = Some(worker.url("/metrics"));
    let report = holdfast_load_tests::run(&args, std::future::pending()).await.expect("the run completes");
    let summary = &report.summary;
    if std::env::var_os("TEST_LOG").is_some() {
        eprintln!("{}", summary.to_markdown());
    }

    assert_eq!(summary.define.status.get("201"), Some(&5), "{:?}", summary.define);
    assert_eq!(summary.steps.len(), 1);
    let step = &summary.steps[0];
    assert_eq!((step.scheduled, step.started, step.dropped), (150, 150, 0), "{step:?}");
    assert_eq!(step.transport_errors, 0, "{step:?}");
    assert_eq!(step.server_errors, 0, "{step:?}");
    assert_eq!(step.responses, 150, "{step:?}");
    // Generous: answers still in flight when the 3 s window closes are not counted in it.
    assert!((30.0..=60.0).contains(&step.achieved_rps), "achieved about the offered 50/s: {step:?}");

    let holds = &step.ops["hold"];
    let accepted = holds.status.get("201").copied().unwrap_or(0);
    assert!(accepted > 0, "some holds accepted: {holds:?}");
    let rejected = holds.status.get("409").copied().unwrap_or(0);
    assert!(rejected > 0, "capacity ran out: {holds:?}");
    assert_eq!(holds.problems.get(INSUFFICIENT_CAPACITY), Some(&rejected), "{holds:?}");
    assert!(holds.latency_ms.p50 > 0.0 && holds.latency_ms.p50 <= holds.latency_ms.p99);
    assert!(holds.latency_ms.p99 <= holds.latency_ms.max);
    for op in ["confirm", "cancel"] {
        if let Some(stats) = step.ops.get(op) {
            assert!(stats.status.keys().all(|s| s == "200" || s == "409"), "{op}: {stats:?}");
        }
    }

    assert_eq!(summary.accepted_reservations.accepted, accepted);
    let lines = std::fs::read_to_string(out.join(ACCEPTED_JSONL)).expect("accepted.jsonl written");
    let lines: Vec<serde_json::Value> =
        lines.lines().map(|l| serde_json::from_str(l).expect("one JSON object per line")).collect();
    assert_eq!(lines.len() as u64, accepted);
    let prefix = format!("{}-r", summary.settings.prefix);
    for line in &lines {
        let id = line["reservation_id"].as_str().expect("reservation id");
        let resource = line["resource_id"].as_str().expect("resource id");
        assert!(resource.starts_with(&prefix) && id.starts_with("r1_") && id.ends_with(resource), "{line}");
    }
    let confirmed = lines.iter().filter(|l| l["status"] == "confirmed").count() as u64;
    assert_eq!(confirmed, summary.accepted_reservations.confirmed);
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join(SUMMARY_JSON)).expect("summary.json")).expect("json");
    assert_eq!(written["run_id"], summary.run_id.as_str());
    assert!(std::fs::read_to_string(out.join(SUMMARY_MD)).expect("summary.md").contains("| hold |"));

    let audit = report.audit.as_ref().expect("audited");
    assert!(report.passed() && audit.passed, "{audit:?} {:?}", report.audit_error);
    assert!(audit.read_model_audited && audit.projection_caught_up_s.is_some(), "{audit:?}");
    assert_eq!(audit.accepted_checked, accepted, "{audit:?}");
    assert!(audit.events >= 5 + accepted, "definitions and holds are in the log: {audit:?}");
    assert!(audit.claims >= 1, "the owner claimed its partitions in the log: {audit:?}");
    assert!(audit.rejected >= rejected, "every refused hold is recorded: {audit:?}");
    assert!(audit.reservations_in_log >= accepted, "{audit:?}");
    assert!(audit.rows_compared > 0 && audit.cached_resources_compared == 5, "{audit:?}");
    assert!(report.throughput.accepted_per_s > 0.0, "{:?}", report.throughput);
    let seconds = &report.timeline.seconds;
    assert!(seconds.iter().map(|s| s.offered).sum::<u64>() >= 150, "every request is on the timeline");
    assert!(seconds.iter().any(|s| s.lag_events.is_some()), "the worker's lag was sampled");
    for file in ["report.json", "report.md", "latency.svg", "throughput.svg", "lag.svg"] {
        assert!(out.join(file).is_file(), "{file} written");
    }
    assert!(std::fs::read_to_string(out.join("report.md")).expect("report.md").contains("**passed**"));

    let _ = std::fs::remove_dir_all(&out);
    service.stop().await.expect("the service stops cleanly");
    worker.stop().await.expect("the worker stops cleanly");
    database.drop_database().await.expect("database dropped");
    TopicLayout::from_args(&topics).delete(&testing::kafka()).await.expect("topics deleted");
    delete_keys(&redis).await;
}

/// Deletes every Redis key under the test's prefix.
async fn delete_keys(redis: &RedisArgs) {
    use secrecy::ExposeSecret as _;
    let url = redis.urls.first().expect("a Redis URL").expose_secret().to_owned();
    let client = redis::Client::open(url).expect("Redis client");
    let mut conn = client.get_multiplexed_async_connection().await.expect("Redis connection");
    let pattern = format!("{}*", redis.key_prefix);
    let keys: Vec<String> =
        redis::cmd("KEYS").arg(&pattern).query_async(&mut conn).await.expect("keys listed");
    if !keys.is_empty() {
        redis::cmd("DEL").arg(&keys).query_async::<()>(&mut conn).await.expect("keys deleted");
    }
}
