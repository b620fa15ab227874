//! A whole measured run: optionally start Holdfast's services for it (`--spawn`) and measure
//! the raw baselines (`--baseline`), drive the load while faults are injected and the
//! projection's lag is sampled, then audit the log and the read models, and write the report
//! with its plots.

use std::future::Future;
use std::time::Duration;

use clap::Args;
use holdfast_platform::config::parse_duration;
use holdfast_platform::{PostgresArgs, TopicArgs};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::LoadError;
use crate::audit::{self, AuditSettings};
use crate::baseline::{self, BaselineSettings};
use crate::cli::RunArgs;
use crate::driver::{self, Endpoints, Settled};
use crate::fault::{self, FaultSpec, Injected};
use crate::handover;
use crate::monitor::{self, LagSamples};
use crate::output;
use crate::report::{AuditOutcome, Baselines, RunReport};
use crate::services::{ServiceArgs, Services};
use crate::stack::Role;
use crate::takeover::Takeovers;

/// Flags of the harness around the load (flattened into `run`'s).
#[derive(Debug, Clone, Args)]
pub struct HarnessArgs {
    /// Skip the correctness audit at the end (for targets whose log and read model this
    /// machine cannot read).
    #[arg(long)]
    pub no_audit: bool,
    /// How long the audit waits for the projection to apply every event, and how long holds
    /// answered 202 or 503 are asked again after the load.
    #[arg(long, env = "HOLDFAST_LOAD_AUDIT_WAIT", default_value = "180s", value_parser = parse_duration)]
    pub audit_wait: Duration,
    /// A fault under load, `KIND@AT[/EVERY[*TIMES]]` (time since the schedule began, warm-up
    /// included; repeated every EVERY until the end or TIMES times); kinds: kill-command,
    /// stop-command, restart-command, kill-projection, restart-kafka, restart-postgres,
    /// flush-redis. Needs `--spawn`. Repeatable.
    #[arg(long = "fault", value_parser = FaultSpec::parse)]
    pub faults: Vec<FaultSpec>,
    /// How long `stop-command` keeps an instance stopped (longer than the session timeout of
    /// 6 s makes it a zombie whose partitions move on).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub pause: Duration,
    /// Measure the raw baselines before the load: single idempotent appends (latency), raw
    /// idempotent produce (records/s, per producer count) and batched upserts.
    #[arg(long)]
    pub baseline: bool,
    /// How long each throughput baseline runs (each producer count, the upserts).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub baseline_seconds: Duration,
    /// How long the Kafka baselines' fresh topic is written to, unmeasured, before they start.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub baseline_warmup: Duration,
    /// Sequential single appends the latency baseline measures.
    #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub baseline_appends: u32,
    /// Producer counts the produce baseline runs with, comma-separated.
    #[arg(long, default_value = "1,2", value_parser = parse_counts)]
    pub baseline_producers: Counts,
    /// The projection worker's `/metrics` URL, to sample its lag (set by `--spawn`).
    #[arg(long)]
    pub projection_metrics: Option<String>,
    /// The services: started by the run (`--spawn`) or named.
    #[command(flatten)]
    pub services: ServiceArgs,
}

/// A list of positive counts (`1,2`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counts(pub Vec<usize>);

