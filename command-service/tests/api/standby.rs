//! Warm standbys against the real broker and registry: the state a standby hands over at a
//! claim is the state a restore from the log folds up to that claim — across tenures, a zombie's
//! void records, rejections and holds, records appended while it follows, a claim it already
//! read past, a registry outage it waits out — and a partition it does not follow is left to
//! the restore.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use apache_avro::Schema;
use holdfast_command_service::lane::rebuild::RebuildError;
use holdfast_command_service::lane::restore::{Restore, RestoreError, Restorer};
use holdfast_command_service::lane::standby::{StandbyStatus, Standbys};
use holdfast_command_service::lane::state::Memory;
use holdfast_domain::{
    Capacity, Command, CommandMeta, CustomerId, HoldTtl, Quantity, ReservationId, ResourceId, ResourceName,
    ResourceState, SlotRange, decide,
};
use holdfast_platform::RegistryArgs;
use holdfast_platform::codec::{EventCodec, RejectedRecord, samples, schemas, wire};
use holdfast_platform::partitioner::partition_for;
use holdfast_platform::testing::{self, LogWriter, TopicsGuard};
use holdfast_platform::topics::TopicLayout;
use holdfast_tenure::{Mark, Token};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::restore::{ensure, front, register_raw};

const PARTITIONS: i32 = 2;
const MEMORY: Memory = Memory { window: time::Duration::HOUR, capacity: 10_000 };

/// Decisions about one resource appended to its partition the way owners append them.
struct History {
    log: LogWriter,
    codec: Arc<EventCodec>,
    state: ResourceState,
    partition: i32,
    holds: Vec<ReservationId>,
}

impl History {
    /// Topics of their own, and a resource on partition 0.
    async fn start(test: &str) -> (Self, TopicLayout, TopicsGuard) {
        let topics = testing::topics(test, PARTITIONS);
        let cleanup = TopicsGuard::new(&topics);
        let layout = TopicLayout::from_args(&topics);
        ensure(&layout).await;
        let codec = Arc::new(EventCodec::new(&testing::registry(), &layout.events).expect("codec"));
        codec.register_all().await.expect("schemas");
        let resource = (0..)
            .map(|n| format!("hall-{n}"))
            .find(|id| partition_for(id.as_bytes(), PARTITIONS) == 0)
            .expect("a resource on partition 0");
        let log = LogWriter::new(&testing::kafka(), &layout.events, Arc::clone(&codec));
        let state = ResourceState::new(ResourceId::parse(&resource).expect("id"));
        (Self { log, codec, state, partition: 0, holds: Vec::new() }, layout, cleanup)
    }

    fn resource(&self) -> ResourceId {
        self.state.resource_id().clone()
    }

    /// Decides `command` on the resource and appends its events, or its rejection, as valid
    /// records of the current tenure.
    async fn decide(&mut self, command: Command) {
        let meta = CommandMeta::new(Uuid::now_v7());
        match decide(&self.state, &command, &meta, OffsetDateTime::now_utc()) {
            Ok(events) => {
                for event in &events {
                    self.state.apply(event);
                    self.log.event(event, PARTITIONS).await;
                }
            }
            Err(rejection) => {
                let record = RejectedRecord {
                    resource_id: self.resource(),
                    occurred_at: OffsetDateTime::now_utc(),
                    command_id: meta.command_id,
                    correlation_id: meta.correlation_id,
                    traceparent: None,
                    principal: Some("tester".into()),
                    command: command.kind().to_owned(),
                    rejection,
                };
                let payload = self.codec.encode_rejected(&record).expect("encoded");
                self.log.valid_raw(self.partition, self.resource().as_str(), &payload).await;
            }
        }
    }

    async fn define(&mut self, capacity: u32) {
        let command = Command::DefineResource {
            resource_id: self.resource(),
            name: ResourceName::parse("Hall").expect("name"),
            capacity: Capacity::new(capacity).expect("capacity"),
        };
        self.decide(command).await;
    }

    /// A hold of `quantity` for tomorrow (refused when it does not fit).
    async fn hold(&mut self, quantity: u32) {
        let reservation_id = ReservationId::new(&self.resource(), Uuid::now_v7());
        let command = Command::PlaceHold {
            reservation_id: reservation_id.clone(),
            range: SlotRange::parse(&testing::days_from_today(1), &testing::days_from_today(2))
                .expect("range"),
            quantity: Quantity::new(quantity).expect("quantity"),
            customer_id: CustomerId::parse("guest").expect("customer"),
            ttl: HoldTtl::from_seconds(3600).expect("ttl"),
        };
        self.decide(command).await;
        self.holds.push(reservation_id);
    }

