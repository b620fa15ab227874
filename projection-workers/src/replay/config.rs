//! Replay CLI settings: the same `HOLDFAST_*` variables and flags as the projection workers
//! (the platform's argument groups), plus one group per subcommand.

use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use holdfast_platform::config::parse_duration;
use holdfast_platform::{KafkaArgs, PostgresArgs, RedisArgs, RegistryArgs, TelemetryArgs, TopicArgs};
use time::OffsetDateTime;

/// Settings of `holdfast-replay`.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "holdfast-replay",
    version,
    about = "Rebuild, verify, dump and tail Holdfast's read models from the event log"
)]
pub struct ReplayConfig {
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
    /// Availability cache.
    #[command(flatten)]
    pub redis: RedisArgs,
    /// Logging.
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
    /// Print machine-readable JSON (one object per line) instead of text; hides progress bars.
    #[arg(long, global = true, env = "HOLDFAST_REPLAY_JSON")]
    pub json: bool,
    /// How long one read of the log to its end may take.
    #[arg(long, env = "HOLDFAST_REPLAY_DEADLINE", default_value = "30m", value_parser = parse_duration)]
    pub deadline: Duration,
    /// How long one Redis operation may take.
    #[arg(long, env = "HOLDFAST_PROJECTION_REDIS_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub redis_timeout: Duration,
    /// What to do.
    #[command(subcommand)]
    pub command: ReplayCommand,
}

/// The subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum ReplayCommand {
    /// Rebuild the read model from the log into a new generation, then switch to it.
    Rebuild(RebuildArgs),
    /// Recompute the read model from the log and compare it with PostgreSQL and Redis.
    Verify(VerifyArgs),
    /// Print one resource's or reservation's decoded events as JSON lines, and what the
    /// reader rule voided in its partition.
    Dump(DumpArgs),
    /// Follow the log live, judged by the reader rule and decoded, as JSON lines, until Ctrl-C.
    Tail(TailArgs),
}

/// `rebuild` settings.
#[derive(Debug, Clone, Args)]
pub struct RebuildArgs {
    /// Project only events at or after this instant (RFC 3339), found per partition with
    /// the broker's time index; the whole log by default. The log is still read from its
    /// beginning: the reader rule needs every claim before the instant.
    #[arg(long, value_parser = parse_rfc3339)]
    pub since: Option<OffsetDateTime>,
    /// Records read between two checkpoints (rows and positions written; a later run resumes
    /// from the last one).
    #[arg(long, env = "HOLDFAST_REBUILD_CHECKPOINT_EVENTS", default_value_t = 5_000_000)]
    pub checkpoint_events: u64,
    /// Parallel COPY streams per shard for the first load.
    #[arg(long, env = "HOLDFAST_REBUILD_COPY_STREAMS", default_value_t = 2)]
    pub copy_streams: usize,
    /// Keep the previous generation's tables and Redis keys after the switch.
    #[arg(long)]
    pub keep_previous: bool,
    /// For drills and tests: stop as if interrupted after this many checkpoints.
    #[arg(long, hide = true)]
    pub stop_after_checkpoints: Option<u64>,
}

/// `verify` settings.
#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    /// Stop listing after this many differences (all are counted).
    #[arg(long, default_value_t = 1000)]
    pub max_listed: usize,
}

/// `dump` settings.
#[derive(Debug, Clone, Args)]
pub struct DumpArgs {
    /// What to print.
    #[command(flatten)]
    pub select: DumpSelect,
    /// Also print the partition's claims and void records (as `"verdict":"claim"` and
    /// `"verdict":"void"` lines). Void records are not decoded, so they are the partition's,
    /// not only the selected resource's.
    #[arg(long)]
    pub include_void: bool,
}

/// What `dump` prints: exactly one of the two ids.
#[derive(Debug, Clone, Args)]
#[group(required = true, multiple = false)]
pub struct DumpSelect {
    /// Every event (and refused command) of this resource.
    #[arg(long)]
    pub resource: Option<String>,
    /// Every event of this reservation.
    #[arg(long)]
    pub reservation: Option<String>,
}

/// `tail` settings.
#[derive(Debug, Clone, Args)]
pub struct TailArgs {
    /// Start from the beginning of the log instead of its end. From the end, the reader rule's
    /// state is unknown until a partition's next claim: records before it are printed as
    /// `unjudged`. From the beginning, every record is judged.
    #[arg(long)]
    pub from_beginning: bool,
    /// Also print claims and void records (void ones are not decoded).
    #[arg(long)]
    pub include_void: bool,
    /// Another topic to follow, named without the topic prefix (e.g. `reservations.events.dlq`
    /// to watch dead letters); the events topic by default.
    #[arg(long)]
    pub topic: Option<String>,
}

fn parse_rfc3339(raw: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339)
        .map_err(|e| format!("expected an RFC 3339 timestamp like 2031-03-01T00:00:00Z: {e}"))
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::{ReplayCommand, ReplayConfig};

    #[test]
    fn flags_and_variables_are_consistent() {
        ReplayConfig::command().debug_assert();
    }

    #[test]
    fn subcommands_parse_with_json_anywhere() {
        let config = ReplayConfig::parse_from(["holdfast-replay", "dump", "--resource", "room-1", "--json"]);
        assert!(config.json);
        assert!(
            matches!(config.command, ReplayCommand::Dump(ref d) if d.select.resource.as_deref() == Some("room-1") && !d.include_void)
        );
        let config =
            ReplayConfig::parse_from(["holdfast-replay", "rebuild", "--since", "2031-03-01T00:00:00Z"]);
        assert!(matches!(config.command, ReplayCommand::Rebuild(ref r) if r.since.is_some()));
        assert!(ReplayConfig::try_parse_from(["holdfast-replay", "dump"]).is_err());
        assert!(ReplayConfig::try_parse_from(["holdfast-replay", "dump", "--include-void"]).is_err());
        assert!(
            ReplayConfig::try_parse_from([
                "holdfast-replay",
                "dump",
                "--resource",
                "a",
                "--reservation",
                "b"
            ])
            .is_err()
        );
        let config =
            ReplayConfig::parse_from(["holdfast-replay", "dump", "--reservation", "r-1", "--include-void"]);
        assert!(matches!(config.command, ReplayCommand::Dump(ref d) if d.include_void));
    }
}
