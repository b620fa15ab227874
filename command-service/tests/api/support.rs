//! Shared set-up: a command service in-process with topics of its own, and a client that
//! talks to its partitions through Kafka the way another instance would.

use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use holdfast_command_service::dispatch::{Dispatcher, Route, SubmitError};
use holdfast_command_service::envelope::{CommandEnvelope, FORMAT_VERSION, Outcome};
use holdfast_command_service::metrics::Metrics;
use holdfast_command_service::owners::Owners;
use holdfast_command_service::{Config, replies, run};
use holdfast_domain::{Command, CommandMeta};
use holdfast_platform::producer::Producer;
use holdfast_platform::testing::{self, RunningService};
use holdfast_platform::{Shutdown, TopicArgs};
use time::OffsetDateTime;
use uuid::Uuid;

/// A command-service configuration for a test: its own topics, small partition count.
pub fn config(topics: &TopicArgs) -> Config {
    let mut config = Config::parse_from(["command-service"]);
    config.auth = testing::auth();
    config.kafka = testing::kafka();
    config.topics = topics.clone();
    config.registry = testing::registry();
    config.session_timeout = Duration::from_secs(6);
    config
}

/// Starts a command service and waits until it is ready.
pub async fn start(config: Config) -> RunningService {
    let service = RunningService::start(|listener, shutdown| run(config, listener, shutdown)).await;
    assert!(service.wait_ready(Duration::from_secs(90)).await, "command service ready within 90 s");
    service
}

/// Sends commands through the commands topic and collects outcomes from its replies
/// partition, like an instance that owns none of the partitions.
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
        let producer = Producer::new(&holdfast_platform::kafka::producer_config(&kafka, "test-client"))
            .expect("producer");
        let metrics = Metrics::register(&prometheus::Registry::new()).expect("metrics");
        let instance = testing::unique("test-client");
        let route = Route {
            commands_topic: layout.commands.clone(),
            partitions: layout.partitions,
            reply_partition: replies::partition_of(&instance, layout.partitions),
        };
        let dispatcher = Arc::new(Dispatcher::new(
            producer,
            route,
            Arc::new(Owners::default()),
            Duration::from_secs(20),
            10_000,
            metrics,
        ));
        let shutdown = Shutdown::new();
        let follower = std::thread::spawn({
            let (dispatcher, shutdown) = (Arc::clone(&dispatcher), shutdown.clone());
            move || {
                let partition = dispatcher.reply_partition();
                replies::follow(&kafka, &instance, &layout.replies, partition, &dispatcher, &shutdown)
                    .expect("replies followed");
            }
        });
        Self { dispatcher, shutdown, follower: Some(follower) }
    }

    /// Submits `command` and waits for its outcome.
    pub async fn decide(&self, command: Command) -> Arc<Outcome> {
        self.try_decide(command).await.expect("decided in time")
    }

    /// Submits `command`; `Err` when no outcome arrived within the wait.
    pub async fn try_decide(&self, command: Command) -> Result<Arc<Outcome>, SubmitError> {
        let envelope = CommandEnvelope {
            v: FORMAT_VERSION,
            fingerprint: 1,
            meta: CommandMeta::new(Uuid::now_v7()),
            command,
            submitted_at: OffsetDateTime::now_utc(),
            reply_to: None,
            acting_for: None,
        };
        self.dispatcher.submit(&envelope).await
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

/// A command-service process (the real binary), for failure tests.
pub struct Process {
    child: std::process::Child,
    /// Where its HTTP API listens.
    pub addr: std::net::SocketAddr,
    _logs: std::thread::JoinHandle<()>,
}

impl Process {
    /// Starts the binary on 127.0.0.1:0 with `topics` and `instance` as its instance id.
    pub fn spawn(topics: &TopicArgs, instance: &str) -> Self {
        Self::spawn_with(topics, instance, &[])
    }

    /// [`Process::spawn`] with more environment variables.
    pub fn spawn_with(topics: &TopicArgs, instance: &str, env: &[(&str, &str)]) -> Self {
        use std::io::{BufRead, BufReader};
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_command-service"))
            .env("HOLDFAST_COMMAND_LISTEN", "127.0.0.1:0")
            .env("HOLDFAST_TOPIC_PREFIX", &topics.topic_prefix)
            .env("HOLDFAST_PARTITIONS", topics.partitions.to_string())
            .env("HOLDFAST_INSTANCE_ID", instance)
            .env("HOLDFAST_SESSION_TIMEOUT", "6s")
            .env("HOLDFAST_COMMAND_WAIT", "20s")
            .env("HOLDFAST_LOG_FORMAT", "json")
            .env("HOLDFAST_AUTH_HS256_SECRET", testing::TEST_SECRET)
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("command-service starts");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        let name = instance.to_owned();
        let logs = std::thread::spawn(move || {
            let verbose = std::env::var("TEST_LOG").is_ok();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("\"listening\"") {
                    let _ = tx.send(line.clone());
                }
                if verbose {
                    eprintln!("[{name}] {line}");
                }
            }
        });
        let line = rx.recv_timeout(Duration::from_secs(30)).expect("the process logs where it listens");
        let value: serde_json::Value = serde_json::from_str(&line).expect("json log line");
        let addr = value["addr"].as_str().and_then(|a| a.parse().ok()).expect("listen address in the log");
        Self { child, addr, _logs: logs }
    }

    /// Waits until `/readyz` is green.
    pub async fn wait_ready(&self, deadline: Duration) -> bool {
        testing::wait_ready(self.addr, deadline).await
    }

    /// The value of `holdfast_owned_partitions` on its metrics endpoint.
    pub async fn owned_partitions(&self) -> Option<i64> {
        self.metric("holdfast_owned_partitions").await
    }

    /// The value of the sample `series` (name and labels, as exposed) on its metrics endpoint.
    pub async fn metric<T: std::str::FromStr>(&self, series: &str) -> Option<T> {
        let text = reqwest::get(format!("http://{}/metrics", self.addr)).await.ok()?.text().await.ok()?;
        let prefix = format!("{series} ");
        text.lines().find_map(|l| l.strip_prefix(&prefix)).and_then(|v| v.trim().parse().ok())
    }

    /// Sends `signal` (`STOP`, `CONT`, `KILL`, `TERM`).
    pub fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{signal}");
    }

    /// Waits for the process to exit and returns whether it exited successfully.
    pub fn wait(mut self) -> bool {
        self.child.wait().map(|s| s.success()).unwrap_or(false)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
