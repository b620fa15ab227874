//! `rebuild`: the read model rebuilt from the log into a new generation (a shadow schema on
//! every shard and a shadow Redis key prefix) while the live one keeps serving, then an
//! atomic switch.
//!
//! Steps, each resumable: prepare the shadow ([`shadow::prepare`]); load back what an
//! interrupted run wrote; fold the log in memory to its end with checkpoints
//! ([`fold`]; the first one COPYs every row into index-less tables); build the indexes;
//! fill the shadow Redis prefix; catch up and switch ([`switch`]); retire the previous
//! generation. A run holds an advisory lock on the first shard, so two never overlap.
//!
//! The log is read by the reader rule: only valid events are folded; claims, refused
//! commands and void records are counted. Checkpoints store each partition's reader-rule
//! tenure beside its next offset, so a resumed run (and the live workers after the switch)
//! judge the following records exactly as a reader from the beginning would.
//!
//! `--since`: the rule's state at the instant's offsets is not known without the records
//! before them (the claim that started the tenure there may be anywhere earlier). So a rebuild
//! with `--since` still reads every partition from its beginning, judging every record, and
//! folds only the valid events at or after the first offset the brokers' time index gives for
//! the instant. What `--since` saves is the fold and the rows of the older events, not the
//! reading; it needs the log's beginning, which the events topic keeps (it is the source of
//! truth and has no retention limit).

pub mod copy;
pub mod fold;
pub mod redis;
pub mod shadow;
pub mod switch;

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use holdfast_platform::Shutdown;
use serde::Serialize;
use sqlx::Connection;

use super::config::RebuildArgs;
use super::log::{Offsets, Rules};
use super::{Context, Outcome, Output, ReplayError, migrate};
use crate::model::ReadModel;
use fold::{Fold, Plan, Sink};
use shadow::Phase;

/// Key of the advisory lock a rebuild holds on the first shard.
const LOCK_KEY: i64 = 0x686f_6c64_6661_7374; // "holdfast"

/// What a rebuild did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RebuildReport {
    /// The generation built.
    pub generation: i64,
    /// Its PostgreSQL schema.
    pub schema: String,
    /// Whether it continued an interrupted run.
    pub resumed: bool,
    /// Records already judged in the shadow when this run started (from an earlier run).
    pub records_before: u64,
    /// Records read by this run (catch-up included), whatever the reader rule made of them.
    pub records: u64,
    /// Valid events folded by this run (catch-up included).
    pub events: u64,
    /// Valid events read but not folded, being older than `--since`.
    pub before_since: u64,
    /// Claims read (tenures started).
    pub claims: u64,
    /// Valid refused commands read (they change no state).
    pub rejected: u64,
    /// Void records skipped, by reason (`holdfast_tenure::Void::label`).
    pub void: BTreeMap<&'static str, u64>,
    /// Valid records that could not be decoded (skipped, as the workers dead-letter them).
    pub undecodable: u64,
    /// Rows: resources, slots, reservations.
    pub rows: (usize, usize, usize),
    /// Checkpoints written.
    pub checkpoints: u64,
    /// Seconds of the whole run.
    pub seconds: f64,
    /// Records per second of the whole run.
    pub records_per_second: f64,
    /// Seconds spent reading and folding (`fold`), writing rows (`write`), building indexes
    /// and filling Redis (`index`), catching up and switching (`switch`).
    pub phases: HashMap<&'static str, f64>,
    /// How long live writers were held by the switch, in milliseconds.
    pub switch_held_ms: u64,
    /// Whether the new generation is live.
    pub switched: bool,
    /// The generation that was live before.
    pub previous: Option<i64>,
}

