//! Partition lanes: the owner of each partition this instance was assigned, as a task of its
//! own. A lane claims its partition (a `PartitionClaimed` record with a fresh token), restores
//! the partition's state up to its claim, then decides the commands handed to it — straight
//! from the HTTP handlers, or from the commands topic — appending every decision once, and
//! answers each caller only when the record is valid by the reader rule.
//!
//! The pure part is [`core::Lane`]; this module is the shell around it: it sends appends
//! ([`append`]), feeds delivery reports back in order, reads gaps when another writer's records
//! landed in between, and after a failed or unclear append claims again and restores before it
//! goes on. Fenced by a newer claim, it answers nobody more and ends.

pub mod append;
pub mod core;
pub mod rebuild;
pub mod restore;
pub mod standby;
pub mod state;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::BoxFuture;
use futures::stream::{FuturesOrdered, StreamExt};
use holdfast_platform::Shutdown;
use holdfast_platform::codec::ClaimRecord;
use holdfast_platform::headers::RecordHeaders;
use holdfast_platform::kafka::read_until;
use holdfast_platform::producer::Producer;
use holdfast_tenure::{Mark, Token};
use rdkafka::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::producer::FutureRecord;
use rdkafka::{Offset, TopicPartitionList};
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};

use self::append::Appender;
use self::core::{Answer, Decided, Lane, Next, Progress, outcome_label};
use self::rebuild::RebuildError;
use self::restore::{Restore, RestoreError, Restores};
use self::standby::Standbys;
use crate::directory::{ANNOUNCEMENT_VERSION, Announcement, Directory, Tenure, announce};
use crate::envelope::{CommandEnvelope, Outcome, Verdict};
use crate::metrics::Metrics;

/// Most inputs decided in one go before the lane looks at its delivery reports again.
const DRAIN: usize = 512;
/// How long a closing lane waits for its appends in flight to be reported.
const CLOSE_GRACE: Duration = Duration::from_secs(5);
/// How long a lane stopped on an undecodable record waits before it tries again.
const STOPPED_RETRY: Duration = Duration::from_secs(30);
/// Longest wait between attempts to claim or restore.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// What the HTTP side is told about a command it handed to a lane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// The lane's answer.
    Answer(Answer),
    /// The lane no longer owns the partition and decided nothing: send the command the other way.
    NotOwner,
}

/// Who is waiting for a command's outcome.
#[derive(Debug)]
pub enum Caller {
    /// An HTTP handler of this instance.
    Http(oneshot::Sender<Reply>),
    /// A command read from the commands topic at `offset`; its outcome goes to the replies topic.
    Topic {
        /// Its offset in the commands partition.
        offset: i64,
        /// The command (kept to decide it again after a failed append).
        envelope: Box<CommandEnvelope>,
    },
}

/// Something for a lane to do.
#[derive(Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "every input but the last is a command; boxing them would cost an allocation each"
)]
pub enum Input {
    /// Decide a command.
    Command {
        /// The command.
        envelope: CommandEnvelope,
        /// Who waits for it.
        caller: Caller,
    },
    /// Give the partition up: answer what is in flight, decide nothing more.
    Close,
}

/// What a lane tells the group member that runs the commands consumer.
#[derive(Debug)]
pub enum LaneEvent {
    /// Claimed and restored: consume its commands.
    Ready(i32),
    /// Fenced by another writer's claim; the lane has ended.
    Fenced(i32),
    /// The lane wants to claim its partition again (after a failed append): answer whether the
    /// group still counts this instance as the partition's owner. A process that was paused
    /// past its session (a zombie) must not claim what the group has given to another.
    StillOwner {
        /// The partition.
        partition: i32,
        /// Where the answer goes.
        answer: oneshot::Sender<bool>,
    },
}

/// The lane has ended and took nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the partition's lane has ended")]
pub struct LaneGone;

/// Where a lane stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Appending its claim.
    Claiming,
    /// Reading the partition up to its claim.
    Restoring,
    /// Deciding commands.
    Ready,
    /// Stopped on a valid record it cannot decode.
    Stopped,
}

