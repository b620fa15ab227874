//! Projection-worker settings: flags or `HOLDFAST_*` environment variables.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use holdfast_platform::config::parse_duration;
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
    /// This instance's name, used in Kafka client ids; a random one by default.
    #[arg(long, env = "HOLDFAST_INSTANCE_ID")]
    pub instance_id: Option<String>,
    /// Consumer group of the projection workers (the topic prefix is put before it).
    #[arg(long, env = "HOLDFAST_PROJECTION_GROUP", default_value = "holdfast.projection-workers")]
    pub group: String,
    /// Most events applied in one PostgreSQL transaction.
    #[arg(long, env = "HOLDFAST_PROJECTION_MAX_BATCH", default_value_t = 5000)]
    pub max_batch: usize,
    /// Longest the broker holds the worker's fetch to gather records (librdkafka's
    /// `fetch.wait.max.ms`): the projection's added lag under light load, and how often an idle
    /// worker asks. Every fetch names each of the worker's partitions (librdkafka has no
    /// incremental fetch sessions), so a fetch per arriving record would cost the broker a scan
    /// of hundreds of partitions each time; on 480 partitions 50 ms kept an idle broker at 11 %
    /// of a core, 500 ms at 5 %.
    #[arg(long, env = "HOLDFAST_PROJECTION_FETCH_WAIT", default_value = "100ms", value_parser = parse_fetch_wait)]
    pub fetch_wait: Duration,
    /// Bytes the broker gathers before it answers a fetch early (librdkafka's `fetch.min.bytes`):
    /// under load fetches fill up and come back before [`Config::fetch_wait`].
    #[arg(long, env = "HOLDFAST_PROJECTION_FETCH_MIN_BYTES", default_value_t = 1 << 20,
        value_parser = clap::value_parser!(u32).range(1..=100_000_000))]
    pub fetch_min_bytes: u32,
    /// Consumer-group session timeout: how soon a silent worker loses its partitions.
    #[arg(long, env = "HOLDFAST_SESSION_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub session_timeout: Duration,
    /// `/readyz` is green while every assigned partition is at most this many events behind.
    #[arg(long, env = "HOLDFAST_PROJECTION_READY_MAX_LAG", default_value_t = 1000)]
    pub ready_max_lag: i64,
    /// How often Redis is checked against PostgreSQL (and refilled where it is behind).
    #[arg(long, env = "HOLDFAST_PROJECTION_CACHE_CHECK", default_value = "1s", value_parser = parse_duration)]
    pub cache_check_interval: Duration,
    /// How long one Redis write may take before Redis counts as down (PostgreSQL goes on).
    #[arg(long, env = "HOLDFAST_PROJECTION_REDIS_TIMEOUT", default_value = "2s", value_parser = parse_duration)]
    pub redis_timeout: Duration,
}

/// A fetch wait of 0 to 10 s.
fn parse_fetch_wait(text: &str) -> Result<Duration, String> {
    let wait = parse_duration(text)?;
    if wait > Duration::from_secs(10) {
        return Err(format!("{text} is longer than 10s: the projection would lag that much"));
    }
    Ok(wait)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Config;

    #[test]
    fn flags_and_variables_are_consistent() {
        Config::command().debug_assert();
    }

    #[test]
    fn fetch_wait_is_bounded() {
        assert_eq!(super::parse_fetch_wait("50ms"), Ok(std::time::Duration::from_millis(50)));
        assert!(super::parse_fetch_wait("11s").is_err());
        assert!(super::parse_fetch_wait("soon").is_err());
    }
}
