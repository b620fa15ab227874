//! The correctness audit at the end of a run, judged from the event log and the read models,
//! never from the services' word:
//!
//! 1. wait (bounded) until the projection has applied every event in the log, and time it
//!    from the end of the load;
//! 2. read the whole events topic back by the reader rule
//!    ([`holdfast_platform::audit::audit_log`]) and fold its **valid** records only: no slot
//!    may ever be over capacity, every valid record must decode, no reservation may be held
//!    twice. Claims, void records (by reason) and recorded rejections are counted and
//!    reported; void records are no violation (a fenced writer, a zombie, makes them) but
//!    they count for nothing either;
//! 3. every hold the run was answered 2xx for must be valid in the log exactly once, as
//!    answered, with a status the run's answers allow, and in PostgreSQL with the log's
//!    status — a hold that exists only in void records is lost;
//! 4. the whole read model (PostgreSQL rows, Redis fields) must equal the log's
//!    recomputation (`holdfast-replay verify`).
//!
//! Any violation fails the audit; [`judge`] holds the rules, [`scenario`] hand-written logs to
//! test them.

pub mod judge;
pub mod scenario;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use holdfast_platform::codec::EventCodec;
use holdfast_platform::config::{LogFormat, TelemetryArgs};
use holdfast_platform::topics::TopicLayout;
use holdfast_platform::{KafkaArgs, PostgresArgs, RedisArgs, RegistryArgs, TopicArgs};
use holdfast_projection_workers::replay::config::VerifyArgs;
use holdfast_projection_workers::replay::{Context, Output, ReplayCommand, ReplayConfig, ReplayError};
use holdfast_projection_workers::store::offsets;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub use self::judge::{AcceptedRecord, Violation};

/// Violations listed in the report (all are counted).
pub const MAX_EXAMPLES: usize = 50;

/// Where the log and the read models are.
#[derive(Debug, Clone)]
pub struct AuditSettings {
    /// Kafka connection.
    pub kafka: KafkaArgs,
    /// Topic names and layout.
    pub topics: TopicArgs,
    /// Schema registry.
    pub registry: RegistryArgs,
    /// Read-model shards and cache; the log alone is audited when `None`.
    pub read_model: Option<(PostgresArgs, RedisArgs)>,
    /// How long to wait for the projection to apply every committed event.
    pub catch_up: Duration,
    /// When the load ended: the projection's catch-up is timed from there (from the audit's
    /// start when `None`).
    pub load_ended: Option<Instant>,
    /// How long one read of the whole log may take.
    pub deadline: Duration,
}

/// What the audit found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditReport {
    /// No violation.
    pub passed: bool,
    /// Valid events read from the log (the only records folded).
    pub events: u64,
    /// Claims read: tenures started (one per partition and owner change at least).
    #[serde(default)]
    pub claims: u64,
    /// Valid `CommandRejected` records: refused commands the owners recorded.
    #[serde(default)]
    pub rejected: u64,
    /// Void records skipped, by reason (`other-writer`, `out-of-sequence`, `no-tenure`,
    /// `unmarked`): appended by fenced writers or after a failed append. No violation.
    #[serde(default)]
    pub void: BTreeMap<String, u64>,
    /// All void records.
    #[serde(default)]
    pub void_total: u64,
    /// Reservations the log holds.
    pub reservations_in_log: u64,
    /// Holds answered 2xx that were checked.
    pub accepted_checked: u64,
    /// Whether the read model was audited (else the log only).
    pub read_model_audited: bool,
    /// Seconds from the end of the load until the projection had applied every event of the
    /// log; `None` when it had not within the wait. Holds answered 202 or 503 are asked again
    /// before the audit starts checking: when the projection had caught up by then, this is
    /// an upper bound.
    pub projection_caught_up_s: Option<f64>,
    /// PostgreSQL rows compared with the log.
    pub rows_compared: u64,
    /// Resources whose Redis copy was compared.
    pub cached_resources_compared: u64,
    /// Violations by kind.
    pub violations: BTreeMap<String, u64>,
    /// The first violations found.
    pub examples: Vec<Violation>,
    /// How long the audit took (s).
    pub took_s: f64,
}

impl AuditReport {
    /// All violations counted.
    #[must_use]
    pub fn violation_count(&self) -> u64 {
        self.violations.values().sum()
    }

    /// Adds a violation found outside the audit (the run's own, like undecided holds).
    pub fn add(&mut self, violation: Violation) {
        *self.violations.entry(violation.kind().to_owned()).or_default() += 1;
        if self.examples.len() < MAX_EXAMPLES {
            self.examples.push(violation);
        }
        self.passed = false;
    }
}

