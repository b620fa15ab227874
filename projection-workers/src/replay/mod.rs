//! The replay CLI (`holdfast-replay`): rebuild the read model from the log into a new
//! generation and switch to it without downtime, verify the live read model against the log,
//! dump one resource's or reservation's history, tail the log.
//!
//! [`run`] is the whole tool; the binary only parses [`ReplayConfig`], initialises logging and
//! calls it, so tests call it in-process too. Each subcommand has its own module; they share
//! the log reader ([`log`]), the output ([`output`]) and the pure fold of [`crate::model`], so
//! a rebuild or a verification computes exactly the rows the live workers compute. Every
//! subcommand reads the log by the reader rule (`holdfast_tenure`): only valid events count;
//! claims, refused commands and void records are counted and reported, never folded. This module
//! must not hold any SQL or Redis layout of its own beyond the shadow generation's (in
//! [`rebuild`]): the store and cache modules own those.

pub mod config;
pub mod dump;
pub mod lines;
pub mod log;
pub mod output;
pub mod rebuild;
pub mod tail;
pub mod verify;

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use holdfast_platform::Shutdown;
use holdfast_platform::codec::{CodecError, EventCodec};
use holdfast_platform::postgres;
use holdfast_platform::redis::Redis;
use holdfast_platform::topics::TopicLayout;
use rdkafka::error::KafkaError;
use redis::RedisError;

pub use config::{ReplayCommand, ReplayConfig};
use log::Log;
pub use output::Output;

use crate::cache::{Cache, CacheError};
use crate::store::{Shards, StoreError};

/// Why a replay command failed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// Kafka failed or the log could not be read in time; check the brokers and retry.
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    /// PostgreSQL failed; a rebuild resumes from its last checkpoint when run again.
    #[error("postgres: {0}")]
    Postgres(#[from] sqlx::Error),
    /// The read model could not be read or written.
    #[error("read model: {0}")]
    Store(#[from] StoreError),
    /// Redis failed; run again once it answers.
    #[error("redis: {0}")]
    Redis(#[from] RedisError),
    /// Redis failed or timed out.
    #[error("redis: {0}")]
    Cache(#[from] CacheError),
    /// The schema registry could not be reached for a writer schema: nothing can be trusted
    /// to be complete; run again once it answers.
    #[error("decoding: {0}")]
    Codec(#[from] CodecError),
    /// The migrations could not be applied.
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The output could not be written.
    #[error("output: {0}")]
    Output(#[from] std::io::Error),
    /// The command cannot go on as asked (invalid id, another rebuild running, the live
    /// generation changed under a rebuild); the message says what to do.
    #[error("{0}")]
    Refused(String),
}

/// How a command ended (when it did not fail).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It did what it was asked.
    Done,
    /// `verify` found this many differences.
    Differences(u64),
    /// It stopped early (Ctrl-C, or a drill); a rebuild continues where it stopped when run
    /// again.
    Interrupted,
}

impl Outcome {
    /// The process exit code: 0 done, 1 differences, 3 interrupted (2 is an error).
    #[must_use]
    pub fn exit_code(self) -> ExitCode {
        match self {
            Self::Done => ExitCode::SUCCESS,
            Self::Differences(_) => ExitCode::from(1),
            Self::Interrupted => ExitCode::from(3),
        }
    }
}

/// What every command works with.
#[derive(Debug)]
pub struct Context {
    /// The settings.
    pub config: ReplayConfig,
    /// The events topic.
    pub log: Log,
    /// The read-model shards.
    pub shards: Shards,
    /// The Redis copy (generation 0's prefix; [`Cache::at`] for others).
    pub cache: Cache,
}

impl Context {
    /// Clients for `config`; nothing is connected yet.
    ///
    /// # Errors
    /// When a client cannot be configured.
    pub fn new(config: ReplayConfig) -> Result<Self, ReplayError> {
        let layout = TopicLayout::from_args(&config.topics);
        let codec = Arc::new(EventCodec::new(&config.registry, &layout.events)?);
        let log = Log {
            kafka: config.kafka.clone(),
            topic: layout.events.clone(),
            partitions: layout.partitions,
            codec,
            deadline: config.deadline,
        };
        let shards = Shards::new(postgres::shard_pools(&config.postgres)?);
        let cache = Cache::new(Redis::new(&config.redis)?, config.redis_timeout);
        Ok(Self { config, log, shards, cache })
    }

    /// The configured Redis key prefix (generation 0's).
    #[must_use]
    pub fn base_prefix(&self) -> &str {
        &self.config.redis.key_prefix
    }
}

/// Runs the command of `config`, writing results to `out`; stops early when `shutdown` is
/// cancelled.
///
/// # Errors
/// When the command fails (see [`ReplayError`]).
pub async fn run(
    config: ReplayConfig,
    out: &mut (dyn Write + Send + Sync),
    shutdown: Shutdown,
) -> Result<Outcome, ReplayError> {
    let mut output = Output::new(out, config.json);
    let command = config.command.clone();
    let context = Context::new(config)?;
    match command {
        ReplayCommand::Rebuild(args) => rebuild::run(&context, &args, &mut output, &shutdown).await,
        ReplayCommand::Verify(args) => verify::run(&context, &args, &mut output).await,
        ReplayCommand::Dump(args) => dump::run(&context, &args, &mut output).await,
        ReplayCommand::Tail(args) => tail::run(&context, &args, &mut output, &shutdown).await,
    }
}

/// Void records by reason as text: `3 void (other-writer 2, unmarked 1)`, or `0 void`.
#[must_use]
pub fn void_summary(void: &std::collections::BTreeMap<&'static str, u64>) -> String {
    let total: u64 = void.values().sum();
    if total == 0 {
        return "0 void".to_owned();
    }
    let reasons: Vec<String> = void.iter().map(|(reason, n)| format!("{reason} {n}")).collect();
    format!("{total} void ({})", reasons.join(", "))
}

/// Applies the read model's migrations to every shard (a rebuild may be the first to run on
/// a fresh database).
///
/// # Errors
/// When a shard cannot be migrated.
pub async fn migrate(shards: &Shards) -> Result<(), ReplayError> {
    for pool in shards.pools() {
        crate::MIGRATOR.run(pool).await?;
    }
    Ok(())
}
