//! The reader thread of [`super::Standbys`]: one consumer outside any group, assigned by hand
//! every followed partition whose fold goes on, polled in a loop between requests. It feeds
//! each record to its partition's [`Follower`], pauses partitions waiting for the schema
//! registry, and answers lanes waiting for a partition's state once it can.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use holdfast_platform::codec::EventCodec;
use holdfast_platform::headers::RecordHeaders;
use holdfast_platform::replay::decode;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::statistics::Statistics;
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};
use time::OffsetDateTime;

use super::follower::{Follower, Handover};
use super::{Request, StandbyStatus, Taker};
use crate::lane::restore::{RestoreError, Restored};
use crate::lane::state::Memory;

/// How long a poll waits for records before the reader looks at its requests again.
const POLL: Duration = Duration::from_millis(20);
/// How often the reader publishes its status, drops old states kept before claims and
/// retries what failed.
const HOUSEKEEPING: Duration = Duration::from_millis(500);
/// Claims appended at most this long before they are read keep the state before them...
const RECENT: Duration = Duration::from_secs(30);
/// ...for this long after they are read: an owner asks for it right after its claim is stored.
const KEEP: Duration = Duration::from_secs(30);

/// The consumer's context: the partitions' high watermarks from librdkafka's statistics.
#[derive(Debug)]
struct Ends {
    topic: String,
    high: Mutex<HashMap<i32, i64>>,
}

impl ClientContext for Ends {
    /// Reaching a partition's end is no error for a standby, which is at its end most of the
    /// time: librdkafka reports some of them as global errors, which would be logged at ERROR
    /// by the default, thousands a minute.
    fn error(&self, error: KafkaError, reason: &str) {
        match error {
            KafkaError::Global(RDKafkaErrorCode::PartitionEOF) => {
                tracing::trace!(reason, "standby reader at the end of a partition");
            }
            error => tracing::error!(%error, reason, "standby reader: librdkafka reports an error"),
        }
    }

    fn stats(&self, statistics: Statistics) {
        let Some(topic) = statistics.topics.get(&self.topic) else { return };
        let mut high = self.high.lock().unwrap_or_else(PoisonError::into_inner);
        // Partition -1 is librdkafka's "unassigned" bucket; -1 offsets are not known yet.
        high.extend(
            topic
                .partitions
                .values()
                .filter(|p| p.partition >= 0 && p.hi_offset >= 0)
                .map(|p| (p.partition, p.hi_offset)),
        );
    }
}

impl ConsumerContext for Ends {}

/// The reader thread.
pub(super) struct Reader {
    config: ClientConfig,
    topic: String,
    codec: Arc<EventCodec>,
    runtime: tokio::runtime::Handle,
    memory: Memory,
    /// Made when there is first something to follow.
    consumer: Option<BaseConsumer<Ends>>,
    followers: BTreeMap<i32, Follower>,
    takers: HashMap<i32, Taker>,
    /// Partitions the consumer is assigned, and those of them paused.
    assigned: BTreeSet<i32>,
    paused: BTreeSet<i32>,
    /// The partitions' ends as last seen (statistics, or reaching them).
    ends: HashMap<i32, i64>,
    status: Arc<Mutex<Vec<StandbyStatus>>>,
    housekept: Instant,
}

/// A record taken off the consumer.
struct Read {
    partition: i32,
    offset: i64,
    headers: RecordHeaders,
    payload: Vec<u8>,
    recent: bool,
}

impl Read {
    fn of(message: &impl Message) -> Self {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let age = message
            .timestamp()
            .to_millis()
            .map(|at| now.as_millis().saturating_sub(u128::try_from(at).unwrap_or(0)));
        Self {
            partition: message.partition(),
            offset: message.offset(),
            headers: RecordHeaders::read(message),
            payload: message.payload().unwrap_or_default().to_vec(),
            recent: age.is_none_or(|age| age < RECENT.as_millis()),
        }
    }
}

impl Reader {
    /// A reader of `topic` with `config` that publishes its followers' status to `status`.
    pub(super) fn new(
        config: ClientConfig,
        topic: &str,
        codec: Arc<EventCodec>,
        runtime: tokio::runtime::Handle,
        memory: Memory,
        status: Arc<Mutex<Vec<StandbyStatus>>>,
    ) -> Self {
        Self {
            config,
            topic: topic.to_owned(),
            codec,
            runtime,
            memory,
            consumer: None,
            followers: BTreeMap::new(),
            takers: HashMap::new(),
            assigned: BTreeSet::new(),
            paused: BTreeSet::new(),
            ends: HashMap::new(),
            status,
            housekept: Instant::now(),
        }
    }