/// What a lane shows of itself (the admin API's view of an owned partition).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct LaneStatus {
    /// The partition.
    pub partition: i32,
    /// Where the lane stands.
    #[serde(rename = "state")]
    pub stage: Stage,
    /// The current claim's writer token.
    pub token: Option<uuid::Uuid>,
    /// The current claim's offset.
    pub claim_offset: Option<i64>,
    /// The offset after the last record known valid.
    pub next_offset: Option<i64>,
    /// Void records skipped by its restores and gap checks.
    pub void_records: u64,
}

/// The handle of a running lane, shared by the HTTP side and the group member.
#[derive(Debug, Clone)]
pub struct LaneHandle {
    tx: mpsc::UnboundedSender<Input>,
    ready: Arc<AtomicBool>,
    /// Next commands-topic offset such that every command before it is answered (-1: none).
    progress: Arc<AtomicI64>,
    /// The offset after the last record known valid (-1: not claimed yet).
    next_offset: Arc<AtomicI64>,
    status: Arc<Mutex<LaneStatus>>,
}

impl LaneHandle {
    /// Whether the lane has claimed and restored its partition and takes commands.
    #[must_use]
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Hands a command to the lane.
    ///
    /// # Errors
    /// [`LaneGone`] when the lane has ended; nothing was decided.
    pub fn send(&self, envelope: CommandEnvelope, caller: Caller) -> Result<(), LaneGone> {
        self.tx.send(Input::Command { envelope, caller }).map_err(|_| LaneGone)
    }

    /// Asks the lane to give its partition up.
    pub fn close(&self) {
        self.ready.store(false, Ordering::Release);
        let _ = self.tx.send(Input::Close);
    }

    /// The commands-topic offset to commit, once the lane has taken commands from the topic.
    #[must_use]
    pub fn progress(&self) -> Option<i64> {
        Some(self.progress.load(Ordering::Acquire)).filter(|o| *o >= 0)
    }

    /// Where the lane stands.
    #[must_use]
    pub fn status(&self) -> LaneStatus {
        let mut status = self.status.lock().unwrap_or_else(PoisonError::into_inner).clone();
        status.next_offset = Some(self.next_offset.load(Ordering::Acquire)).filter(|o| *o >= 0);
        status
    }
}

/// What every lane of an instance shares.
pub struct LaneContext {
    /// Appends records.
    pub appender: Appender,
    /// Restores partitions (several at once when lanes ask together).
    pub restores: Restores,
    /// The partitions this instance stands by for, restored from where they stand.
    pub standbys: Standbys,
    /// Reader settings for gap checks.
    pub reader: ClientConfig,
    /// Publishes outcomes of commands that came through the commands topic, and tenures.
    pub replies: Producer,
    /// The replies topic.
    pub replies_topic: String,
    /// The owners topic, where lanes announce their tenures.
    pub owners_topic: String,
    /// The owners directory, which learns this instance's tenures at once.
    pub directory: Arc<Directory>,
    /// This instance's id (in its claims).
    pub instance: String,
    /// Its command API's address (in its claims).
    pub address: Option<String>,
    /// Metrics.
    pub metrics: Metrics,
    /// Where lanes report readiness and fencing.
    pub events: std::sync::mpsc::Sender<LaneEvent>,
    /// Ends every lane.
    pub shutdown: Shutdown,
    /// The running lanes, so shutdown can wait for them to answer what is in flight.
    pub tasks: tokio_util::task::TaskTracker,
}

impl std::fmt::Debug for LaneContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LaneContext").field("instance", &self.instance).finish_non_exhaustive()
    }
}

