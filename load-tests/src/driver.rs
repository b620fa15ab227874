//! A whole run: define the resources, drive the open-model schedule, collect the report.
//!
//! One loop owns every piece of state (workload, accepted reservations, records), so nothing
//! is locked: it sleeps until the next intended start, starts every request that is due as a
//! task of its own (or drops it when the in-flight limit is reached) and records requests as
//! they finish. A slow answer never delays a later start, and each latency runs from the
//! request's intended start, so a stalled service or generator shows up in the numbers.

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use futures::StreamExt as _;
use holdfast_platform::auth::{MintError, Scope, mint_local};
use holdfast_platform::partitioner::partition_for;
use rand::SeedableRng as _;
use rand::rngs::SmallRng;
use secrecy::ExposeSecret as _;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::watch;
use tokio::task::{JoinError, JoinSet};
use tokio::time::{Instant, MissedTickBehavior};

use crate::LoadError;
use crate::audit::AcceptedRecord;
use crate::cli::RunArgs;
use crate::client::{self, Answer, Target};
use crate::handover::CommandAnswer;
use crate::output;
use crate::progress::Progress;
use crate::record::{OpStats, PhaseStats};
use crate::schedule::{Phase, Schedule, Tick, phase_at};
use crate::setup;
use crate::summary::{AcceptedSummary, OpSummary, Settings, StepSummary, Summary};
use crate::timeline::{Recorder, StepSpan, Timeline};
use crate::workload::{PendingHold, Planned, Reservations, Shape, Status, Undecided, Workload};

/// What a run produced.
#[derive(Debug)]
pub struct Report {
    /// The report.
    pub summary: Summary,
    /// The run second by second (faults and lag are added by the harness).
    pub timeline: Timeline,
    /// Every hold answered 2xx, with what the run knows became of it (for the audit),
    /// including holds first answered 202 or 503 and accepted when asked again after the load.
    pub accepted: Vec<AcceptedRecord>,
    /// What became of the holds answered 202 or 503.
    pub settled: Settled,
    /// When the last request of the schedule had its answer (before the holds answered 202
    /// or 503 were asked again).
    pub load_ended: std::time::Instant,
    /// Every command request with its partition, for the handover measurement
    /// ([`crate::handover`]); recorded only when a `--fault` moves partitions.
    pub answers: Vec<CommandAnswer>,
}

/// What became of the holds answered without a decision, by answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settled {
    /// Holds answered 202.
    pub pending: PendingSettled,
    /// Holds answered 503.
    pub unavailable: PendingSettled,
}

/// What became of the holds answered without a decision — 202 (queued, decided later) or 503
/// (the append failed or was fenced) — asked again with their idempotency keys after the load:
/// the service answers each with its decision, the first one if it made one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingSettled {
    /// Holds answered so during the run.
    pub pending: u64,
    /// Accepted in the end (their reservations are audited with the others).
    pub accepted: u64,
    /// Refused in the end (409 and the like).
    pub rejected: u64,
    /// Still without a decision when the wait ran out.
    pub undecided: u64,
}

/// The subject of the tokens the load generator mints.
pub const LOAD_SUBJECT: &str = "holdfast-load";

/// The token the load generator mints with `secret`: every scope (it holds for many customers
/// and reads their reservations), valid for a day.
///
/// # Errors
/// When `secret` is not a usable HS256 key.
pub fn load_token(secret: &[u8]) -> Result<String, MintError> {
    mint_local(secret, LOAD_SUBJECT, &Scope::ALL, std::time::Duration::from_secs(24 * 3600))
}

/// Where a run sends its requests, and the bearer token it sends them with.
#[derive(Clone)]
pub struct Endpoints {
    /// Base URLs of the command service instances (requests go round-robin).
    pub commands: Vec<String>,
    /// Base URL of the query service.
    pub query: String,
    /// Sent as `Authorization: Bearer` with every request. Holds for many customers need
    /// `resources:admin`; answers 401 and 403 count as errors, never as decisions.
    pub token: String,
}

impl std::fmt::Debug for Endpoints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoints")
            .field("commands", &self.commands)
            .field("query", &self.query)
            .finish_non_exhaustive()
    }
}

