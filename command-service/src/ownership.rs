//! The group member: this instance's place in the consumer group on the commands topic.
//!
//! Being assigned partition *p* makes the instance the candidate owner of *p*; the lane it
//! starts claims *p* in the events log, and only the log decides who the owner is. The member
//! runs on a thread of its own (librdkafka's rebalance callbacks run inside `poll`): it starts
//! and closes lanes as the assignment changes, resumes a partition's commands once its lane is
//! ready, hands each command read from the topic to its lane, and commits, every second, the
//! offsets below which every command is answered. Commands are consumed at least once; lanes
//! recognise a repeat by its command id.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use holdfast_platform::kafka::consumer_config;
use holdfast_platform::{KafkaArgs, Shutdown};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use crate::envelope::CommandEnvelope;
use crate::lane::{self, Caller, LaneContext, LaneEvent};
use crate::owners::Owners;
use crate::rebalance::{AssignmentChange, RebalanceHook};

/// How often answered offsets are committed.
const COMMIT_EVERY: Duration = Duration::from_secs(1);

/// Settings of the group member.
#[derive(Debug, Clone)]
pub struct MemberSettings {
    /// Kafka connection.
    pub kafka: KafkaArgs,
    /// Client id of the consumer.
    pub client_id: String,
    /// The commands topic.
    pub topic: String,
    /// The consumer group of every instance.
    pub group_id: String,
    /// How soon a silent member loses its partitions.
    pub session_timeout: Duration,
}

/// Runs the member until `shutdown`, then closes every lane. Blocking: run it on a thread of its
/// own; lanes are spawned on `runtime`. `joined` is set once the group gave the member its first
/// assignment (possibly empty).
///
/// # Errors
/// When the consumer cannot be created or subscribed.
pub fn run(
    settings: &MemberSettings,
    owners: &Owners,
    context: &Arc<LaneContext>,
    events: &mpsc::Receiver<LaneEvent>,
    runtime: &tokio::runtime::Handle,
    joined: &AtomicBool,
    shutdown: &Shutdown,
) -> Result<(), KafkaError> {
    let (changes_tx, changes) = mpsc::channel();
    let mut config = consumer_config(&settings.kafka, &settings.client_id, &settings.group_id);
    config
        .set("session.timeout.ms", settings.session_timeout.as_millis().to_string())
        .set("heartbeat.interval.ms", (settings.session_timeout.as_millis() / 4).max(100).to_string())
        .set("max.poll.interval.ms", "300000");
    let consumer: BaseConsumer<RebalanceHook> = config.create_with_context(RebalanceHook::new(changes_tx))?;
    consumer.subscribe(&[settings.topic.as_str()])?;
    let _runtime = runtime.enter();
    let mut member = Member {
        settings,
        consumer: &consumer,
        owners,
        context,
        refence: HashMap::new(),
        committed: HashMap::new(),
    };
    let subscribed = Instant::now();
    let mut committed_at = Instant::now();
    tracing::info!(group = %settings.group_id, "group member started");
    while !shutdown.is_cancelled() {
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            match message {
                Ok(message) => member.route(&message),
                Err(error) => tracing::warn!(%error, "commands consumer error"),
            }
        }
        for change in changes.try_iter() {
            joined.store(true, Ordering::Release);
            member.change(change);
        }
        if subscribed.elapsed() > settings.session_timeout * 3 {
            // Alone in a group with more members than partitions, it may never be assigned any.
            joined.store(true, Ordering::Release);
        }
        for event in events.try_iter() {
            member.lane_event(event);
        }
        member.claim_again_when_due();
        if committed_at.elapsed() >= COMMIT_EVERY {
            member.commit(CommitMode::Async);
            committed_at = Instant::now();
        }
    }
    tracing::info!("group member stopping");
    for (_, lane) in owners.all() {
        lane.close();
    }
    context.tasks.close();
    // The lanes answer what is in flight; wait for them (bounded by their grace) before the
    // last commit, so it covers what they answered.
    let _ = runtime.block_on(tokio::time::timeout(Duration::from_secs(10), context.tasks.wait()));
    member.commit(CommitMode::Sync);
    consumer.unsubscribe();
    Ok(())
}

/// The member's loop state.
struct Member<'a> {
    settings: &'a MemberSettings,
    consumer: &'a BaseConsumer<RebalanceHook>,
    owners: &'a Owners,
    context: &'a Arc<LaneContext>,
    /// Partitions whose lane was fenced, and when to claim them again if still assigned.
    refence: HashMap<i32, Instant>,
    /// The offsets last committed, so an idle instance commits nothing.
    committed: HashMap<i32, i64>,
}