/// Starts the lane of `partition` on the current runtime.
#[must_use]
pub fn spawn(partition: i32, context: Arc<LaneContext>) -> LaneHandle {
    let (tx, rx) = mpsc::unbounded_channel();
    let status = LaneStatus {
        partition,
        stage: Stage::Claiming,
        token: None,
        claim_offset: None,
        next_offset: None,
        void_records: 0,
    };
    let handle = LaneHandle {
        tx,
        ready: Arc::new(AtomicBool::new(false)),
        progress: Arc::new(AtomicI64::new(-1)),
        next_offset: Arc::new(AtomicI64::new(-1)),
        status: Arc::new(Mutex::new(status)),
    };
    let tasks = context.tasks.clone();
    let shell = Shell {
        partition,
        context,
        rx,
        ready: Arc::clone(&handle.ready),
        next_offset: Arc::clone(&handle.next_offset),
        status: Arc::clone(&handle.status),
        assigned_at: Instant::now(),
        restored_from: "log",
        topic: TopicProgress { outstanding: BTreeSet::new(), next: -1, shared: Arc::clone(&handle.progress) },
        retained: VecDeque::new(),
        closing: false,
    };
    tasks.spawn(shell.run());
    handle
}

/// How a tenure ended.
enum End {
    /// An append failed or is unclear: claim again.
    Reclaim,
    /// Fenced by a newer claim.
    Fenced,
    /// Closed (revoked) or shutting down.
    Closed,
}

/// The commands-topic offsets a lane has taken and answered.
struct TopicProgress {
    outstanding: BTreeSet<i64>,
    next: i64,
    shared: Arc<AtomicI64>,
}

impl TopicProgress {
    fn taken(&mut self, offset: i64) {
        self.outstanding.insert(offset);
        self.next = self.next.max(offset + 1);
    }

    fn answered(&mut self, offset: i64) {
        self.outstanding.remove(&offset);
        let committable = self.outstanding.first().copied().unwrap_or(self.next);
        self.shared.store(committable, Ordering::Release);
    }
}

/// A gap check in flight: (seq, offset, marks read).
type GapRead = BoxFuture<'static, Result<(u64, i64, Vec<Mark>), KafkaError>>;

/// The I/O around one partition's [`Lane`].
struct Shell {
    partition: i32,
    context: Arc<LaneContext>,
    rx: mpsc::UnboundedReceiver<Input>,
    ready: Arc<AtomicBool>,
    next_offset: Arc<AtomicI64>,
    status: Arc<Mutex<LaneStatus>>,
    /// When the partition was assigned (its lane started).
    assigned_at: Instant,
    /// Where the last restore's state came from (`standby` or `log`).
    restored_from: &'static str,
    topic: TopicProgress,
    /// Topic commands left undecided by a failed append, decided again after the reclaim.
    retained: VecDeque<(CommandEnvelope, Caller)>,
    closing: bool,
}

impl Shell {
    async fn run(mut self) {
        let partition = self.partition;
        let mut again = false;
        loop {
            let Some(lane) = self.establish(again).await else { break };
            if !again {
                let source = self.restored_from;
                self.context
                    .metrics
                    .takeover_seconds
                    .with_label_values(&[source])
                    .observe(self.assigned_at.elapsed().as_secs_f64());
            }
            again = true;
            let tenure = (lane.token(), lane.last_valid());
            self.stage(Stage::Ready);
            self.announce(tenure, Tenure::Ready);
            self.ready.store(!self.closing, Ordering::Release);
            self.context.metrics.owned_partitions.inc();
            let _ = self.context.events.send(LaneEvent::Ready(partition));
            let end = self.serve(lane).await;
            self.ready.store(false, Ordering::Release);
            self.context.metrics.owned_partitions.dec();
            if !matches!(end, End::Fenced) {
                // A newer claim announces itself; otherwise say that nobody decides here now.
                self.announce(tenure, Tenure::Released);
            }
            match end {
                End::Reclaim => {
                    self.context.metrics.reclaims.with_label_values(&["append-failed"]).inc();
                    tracing::warn!(partition, "an append failed or its outcome is unclear; claiming again");
                }
                End::Fenced => {
                    self.context.metrics.fenced.inc();
                    tracing::warn!(partition, "fenced by a newer claim; dropping the partition");
                    let _ = self.context.events.send(LaneEvent::Fenced(partition));
                    break;
                }
                End::Closed => break,
            }
        }
        // Nothing more is decided here: HTTP callers go the other way, topic commands are
        // read again by the next owner from the committed offset.
        self.rx.close();
        while let Ok(input) = self.rx.try_recv() {
            if let Input::Command { caller: Caller::Http(reply), .. } = input {
                let _ = reply.send(Reply::NotOwner);
            }
        }
        for (_, caller) in self.retained.drain(..) {
            if let Caller::Http(reply) = caller {
                let _ = reply.send(Reply::NotOwner);
            }
        }
        tracing::info!(partition, "lane ended");
    }