impl Endpoints {
    /// The targets and token named by the flags: `--token`, or one minted with the secret in
    /// `--token-secret-file` (the local stack's `.stack/auth/hs256.key`).
    ///
    /// # Errors
    /// When neither is given, or the secret file cannot be read or used.
    pub fn of(args: &RunArgs) -> Result<Self, LoadError> {
        let token = match &args.token {
            Some(token) => token.expose_secret().to_owned(),
            None => {
                let path = &args.token_secret_file;
                let unusable = |e: &dyn std::fmt::Display| {
                    LoadError::Settings(format!(
                        "--token-secret-file {}: {e} (give --token, or run `make up`, which writes it)",
                        path.display()
                    ))
                };
                let secret = std::fs::read(path).map_err(|e| unusable(&e))?;
                load_token(secret.trim_ascii()).map_err(|e| unusable(&e))?
            }
        };
        Ok(Self { commands: vec![args.target.clone()], query: args.query_target.clone(), token })
    }
}

/// Runs the workload of `args` against `endpoints` until the schedule ends or `stop`
/// completes (then no new request starts and those in flight finish), and writes the results
/// into `out_dir`. `beside` is started with the schedule's start instant and a flag that turns
/// true when the load is over; what it returns is handed back with the report (fault
/// injection and lag sampling run there).
///
/// # Errors
/// Invalid settings, a resource that cannot be defined, or result files that cannot be written.
pub async fn run<T, F>(
    args: &RunArgs,
    endpoints: &Endpoints,
    run_id: &str,
    out_dir: &Path,
    stop: impl Future<Output = ()>,
    beside: impl FnOnce(Instant, watch::Receiver<bool>) -> F,
) -> Result<(Report, T), LoadError>
where
    F: Future<Output = T>,
{
    let phases = args.phases();
    if phases.is_empty() {
        return Err(LoadError::Settings("give --rate or --steps".to_owned()));
    }
    if endpoints.commands.is_empty() {
        return Err(LoadError::Settings("no command service to send to".to_owned()));
    }
    let run_id = run_id.to_owned();
    let seed = args.seed.unwrap_or_else(rand::random);
    let shape = Shape {
        prefix: args.prefix.clone().unwrap_or_else(|| format!("lt-{run_id}")),
        resources: args.resources,
        zipf: args.zipf,
        mix: args.mix,
        days_max: args.days_max,
        date_window: args.date_window,
        first_day: OffsetDateTime::now_utc()
            .date()
            .next_day()
            .ok_or_else(|| LoadError::Settings("no tomorrow".into()))?,
        quantity_max: args.quantity_max,
        hold_seconds: args.hold_seconds,
    };
    let workload = Workload::new(shape, SmallRng::seed_from_u64(seed)).map_err(LoadError::Settings)?;
    let pool = usize::try_from(args.max_in_flight).unwrap_or(usize::MAX);
    let client = client::build(pool, args.timeout, &endpoints.token)?;
    let target = Target::new(client, &endpoints.commands[0])
        .with_commands(&endpoints.commands)
        .with_query(&endpoints.query);

    let define = setup::define_resources(&target, &workload, args.capacity, &run_id, args.quiet).await?;
    let started_at = OffsetDateTime::now_utc().format(&Rfc3339).unwrap_or_default();
    let moves_partitions = args.harness.faults.iter().any(|f| f.kind.moves_partitions());
    let partitions = moves_partitions.then_some(args.harness.services.topics.partitions);
    let mut driver = Driver::new(target, workload, phases, pool, run_id, args.quiet, partitions);
    let (done, watching) = watch::channel(false);
    let start = driver.start;
    let load = async {
        let stopped_early = driver.drive(stop).await;
        let _ = done.send(true);
        (stopped_early, std::time::Instant::now())
    };
    let ((stopped_early, load_ended), beside) = tokio::join!(load, beside(start, watching));
    let settled = driver.settle_pending(args.harness.audit_wait).await;

    let summary = driver.summary(args, seed, started_at, stopped_early, define);
    output::write(out_dir, &summary, &driver.workload, &driver.reservations)?;
    let accepted = driver.accepted();
    let timeline = driver.timeline();
    let answers = std::mem::take(&mut driver.answers);
    Ok((Report { summary, timeline, accepted, settled, load_ended, answers }, beside))
}

