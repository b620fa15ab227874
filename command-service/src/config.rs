//! Command-service settings: flags or `HOLDFAST_*` environment variables.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use holdfast_platform::config::parse_duration;
use holdfast_platform::{AuthArgs, KafkaArgs, RegistryArgs, TelemetryArgs, TopicArgs};

/// Settings of the command service.
#[derive(Debug, Clone, Parser)]
#[command(name = "command-service", version, about = "Holdfast command API and partition owners")]
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
    /// Bearer tokens.
    #[command(flatten)]
    pub auth: AuthArgs,
    /// Logging and shutdown.
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
    /// This instance's name, in its claims and client ids. Give each replica a stable one (the
    /// pod name) so logs and claims say which replica owned what; by default a random one.
    #[arg(long, env = "HOLDFAST_INSTANCE_ID")]
    pub instance_id: Option<String>,
    /// The address other instances reach this one's command API at (host:port), written into
    /// its claims. Defaults to the address the API listens on.
    #[arg(long, env = "HOLDFAST_ADVERTISED_ADDRESS")]
    pub advertised_address: Option<String>,
    /// How long a request waits for its decision. Past it, a command queued on the commands
    /// topic is answered 202 Accepted; one decided here but not yet confirmed in the log, 503.
    #[arg(long, env = "HOLDFAST_COMMAND_WAIT", default_value = "5s", value_parser = parse_duration)]
    pub command_wait: Duration,
    /// Producers the partition owners append through (one connection each, partitions spread
    /// over them). librdkafka sends one partition per produce request with at most five in
    /// flight per connection, and its broker thread visits every partition it serves on each
    /// wake-up: an instance owning hundreds of partitions needs several (measured on one
    /// instance owning 480: at 3,000 holds/s p99 2 s with 2, 59 ms with 8). With one to three
    /// partitions per instance, 2 are plenty.
    #[arg(long, env = "HOLDFAST_APPEND_PRODUCERS", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub append_producers: u16,
    /// How long an append may wait in the producer for more records to share its request.
    /// None by default: a lone record leaves at once, and records queued behind a request in
    /// flight travel together anyway.
    #[arg(long, env = "HOLDFAST_APPEND_LINGER", default_value = "0ms", value_parser = parse_duration)]
    pub append_linger: Duration,
    /// How long the producer keeps trying one append before it reports it failed. Past it the
    /// record's fate is unclear: the owner claims its partition again and restores.
    #[arg(long, env = "HOLDFAST_APPEND_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub append_timeout: Duration,
    /// Consumer-group session timeout: how soon a silent instance loses its partitions.
    #[arg(long, env = "HOLDFAST_SESSION_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub session_timeout: Duration,
    /// How long outcomes are remembered for retries with the same idempotency key.
    #[arg(long, env = "HOLDFAST_IDEMPOTENCY_WINDOW", default_value = "60m", value_parser = parse_duration)]
    pub idempotency_window: Duration,
    /// Most outcomes remembered per partition (the oldest are forgotten first). Beyond the
    /// window or this bound the domain itself is idempotent: the same hold, confirmation or
    /// cancellation again changes nothing.
    #[arg(long, env = "HOLDFAST_IDEMPOTENCY_CAPACITY", default_value_t = 10_000)]
    pub idempotency_capacity: usize,
    /// How many instances stand by for each partition: they follow it without owning it, so
    /// the one assigned it next restores only what was appended since. 0 turns standbys off.
    #[arg(long, env = "HOLDFAST_STANDBYS", default_value_t = 1)]
    pub standbys: u16,
    /// Commands in flight above which new requests are refused with 429.
    #[arg(long, env = "HOLDFAST_MAX_IN_FLIGHT", default_value_t = 20_000)]
    pub max_in_flight: usize,
    /// File holding the peer secret (at least 32 bytes), shared by the instances of a
    /// deployment: they sign the commands they hand to each other's partitions with it. Without
    /// it (and without `HOLDFAST_PEER_SECRET`) a key is derived from the HS256 token secret
    /// when there is one (local development); with neither, commands for other instances'
    /// partitions go through the commands topic.
    #[arg(long, env = "HOLDFAST_PEER_SECRET_FILE")]
    pub peer_secret_file: Option<std::path::PathBuf>,
    /// The peer secret given directly, instead of the file.
    #[arg(long, env = "HOLDFAST_PEER_SECRET", hide_env_values = true)]
    pub peer_secret: Option<secrecy::SecretString>,
    /// On shutdown, how long the command API keeps serving after the partitions were handed
    /// over (`/readyz` already says not ready), forwarding what still arrives to the new
    /// owners while load balancers take the instance out.
    #[arg(long, env = "HOLDFAST_HANDOVER_LINGER", default_value = "1s", value_parser = parse_duration)]
    pub handover_linger: Duration,
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
