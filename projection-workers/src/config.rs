//! Projection-worker settings: flags or `HOLDFAST_*` environment variables.

use std::net::SocketAddr;

use clap::Parser;
use holdfast_platform::{KafkaArgs, PostgresArgs, RedisArgs, RegistryArgs, TelemetryArgs, TopicArgs};

/// Settings of the projection workers.
#[derive(Debug, Clone, Parser)]
#[command(name = "projection-workers", version, about = "Holdfast projections into PostgreSQL and Redis")]
pub struct Config {
    /// Address of the health and metrics endpoints.
    #[arg(long, env = "HOLDFAST_PROJECTION_LISTEN", default_value = "127.0.0.1:8082")]
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
    /// Read-model shards.
    #[command(flatten)]
    pub postgres: PostgresArgs,
    /// Availability cache, watermarks, live-update channels.
    #[command(flatten)]
    pub redis: RedisArgs,
    /// Logging and shutdown.
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
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