/// The load alone against the flags' targets (no faults, no lag sampling, no audit), writing
/// into `--out` or a temporary folder.
///
/// # Errors
/// As [`run`].
pub async fn run_load(args: &RunArgs, stop: impl Future<Output = ()>) -> Result<Report, LoadError> {
    let run_id = format!("{:08x}", rand::random::<u32>());
    let out_dir = output::results_dir(args.out.as_deref(), &run_id);
    let nothing = |_: Instant, _: watch::Receiver<bool>| async {};
    run(args, &Endpoints::of(args)?, &run_id, &out_dir, stop, nothing).await.map(|(report, ())| report)
}

/// A request that finished.
#[derive(Debug)]
struct Finished {
    /// Phase of its intended start.
    phase: usize,
    /// Its intended start, since the schedule began.
    due: Duration,
    /// What it asked for.
    planned: Planned,
    /// Sequence number of its idempotency key.
    seq: u64,
    /// From intended start to the end of the answer.
    latency: Duration,
    /// When it finished.
    at: Instant,
    /// What came back.
    answer: Answer,
}

/// The open-model loop and everything it records.
#[derive(Debug)]
struct Driver {
    target: Target,
    workload: Workload,
    reservations: Reservations,
    phases: Vec<Phase>,
    stats: Vec<PhaseStats>,
    tasks: JoinSet<Finished>,
    max_in_flight: usize,
    run_id: String,
    next_seq: u64,
    start: Instant,
    progress: Option<Progress>,
    /// Request tasks that panicked (a generator bug).
    task_failures: u64,
    /// The run second by second.
    timeline: Recorder,
    /// The partition of each resource, when command answers are recorded for the handover
    /// measurement.
    partitions: Option<Vec<i32>>,
    /// The command answers recorded for it.
    answers: Vec<CommandAnswer>,
}

impl Driver {
    fn new(
        target: Target,
        workload: Workload,
        phases: Vec<Phase>,
        max_in_flight: usize,
        run_id: String,
        quiet: bool,
        partitions: Option<i32>,
    ) -> Self {
        let start = Instant::now();
        let stats = vec![PhaseStats::default(); phases.len()];
        let progress = (!quiet).then(|| Progress::new(start));
        let partitions = partitions.map(|count| {
            (0..workload.shape().resources)
                .map(|r| partition_for(workload.resource_id(r).as_bytes(), count))
                .collect()
        });
        Self {
            target,
            workload,
            reservations: Reservations::default(),
            phases,
            stats,
            tasks: JoinSet::new(),
            max_in_flight,
            run_id,
            next_seq: 0,
            start,
            progress,
            task_failures: 0,
            timeline: Recorder::new(),
            partitions,
            answers: Vec::new(),
        }
    }

    /// Runs the schedule, then waits for the requests in flight. Returns whether `stop` cut
    /// the schedule short.
    async fn drive(&mut self, stop: impl Future<Output = ()>) -> bool {
        let mut schedule = Schedule::new(&self.phases);
        let mut next = schedule.next();
        let sleep = tokio::time::sleep_until(self.start);
        let mut ticker =
            tokio::time::interval_at(self.start + Duration::from_secs(1), Duration::from_secs(1));
        ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
        tokio::pin!(sleep, stop);
        let (mut stopped, mut early) = (false, false);
        let mut current = 0;
        while next.is_some() || !self.tasks.is_empty() {
            tokio::select! {
                biased;
                () = &mut stop, if !stopped => {
                    stopped = true;
                    early = next.take().is_some();
                }
                now = ticker.tick(), if self.progress.is_some() => {
                    let (label, in_flight) = (&self.phases[current].label, self.tasks.len());
                    if let Some(progress) = &mut self.progress {
                        eprintln!("{}", progress.line(now, label, in_flight));
                    }
                }
                () = &mut sleep, if next.is_some() => {
                    while let Some(joined) = self.tasks.try_join_next() {
                        self.finished(joined);
                    }
                    let now = Instant::now();
                    while let Some(tick) = next.filter(|t| self.start + t.at <= now) {
                        current = tick.phase;
                        self.start_request(tick);
                        next = schedule.next();
                    }
                    if let Some(tick) = next {
                        sleep.as_mut().reset(self.start + tick.at);
                    }
                }
                Some(joined) = self.tasks.join_next(), if !self.tasks.is_empty() => self.finished(joined),
            }
        }
        early
    }