    /// Serves `requests` and follows partitions until every sender is gone.
    pub(super) fn run(mut self, requests: &Receiver<Request>) {
        loop {
            loop {
                // Nothing to read: sleep until asked.
                let request = if self.followers.is_empty() {
                    requests.recv().map_err(|_| TryRecvError::Disconnected)
                } else {
                    requests.try_recv()
                };
                match request {
                    Ok(Request::Follow(partitions)) => self.follow(&partitions),
                    Ok(Request::Take(taker)) => self.take(taker),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => return,
                }
            }
            self.poll();
            if self.housekept.elapsed() >= HOUSEKEEPING {
                self.housekeep();
            }
        }
    }

    fn follow(&mut self, partitions: &BTreeSet<i32>) {
        let now = OffsetDateTime::now_utc();
        self.followers.retain(|partition, _| partitions.contains(partition));
        // Their answer channels close: the lanes restore from the log.
        self.takers.retain(|partition, _| partitions.contains(partition));
        for &partition in partitions {
            self.followers.entry(partition).or_insert_with(|| Follower::new(partition, self.memory, now));
        }
        tracing::info!(?partitions, "standing by");
        self.sync();
        self.publish();
    }

    fn take(&mut self, taker: Taker) {
        let Some(follower) = self.followers.get(&taker.partition) else {
            let _ = taker.answer.send(None);
            return;
        };
        match follower.handover(taker.claim) {
            Handover::Ready => self.hand_over(taker, true),
            Handover::Passed => self.hand_over(taker, false),
            Handover::Wait => {
                tracing::info!(
                    partition = taker.partition,
                    claim_offset = taker.claim,
                    position = follower.folded(),
                    "reading on to the claim"
                );
                // Asked twice (an old lane and its successor): the older one restores from the log.
                if let Some(older) = self.takers.insert(taker.partition, taker) {
                    let _ = older.answer.send(None);
                }
            }
        }
    }

    /// Answers `taker` — with the state when `ready`, else `None` — and stops following its
    /// partition.
    fn hand_over(&mut self, taker: Taker, ready: bool) {
        let (partition, claim_offset) = (taker.partition, taker.claim);
        let Some(follower) = self.followers.remove(&partition) else {
            let _ = taker.answer.send(None);
            return;
        };
        let result = if ready {
            let handed = follower.hand_over(claim_offset, OffsetDateTime::now_utc());
            tracing::info!(partition, claim_offset, stopped = handed.is_err(), "standby handed over");
            Some(
                handed
                    .map(|rebuild| Restored::hand_over(rebuild, taker.started.elapsed()))
                    .map_err(RestoreError::from),
            )
        } else {
            tracing::info!(
                partition,
                claim_offset,
                "the standby folded past the claim; restoring from the log"
            );
            None
        };
        self.sync();
        self.publish();
        let _ = taker.answer.send(result);
    }

