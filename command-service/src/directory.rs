//! The owners directory: which instance owns each partition of the events log and where its
//! command API listens, as every instance sees it.
//!
//! A lane announces its tenure on the compacted owners topic (key: the partition) when it is
//! ready to decide, and again when it gives the partition up. Every instance reads the topic
//! from its start and keeps tailing it. The directory is a routing hint, never authority: the
//! claims in the events log decide who owns a partition, and an owner refuses commands for a
//! partition it does not own (421), after which the forwarder looks again or queues the
//! command on the commands topic.
//!
//! Announcements can arrive late or twice (a paused instance waking up, a retried produce), so
//! the directory keeps, per partition, the announcement of the latest claim: claims in one
//! partition are ordered by their offsets, and a later claim always wins.

use std::collections::{BTreeSet, HashMap};
use std::sync::{PoisonError, RwLock};
use std::time::Duration;

use holdfast_platform::kafka::reader_config;
use holdfast_platform::producer::Producer;
use holdfast_platform::{KafkaArgs, Shutdown};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::FutureRecord;
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// Version of the announcement format.
pub const ANNOUNCEMENT_VERSION: u16 = 1;

/// What a tenure is doing, as announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Tenure {
    /// Claimed and restored: the owner decides commands for the partition.
    Ready,
    /// Given up (revoked, shutting down, or about to claim again): nobody decides there until
    /// the next claim is announced.
    Released,
}

/// One record of the owners topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Announcement {
    /// Format version ([`ANNOUNCEMENT_VERSION`]).
    pub v: u16,
    /// The events partition.
    pub partition: i32,
    /// The instance that claimed it.
    pub owner: String,
    /// Where that instance's command API listens (`host:port`), if it has one.
    pub address: Option<String>,
    /// The claim's writer token.
    pub token: Uuid,
    /// The claim's offset in the events partition.
    pub claim_offset: i64,
    /// What the tenure is doing.
    pub tenure: Tenure,
}

impl Announcement {
    /// Whether this announcement says more than `known` about the same partition: a later
    /// claim, or the release of the same one.
    #[must_use]
    pub fn supersedes(&self, known: &Self) -> bool {
        self.claim_offset > known.claim_offset
            || (self.claim_offset == known.claim_offset
                && self.token == known.token
                && self.tenure == Tenure::Released
                && known.tenure == Tenure::Ready)
    }
}

/// Where to send a partition's commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The owner's instance id.
    pub owner: String,
    /// Its command API.
    pub address: String,
    /// The claim offset of the tenure the route was learnt from.
    pub claim_offset: i64,
}

/// The latest announcement of every partition.
#[derive(Debug, Default)]
pub struct Directory {
    entries: RwLock<HashMap<i32, Announcement>>,
}

impl Directory {
    /// Takes `announcement` in if it supersedes what is known of its partition; returns whether
    /// it did.
    pub fn learn(&self, announcement: Announcement) -> bool {
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        match entries.get(&announcement.partition) {
            Some(known) if !announcement.supersedes(known) => false,
            _ => {
                entries.insert(announcement.partition, announcement);
                true
            }
        }
    }

    /// The ready owner of `partition` and its address, unless it is `me` or has no address.
    #[must_use]
    pub fn route(&self, partition: i32, me: &str) -> Option<Route> {
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        let known = entries.get(&partition).filter(|a| a.tenure == Tenure::Ready && a.owner != me)?;
        Some(Route {
            owner: known.owner.clone(),
            address: known.address.clone()?,
            claim_offset: known.claim_offset,
        })
    }

    /// Every partition's latest announcement, by partition.
    #[must_use]
    pub fn snapshot(&self) -> Vec<Announcement> {
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        let mut all: Vec<Announcement> = entries.values().cloned().collect();
        all.sort_by_key(|a| a.partition);
        all
    }