    /// Starts the request due at `tick`, or drops it when the in-flight limit is reached.
    fn start_request(&mut self, tick: Tick) {
        let stats = &mut self.stats[tick.phase];
        stats.scheduled += 1;
        if let Some(progress) = &mut self.progress {
            progress.scheduled(tick.phase);
        }
        let dropped = self.tasks.len() >= self.max_in_flight;
        self.timeline.offered(tick.at, dropped);
        if dropped {
            stats.dropped += 1;
            if let Some(progress) = &mut self.progress {
                progress.dropped();
            }
            return;
        }
        let (planned, fell_back) = self.workload.next(&mut self.reservations);
        stats.started += 1;
        stats.fallback_holds += u64::from(fell_back);
        let body = match &planned {
            Planned::Hold(hold) => self.workload.hold_body(hold),
            Planned::Confirm(..) | Planned::Cancel(..) | Planned::Read(_) | Planned::Ryw(..) => Vec::new(),
        };
        let seq = self.next_seq;
        self.next_seq += 1;
        let key = self.key(seq);
        let target = self.target.clone();
        let intended = self.start + tick.at;
        self.tasks.spawn(async move {
            let answer = target.send(&planned, key, body).await;
            let at = Instant::now();
            Finished {
                phase: tick.phase,
                due: tick.at,
                planned,
                seq,
                latency: at.saturating_duration_since(intended),
                at,
                answer,
            }
        });
    }

    /// The idempotency key of request `seq`: unique per run, whatever the prefix.
    fn key(&self, seq: u64) -> String {
        format!("{}-{seq}", self.run_id)
    }

    /// Records a finished request and settles what it did to the reservations.
    fn finished(&mut self, joined: Result<Finished, JoinError>) {
        let Ok(finished) = joined else {
            self.task_failures += 1;
            return;
        };
        if let Some(window) = phase_at(&self.phases, finished.at.saturating_duration_since(self.start)) {
            self.stats[window].finished_in_window += 1;
        }
        let since_start = finished.at.saturating_duration_since(self.start);
        self.timeline.finished(since_start, finished.latency, finished.answer.decided());
        self.note_command(&finished, since_start);
        let op = finished.planned.op();
        let recorded = self.phases[finished.phase].recorded;
        if recorded {
            self.stats[finished.phase].record(op, finished.latency, &finished.answer);
        }
        if let Some(progress) = &mut self.progress {
            let latency = finished.answer.status().map(|_| finished.latency);
            progress.finished(finished.phase, latency);
        }
        match (finished.planned, finished.answer) {
            (Planned::Hold(hold), Answer::Response { reservation: Some(reservation), .. }) => {
                let client::Reservation { id, expires_at, position } = reservation;
                self.reservations.add(id, hold, expires_at, position);
            }
            (Planned::Hold(hold), Answer::Response { status: status @ (202 | 503), location, .. }) => {
                let key = self.key(finished.seq).into_boxed_str();
                let why = if status == 202 { Undecided::Pending } else { Undecided::Unavailable };
                self.reservations.add_pending(PendingHold { key, hold, location, why });
            }
            (Planned::Confirm(index, _) | Planned::Cancel(index, _), answer) => {
                self.reservations.settle(index, op, answer.verdict());
            }
            // Reads change no reservation.
            (Planned::Hold(_) | Planned::Read(_) | Planned::Ryw(..), _) => {}
        }
    }

    /// Records a finished command request with its partition for the handover measurement,
    /// when it is asked for. Reads go to the query service: they are not recorded.
    fn note_command(&mut self, finished: &Finished, since_start: Duration) {
        let Some(partitions) = &self.partitions else { return };
        let resource = match &finished.planned {
            Planned::Hold(hold) => Some(hold.resource),
            Planned::Confirm(index, _) | Planned::Cancel(index, _) => {
                self.reservations.all().get(*index as usize).map(|a| a.hold.resource)
            }
            Planned::Read(_) | Planned::Ryw(..) => None,
        };
        if let Some(&partition) = resource.and_then(|r| partitions.get(r as usize)) {
            self.answers.push(CommandAnswer {
                partition,
                sent_s: finished.due.as_secs_f64(),
                answered_s: since_start.as_secs_f64(),
                status: finished.answer.status(),
            });
        }
    }

