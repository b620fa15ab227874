//! Command-service settings: flags or `HOLDFAST_*` environment variables.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use holdfast_platform::config::parse_duration;
use holdfast_platform::{KafkaArgs, RegistryArgs, TelemetryArgs, TopicArgs};

/// Settings of the command service.
#[derive(Debug, Clone, Parser)]
#[command(name = "command-service", version, about = "Holdfast command API and partition processors")]
pub struct Config {
    /// Address the HTTP API listens on.
    #[arg(long, env = "HOLDFAST_COMMAND_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Kafka connection.
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Topic names and layout.
    #[command(flatten)]
    pub topics: TopicArgs,
    /// Schema registry.
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Logging and shutdown.
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
    /// This instance's name: its transactional id and client ids derive from it. Give each
    /// replica a stable one (the pod name) so a restarted instance fences its predecessor at
    /// once; by default a random one is made.
    #[arg(long, env = "HOLDFAST_INSTANCE_ID")]
    pub instance_id: Option<String>,
    /// How long a request waits for its decision before it is answered 202 Accepted.
    #[arg(long, env = "HOLDFAST_COMMAND_WAIT", default_value = "5s", value_parser = parse_duration)]
    pub command_wait: Duration,
    /// Partition processors in this instance. Each is a member of the processors' consumer
    /// group with a transactional id of its own (`<instance>-p<n>`), so the partitions an
    /// instance owns are split among them and their transactions run side by side.
    /// librdkafka sends one partition per produce request, at most five in flight per
    /// connection: a transaction touching many partitions is a queue of round trips, and
    /// several processors are several connections.
    #[arg(long, env = "HOLDFAST_PROCESSORS", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub processors: u16,
    /// Most commands decided in one Kafka transaction.
    #[arg(long, env = "HOLDFAST_MAX_BATCH", default_value_t = 2000)]
    pub max_batch: usize,
    /// Broker-side timeout of a processor's transaction: how long a dead processor's open
    /// transaction can hold back readers of its partitions.
    #[arg(long, env = "HOLDFAST_TRANSACTION_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub transaction_timeout: Duration,
    /// Consumer-group session timeout: how soon a silent processor loses its partitions.
    #[arg(long, env = "HOLDFAST_SESSION_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub session_timeout: Duration,
    /// How long outcomes are remembered for retries with the same idempotency key.
    #[arg(long, env = "HOLDFAST_IDEMPOTENCY_WINDOW", default_value = "60m", value_parser = parse_duration)]
    pub idempotency_window: Duration,
    /// Commands in flight above which new requests are refused with 429.
    #[arg(long, env = "HOLDFAST_MAX_IN_FLIGHT", default_value_t = 20_000)]
    pub max_in_flight: usize,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Config;

    #[test]
    fn flags_and_variables_are_consistent() {
        Config::command().debug_assert();
    }
}
