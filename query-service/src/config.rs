//! Query-service settings: flags or `HOLDFAST_*` environment variables.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use holdfast_platform::config::parse_duration;
use holdfast_platform::{AuthArgs, PostgresArgs, RedisArgs, TelemetryArgs, TopicArgs};

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
    /// Bearer tokens.
    #[command(flatten)]
    pub auth: AuthArgs,
    /// Longest a read waits for its `min_position` before answering 503 with `Retry-After`.
    #[arg(long, env = "HOLDFAST_QUERY_MAX_WAIT", default_value = "2s", value_parser = parse_duration)]
    pub max_wait: Duration,
    /// How often the shared watcher re-reads positions while reads wait for one.
    #[arg(long, env = "HOLDFAST_QUERY_WAIT_POLL", default_value = "5ms", value_parser = parse_duration)]
    pub wait_poll: Duration,
    /// Longest one Redis read may take before the answer comes from PostgreSQL instead.
    #[arg(long, env = "HOLDFAST_QUERY_REDIS_TIMEOUT", default_value = "250ms", value_parser = parse_duration)]
    pub redis_timeout: Duration,
    /// After a Redis failure (an error, or 8 timeouts in a row), how long reads go straight to PostgreSQL before Redis is tried again.
    #[arg(long, env = "HOLDFAST_QUERY_REDIS_RETRY", default_value = "1s", value_parser = parse_duration)]
    pub redis_retry: Duration,
    /// Interval of the comment lines that keep idle live-update streams open.
    #[arg(long, env = "HOLDFAST_QUERY_HEARTBEAT", default_value = "15s", value_parser = parse_duration)]
    pub heartbeat: Duration,
    /// While live updates are unavailable (Redis down), how often a stream re-reads its snapshot.
    #[arg(long, env = "HOLDFAST_QUERY_STREAM_POLL", default_value = "1s", value_parser = parse_duration)]
    pub stream_poll: Duration,
    /// Most live-update streams open at once on this instance; beyond it 503.
    #[arg(long, env = "HOLDFAST_QUERY_MAX_STREAMS", default_value_t = 10_000)]
    pub max_streams: usize,
    /// Most live-update streams one client (token subject) holds open at once on this
    /// instance; beyond it 429.
    #[arg(long, env = "HOLDFAST_QUERY_MAX_STREAMS_PER_CLIENT", default_value_t = 8)]
    pub max_streams_per_client: usize,
    /// Most read-your-writes waits one client has parked at once on this instance; beyond it
    /// 429.
    #[arg(long, env = "HOLDFAST_QUERY_MAX_WAITS_PER_CLIENT", default_value_t = 64)]
    pub max_waits_per_client: usize,
    /// Most requests (streams aside) served at once on this instance; beyond it 503 with
    /// `Retry-After` (load shedding rather than collapse).
    #[arg(long, env = "HOLDFAST_QUERY_MAX_IN_FLIGHT", default_value_t = 4_096)]
    pub max_in_flight: usize,
    /// Longest a request may take (waits included) before it is answered 503.
    #[arg(long, env = "HOLDFAST_QUERY_REQUEST_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub request_timeout: Duration,
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