    /// Claims the partition and restores it up to the claim; `None` when closed first. A claim
    /// after the first (`again`) waits until the group member proves the partition is still ours.
    async fn establish(&mut self, again: bool) -> Option<Lane<Caller>> {
        let partition = self.partition;
        let mut backoff = Duration::from_millis(100);
        loop {
            if self.stopping() {
                return None;
            }
            self.stage(Stage::Claiming);
            if again && !self.still_owner().await {
                tracing::info!(partition, "not proven the partition's owner; waiting before claiming again");
                self.pause(&mut backoff).await;
                continue;
            }
            let token = Token::fresh();
            let claim = ClaimRecord {
                token,
                partition,
                owner: self.context.instance.clone(),
                address: self.context.address.clone(),
                claimed_at: OffsetDateTime::now_utc(),
            };
            let offset = match self.context.appender.claim(&claim) {
                Ok(delivered) => delivered.await,
                Err(error) => {
                    tracing::warn!(partition, %error, "cannot append a claim");
                    None
                }
            };
            let Some(claim_offset) = offset else {
                self.pause(&mut backoff).await;
                continue;
            };
            self.context.metrics.claims.inc();
            tracing::info!(partition, %token, claim_offset, "claimed");
            {
                let mut status = self.status.lock().unwrap_or_else(PoisonError::into_inner);
                status.stage = Stage::Restoring;
                status.token = Some(token.0);
                status.claim_offset = Some(claim_offset);
            }
            self.next_offset.store(claim_offset + 1, Ordering::Release);
            loop {
                if self.stopping() {
                    return None;
                }
                let (source, restore) = self.restore(claim_offset).await;
                match restore {
                    Ok((state, restored)) => {
                        let metrics = &self.context.metrics;
                        metrics.restores.with_label_values(&[source]).inc();
                        metrics.restore_seconds.observe(restored.elapsed.as_secs_f64());
                        metrics.restored_events.inc_by(restored.valid);
                        metrics.restore_void_records.inc_by(restored.void);
                        self.status.lock().unwrap_or_else(PoisonError::into_inner).void_records +=
                            restored.void;
                        tracing::info!(
                            partition, claim_offset, valid = restored.valid, void = restored.void,
                            claims = restored.claims, elapsed = ?restored.elapsed, source, "restored"
                        );
                        self.restored_from = source;
                        return Some(Lane::new(partition, state, token, claim_offset));
                    }
                    Err(RestoreError::Rebuild(RebuildError::Undecodable { offset, error })) => {
                        tracing::error!(
                            partition, offset, %error,
                            "a valid record cannot be decoded: the partition is stopped until it can be"
                        );
                        self.context.metrics.stopped_partitions.inc();
                        self.stage(Stage::Stopped);
                        self.idle(STOPPED_RETRY).await;
                        self.stage(Stage::Restoring);
                        self.context.metrics.stopped_partitions.dec();
                    }
                    Err(error) => {
                        tracing::warn!(partition, %error, "restore failed; retrying");
                        self.context.metrics.restore_retries.inc();
                        self.pause(&mut backoff).await;
                    }
                }
            }
        }
    }