/// Rebuilds and switches.
///
/// # Errors
/// See [`ReplayError`]; an interrupted rebuild continues when run again.
pub async fn run(
    context: &Context,
    args: &RebuildArgs,
    output: &mut Output<'_>,
    shutdown: &Shutdown,
) -> Result<Outcome, ReplayError> {
    let (outcome, report) = rebuild(context, args, output, shutdown).await?;
    output.report(&report, |r| {
        format!(
            "{} generation {} ({}): {} records in {:.2} s = {:.0} records/s ({} events folded, {} claims, {} rejected, {}); {} resources, {} slots, {} reservations{}",
            if r.switched { "switched to" } else { "interrupted; run again to continue" },
            r.generation,
            r.schema,
            r.records,
            r.seconds,
            r.records_per_second,
            r.events,
            r.claims,
            r.rejected,
            super::void_summary(&r.void),
            r.rows.0,
            r.rows.1,
            r.rows.2,
            if r.resumed { format!(" (resumed after {} records)", r.records_before) } else { String::new() },
        )
    })?;
    Ok(outcome)
}

/// Rebuilds and switches; returns the report as a value (for tests and benchmarks).
///
/// # Errors
/// See [`ReplayError`].
pub async fn rebuild(
    context: &Context,
    args: &RebuildArgs,
    output: &Output<'_>,
    shutdown: &Shutdown,
) -> Result<(Outcome, RebuildReport), ReplayError> {
    let started = Instant::now();
    let mut phases: HashMap<&'static str, f64> = HashMap::new();
    migrate(&context.shards).await?;
    let mut lock = context.shards.pool(0).acquire().await?.detach();
    let locked: bool =
        sqlx::query_scalar("SELECT pg_try_advisory_lock($1)").bind(LOCK_KEY).fetch_one(&mut lock).await?;
    if !locked {
        return Err(ReplayError::Refused("another rebuild is running on this read model".into()));
    }
    let result = rebuild_locked(context, args, output, shutdown, &mut phases, started).await;
    let _ = lock.close().await;
    result
}