    /// The partitions `me` stands by for: of every partition owned by another instance, or
    /// released by it, those for which `me` ranks among the first `count` of the other known
    /// instances (rendezvous hashing over the instances that own partitions), so that each
    /// partition has `count` standbys and they spread evenly. A released partition is still
    /// stood by for: a graceful handover releases its partitions before the group assigns them
    /// anew, and its standby is the likeliest next owner.
    #[must_use]
    pub fn standing_by(&self, me: &str, count: usize) -> BTreeSet<i32> {
        if count == 0 {
            return BTreeSet::new();
        }
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        let mut instances: BTreeSet<&str> =
            entries.values().filter(|a| a.tenure == Tenure::Ready).map(|a| a.owner.as_str()).collect();
        instances.insert(me);
        entries
            .values()
            .filter(|a| a.owner != me)
            .filter(|a| {
                let mut ranked: Vec<(u64, &str)> = instances
                    .iter()
                    .filter(|i| **i != a.owner)
                    .map(|i| (rendezvous(a.partition, i), *i))
                    .collect();
                ranked.sort_unstable_by(|x, y| y.cmp(x));
                ranked.iter().take(count).any(|(_, i)| *i == me)
            })
            .map(|a| a.partition)
            .collect()
    }
}

/// The weight of `instance` for `partition` (FNV-1a over both, then mixed): stable across
/// processes and builds, unlike the standard library's hasher.
fn rendezvous(partition: i32, instance: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in partition.to_be_bytes().iter().chain(instance.as_bytes()) {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    // A final avalanche (SplitMix64's), so close inputs do not give ordered weights.
    hash = (hash ^ (hash >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    hash = (hash ^ (hash >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    hash ^ (hash >> 31)
}

/// Publishes `announcement` on the owners topic. Best effort: a lost announcement only makes
/// other instances route through the commands topic, or be refused once by a former owner.
pub fn announce(producer: &Producer, topic: &str, announcement: &Announcement) {
    let Ok(payload) = serde_json::to_vec(announcement) else { return };
    let key = announcement.partition.to_string();
    let record = FutureRecord::to(topic).partition(0).key(&key).payload(&payload);
    if let Err((error, _)) = producer.send_result(record) {
        tracing::warn!(%error, partition = announcement.partition, "cannot announce a tenure");
    }
}

/// Reads the owners topic from its start into `directory` until `shutdown`. Blocking: run it
/// on a thread of its own. Records that do not parse are skipped (they route nothing).
///
/// # Errors
/// When the consumer cannot be created or assigned.
pub fn follow(
    kafka: &KafkaArgs,
    client_id: &str,
    topic: &str,
    directory: &Directory,
    shutdown: &Shutdown,
) -> Result<(), KafkaError> {
    let mut config = reader_config(kafka, client_id);
    // A tail, not a bulk read: announcements show within a tenth of a second.
    config.set("fetch.wait.max.ms", "100").set("enable.partition.eof", "false");
    let consumer: BaseConsumer = config.create()?;
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(topic, 0, Offset::Beginning)?;
    consumer.assign(&assignment)?;
    while !shutdown.is_cancelled() {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                let parsed = message.payload().and_then(|b| serde_json::from_slice::<Announcement>(b).ok());
                match parsed {
                    Some(announcement) => {
                        directory.learn(announcement);
                    }
                    None => tracing::debug!(
                        offset = message.offset(),
                        "owners record skipped: not an announcement"
                    ),
                }
            }
            Some(Err(error)) => tracing::warn!(%error, "owners topic read failed"),
            None => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn announced(partition: i32, owner: &str, claim_offset: i64, tenure: Tenure) -> Announcement {
        Announcement {
            v: ANNOUNCEMENT_VERSION,
            partition,
            owner: owner.to_owned(),
            address: Some(format!("{owner}:8080")),
            token: Uuid::new_v4(),
            claim_offset,
            tenure,
        }
    }

    #[test]
    fn a_later_claim_wins_and_an_earlier_one_arriving_late_changes_nothing() {
        let directory = Directory::default();
        assert!(directory.learn(announced(3, "a", 10, Tenure::Ready)));
        assert!(directory.learn(announced(3, "b", 12, Tenure::Ready)));
        assert!(!directory.learn(announced(3, "a", 10, Tenure::Ready)), "a zombie's late announcement");
        assert_eq!(directory.route(3, "c").map(|r| r.owner), Some("b".to_owned()));
        assert_eq!(directory.route(3, "b"), None, "never routed to itself");
        assert_eq!(directory.route(4, "c"), None, "unknown partition");
    }

    #[test]
    fn a_release_removes_the_route_only_for_its_own_tenure() {
        let directory = Directory::default();
        let ready = announced(5, "a", 20, Tenure::Ready);
        directory.learn(ready.clone());
        let other_tenure = Announcement { token: Uuid::new_v4(), tenure: Tenure::Released, ..ready.clone() };
        assert!(!directory.learn(other_tenure), "a release of another token at the same offset");
        assert!(directory.route(5, "c").is_some());
        assert!(directory.learn(Announcement { tenure: Tenure::Released, ..ready.clone() }));
        assert_eq!(directory.route(5, "c"), None);
        assert!(!directory.learn(ready), "ready again for a released tenure");
    }

    #[test]
    fn each_partition_gets_the_asked_number_of_standbys_spread_over_the_instances() {
        let directory = Directory::default();
        let owners = ["a", "b", "c", "d"];
        for partition in 0..480 {
            directory.learn(announced(partition, owners[partition as usize % 4], 1, Tenure::Ready));
        }
        for count in [1, 2] {
            let by: Vec<BTreeSet<i32>> = owners.iter().map(|me| directory.standing_by(me, count)).collect();
            for partition in 0..480 {
                let standbys = by.iter().filter(|set| set.contains(&partition)).count();
                assert_eq!(standbys, count, "partition {partition}");
                let owner = partition as usize % 4;
                assert!(!by[owner].contains(&partition), "an owner is not its own standby");
            }
            for set in &by {
                // 480 × count standbys over 4 instances: 120 × count each, give or take.
                let expected = 120 * count;
                assert!(set.len().abs_diff(expected) < expected / 4, "{} of {expected}", set.len());
            }
        }
        assert!(directory.standing_by("a", 0).is_empty());
        let lone = Directory::default();
        lone.learn(announced(0, "a", 1, Tenure::Ready));
        assert_eq!(lone.standing_by("b", 1), BTreeSet::from([0]), "with two instances, the other one");
    }

    #[test]
    fn a_released_partition_keeps_its_standby_until_it_is_owned_again() {
        let directory = Directory::default();
        let owners = ["a", "b", "c"];
        for partition in 0..30 {
            directory.learn(announced(partition, owners[partition as usize % 3], 1, Tenure::Ready));
        }
        let before: Vec<BTreeSet<i32>> = owners.iter().map(|me| directory.standing_by(me, 1)).collect();
        // "a" stops gracefully: it releases every partition it owned.
        for partition in (0..30).step_by(3) {
            let released =
                Announcement { tenure: Tenure::Released, ..directory_entry(&directory, partition) };
            assert!(directory.learn(released));
        }
        for (n, me) in owners.iter().enumerate().skip(1) {
            let released: BTreeSet<i32> = before[n].iter().copied().filter(|p| p % 3 == 0).collect();
            assert!(!released.is_empty(), "{me} stood by for some of a's partitions");
            assert!(directory.standing_by(me, 1).is_superset(&released), "{me} still stands by for them");
        }
        // Claimed again by "b": "b" stops standing by for it.
        directory.learn(announced(0, "b", 2, Tenure::Ready));
        assert!(!directory.standing_by("b", 1).contains(&0));
    }

    fn directory_entry(directory: &Directory, partition: i32) -> Announcement {
        directory.snapshot().into_iter().find(|a| a.partition == partition).expect("announced")
    }
}