    /// The partition's state up to the claim at `claim_offset`, and where it came from: the
    /// standby when this instance stands by for the partition, else the log.
    async fn restore(&self, claim_offset: i64) -> (&'static str, Restore) {
        match self.context.standbys.take(self.partition, claim_offset).await {
            Some(restore) => ("standby", restore),
            None => ("log", self.context.restores.restore(self.partition, claim_offset).await),
        }
    }

    /// Serves one tenure until it ends.
    async fn serve(&mut self, mut lane: Lane<Caller>) -> End {
        let mut deliveries: FuturesOrdered<BoxFuture<'static, (u64, Option<i64>)>> = FuturesOrdered::new();
        let mut gap: Option<GapRead> = None;
        let retained: Vec<_> = self.retained.drain(..).collect();
        for (envelope, caller) in retained {
            if let Some(end) = self.decide(&mut lane, envelope, caller, &mut deliveries) {
                return end;
            }
        }
        let mut close_by: Option<tokio::time::Instant> = None;
        // Made once and re-armed only when the next hold deadline changes: a lane loops once per
        // command batch and report, and a timer made per loop would cost more than the decision.
        let mut expiry = std::pin::pin!(tokio::time::sleep(Duration::ZERO));
        let mut armed_for: Option<OffsetDateTime> = None;
        let mut stopped = std::pin::pin!(self.context.shutdown.clone().cancelled_owned());
        loop {
            if self.closing {
                if lane.is_settled() && gap.is_none() {
                    return self.abandon(lane, End::Closed);
                }
                close_by.get_or_insert_with(|| tokio::time::Instant::now() + CLOSE_GRACE);
            }
            let next_deadline = lane.next_deadline();
            if next_deadline != armed_for {
                if let Some(at) = next_deadline {
                    expiry.as_mut().reset(instant_of(at));
                }
                armed_for = next_deadline;
            }
            let timers = armed_for.is_some() && !self.closing;
            // Biased: reports first (they answer callers), then due expiries (never starved by a
            // steady stream of commands), then new commands.
            let progress = tokio::select! {
                biased;
                read = async {
                    match gap.as_mut() {
                        Some(read) => read.await,
                        None => futures::future::pending().await,
                    }
                }, if gap.is_some() => {
                    gap = None;
                    match read {
                        Ok((seq, offset, marks)) => lane.gap(seq, offset, &marks),
                        Err(error) => {
                            tracing::warn!(partition = self.partition, %error, "cannot read the records before an append");
                            return self.abandon(lane, End::Reclaim);
                        }
                    }
                }
                Some((seq, offset)) = deliveries.next(), if gap.is_none() => lane.delivered(seq, offset),
                () = &mut expiry, if timers => {
                    let appends = lane.expire_due(now_micros());
                    for append in appends {
                        self.send(&append, &mut deliveries);
                    }
                    continue;
                }
                () = &mut stopped, if !self.closing => {
                    self.closing = true;
                    continue;
                }
                () = async {
                    match close_by {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => futures::future::pending().await,
                    }
                }, if close_by.is_some() => {
                    tracing::warn!(partition = self.partition, "appends still unreported at close; their callers are undecided");
                    return self.abandon(lane, End::Closed);
                }
                input = self.rx.recv(), if !self.closing => {
                    match input {
                        Some(Input::Command { envelope, caller }) => {
                            if let Some(end) = self.decide(&mut lane, envelope, caller, &mut deliveries) {
                                return end;
                            }
                            for _ in 0..DRAIN {
                                match self.rx.try_recv() {
                                    Ok(Input::Command { envelope, caller }) => {
                                        if let Some(end) = self.decide(&mut lane, envelope, caller, &mut deliveries) {
                                            return end;
                                        }
                                    }
                                    Ok(Input::Close) => { self.closing = true; break; }
                                    Err(_) => break,
                                }
                            }
                        }
                        Some(Input::Close) | None => self.closing = true,
                    }
                    continue;
                }
            };
            if let Some(end) = self.settle(progress, &mut gap) {
                return self.abandon(lane, end);
            }
            self.next_offset.store(lane.last_valid() + 1, Ordering::Release);
        }
    }

