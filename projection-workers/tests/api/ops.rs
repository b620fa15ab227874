//! Health, readiness (which includes the read-model migrations), metrics and shutdown.

use std::time::Duration;

use clap::Parser;
use holdfast_platform::testing::{self, RunningService, TestDatabase};
use holdfast_projection_workers::{Config, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrates_its_shard_and_becomes_ready() {
    testing::init_logs();
    let database = TestDatabase::create("projection_ready").await.expect("database");
    let mut config = Config::parse_from(["projection-workers"]);
    config.kafka = testing::kafka();
    config.registry = testing::registry();
    config.topics = testing::topics("proj-ready", 2);
    config.postgres = database.postgres_args();
    config.redis = testing::redis("proj-ready");
    let (topics, redis) = (config.topics.clone(), config.redis.clone());
    let service = RunningService::start(|listener, shutdown| run(config, listener, shutdown)).await;

    assert!(service.wait_ready(Duration::from_secs(60)).await, "ready within 60 s");
    let (_, ready) = service.get_json("/readyz").await;
    assert_eq!(
        ready["checks"],
        serde_json::json!({"kafka": "ok", "postgres": "ok", "redis": "ok", "projection": "ok"})
    );
    let metrics = service.metrics().await;
    assert!(metrics.contains(r#"holdfast_build_info{service="projection-workers""#), "{metrics}");
    let pool = sqlx::PgPool::connect(database.url()).await.expect("connect");
    let tables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public' AND table_name = 'projection_offsets'",
    )
    .fetch_one(&pool)
    .await
    .expect("catalog");
    assert_eq!(tables, 1, "the worker migrated its shard");

    pool.close().await;
    service.stop().await.expect("clean stop");
    database.drop_database().await.expect("database dropped");
    // The worker provisioned the topics; nothing was projected, but its Redis prefix goes too.
    let _ = holdfast_platform::topics::TopicLayout::from_args(&topics).delete(&testing::kafka()).await;
    crate::support::delete_keys(&redis).await.expect("redis keys deleted");
}

#[test]
fn the_binary_exits_cleanly_on_sigterm() {
    let status = testing::run_then_sigterm(
        env!("CARGO_BIN_EXE_projection-workers"),
        &[
            ("HOLDFAST_PROJECTION_LISTEN", "127.0.0.1:0"),
            ("HOLDFAST_KAFKA_BROKERS", "127.0.0.1:1"),
            ("HOLDFAST_POSTGRES_URLS", "postgres://nobody:nothing@127.0.0.1:1/none"),
            ("HOLDFAST_REDIS_URLS", "redis://127.0.0.1:1"),
        ],
    )
    .expect("started and stopped");
    assert!(status.success(), "exit status {status}");
}
