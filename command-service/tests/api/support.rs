//! Shared set-up: a command service in-process with topics of its own, and a client that
//! talks to its partitions through Kafka the way another instance would.

use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use holdfast_command_service::dispatch::Dispatcher;
use holdfast_command_service::envelope::{CommandEnvelope, FORMAT_VERSION, Outcome};
use holdfast_command_service::metrics::Metrics;
use holdfast_command_service::{Config, replies, run};
use holdfast_domain::{Command, CommandMeta};
use holdfast_platform::testing::{self, RunningService};
use holdfast_platform::{Shutdown, TopicArgs};
use time::OffsetDateTime;
use uuid::Uuid;

/// A command-service configuration for a test: its own topics, small partition count.
pub fn config(topics: &TopicArgs) -> Config {
    let mut config = Config::parse_from(["command-service"]);
    config.kafka = testing::kafka();
    config.topics = topics.clone();
    config.registry = testing::registry();
    config.session_timeout = Duration::from_secs(6);
    config.transaction_timeout = Duration::from_secs(10);
    config
}

/// Starts a command service and waits until it is ready.
pub async fn start(config: Config) -> RunningService {
    let service = RunningService::start(|listener, shutdown| run(config, listener, shutdown)).await;
    assert!(service.wait_ready(Duration::from_secs(90)).await, "command service ready within 90 s");
    service
}

/// Sends commands through Kafka and collects outcomes from the replies topic, like an
/// instance whose own processor owns none of the partitions.
pub struct RemoteClient {
    dispatcher: Arc<Dispatcher>,
    shutdown: Shutdown,
    follower: Option<std::thread::JoinHandle<()>>,
}

impl RemoteClient {
    /// Connects to the topics of `topics`.
    pub fn new(topics: &TopicArgs) -> Self {
        let layout = holdfast_platform::topics::TopicLayout::from_args(topics);
        let kafka = testing::kafka();
        let producer =
            holdfast_platform::kafka::producer_config(&kafka, "test-client").create().expect("producer");
        let metrics = Metrics::register(&prometheus::Registry::new()).expect("metrics");
        let dispatcher = Arc::new(Dispatcher::new(
            producer,
            layout.commands.clone(),
            Duration::from_secs(20),
            10_000,
            metrics,
        ));
        let shutdown = Shutdown::new();
        let follower = std::thread::spawn({
            let (dispatcher, shutdown) = (Arc::clone(&dispatcher), shutdown.clone());
            move || {
                replies::follow(
                    &kafka,
                    "test-client-replies",
                    &layout.replies,
                    layout.partitions,
                    &dispatcher,
                    &shutdown,
                )
                .expect("replies followed");
            }
        });
        Self { dispatcher, shutdown, follower: Some(follower) }
    }

    /// Submits `command` and waits for its outcome.
    pub async fn decide(&self, command: Command) -> Arc<Outcome> {
        let envelope = CommandEnvelope {
            v: FORMAT_VERSION,
            fingerprint: 1,
            meta: CommandMeta::new(Uuid::now_v7()),
            command,
            submitted_at: OffsetDateTime::now_utc(),
        };
        self.dispatcher.submit(&envelope).await.expect("decided in time")
    }
}

impl Drop for RemoteClient {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(follower) = self.follower.take() {
            let _ = follower.join();
        }
    }
}