/// Parses `N[,N...]`, each 1..=64.
///
/// # Errors
/// A message naming the bad value.
pub fn parse_counts(raw: &str) -> Result<Counts, String> {
    let counts = raw
        .split(',')
        .map(|part| match part.trim().parse::<usize>() {
            Ok(n) if (1..=64).contains(&n) => Ok(n),
            _ => Err(format!("expected counts of 1 to 64, comma-separated, got {raw:?}")),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Counts(counts))
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
    if !h.faults.is_empty() && h.services.spawn.is_none() {
        return Err(LoadError::Settings(
            "--fault needs --spawn: faults act on processes the run started".into(),
        ));
    }
    let mut services = Services::start(&h.services, &run_id, &out_dir, h.pause, args.quiet).await?;
    let baselines = if h.baseline {
        let baselines = measure_baselines(h, &services.topics, &services.postgres, args.quiet).await;
        settle(args.quiet).await;
        Some(baselines)
    } else {
        None
    };

    let endpoints = match &services.spawned {
        Some(spawned) => Endpoints {
            commands: spawned.command_urls(),
            query: spawned.url(Role::Query),
            token: spawned.token().map_err(LoadError::Settings)?,
        },
        None => Endpoints::of(args)?,
    };
    let metrics = match &services.spawned {
        Some(spawned) => Some(format!("{}/metrics", spawned.url(Role::Projection))),
        None => h.projection_metrics.clone(),
    };
    let end = args.phases().iter().map(|p| p.duration).sum::<Duration>();
    let firings = fault::schedule(&h.faults, end);
    let quiet = args.quiet;
    let beside = |start: Instant, done: watch::Receiver<bool>| {
        let spawned = services.spawned.as_mut();
        async move {
            let mut load_done = done.clone();
            let lag = async {
                match metrics {
                    Some(url) => monitor::sample_lag(url, start, done).await,
                    None => LagSamples::new(),
                }
            };
            let faults = async {
                let mut injected = Vec::new();
                let mut takeovers_after = None;
                if let Some(spawned) = spawned {
                    for (at, kind) in firings {
                        tokio::time::sleep_until(start + at).await;
                        if !quiet {
                            eprintln!("fault: {kind} at {:.0}s", at.as_secs_f64());
                        }
                        injected.push(spawned.inject(kind, at.as_secs_f64()).await);
                    }
                    if !injected.is_empty() {
                        let _ = load_done.wait_for(|done| *done).await;
                        takeovers_after = Some(spawned.takeovers().await);
                    }
                }
                (injected, takeovers_after)
            };
            tokio::join!(lag, faults)
        }
    };
    let result = driver::run(args, &endpoints, &run_id, &out_dir, stop, beside).await;
    let (load, (lag, (injected, takeovers_after))): (_, (LagSamples, Injections)) = match result {
        Ok(done) => done,
        Err(error) => {
            services.tear_down(&h.services).await;
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
            kafka: h.services.kafka.clone(),
            topics: services.topics.clone(),
            registry: h.services.registry.clone(),
            read_model: Some((services.postgres.clone(), services.redis.clone())),
            catch_up: h.audit_wait,
            load_ended: Some(load.load_ended),
            deadline: Duration::from_secs(600),
        };
        match audit::run(&settings, &load.accepted).await {
            Ok(mut report) => {
                let Settled { pending, unavailable } = load.settled;
                if pending.undecided > 0 {
                    report.add(audit::Violation::Undecided { holds: pending.undecided });
                }
                if unavailable.undecided > 0 {
                    report.add(audit::Violation::Unresolved { holds: unavailable.undecided });
                }
                (Some(report), None)
            }
            Err(error) => (None, Some(crate::describe(&error))),
        }
    };
    services.tear_down(&h.services).await;

    let mut timeline = load.timeline;
    timeline.add_lag(&lag);
    timeline.faults = fault::settle(&injected, &timeline.seconds);
    let audited = AuditOutcome { audit, error: audit_error };
    let append_producers = usize::from(h.services.append_producers);
    let handover = handover::measure(&injected, &load.answers, takeovers_after.as_ref());
    let mut report =
        RunReport::new(load.summary, load.settled, timeline, audited, baselines, append_producers);
    report.handover = handover;
    report.write(&out_dir)?;
    Ok(report)
}

/// The faults injected, and the instances' takeover counts after the load.
type Injections = (Vec<Injected>, Option<Takeovers>);

/// How long the harness waits for the broker to remove a deleted topic's files: three times
/// the local stack's `file.delete.delay.ms` (1 s; Kafka's default is a minute). The removal
/// cannot be observed through Kafka's API, so this is a bound, not a condition.
const BROKER_DELETE_WAIT: Duration = Duration::from_secs(3);

/// Lets the machine absorb the baselines before the load starts. The raw produce baseline
/// writes about a gigabyte that the kernel then writes back, and the broker removes its
/// topic's files a delete delay after it was deleted. Measured on top of that, a reference
/// run's hold p99 rose from ~15 ms to over 200 ms, with a 700 ms stall when the files went.
/// So: wait out the delete delay, then flush every dirty page (`sync`) before the warm-up.
/// A failed `sync` is reported and the run goes on: it only makes the run noisier.
async fn settle(quiet: bool) {
    tokio::time::sleep(BROKER_DELETE_WAIT).await;
    let started = Instant::now();
    match tokio::process::Command::new("sync").status().await {
        Ok(status) if status.success() => {
            if !quiet {
                eprintln!("baselines written back to disk in {:.1} s", started.elapsed().as_secs_f64());
            }
        }
        Ok(status) => eprintln!("sync after the baselines failed ({status}); going on"),
        Err(error) => eprintln!("cannot run sync after the baselines ({error}); going on"),
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
    settings.warmup = h.baseline_warmup;
    settings.appends = h.baseline_appends as usize;
    settings.producers.clone_from(&h.baseline_producers.0);
    if !quiet {
        eprintln!(
            "baselines: {} single appends, raw produce with {:?} producers and batched upserts, {:?} each",
            settings.appends, settings.producers, settings.seconds
        );
    }
    let layout = holdfast_platform::topics::TopicLayout::from_args(topics);
    let kafka = async {
        let bytes = baseline::typical_event_bytes(&h.services.registry, &layout.events).await?;
        baseline::kafka(&h.services.kafka, topics, bytes, &settings).await
    }
    .await;
    let upsert = match postgres.urls.first() {
        Some(url) => baseline::upsert(url, &settings).await,
        None => Err(baseline::BaselineError::Settings("no PostgreSQL URL".into())),
    };
    Baselines::new(kafka, upsert)
}