    /// Decides one input; `Some` when the tenure must end at once.
    fn decide(
        &mut self,
        lane: &mut Lane<Caller>,
        envelope: CommandEnvelope,
        caller: Caller,
        deliveries: &mut FuturesOrdered<BoxFuture<'static, (u64, Option<i64>)>>,
    ) -> Option<End> {
        let caller = match caller {
            // The caller gave up waiting: nobody would hear the answer.
            Caller::Http(reply) if reply.is_closed() => return None,
            Caller::Topic { offset, envelope } => {
                self.topic.taken(offset);
                Caller::Topic { offset, envelope }
            }
            http => http,
        };
        let appends = match lane.decide(&envelope, caller, now_micros()) {
            Decided::Answer(caller, answer) => {
                if let Answer::Decided(outcome) = &answer
                    && matches!(outcome.verdict, Verdict::Accepted { events: 0, .. })
                {
                    self.count(outcome);
                }
                self.answer(caller, answer);
                return None;
            }
            Decided::Waiting => return None,
            Decided::Append(appends) => appends,
        };
        for append in appends {
            self.send(&append, deliveries);
        }
        None
    }

    /// Hands one record to its producer; a refusal is reported like a failed append, in order.
    fn send(
        &self,
        append: &core::Append,
        deliveries: &mut FuturesOrdered<BoxFuture<'static, (u64, Option<i64>)>>,
    ) {
        let seq = append.seq;
        match self.context.appender.append(self.partition, append) {
            Ok(delivered) => deliveries.push_back(delivered.map(move |offset| (seq, offset)).boxed()),
            Err(error) => {
                tracing::error!(partition = self.partition, seq, %error, "a record could not be handed to the producer");
                deliveries.push_back(futures::future::ready((seq, None)).boxed());
            }
        }
    }

    /// Gives the answers of `progress` and starts what comes next; `Some` when the tenure ends.
    fn settle(&mut self, progress: Progress<Caller>, gap: &mut Option<GapRead>) -> Option<End> {
        for (caller, answer) in progress.answers {
            self.answer(caller, answer);
        }
        for outcome in &progress.settled {
            self.count(outcome);
        }
        match progress.next {
            Next::Continue => None,
            Next::CheckGap { seq, from, to } => {
                self.context.metrics.gap_checks.inc();
                *gap = Some(self.read_gap(seq, from, to));
                None
            }
            Next::Reclaim => Some(End::Reclaim),
            Next::Drop => Some(End::Fenced),
        }
    }

    /// Ends the tenure: whoever still waits is undecided.
    fn abandon(&mut self, lane: Lane<Caller>, end: End) -> End {
        for (caller, answer) in lane.close() {
            self.answer(caller, answer);
        }
        end
    }

    /// Tells one caller.
    fn answer(&mut self, caller: Caller, answer: Answer) {
        match (caller, answer) {
            (Caller::Http(reply), answer) => {
                if answer == Answer::Undecided {
                    self.context.metrics.undecided.inc();
                }
                let _ = reply.send(Reply::Answer(answer));
            }
            (Caller::Topic { offset, envelope }, Answer::Decided(outcome)) => {
                self.publish(&envelope, &outcome);
                self.topic.answered(offset);
            }
            // Decided again after the reclaim: the caller on the other instance still waits.
            (Caller::Topic { offset, envelope }, Answer::Undecided) => {
                self.retained.push_back(((*envelope).clone(), Caller::Topic { offset, envelope }));
            }
        }
    }

    /// Publishes the outcome of a topic command to the replies partition its sender follows.
    fn publish(&self, envelope: &CommandEnvelope, outcome: &Outcome) {
        let Some(partition) = envelope.reply_to else { return };
        let Ok(payload) = serde_json::to_vec(outcome) else { return };
        let key = outcome.command_id.as_bytes().to_vec();
        let record =
            FutureRecord::to(&self.context.replies_topic).partition(partition).key(&key).payload(&payload);
        if let Err((error, _)) = self.context.replies.send_result(record) {
            // The caller falls back to polling, or retries with its key: the outcome is remembered.
            tracing::warn!(%error, command_id = %outcome.command_id, "cannot publish an outcome");
        }
    }

