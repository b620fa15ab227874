//! Health, readiness, metrics and shutdown.

use std::time::Duration;

use clap::Parser;
use holdfast_platform::testing::{self, RunningService, TestDatabase};
use holdfast_query_service::{Config, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_when_postgres_and_redis_answer() {
    testing::init_logs();
    let database = TestDatabase::create("query_ready").await.expect("database");
    let mut config = Config::parse_from(["query-service"]);
    config.auth = testing::auth();
    config.postgres = database.postgres_args();
    config.redis = testing::redis("query-ready");
    let service = RunningService::start(|listener, shutdown| run(config, listener, shutdown)).await;

    assert!(service.wait_ready(Duration::from_secs(30)).await, "ready within 30 s");
    let (_, ready) = service.get_json("/readyz").await;
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["checks"], serde_json::json!({"postgres": "ok", "redis": "ok"}));
    let metrics = service.metrics().await;
    assert!(metrics.contains(r#"holdfast_build_info{service="query-service""#), "{metrics}");

    service.stop().await.expect("clean stop");
    database.drop_database().await.expect("database dropped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_ready_without_postgres() {
    testing::init_logs();
    let mut config = Config::parse_from(["query-service"]);
    config.auth = testing::auth();
    config.postgres.urls = vec!["postgres://holdfast:holdfast@127.0.0.1:1/none".to_owned().into()];
    config.redis = testing::redis("query-nopg");
    let service = RunningService::start(|listener, shutdown| run(config, listener, shutdown)).await;

    let (status, body) = service.get_json("/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["checks"]["postgres"], "failing", "only ok or failing, never error text");
    // Reads answer 503 with Retry-After, not 500.
    let response = testing::http()
        .get(service.url("/v1/reservations/r1_00000000000000000000000000000000_x"))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));

    service.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_but_degraded_while_redis_is_unreachable() {
    testing::init_logs();
    let database = TestDatabase::create("query_noredis").await.expect("database");
    let mut config = Config::parse_from(["query-service"]);
    config.auth = testing::auth();
    config.postgres = database.postgres_args();
    config.redis = testing::redis("query-noredis");
    config.redis.urls = vec!["redis://127.0.0.1:1".to_owned().into()];
    let service = RunningService::start(|listener, shutdown| run(config, listener, shutdown)).await;

    // Redis only makes reads faster: PostgreSQL answers every read without it.
    let (status, body) = service.get_json("/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "degraded");
    assert_eq!(body["checks"]["postgres"], "ok");
    assert!(body["checks"]["redis"].as_str().is_some_and(|r| r.starts_with("degraded")), "{body}");

    service.stop().await.expect("clean stop");
    database.drop_database().await.expect("database dropped");
}

#[test]
fn the_binary_exits_cleanly_on_sigterm() {
    let status = testing::run_then_sigterm(
        env!("CARGO_BIN_EXE_query-service"),
        &[("HOLDFAST_QUERY_LISTEN", "127.0.0.1:0"), ("HOLDFAST_REDIS_URLS", "redis://127.0.0.1:1")],
    )
    .expect("started and stopped");
    assert!(status.success(), "exit status {status}");
}

/// Planted credentials — a database password, a Redis password, the token secret — appear in
/// neither `--help`, the `Debug` of the settings, the logs of a run that fails to reach them,
/// nor the `/readyz` body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_reach_neither_help_nor_logs_nor_readyz() {
    use tokio::io::AsyncBufReadExt;

    const PLANTED: &str = "PLANTED";
    let env = [
        ("HOLDFAST_POSTGRES_URLS", "postgres://holdfast:PLANTED-pg-password@127.0.0.1:1/none"),
        ("HOLDFAST_REDIS_URLS", "redis://:PLANTED-redis-password@127.0.0.1:1"),
        ("HOLDFAST_AUTH_HS256_SECRET", "PLANTED-token-secret-of-more-than-32-bytes"),
        ("HOLDFAST_QUERY_LISTEN", "127.0.0.1:0"),
        ("HOLDFAST_LOG", "debug"),
        ("HOLDFAST_LOG_FORMAT", "json"),
    ];
    let binary = env!("CARGO_BIN_EXE_query-service");
    let help = std::process::Command::new(binary).arg("--help").envs(env).output().expect("--help runs");
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("HOLDFAST_POSTGRES_URLS"), "{help}");
    assert!(!help.contains(PLANTED), "--help shows a secret:\n{help}");

    let mut config = Config::parse_from(["query-service"]);
    config.postgres.urls = vec![env[0].1.to_owned().into()];
    config.redis.urls = vec![env[1].1.to_owned().into()];
    config.auth.hs256_secret = Some(env[2].1.to_owned().into());
    assert!(!format!("{config:?}").contains(PLANTED), "the settings' Debug shows a secret");

    let mut child = tokio::process::Command::new(binary)
        .envs(env)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("starts");
    let mut lines = tokio::io::BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut logs = Vec::new();
    let addr = loop {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("logs within 30 s")
            .expect("readable")
            .expect("the process logs where it listens");
        logs.push(line.clone());
        let value: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        if let Some(addr) = value["addr"].as_str().filter(|_| line.contains("listening")) {
            break addr.to_owned();
        }
    };
    let ready = reqwest::get(format!("http://{addr}/readyz")).await.expect("answers");
    assert_eq!(ready.status(), 503);
    let body = ready.text().await.expect("body");
    assert!(!body.contains(PLANTED), "/readyz shows a secret: {body}");
    child.start_kill().expect("stopped");
    while let Ok(Some(line)) = lines.next_line().await {
        logs.push(line);
    }
    let logs = logs.join("\n");
    assert!(logs.contains("readiness check failing"), "the failure is logged for the operator:\n{logs}");
    assert!(!logs.contains(PLANTED), "a log line shows a secret:\n{logs}");
}