    /// The run second by second, with the recorded steps' places on the time axis (faults
    /// and lag samples are added by whoever injected and watched them).
    fn timeline(&self) -> Timeline {
        let mut from = 0.0;
        let mut steps = Vec::new();
        for phase in &self.phases {
            let to = from + phase.duration.as_secs_f64();
            if phase.recorded {
                steps.push(StepSpan { label: phase.label.clone(), from_s: from, to_s: to, rate: phase.rate });
            }
            from = to;
        }
        Timeline { seconds: self.timeline.seconds(), faults: Vec::new(), steps }
    }

    /// Asks every hold answered 202 or 503 again with its idempotency key and body until it is
    /// decided or `wait` has passed; accepted ones join the accepted reservations.
    async fn settle_pending(&mut self, wait: Duration) -> Settled {
        let deadline = Instant::now() + wait;
        let requests: Vec<(PendingHold, Vec<u8>)> = self
            .reservations
            .pending()
            .iter()
            .map(|pending| (pending.clone(), self.workload.hold_body(&pending.hold)))
            .collect();
        let mut settled = [PendingSettled::default(); 2];
        let target = &self.target;
        let answers: Vec<(PendingHold, Answer)> = futures::stream::iter(requests)
            .map(|(pending, body)| async move {
                loop {
                    let planned = Planned::Hold(pending.hold);
                    let answer = target.send(&planned, pending.key.to_string(), body.clone()).await;
                    if answer.decided() || Instant::now() >= deadline {
                        return (pending, answer);
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            })
            .buffer_unordered(32)
            .collect()
            .await;
        for (pending, answer) in answers {
            let tally = &mut settled[usize::from(pending.why == Undecided::Unavailable)];
            tally.pending += 1;
            match answer {
                Answer::Response { reservation: Some(reservation), .. } => {
                    let client::Reservation { id, expires_at, position } = reservation;
                    self.reservations.add(id, pending.hold, expires_at, position);
                    tally.accepted += 1;
                }
                answer if answer.decided() => tally.rejected += 1,
                _ => tally.undecided += 1,
            }
        }
        let [pending, unavailable] = settled;
        Settled { pending, unavailable }
    }

    /// Every hold answered 2xx, as the audit reads them.
    fn accepted(&self) -> Vec<AcceptedRecord> {
        self.reservations
            .all()
            .iter()
            .map(|a| {
                let (from, to) = self.workload.range(&a.hold);
                AcceptedRecord {
                    reservation_id: a.id.to_string(),
                    resource_id: self.workload.resource_id(a.hold.resource).to_owned(),
                    from: from.to_owned(),
                    to: to.to_owned(),
                    quantity: a.hold.quantity,
                    status: a.status,
                    uncertain: a.uncertain,
                }
            })
            .collect()
    }

    /// The report of the run.
    fn summary(
        &self,
        args: &RunArgs,
        seed: u64,
        started_at: String,
        stopped_early: bool,
        define: OpStats,
    ) -> Summary {
        let shape = self.workload.shape();
        let reservations = &self.reservations;
        Summary {
            run_id: self.run_id.clone(),
            target: self.target.base().to_owned(),
            started_at,
            settings: Settings {
                prefix: shape.prefix.clone(),
                resources: shape.resources,
                capacity: args.capacity,
                zipf: shape.zipf,
                mix: shape.mix.to_string(),
                days_max: shape.days_max,
                date_window: shape.date_window,
                quantity_max: shape.quantity_max,
                hold_seconds: shape.hold_seconds,
                max_in_flight: args.max_in_flight,
                warmup_s: args.warmup.as_secs_f64(),
                timeout_s: args.timeout.as_secs_f64(),
                seed,
            },
            stopped_early,
            generator_errors: self.task_failures,
            define: OpSummary::of(&define),
            steps: self
                .phases
                .iter()
                .zip(&self.stats)
                .filter(|(phase, _)| phase.recorded)
                .map(|(phase, stats)| StepSummary::of(phase, stats))
                .collect(),
            accepted_reservations: AcceptedSummary {
                accepted: reservations.all().len() as u64,
                held: reservations.count(Status::Held),
                confirmed: reservations.count(Status::Confirmed),
                cancelled: reservations.count(Status::Cancelled),
                expired: reservations.count(Status::Expired),
                uncertain: reservations.uncertain(),
                pending_holds: reservations.undecided(Undecided::Pending),
                unavailable_holds: reservations.undecided(Undecided::Unavailable),
            },
        }
    }
}

#[cfg(test)]
mod tests;
