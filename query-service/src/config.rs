//! Query-service settings: flags or `HOLDFAST_*` environment variables.

use std::net::SocketAddr;

use clap::Parser;
use holdfast_platform::{PostgresArgs, RedisArgs, TelemetryArgs, TopicArgs};

/// Settings of the query service.
#[derive(Debug, Clone, Parser)]
#[command(name = "query-service", version, about = "Holdfast read API")]
pub struct Config {
    /// Address the HTTP API listens on.
    #[arg(long, env = "HOLDFAST_QUERY_LISTEN", default_value = "127.0.0.1:8081")]
    pub listen: SocketAddr,
    /// Read-model shards.
    #[command(flatten)]
    pub postgres: PostgresArgs,
    /// Availability cache and position watermarks.
    #[command(flatten)]
    pub redis: RedisArgs,
    /// Topic layout (the partition count routes a resource to its shard).
    #[command(flatten)]
    pub topics: TopicArgs,
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
