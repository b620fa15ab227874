//! The services a measured run (or an idle measurement) acts on: started by the run itself
//! (`--spawn`) on topics, a database and a Redis key prefix of its own, or running ones named
//! by flags. This module owns those flags and the run's own data: it creates the database,
//! and removes it and the topics again whichever way the run ended.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use holdfast_platform::postgres;
use holdfast_platform::topics::TopicLayout;
use holdfast_platform::{KafkaArgs, PostgresArgs, RedisArgs, RegistryArgs, TopicArgs};
use secrecy::ExposeSecret as _;

use crate::LoadError;
use crate::stack::{self, SpawnSettings, Spawned};

/// Which services, and how to start them (flattened into `run`'s and `idle`'s flags).
#[derive(Debug, Clone, Args)]
pub struct ServiceArgs {
    /// Start Holdfast's services from the release binaries in this folder, on topics, a
    /// database and a Redis prefix of the run's own (the flags below name the stack).
    #[arg(long, env = "HOLDFAST_LOAD_SPAWN")]
    pub spawn: Option<PathBuf>,
    /// Command-service instances to start with `--spawn` (requests go round-robin).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=16))]
    pub command_instances: u16,
    /// Idempotent producers each command-service instance appends its decisions through
    /// (`HOLDFAST_APPEND_PRODUCERS`) with `--spawn`; without it, what the target uses. The
    /// produce baseline with as many producers is the one decisions are compared with.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub append_producers: u16,
    /// The local stack script (`restart kafka|postgres`).
    #[arg(long, env = "HOLDFAST_LOAD_STACK_CONTROL", default_value = "infra/local/stack")]
    pub stack_control: PathBuf,
    /// Keep the run's topics and database after a `--spawn` run (deleted by default).
    #[arg(long)]
    pub keep: bool,
    /// Kafka connection (the audit reads the log).
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Topic names and layout of the target.
    #[command(flatten)]
    pub topics: TopicArgs,
    /// Schema registry.
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Read-model shards of the target (with `--spawn`: the server the run's database is
    /// created on).
    #[command(flatten)]
    pub postgres: PostgresArgs,
    /// Availability cache of the target.
    #[command(flatten)]
    pub redis: RedisArgs,
}

/// The services of one run and where their data is.
#[derive(Debug)]
pub struct Services {
    /// The processes the run started (`--spawn`), if it did.
    pub spawned: Option<Spawned>,
    /// The topics they use.
    pub topics: TopicArgs,
    /// Their read model.
    pub postgres: PostgresArgs,
    /// Their cache.
    pub redis: RedisArgs,
    /// The run's own database (created with `--spawn`).
    database: Option<String>,
}

impl Services {
    /// With `--spawn`: creates the run's database, starts the services on the run's topics,
    /// database and key prefix and waits until they are ready (a `stop-command` fault pauses
    /// one for `pause`). Without: the flags' services, as they are.
    ///
    /// # Errors
    /// When the database cannot be created or a service does not start; what was made is
    /// removed again first.
    pub async fn start(
        args: &ServiceArgs,
        run_id: &str,
        out_dir: &Path,
        pause: Duration,
        quiet: bool,
    ) -> Result<Self, LoadError> {
        let mut services = Self {
            spawned: None,
            topics: args.topics.clone(),
            postgres: args.postgres.clone(),
            redis: args.redis.clone(),
            database: None,
        };
        let Some(bin_dir) = &args.spawn else { return Ok(services) };
        services.topics.topic_prefix = format!("{}lt.{run_id}.", args.topics.topic_prefix);
        services.redis.key_prefix = format!("{}lt-{run_id}:", args.redis.key_prefix);
        let database = format!("holdfast_lt_{run_id}");
        let server = args
            .postgres
            .urls
            .first()
            .cloned()
            .ok_or_else(|| LoadError::Settings("no --postgres-url".into()))?;
        let url = postgres::create_database(&server, &database)
            .await
            .map_err(|e| LoadError::Stack(stack::StackError::Database(e)))?;
        services.database = Some(database.clone());
        services.postgres.urls = vec![url.clone()];
        let settings = SpawnSettings {
            bin_dir: bin_dir.clone(),
            command_instances: args.command_instances,
            append_producers: args.append_producers,
            topic_prefix: services.topics.topic_prefix.clone(),
            partitions: services.topics.partitions,
            database_url: url,
            redis_prefix: services.redis.key_prefix.clone(),
            logs: stack::logs_dir(out_dir),
            stack_control: args.stack_control.clone(),
            redis_url: args.redis.urls.first().map(|u| u.expose_secret().to_owned()).unwrap_or_default(),
            pause,
        };
        if !quiet {
            eprintln!(
                "starting the services (topics {}*, database {database})",
                services.topics.topic_prefix
            );
        }
        match Spawned::start(settings).await {
            Ok(started) => {
                services.spawned = Some(started);
                Ok(services)
            }
            Err(error) => {
                services.tear_down(args).await;
                Err(LoadError::Stack(error))
            }
        }
    }

    /// After a `--spawn` run, whichever way it ended: stops the services and, unless `--keep`,
    /// drops the run's database and deletes its topics (failures are reported, not fatal).
    /// Services the run did not start are left alone.
    pub async fn tear_down(self, args: &ServiceArgs) {
        if let Some(spawned) = self.spawned {
            spawned.stop().await;
        }
        let Some(database) = self.database else { return };
        if args.keep {
            return;
        }
        if let Some(server) = args.postgres.urls.first()
            && let Err(error) = postgres::drop_database(server, &database).await
        {
            eprintln!("warning: database {database} not dropped: {}", crate::describe(&error));
        }
        if let Err(error) = TopicLayout::from_args(&self.topics).delete(&args.kafka).await {
            eprintln!(
                "warning: topics {}* not deleted: {}",
                self.topics.topic_prefix,
                crate::describe(&error)
            );
        }
    }
}