impl Member<'_> {
    /// Hands a command read from the topic to its partition's lane.
    fn route(&self, message: &rdkafka::message::BorrowedMessage<'_>) {
        let (partition, offset) = (message.partition(), message.offset());
        let Some(envelope) =
            message.payload().and_then(|b| serde_json::from_slice::<CommandEnvelope>(b).ok())
        else {
            tracing::error!(partition, offset, "undecodable command skipped");
            return;
        };
        let Some(lane) = self.owners.get(partition) else { return };
        let caller = Caller::Topic { offset, envelope: Box::new(envelope.clone()) };
        if lane.send(envelope, caller).is_err() {
            tracing::debug!(partition, offset, "the lane has ended; its next owner reads the command again");
        }
    }

    fn change(&mut self, change: AssignmentChange) {
        match change {
            AssignmentChange::Assigned(partitions) => {
                for partition in partitions {
                    self.refence.remove(&partition);
                    self.start(partition);
                }
            }
            AssignmentChange::Revoked(partitions) => {
                self.commit(CommitMode::Async);
                for partition in partitions {
                    self.refence.remove(&partition);
                    if let Some(lane) = self.owners.remove(partition) {
                        lane.close();
                    }
                }
            }
        }
    }

    fn start(&self, partition: i32) {
        if let Some(old) = self.owners.remove(partition) {
            old.close();
        }
        self.owners.insert(partition, lane::spawn(partition, Arc::clone(self.context)));
    }

    fn lane_event(&mut self, event: LaneEvent) {
        match event {
            LaneEvent::Ready(partition) => {
                let mut list = TopicPartitionList::new();
                list.add_partition(&self.settings.topic, partition);
                // Paused since its assignment; it resumes at the committed offset.
                if let Err(error) = self.consumer.resume(&list) {
                    tracing::warn!(partition, %error, "cannot resume a partition's commands");
                }
            }
            LaneEvent::StillOwner { partition, answer } => {
                let _ = answer.send(self.still_owner(partition));
            }
            LaneEvent::Fenced(partition) => {
                // Still assigned here means a newer claim came from an instance the group
                // no longer counts (a zombie that woke up): claim again, but not at once, so two
                // instances do not trade claims while the group settles.
                self.owners.remove(partition);
                let mut list = TopicPartitionList::new();
                list.add_partition(&self.settings.topic, partition);
                let _ = self.consumer.pause(&list);
                self.refence.insert(partition, Instant::now() + self.settings.session_timeout);
            }
        }
    }

    /// Whether the group still counts this member as the owner of `partition`: it must still be
    /// assigned here, and a synchronous offset commit for it must succeed (the coordinator
    /// refuses commits from a member it expelled or from a stale generation).
    fn still_owner(&mut self, partition: i32) -> bool {
        let assigned = self.consumer.assignment().unwrap_or_default();
        if assigned.find_partition(&self.settings.topic, partition).is_none() {
            return false;
        }
        let offset = self
            .owners
            .get(partition)
            .and_then(|lane| lane.progress())
            .or_else(|| self.committed_offset(partition))
            .unwrap_or(0);
        let mut list = TopicPartitionList::new();
        if list.add_partition_offset(&self.settings.topic, partition, Offset::Offset(offset)).is_err() {
            return false;
        }
        match self.consumer.commit(&list, CommitMode::Sync) {
            Ok(()) => {
                self.committed.insert(partition, offset);
                true
            }
            Err(error) => {
                tracing::warn!(partition, %error, "the group did not confirm this member's ownership");
                false
            }
        }
    }

    /// The offset committed for `partition`, if any.
    fn committed_offset(&self, partition: i32) -> Option<i64> {
        let mut list = TopicPartitionList::new();
        list.add_partition(&self.settings.topic, partition);
        let committed = self.consumer.committed_offsets(list, Duration::from_secs(10)).ok()?;
        match committed.find_partition(&self.settings.topic, partition)?.offset() {
            Offset::Offset(offset) => Some(offset),
            _ => None,
        }
    }

    fn claim_again_when_due(&mut self) {
        let now = Instant::now();
        let due: Vec<i32> = self.refence.iter().filter(|(_, at)| **at <= now).map(|(p, _)| *p).collect();
        if due.is_empty() {
            return;
        }
        for partition in due {
            self.refence.remove(&partition);
            let assigned = self.consumer.assignment().unwrap_or_default();
            if assigned.find_partition(&self.settings.topic, partition).is_none() {
                continue;
            }
            if self.still_owner(partition) {
                tracing::info!(partition, "still the owner after being fenced; claiming again");
                self.start(partition);
            } else {
                self.refence.insert(partition, Instant::now() + self.settings.session_timeout);
            }
        }
    }

    /// Commits, for every lane that moved, the offset below which every command is answered.
    fn commit(&mut self, mode: CommitMode) {
        let mut list = TopicPartitionList::new();
        let mut moved = Vec::new();
        for (partition, lane) in self.owners.all() {
            if let Some(offset) = lane.progress().filter(|o| self.committed.get(&partition) != Some(o)) {
                let _ = list.add_partition_offset(&self.settings.topic, partition, Offset::Offset(offset));
                moved.push((partition, offset));
            }
        }
        if list.count() == 0 {
            return;
        }
        match self.consumer.commit(&list, mode) {
            Ok(()) => self.committed.extend(moved),
            Err(error) => {
                tracing::debug!(%error, "committing answered offsets failed; they are committed again later")
            }
        }
    }
}