async fn rebuild_locked(
    context: &Context,
    args: &RebuildArgs,
    output: &Output<'_>,
    shutdown: &Shutdown,
    phases: &mut HashMap<&'static str, f64>,
    started: Instant,
) -> Result<(Outcome, RebuildReport), ReplayError> {
    let shards = &context.shards;
    let topic = context.log.topic.clone();
    let build = shadow::prepare(shards.pools(), args.since).await?;
    tracing::info!(generation = build.generation, schema = %build.schema, resumed = build.resumed, "rebuild started");
    // Every partition is read from its beginning (the reader rule starts there); with
    // `--since`, events before the instant's offsets are judged but not folded.
    let starts: Offsets = (0..context.log.partitions).map(|p| (p, 0)).collect();
    let project_from = match build.since {
        Some(since) => context.log.starts(Some(since)).await?,
        None => Offsets::new(),
    };

    // What earlier runs wrote.
    let mut fold_next = starts.clone();
    let mut rules = Rules::new();
    let mut first_load = Vec::new();
    let mut phase_of = Vec::new();
    let (mut resources, mut slots, mut reservations) = (Vec::new(), Vec::new(), Vec::new());
    for pool in shards.pools() {
        let loaded = shadow::load(pool, &build, &topic).await?;
        first_load.push(loaded.positions.is_empty());
        phase_of.push(loaded.phase.unwrap_or(Phase::Loading));
        fold_next.extend(loaded.positions.iter().map(|(p, position)| (*p, position.next_offset)));
        rules.extend(loaded.positions.iter().map(|(p, position)| (*p, position.rule())));
        resources.extend(loaded.resources);
        slots.extend(loaded.slots);
        reservations.extend(loaded.reservations);
    }
    let mut model = ReadModel::from_rows(resources, slots, reservations);
    let all_first = first_load.iter().all(|f| *f);
    model.track_changes(!all_first);
    let records_before = super::log::distance(&starts, &fold_next);
    let mut fold = Fold {
        model,
        next: fold_next,
        rules,
        project_from,
        partitions: HashMap::new(),
        first_load,
        read: 0,
        folded: 0,
        before_since: 0,
        since_checkpoint: 0,
        checkpoints: 0,
        claims: 0,
        rejected: 0,
        void: BTreeMap::new(),
        undecodable: 0,
        failure: None,
        stopped: false,
    };
    let sink = Sink {
        shards: shards.clone(),
        build: build.clone(),
        topic: topic.clone(),
        partitions: context.log.partitions,
        copy_streams: args.copy_streams,
    };
    let ends = context.log.ends().await?;
    let bar = output.bar(super::log::distance(&fold.next, &ends), "rebuild");
    let plan = Plan {
        checkpoint_events: args.checkpoint_events.max(1),
        stop_after: args.stop_after_checkpoints,
        shutdown: shutdown.clone(),
        bar: bar.clone(),
    };

    // Fold the log to its end.
    let clock = Instant::now();
    fold = fold::read(&context.log, fold, &sink, &plan).await?;
    if let Some(failure) = fold.failure.take() {
        return Err(failure);
    }
    phases.insert("fold", clock.elapsed().as_secs_f64());
    let mut report = RebuildReport {
        generation: build.generation,
        schema: build.schema.clone(),
        resumed: build.resumed,
        records_before,
        ..RebuildReport::default()
    };
    if fold.stopped {
        bar.abandon();
        return Ok((Outcome::Interrupted, finish(report, &fold, phases, started)));
    }
    let clock = Instant::now();
    fold.checkpoint(&sink).await?;
    phases.insert("write", clock.elapsed().as_secs_f64());
    bar.finish_and_clear();

    let clock = Instant::now();
    let spinner = output.spinner("indexing");
    let shadow_cache = context.cache.at(build.generation);
    // Redis is filled while PostgreSQL builds the indexes.
    let indexing = async {
        for (shard, phase) in phase_of.iter().enumerate() {
            if *phase == Phase::Loading {
                shadow::finalize(shards.pool(shard), &build).await?;
            }
        }
        Ok::<(), ReplayError>(())
    };
    tokio::try_join!(indexing, redis::fill(&shadow_cache, &fold.model, &fold.next))?;
    phases.insert("index", clock.elapsed().as_secs_f64());

    if shutdown.is_cancelled() {
        spinner.abandon();
        return Ok((Outcome::Interrupted, finish(report, &fold, phases, started)));
    }
    let clock = Instant::now();
    spinner.set_message("switching");
    // Once switching, finish: an interruption now would only delay the switch.
    let catch_plan = Plan { bar: indicatif::ProgressBar::hidden(), shutdown: Shutdown::new(), ..plan };
    let (fold, switched) = switch::switch(&context.log, fold, &sink, &catch_plan, &shadow_cache).await?;
    redis::point(&context.cache, context.base_prefix(), build.generation).await?;
    phases.insert("switch", clock.elapsed().as_secs_f64());
    spinner.finish_and_clear();
    tracing::info!(generation = build.generation, held_ms = switched.held_ms, "read model switched");

    if !args.keep_previous {
        for (shard, previous) in switched.previous.iter().enumerate() {
            switch::retire(shards.pool(shard), previous).await?;
        }
        let mut retired = std::collections::BTreeSet::new();
        for previous in &switched.previous {
            if retired.insert(previous.number) {
                let removed =
                    redis::remove(&context.cache.at(previous.number), context.config.redis.cluster).await?;
                tracing::info!(generation = previous.number, keys = removed, "previous generation retired");
            }
        }
    }
    report.switched = true;
    report.switch_held_ms = switched.held_ms;
    report.previous = switched.previous.first().map(|g| g.number);
    Ok((Outcome::Done, finish(report, &fold, phases, started)))
}

fn finish(
    mut report: RebuildReport,
    fold: &Fold,
    phases: &HashMap<&'static str, f64>,
    started: Instant,
) -> RebuildReport {
    report.records = fold.read;
    report.events = fold.folded;
    report.before_since = fold.before_since;
    report.claims = fold.claims;
    report.rejected = fold.rejected;
    report.void.clone_from(&fold.void);
    report.undecodable = fold.undecodable;
    report.rows = fold.model.counts();
    report.checkpoints = fold.checkpoints;
    report.seconds = started.elapsed().as_secs_f64();
    #[allow(clippy::cast_precision_loss)]
    let per_second = fold.read as f64 / report.seconds.max(f64::EPSILON);
    report.records_per_second = per_second;
    report.phases.clone_from(phases);
    report
}