/// Why the audit could not be carried out (not a violation: the audit did not finish).
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// Kafka, the registry, PostgreSQL or Redis failed: check that they are reachable and that
    /// the settings name the run's topics, database and key prefix.
    #[error("cannot read the log or the read model")]
    Read(#[from] ReplayError),
    /// The log could not be read to its end in time: raise the deadline or check the broker.
    #[error("cannot read the log")]
    Log(#[from] rdkafka::error::KafkaError),
    /// The schema registry client could not be configured.
    #[error("cannot configure the schema registry client")]
    Codec(#[from] holdfast_platform::codec::CodecError),
    /// PostgreSQL failed while reading reservations: check the database.
    #[error("cannot read reservations from PostgreSQL")]
    Postgres(#[from] sqlx::Error),
}

/// Audits the log (and the read model, when configured) against the holds a run was
/// answered 2xx for.
///
/// # Errors
/// When the log or the read model cannot be read (see [`AuditError`]).
pub async fn run(settings: &AuditSettings, accepted: &[AcceptedRecord]) -> Result<AuditReport, AuditError> {
    let started = Instant::now();
    let layout = TopicLayout::from_args(&settings.topics);
    let mut violations = Vec::new();
    let mut report = AuditReport {
        passed: false,
        events: 0,
        claims: 0,
        rejected: 0,
        void: BTreeMap::new(),
        void_total: 0,
        reservations_in_log: 0,
        accepted_checked: accepted.len() as u64,
        read_model_audited: settings.read_model.is_some(),
        projection_caught_up_s: None,
        rows_compared: 0,
        cached_resources_compared: 0,
        violations: BTreeMap::new(),
        examples: Vec::new(),
        took_s: 0.0,
    };
    let context =
        settings.read_model.as_ref().map(|(postgres, redis)| replay_context(settings, postgres, redis));
    let context = context.transpose()?;
    if let Some(context) = &context {
        report.projection_caught_up_s =
            wait_caught_up(context, settings.catch_up, settings.load_ended).await?;
    }

    let codec = Arc::new(EventCodec::new(&settings.registry, &layout.events)?);
    let log = holdfast_platform::audit::audit_log(
        &settings.kafka,
        &layout.events,
        layout.partitions,
        codec,
        settings.deadline,
    )
    .await?;
    report.events = log.events;
    report.claims = log.claims;
    report.rejected = log.rejected;
    report.void = log.void.iter().map(|(why, n)| ((*why).to_owned(), *n)).collect();
    report.void_total = log.void_total();
    report.reservations_in_log = log.holds.len() as u64;
    violations.extend(judge::log_violations(&log));

    let postgres = match &context {
        Some(context) => Some(reservation_statuses(context, accepted).await?),
        None => None,
    };
    violations.extend(judge::accepted_violations(
        accepted,
        &log,
        postgres.as_ref(),
        OffsetDateTime::now_utc(),
    ));

    if let Some(context) = &context {
        let mut sink = std::io::sink();
        let output = Output::new(&mut sink, true);
        let (verified, differences) =
            holdfast_projection_workers::replay::verify::verify(context, &output).await?;
        report.rows_compared = verified.rows as u64;
        report.cached_resources_compared = verified.cached_resources as u64;
        if verified.behind > 0 {
            violations.push(Violation::NotCaughtUp { behind: verified.behind });
        }
        violations.extend(differences.into_iter().map(|d| Violation::ReadModelDiffers {
            store: d.store.to_owned(),
            table: d.table.to_owned(),
            key: d.key,
            expected: d.expected,
            actual: d.actual,
        }));
    }

    for violation in &violations {
        *report.violations.entry(violation.kind().to_owned()).or_default() += 1;
    }
    report.examples = violations.into_iter().take(MAX_EXAMPLES).collect();
    report.passed = report.violations.is_empty();
    report.took_s = started.elapsed().as_secs_f64();
    Ok(report)
}

/// The replay tooling's context for the run's topics, database and key prefix.
fn replay_context(
    settings: &AuditSettings,
    postgres: &PostgresArgs,
    redis: &RedisArgs,
) -> Result<Context, ReplayError> {
    Context::new(ReplayConfig {
        kafka: settings.kafka.clone(),
        topics: settings.topics.clone(),
        registry: settings.registry.clone(),
        postgres: postgres.clone(),
        redis: redis.clone(),
        telemetry: TelemetryArgs {
            log_format: LogFormat::Pretty,
            filter: "warn".to_owned(),
            shutdown_grace: Duration::from_secs(1),
        },
        json: true,
        deadline: settings.deadline,
        redis_timeout: Duration::from_secs(10),
        command: ReplayCommand::Verify(VerifyArgs { max_listed: MAX_EXAMPLES }),
    })
}

/// Events committed to the log that the read model has not applied, summed over partitions.
async fn behind(context: &Context) -> Result<u64, AuditError> {
    let ends = context.log.ends().await?;
    let partitions: Vec<i32> = ends.keys().copied().collect();
    let mut applied = std::collections::HashMap::new();
    for pool in context.shards.pools() {
        for (partition, next) in offsets::read(pool, &context.log.topic, &partitions).await? {
            let entry = applied.entry(partition).or_insert(0);
            *entry = next.max(*entry);
        }
    }
    Ok(ends
        .iter()
        .map(|(p, end)| u64::try_from(end - applied.get(p).copied().unwrap_or(0)).unwrap_or(0))
        .sum())
}

/// Waits until the projection has applied every committed event or `wait` has passed;
/// returns how long it took since `since` (now when `None`).
async fn wait_caught_up(
    context: &Context,
    wait: Duration,
    since: Option<Instant>,
) -> Result<Option<f64>, AuditError> {
    let started = Instant::now();
    let since = since.unwrap_or(started);
    loop {
        if behind(context).await? == 0 {
            return Ok(Some(since.elapsed().as_secs_f64()));
        }
        if started.elapsed() >= wait {
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every PostgreSQL row of the accepted reservations, from every shard, by id.
async fn reservation_statuses(
    context: &Context,
    accepted: &[AcceptedRecord],
) -> Result<judge::PostgresStatuses, AuditError> {
    let mut statuses = judge::PostgresStatuses::new();
    let ids: Vec<String> = accepted.iter().map(|a| a.reservation_id.clone()).collect();
    for pool in context.shards.pools() {
        for chunk in ids.chunks(10_000) {
            let rows: Vec<(String, String)> = sqlx::query_as(
                "SELECT reservation_id, status FROM read_model.reservations WHERE reservation_id = ANY($1)",
            )
            .bind(chunk)
            .fetch_all(pool)
            .await?;
            for (id, status) in rows {
                statuses.entry(id).or_default().push(status);
            }
        }
    }
    Ok(statuses)
}
