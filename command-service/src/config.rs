//! Command-service settings: flags or `HOLDFAST_*` environment variables.

use std::net::SocketAddr;

use clap::Parser;
use holdfast_platform::{KafkaArgs, RegistryArgs, TelemetryArgs, TopicArgs};

/// Settings of the command service.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "command-service",
    version,
    about = "Holdfast command API and partition processors"
)]
pub struct Config {
    /// Address the HTTP API listens on.
    #[arg(
        long,
        env = "HOLDFAST_COMMAND_LISTEN",
        default_value = "127.0.0.1:8080"
    )]
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
