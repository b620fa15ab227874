//! Health, readiness, metrics, topic provisioning and shutdown.

use std::time::Duration;

use clap::Parser;
use holdfast_command_service::{Config, run};
use holdfast_platform::testing::{self, RunningService};
use holdfast_platform::topics::TopicLayout;
use rdkafka::producer::{BaseProducer, Producer};

fn config(topics: &holdfast_platform::TopicArgs) -> Config {
    let mut config = Config::parse_from(["command-service"]);
    config.auth = testing::auth();
    config.kafka = testing::kafka();
    config.topics = topics.clone();
    config.registry = testing::registry();
    config
}

async fn partition_count(topic: &str) -> usize {
    let kafka = testing::kafka();
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let client: BaseProducer =
            holdfast_platform::kafka::producer_config(&kafka, "test").create().expect("client");
        let metadata =
            client.client().fetch_metadata(Some(&topic), Duration::from_secs(10)).expect("metadata");
        metadata.topics().first().map_or(0, |t| t.partitions().len())
    })
    .await
    .expect("metadata thread")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn becomes_ready_after_provisioning_its_topics() {
    testing::init_logs();
    let topics = testing::topics("cmd-ready", 6);
    let service = RunningService::start({
        let config = config(&topics);
        |listener, shutdown| run(config, listener, shutdown)
    })
    .await;
    assert_eq!(service.get_json("/healthz").await, (200, serde_json::json!({"status": "ok"})));
    assert!(service.wait_ready(Duration::from_secs(60)).await, "ready within 60 s");

    let layout = TopicLayout::from_args(&topics);
    for topic in layout.names() {
        // The owners directory is one partition whatever the events log has.
        let expected = if topic == layout.owners { 1 } else { 6 };
        assert_eq!(partition_count(topic).await, expected, "{topic} has the configured partitions");
    }
    let (_, ready) = service.get_json("/readyz").await;
    assert_eq!(
        ready["checks"],
        serde_json::json!({"accepting": "ok", "kafka": "ok", "topics": "ok", "schemas": "ok", "partitions": "ok"})
    );
    let metrics = service.metrics().await;
    assert!(metrics.contains(r#"holdfast_build_info{service="command-service""#), "{metrics}");

    service.stop().await.expect("clean stop");
    layout.delete(&testing::kafka()).await.expect("topics deleted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_to_run_when_topics_have_another_partition_count() {
    testing::init_logs();
    let mut topics = testing::topics("cmd-mismatch", 3);
    let layout = TopicLayout::from_args(&topics);
    layout.ensure(&testing::kafka()).await.expect("pre-existing topics with 3 partitions");

    topics.partitions = 4;
    let service = RunningService::start({
        let config = config(&topics);
        |listener, shutdown| run(config, listener, shutdown)
    })
    .await;
    let error = service.join(Duration::from_secs(60)).await.expect_err("the service must stop");
    assert!(format!("{error:#}").contains("has 3 partitions but 4 are configured"), "{error:#}");
    layout.delete(&testing::kafka()).await.expect("topics deleted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_is_503_problem_json_while_kafka_is_unreachable() {
    testing::init_logs();
    let mut config = config(&testing::topics("cmd-nokafka", 2));
    // Nothing listens on port 1.
    config.kafka.brokers = "127.0.0.1:1".to_owned();
    let service = RunningService::start(|listener, shutdown| run(config, listener, shutdown)).await;

    let response = reqwest::get(service.url("/readyz")).await.expect("readyz answers");
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    assert!(response.headers().contains_key("retry-after"));
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["checks"]["kafka"], "failing", "only ok or failing, never error text");
    service.stop().await.expect("clean stop while Kafka is unreachable");
}

#[test]
fn the_binary_exits_cleanly_on_sigterm() {
    let status = testing::run_then_sigterm(
        env!("CARGO_BIN_EXE_command-service"),
        // Kafka unreachable: shutting down must not wait for a dependency that never answers.
        &[("HOLDFAST_COMMAND_LISTEN", "127.0.0.1:0"), ("HOLDFAST_KAFKA_BROKERS", "127.0.0.1:1")],
    )
    .expect("started and stopped");
    assert!(status.success(), "exit status {status}");
}