    async fn confirm(&mut self, hold: usize) {
        let reservation_id = self.holds[hold].clone();
        self.decide(Command::ConfirmReservation { reservation_id, payment_ref: None }).await;
    }

    async fn cancel(&mut self, hold: usize) {
        let reservation_id = self.holds[hold].clone();
        self.decide(Command::CancelReservation { reservation_id, reason: None }).await;
    }

    /// A record of a writer fenced by a later claim: void.
    async fn zombie(&self, token: Token) {
        let payload = self.codec.encode_rejected(&RejectedRecord {
            resource_id: self.resource(),
            occurred_at: OffsetDateTime::now_utc(),
            command_id: Uuid::now_v7(),
            correlation_id: Uuid::now_v7(),
            traceparent: None,
            principal: None,
            command: "place-hold".into(),
            rejection: holdfast_domain::Rejection::UnknownResource { resource_id: self.resource() },
        });
        let mark = Mark::Data { token, seq: 7 };
        self.log.raw(self.partition, self.resource().as_str(), &payload.expect("encoded"), mark).await;
    }

    /// Two tenures: holds, a confirmation, a cancellation and refusals in the first; a zombie
    /// of the first appending into the second. Returns the first tenure's token.
    async fn two_tenures(&mut self) -> Token {
        self.define(5).await;
        self.hold(2).await;
        self.hold(2).await;
        self.hold(4).await;
        self.confirm(0).await;
        let first = self.log.token(self.partition).expect("claimed");
        self.log.claim(self.partition).await;
        self.zombie(first).await;
        self.cancel(1).await;
        self.hold(3).await;
        self.hold(9).await;
        first
    }
}

fn standbys(layout: &TopicLayout, registry: &RegistryArgs) -> Standbys {
    let codec = Arc::new(EventCodec::new(registry, &layout.events).expect("codec"));
    let client = testing::unique("standby-test");
    Standbys::start(
        &testing::kafka(),
        &client,
        &layout.events,
        codec,
        tokio::runtime::Handle::current(),
        MEMORY,
    )
}

/// What a restore from the log folds up to the claims.
async fn restored(layout: &TopicLayout, claims: HashMap<i32, i64>) -> HashMap<i32, Restore> {
    let codec = Arc::new(EventCodec::new(&testing::registry(), &layout.events).expect("codec"));
    let runtime = tokio::runtime::Handle::current();
    let restorer = Restorer::new(
        &testing::kafka(),
        &testing::unique("restore-test"),
        &layout.events,
        codec,
        runtime,
        MEMORY,
    );
    tokio::task::spawn_blocking(move || restorer.restore(&claims)).await.expect("joined").expect("read")
}

/// Asserts that the standby's hand-over equals the restore's.
fn assert_same(standby: Option<Restore>, restore: Restore) {
    let (state, counts) = standby.expect("standing by").expect("handed over");
    let (expected, read) = restore.expect("restored");
    assert!(!state.resources.is_empty() && state.remembered() > 0, "something to compare");
    assert_eq!(state, expected, "resources, reservations, remembered outcomes and timers");
    assert_eq!((counts.valid, counts.void, counts.claims), (read.valid, read.void, read.claims));
}

