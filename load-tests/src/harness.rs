//! A whole measured run: optionally start Holdfast's services for it (`--spawn`) and measure
//! the raw baselines (`--baseline`), drive the load while faults are injected and the
//! projection's lag is sampled, then audit the log and the read models, and write the report
//! with its plots.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use holdfast_platform::config::parse_duration;
use holdfast_platform::postgres;
use holdfast_platform::{KafkaArgs, PostgresArgs, RedisArgs, RegistryArgs, TopicArgs};
use secrecy::ExposeSecret as _;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::LoadError;
use crate::audit::{self, AuditSettings};
use crate::baseline::{self, BaselineSettings};
use crate::cli::RunArgs;
use crate::driver::{self, Endpoints};
use crate::fault::{self, FaultSpec, Injected};
use crate::monitor::{self, LagSamples};
use crate::output;
use crate::report::{Baselines, RunReport};
use crate::stack::{self, Role, SpawnSettings, Spawned};

/// Flags of the harness around the load (flattened into `run`'s).
#[derive(Debug, Clone, Args)]
pub struct HarnessArgs {
    /// Skip the correctness audit at the end (for targets whose log and read model this
    /// machine cannot read).
    #[arg(long)]
    pub no_audit: bool,
    /// How long the audit waits for the projection to apply every committed event.
    #[arg(long, env = "HOLDFAST_LOAD_AUDIT_WAIT", default_value = "180s", value_parser = parse_duration)]
    pub audit_wait: Duration,
    /// Start Holdfast's services from the release binaries in this folder, on topics, a
    /// database and a Redis prefix of the run's own (the flags below name the stack).
    #[arg(long, env = "HOLDFAST_LOAD_SPAWN")]
    pub spawn: Option<PathBuf>,
    /// Command-service instances to start with `--spawn` (requests go round-robin).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=16))]
    pub command_instances: u16,
    /// Partition processors per command-service instance with `--spawn`.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub processors: u16,
    /// A fault under load, `KIND@AT[/EVERY]` (time since the schedule began, warm-up
    /// included); kinds: kill-command, stop-command, kill-projection, restart-kafka,
    /// restart-postgres, flush-redis. Needs `--spawn`. Repeatable.
    #[arg(long = "fault", value_parser = FaultSpec::parse)]
    pub faults: Vec<FaultSpec>,
    /// How long `stop-command` keeps an instance stopped (longer than the session timeout of
    /// 6 s makes it a zombie whose partitions move on).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub pause: Duration,
    /// The local stack script (`restart kafka|postgres`).
    #[arg(long, env = "HOLDFAST_LOAD_STACK_CONTROL", default_value = "infra/local/stack")]
    pub stack_control: PathBuf,
    /// Measure the raw baselines (transactional produce, batched upsert) before the load.
    #[arg(long)]
    pub baseline: bool,
    /// How long each baseline runs.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub baseline_seconds: Duration,
    /// The projection worker's `/metrics` URL, to sample its lag (set by `--spawn`).
    #[arg(long)]
    pub projection_metrics: Option<String>,
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

/// Runs `args` from start to report; see the module's documentation.
///
/// # Errors
/// When the services cannot be started, the load cannot run or its results cannot be
/// written. A failed audit is not an error: it is in the report.
pub async fn run(args: &RunArgs, stop: impl Future<Output = ()>) -> Result<RunReport, LoadError> {
    let h = &args.harness;
    let run_id = format!("{:08x}", rand::random::<u32>());
    let out_dir = output::results_dir(args.out.as_deref(), &run_id);
    std::fs::create_dir_all(&out_dir).map_err(|source| LoadError::Write { path: out_dir.clone(), source })?;
    if !h.faults.is_empty() && h.spawn.is_none() {
        return Err(LoadError::Settings(
            "--fault needs --spawn: faults act on processes the run started".into(),
        ));
    }

    let mut topics = h.topics.clone();
    let mut postgres = h.postgres.clone();
    let mut redis = h.redis.clone();
    let database = format!("holdfast_lt_{run_id}");
    let mut spawned = None;
    if let Some(bin_dir) = &h.spawn {
        topics.topic_prefix = format!("{}lt.{run_id}.", topics.topic_prefix);
        redis.key_prefix = format!("{}lt-{run_id}:", redis.key_prefix);
        let server =
            postgres.urls.first().cloned().ok_or_else(|| LoadError::Settings("no --postgres-url".into()))?;
        let url = postgres::create_database(&server, &database)
            .await
            .map_err(|e| LoadError::Stack(stack::StackError::Database(e)))?;
        postgres.urls = vec![url.clone()];
        let settings = SpawnSettings {
            bin_dir: bin_dir.clone(),
            command_instances: h.command_instances,
            processors: h.processors,
            topic_prefix: topics.topic_prefix.clone(),
            partitions: topics.partitions,
            database_url: url,
            redis_prefix: redis.key_prefix.clone(),
            logs: stack::logs_dir(&out_dir),
            stack_control: h.stack_control.clone(),
            redis_url: redis.urls.first().map(|u| u.expose_secret().to_owned()).unwrap_or_default(),
            pause: h.pause,
        };
        if !args.quiet {
            eprintln!("starting the services (topics {}*, database {database})", topics.topic_prefix);
        }
        match Spawned::start(settings).await {
            Ok(started) => spawned = Some(started),
            Err(error) => {
                tear_down(None, h, &topics, &database).await;
                return Err(LoadError::Stack(error));
            }
        }
    }

    let baselines =
        if h.baseline { Some(measure_baselines(h, &topics, &postgres, args.quiet).await) } else { None };

    let endpoints = match &spawned {
        Some(spawned) => Endpoints { commands: spawned.command_urls(), query: spawned.url(Role::Query) },
        None => Endpoints::of(args),
    };
    let metrics = match &spawned {
        Some(spawned) => Some(format!("{}/metrics", spawned.url(Role::Projection))),
        None => h.projection_metrics.clone(),
    };
    let end = args.phases().iter().map(|p| p.duration).sum::<Duration>();
    let firings = fault::schedule(&h.faults, end);
    let quiet = args.quiet;
    let beside = |start: Instant, done: watch::Receiver<bool>| {
        let spawned = spawned.as_mut();
        async move {
            let lag = async {
                match metrics {
                    Some(url) => monitor::sample_lag(url, start, done).await,
                    None => LagSamples::new(),
                }
            };
            let faults = async {
                let mut injected = Vec::new();
                if let Some(spawned) = spawned {
                    for (at, kind) in firings {
                        tokio::time::sleep_until(start + at).await;
                        if !quiet {
                            eprintln!("fault: {kind} at {:.0}s", at.as_secs_f64());
                        }
                        injected.push(spawned.inject(kind, at.as_secs_f64()).await);
                    }
                }
                injected
            };
            tokio::join!(lag, faults)
        }
    };
    let result = driver::run(args, &endpoints, &run_id, &out_dir, stop, beside).await;
    let (load, (lag, injected)): (_, (LagSamples, Vec<Injected>)) = match result {
        Ok(done) => done,
        Err(error) => {
            if h.spawn.is_some() {
                tear_down(spawned, h, &topics, &database).await;
            }
            return Err(error);
        }
    };

    let (audit, audit_error) = if h.no_audit {
        (None, None)
    } else {
        if !quiet {
            eprintln!("auditing {} accepted holds against the log and the read model", load.accepted.len());
        }
        let settings = AuditSettings {
            kafka: h.kafka.clone(),
            topics: topics.clone(),
            registry: h.registry.clone(),
            read_model: Some((postgres.clone(), redis.clone())),
            catch_up: h.audit_wait,
            deadline: Duration::from_secs(600),
        };
        match audit::run(&settings, &load.accepted).await {
            Ok(mut report) => {
                if load.pending.undecided > 0 {
                    report.add(audit::Violation::Undecided { holds: load.pending.undecided });
                }
                (Some(report), None)
            }
            Err(error) => (None, Some(crate::describe(&error))),
        }
    };
    if h.spawn.is_some() {
        tear_down(spawned, h, &topics, &database).await;
    }

    let mut timeline = load.timeline;
    timeline.add_lag(&lag);
    timeline.faults = fault::settle(&injected, &timeline.seconds);
    let mut report = RunReport::new(load.summary, load.pending, timeline, audit, audit_error, baselines);
    report.write(&out_dir)?;
    Ok(report)
}

/// After a `--spawn` run, whichever way it ended: stops the services and, unless `--keep`,
/// drops the run's database and deletes its topics (failures are reported, not fatal).
async fn tear_down(spawned: Option<Spawned>, h: &HarnessArgs, topics: &TopicArgs, database: &str) {
    if let Some(spawned) = spawned {
        spawned.stop().await;
    }
    if h.keep {
        return;
    }
    if let Some(server) = h.postgres.urls.first()
        && let Err(error) = postgres::drop_database(server, database).await
    {
        eprintln!("warning: database {database} not dropped: {}", crate::describe(&error));
    }
    if let Err(error) = stack::delete_topics(&h.kafka, topics).await {
        eprintln!("warning: topics {}* not deleted: {}", topics.topic_prefix, crate::describe(&error));
    }
}

/// The baselines; one that fails is reported as such, not fatal.
async fn measure_baselines(
    h: &HarnessArgs,
    topics: &TopicArgs,
    postgres: &PostgresArgs,
    quiet: bool,
) -> Baselines {
    let mut settings = BaselineSettings::like(topics);
    settings.seconds = h.baseline_seconds;
    if !quiet {
        eprintln!("baselines: raw transactional produce and batched upsert, {:?} each", settings.seconds);
    }
    let layout = holdfast_platform::topics::TopicLayout::from_args(topics);
    let produce = async {
        let bytes = baseline::typical_event_bytes(&h.registry, &layout.events).await?;
        baseline::produce(&h.kafka, topics, bytes, &settings).await
    }
    .await;
    let upsert = match postgres.urls.first() {
        Some(url) => baseline::upsert(url, &settings).await,
        None => Err(baseline::BaselineError::Settings("no PostgreSQL URL".into())),
    };
    Baselines::new(produce, upsert)
}