    fn count(&self, outcome: &Outcome) {
        self.context
            .metrics
            .decisions
            .with_label_values(&[outcome.command.as_str(), outcome_label(&outcome.verdict)])
            .inc();
    }

    /// Reads the marks of the records at `from..to`.
    fn read_gap(&self, seq: u64, from: i64, to: i64) -> GapRead {
        let (reader, topic, partition) =
            (self.context.reader.clone(), self.context.appender.topic().to_owned(), self.partition);
        async move {
            let read = tokio::task::spawn_blocking(move || {
                let mut assignment = TopicPartitionList::new();
                assignment.add_partition_offset(&topic, partition, Offset::Offset(from))?;
                let ends = HashMap::from([(partition, to)]);
                let mut marks = Vec::new();
                read_until(&reader, &assignment, &ends, Duration::from_secs(30), |message| {
                    marks.push(RecordHeaders::read(message).mark);
                })?;
                Ok::<_, KafkaError>(marks)
            })
            .await
            .unwrap_or(Err(KafkaError::Canceled))?;
            Ok((seq, to, read))
        }
        .boxed()
    }

    fn stage(&self, stage: Stage) {
        self.status.lock().unwrap_or_else(PoisonError::into_inner).stage = stage;
    }

    /// Tells every instance (and this one's directory at once) about the tenure
    /// `(token, claim_offset)`.
    fn announce(&self, (token, claim_offset): (Token, i64), tenure: Tenure) {
        let announcement = Announcement {
            v: ANNOUNCEMENT_VERSION,
            partition: self.partition,
            owner: self.context.instance.clone(),
            address: self.context.address.clone(),
            token: token.0,
            claim_offset,
            tenure,
        };
        announce(&self.context.replies, &self.context.owners_topic, &announcement);
        self.context.directory.learn(announcement);
    }

    /// Asks the group member whether the group still counts this instance as the owner.
    async fn still_owner(&self) -> bool {
        let (answer, proof) = oneshot::channel();
        let asked = self.context.events.send(LaneEvent::StillOwner { partition: self.partition, answer });
        asked.is_ok() && matches!(tokio::time::timeout(Duration::from_secs(30), proof).await, Ok(Ok(true)))
    }

    fn stopping(&self) -> bool {
        self.closing || self.context.shutdown.is_cancelled()
    }

    /// Waits `backoff` (doubling it, up to [`MAX_BACKOFF`]) unless the lane is closed first.
    async fn pause(&mut self, backoff: &mut Duration) {
        self.idle(*backoff).await;
        *backoff = (*backoff * 2).min(MAX_BACKOFF);
    }

    /// Waits up to `duration`, ending early when the lane is closed. Inputs that arrive meanwhile
    /// stay queued, except a close.
    async fn idle(&mut self, duration: Duration) {
        let until = tokio::time::Instant::now() + duration;
        while !self.stopping() {
            tokio::select! {
                () = tokio::time::sleep_until(until) => return,
                () = self.context.shutdown.cancelled() => return,
                // Commands wait for the lane; only a close is acted on now.
                input = self.rx.recv() => match input {
                    Some(Input::Command { envelope, caller }) => self.retained.push_back((envelope, caller)),
                    Some(Input::Close) | None => self.closing = true,
                },
            }
        }
    }
}

/// The runtime instant of the wall-clock time `at` (now when it has passed).
fn instant_of(at: OffsetDateTime) -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::try_from(at - OffsetDateTime::now_utc()).unwrap_or(Duration::ZERO)
}

/// The current time at the precision events are stored with (microseconds), so state rebuilt
/// from the log equals the state a decision was made in.
fn now_micros() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1_000 * 1_000).unwrap_or(now)
}