/// The status of `partition` once `condition` holds for it.
async fn status_when(
    standbys: &Standbys,
    partition: i32,
    condition: impl Fn(&StandbyStatus) -> bool,
) -> Option<StandbyStatus> {
    testing::eventually(Duration::from_secs(30), || async {
        standbys.status().into_iter().find(|s| s.partition == partition).filter(|s| condition(s))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_hands_over_what_a_restore_folds_up_to_the_claim() {
    testing::init_logs();
    let (mut history, layout, _cleanup) = History::start("cmd-standby").await;
    let zombie = history.two_tenures().await;
    let standbys = standbys(&layout, &testing::registry());
    standbys.follow(BTreeSet::from([0]));
    assert!(standbys.take(1, 0).await.is_none(), "a partition not stood by for is left to the restore");

    let caught_up = status_when(&standbys, 0, |s| s.lag == Some(0) && s.position > 0).await;
    let caught_up = caught_up.expect("caught up, its lag known");
    assert!(caught_up.void_records == 1 && caught_up.valid_records > 5);
    // Appended while it follows.
    history.hold(1).await;
    history.confirm(4).await;
    let end = history.log.claim(0).await;
    history.cancel(0).await;
    let tailed = status_when(&standbys, 0, |s| s.position >= end).await;
    assert!(tailed.is_some(), "read what was appended after it began");

    // An owner's claim, read by the standby before the owner asks; a zombie appends after it.
    let claim = history.log.claim(0).await;
    history.zombie(zombie).await;
    let past = status_when(&standbys, 0, |s| s.position > claim + 1).await;
    assert!(past.is_some(), "read past the claim");

    let taken = standbys.take(0, claim).await;
    let mut expected = restored(&layout, HashMap::from([(0, claim)])).await;
    assert_same(taken, expected.remove(&0).expect("partition 0"));
    assert!(standbys.status().is_empty(), "no longer followed once taken");
    assert!(standbys.take(0, claim).await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_take_reads_on_to_its_claim_and_a_stopped_partition_says_why() {
    testing::init_logs();
    let (mut history, layout, _cleanup) = History::start("cmd-standby-take").await;
    history.two_tenures().await;
    let claim = history.log.claim(0).await;
    history.hold(1).await;
    // Partition 1: a valid record that is not Avro at all, then a claim.
    history.log.claim(1).await;
    let broken = history.log.valid_raw(1, "desk", b"\x07not avro").await;
    let claim_1 = history.log.claim(1).await;

    let standbys = standbys(&layout, &testing::registry());
    standbys.follow(BTreeSet::from([0, 1]));
    // Asked at once: the standby reads on from the partition's start to the claim.
    let taken = standbys.take(0, claim).await;
    let mut expected = restored(&layout, HashMap::from([(0, claim), (1, claim_1)])).await;
    assert_same(taken, expected.remove(&0).expect("partition 0"));

    let stopped = status_when(&standbys, 1, |s| s.stopped).await.expect("partition 1 stops");
    assert_eq!(stopped.position, broken, "it stands at the record");
    let taken = standbys.take(1, claim_1).await.expect("standing by");
    assert!(
        matches!(taken, Err(RestoreError::Rebuild(RebuildError::Undecodable { offset, .. })) if offset == broken)
    );
    let restore = expected.remove(&1).expect("partition 1");
    assert!(
        matches!(restore, Err(RestoreError::Rebuild(RebuildError::Undecodable { offset, .. })) if offset == broken)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_waits_out_a_registry_outage_and_skips_nothing() {
    testing::init_logs();
    let (mut history, layout, _cleanup) = History::start("cmd-standby-registry").await;
    history.define(4).await;
    // A hold in version 0 of ReservationHeld: reading it needs its writer schema from the registry.
    let mut state = history.state.clone();
    let meta = CommandMeta::new(Uuid::now_v7());
    let hold = Command::PlaceHold {
        reservation_id: ReservationId::new(&history.resource(), Uuid::now_v7()),
        range: SlotRange::parse(&testing::days_from_today(1), &testing::days_from_today(3)).expect("range"),
        quantity: Quantity::new(3).expect("quantity"),
        customer_id: CustomerId::parse("old").expect("customer"),
        ttl: HoldTtl::from_seconds(3600).expect("ttl"),
    };
    let held = decide(&state, &hold, &meta, OffsetDateTime::now_utc()).expect("held").remove(0);
    state.apply(&held);
    history.state = state;
    let v0 = Schema::parse_str(schemas::RESERVATION_HELD_V0).expect("v0 parses");
    let subject = format!("{}-dev.holdfast.reservations.v0.ReservationHeld", layout.events);
    let v0_id = register_raw(&subject, schemas::RESERVATION_HELD_V0).await;
    let bytes = wire::encode(v0_id, &v0, &samples::reservation_held_v0(&held)).expect("v0 encoded");
    let old = history.log.valid_raw(0, history.resource().as_str(), &bytes).await;
    history.hold(2).await;
    history.hold(1).await;
    let claim = history.log.claim(0).await;

    let (url, down) = front().await;
    let registry = RegistryArgs { url };
    let standbys = standbys(&layout, &registry);
    // Every schema is known by the registry only, which does not answer yet.
    standbys.follow(BTreeSet::from([0]));
    let waiting = status_when(&standbys, 0, |s| s.awaiting_schema).await.expect("waits for the registry");
    assert!(waiting.position < old && !waiting.stopped);

    down.store(false, Ordering::Release);
    let taken = standbys.take(0, claim).await;
    let mut expected = restored(&layout, HashMap::from([(0, claim)])).await;
    assert_same(taken, expected.remove(&0).expect("partition 0"));
}