    fn poll(&mut self) {
        let Some(consumer) = self.consumer.as_ref().filter(|_| !self.assigned.is_empty()) else {
            std::thread::sleep(POLL);
            return;
        };
        let read = match consumer.poll(POLL) {
            None => return,
            Some(Ok(message)) => Read::of(&message),
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                if let Some(follower) = self.followers.get(&partition) {
                    self.ends.insert(partition, follower.next_read());
                }
                return;
            }
            // librdkafka retries on its own (the context logs what it reports).
            Some(Err(error)) => {
                tracing::debug!(%error, "standby read failed; reading on");
                return;
            }
        };
        let Some(follower) = self.followers.get_mut(&read.partition) else { return };
        follower.read(read.offset, read.headers.mark, read.payload, read.headers.fingerprint, read.recent);
        self.fold(read.partition);
    }

    /// Folds what `partition` has read, up to the claim of a lane waiting for it, and answers
    /// that lane once it can be.
    fn fold(&mut self, partition: i32) {
        let Some(follower) = self.followers.get_mut(&partition) else { return };
        let until = self.takers.get(&partition).map(|taker| taker.claim);
        let before = (follower.is_waiting(), follower.is_stopped());
        let (codec, runtime) = (&self.codec, &self.runtime);
        let outage = follower.fold(until, Instant::now(), |bytes| decode(codec, runtime, bytes));
        if let Some(error) = outage.filter(|_| !before.0) {
            tracing::warn!(partition, %error, "schema registry unreachable; the standby waits for it");
        }
        let after = (follower.is_waiting(), follower.is_stopped());
        if after.1 && !before.1 {
            tracing::warn!(
                partition,
                position = follower.folded(),
                "a valid record cannot be decoded: the standby of the partition stops there"
            );
        }
        let handover = until.map(|claim| follower.handover(claim));
        if let Some(handover @ (Handover::Ready | Handover::Passed)) = handover
            && let Some(taker) = self.takers.remove(&partition)
        {
            self.hand_over(taker, handover == Handover::Ready);
        } else if before != after {
            self.sync();
        }
    }

    /// Retries what waits, drops old states kept before claims, publishes the status.
    fn housekeep(&mut self) {
        let now = Instant::now();
        self.housekept = now;
        let waiting: Vec<i32> =
            self.followers.iter().filter(|(_, f)| f.is_waiting()).map(|(p, _)| *p).collect();
        for partition in waiting {
            self.fold(partition);
        }
        for follower in self.followers.values_mut() {
            follower.expire(now, KEEP);
        }
        if let Some(consumer) = &self.consumer {
            let high = consumer.context().high.lock().unwrap_or_else(PoisonError::into_inner);
            for (&partition, &end) in high.iter() {
                let known = self.ends.entry(partition).or_insert(end);
                *known = (*known).max(end);
            }
        }
        self.sync();
        self.publish();
    }

    /// Assigns the consumer the partitions whose fold goes on, and pauses those waiting for the
    /// registry (reading on would only fill their queues).
    fn sync(&mut self) {
        let wanted: BTreeSet<i32> =
            self.followers.iter().filter(|(_, f)| !f.is_stopped()).map(|(p, _)| *p).collect();
        let waiting: BTreeSet<i32> =
            self.followers.iter().filter(|(_, f)| f.is_waiting()).map(|(p, _)| *p).collect();
        if wanted == self.assigned && waiting == self.paused {
            return;
        }
        if self.consumer.is_none() {
            let ends = Ends { topic: self.topic.clone(), high: Mutex::default() };
            match self.config.create_with_context::<_, BaseConsumer<Ends>>(ends) {
                Ok(consumer) => {
                    // Leaders known before the first assignment spare a wait for librdkafka's
                    // offset-query retry timer.
                    let _ = consumer.fetch_metadata(Some(&self.topic), Duration::from_secs(10));
                    self.consumer = Some(consumer);
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot create the standby reader; trying again");
                    return;
                }
            }
        }
        let Some(consumer) = &self.consumer else { return };
        let changes = || -> Result<(), KafkaError> {
            let mut gone = TopicPartitionList::new();
            for &partition in self.assigned.difference(&wanted) {
                gone.add_partition(&self.topic, partition);
            }
            if gone.count() > 0 {
                consumer.incremental_unassign(&gone)?;
            }
            let mut new = TopicPartitionList::new();
            for &partition in wanted.difference(&self.assigned) {
                let next = self.followers.get(&partition).map_or(0, Follower::next_read);
                let offset = if next == 0 { Offset::Beginning } else { Offset::Offset(next) };
                new.add_partition_offset(&self.topic, partition, offset)?;
            }
            if new.count() > 0 {
                consumer.incremental_assign(&new)?;
            }
            Ok(())
        };
        if let Err(error) = changes() {
            tracing::warn!(%error, "cannot change the standby reader's partitions; trying again");
            return;
        }
        self.assigned = wanted;
        let waiting: BTreeSet<i32> = waiting.intersection(&self.assigned).copied().collect();
        self.paused.retain(|partition| self.assigned.contains(partition));
        let list = |partitions: &mut dyn Iterator<Item = &i32>| {
            let mut list = TopicPartitionList::new();
            for &partition in partitions {
                list.add_partition(&self.topic, partition);
            }
            list
        };
        let pause = list(&mut waiting.difference(&self.paused));
        let resume = list(&mut self.paused.difference(&waiting));
        let done = (pause.count() == 0 || consumer.pause(&pause).is_ok())
            && (resume.count() == 0 || consumer.resume(&resume).is_ok());
        if done {
            self.paused = waiting;
        }
    }

    fn publish(&self) {
        let status = self
            .followers
            .iter()
            .map(|(&partition, follower)| {
                let (valid_records, void_records) = follower.counts();
                StandbyStatus {
                    partition,
                    position: follower.folded(),
                    lag: self.ends.get(&partition).map(|end| (end - follower.folded()).max(0)),
                    void_records,
                    valid_records,
                    awaiting_schema: follower.is_waiting(),
                    stopped: follower.is_stopped(),
                }
            })
            .collect();
        *self.status.lock().unwrap_or_else(PoisonError::into_inner) = status;
    }
}
