//! Single-writer guarantees under failure, judged on the event log itself: processors that
//! join and leave, a zombie (SIGSTOP until its partitions move, then SIGCONT), and kill -9.
//! In every case no slot is ever over capacity and every accepted hold is in the log
//! exactly once.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use holdfast_command_service::envelope::Verdict;
use holdfast_domain::{
    Capacity, Command, CustomerId, HoldTtl, Quantity, ReservationId, ResourceId, ResourceName, SlotRange,
};
use holdfast_platform::TopicArgs;
use holdfast_platform::audit::audit_log;
use holdfast_platform::codec::EventCodec;
use holdfast_platform::testing;
use holdfast_platform::topics::TopicLayout;
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::support::{Process, RemoteClient};

const PARTITIONS: i32 = 8;
const RESOURCES: usize = 24;

/// Holds racing for scarce capacity on a few resources, until stopped.
struct Load {
    stop: Arc<AtomicBool>,
    /// Commands decided so far (accepted or refused).
    decided: Arc<AtomicUsize>,
    workers: JoinSet<(Vec<ReservationId>, usize)>,
}

impl Load {
    fn start(client: &Arc<RemoteClient>, resources: &[ResourceId]) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let decided = Arc::new(AtomicUsize::new(0));
        let mut workers = JoinSet::new();
        for worker in 0..6 {
            let (client, stop, resources) = (Arc::clone(client), Arc::clone(&stop), resources.to_vec());
            let decided = Arc::clone(&decided);
            workers.spawn(async move {
                let (mut accepted, mut unknown) = (Vec::new(), 0);
                let mut n = worker;
                while !stop.load(Ordering::Relaxed) {
                    n += 7;
                    let resource = &resources[n % resources.len()];
                    let id = ReservationId::new(resource, Uuid::now_v7());
                    let command = Command::PlaceHold {
                        reservation_id: id.clone(),
                        range: SlotRange::parse("2027-01-10", "2027-01-13").expect("range"),
                        quantity: Quantity::new(1 + u32::try_from(n % 3).unwrap_or(0)).expect("quantity"),
                        customer_id: CustomerId::parse("load").expect("customer"),
                        ttl: HoldTtl::DEFAULT,
                    };
                    match client.try_decide(command).await {
                        Ok(outcome) => {
                            decided.fetch_add(1, Ordering::Relaxed);
                            if matches!(outcome.verdict, Verdict::Accepted { events: 1, .. }) {
                                accepted.push(id);
                            }
                        }
                        Err(_) => unknown += 1,
                    }
                }
                (accepted, unknown)
            });
        }
        Self { stop, decided, workers }
    }

    /// Waits until the load has had `decisions` more commands decided.
    async fn advance(&self, decisions: usize) {
        let target = self.decided.load(Ordering::Relaxed) + decisions;
        let advanced = testing::eventually(Duration::from_secs(60), || async {
            (self.decided.load(Ordering::Relaxed) >= target).then_some(())
        })
        .await;
        assert!(advanced.is_some(), "the load got {decisions} more decisions through");
    }

    async fn finish(mut self) -> (Vec<ReservationId>, usize) {
        self.stop.store(true, Ordering::Relaxed);
        let (mut accepted, mut unknown) = (Vec::new(), 0);
        while let Some(done) = self.workers.join_next().await {
            let (a, u) = done.expect("load worker");
            accepted.extend(a);
            unknown += u;
        }
        (accepted, unknown)
    }
}

async fn define_resources(client: &RemoteClient) -> Vec<ResourceId> {
    let mut ids = Vec::new();
    for i in 0..RESOURCES {
        let id = ResourceId::parse(&format!("hall-{i}")).expect("id");
        let outcome = client
            .decide(Command::DefineResource {
                resource_id: id.clone(),
                name: ResourceName::parse("Hall").expect("name"),
                capacity: Capacity::new(20).expect("capacity"),
            })
            .await;
        assert!(matches!(outcome.verdict, Verdict::Accepted { .. }), "{outcome:?}");
        ids.push(id);
    }
    ids
}

/// Audits the events topic: no overbooking, each accepted hold exactly once, no duplicates.
async fn assert_log_is_sound(topics: &TopicArgs, accepted: &[ReservationId]) {
    let layout = TopicLayout::from_args(topics);
    let codec = Arc::new(EventCodec::new(&testing::registry(), &layout.events).expect("codec"));
    codec.register_all().await.expect("schemas");
    let report = audit_log(&testing::kafka(), &layout.events, PARTITIONS, codec, Duration::from_secs(60))
        .await
        .expect("log audited");
    assert!(report.overbookings.is_empty(), "overbooked: {:?}", report.overbookings);
    assert_eq!(report.undecodable, 0);
    assert!(report.duplicated_holds().is_empty(), "held twice: {:?}", report.duplicated_holds());
    let missing: Vec<_> = accepted.iter().filter(|id| report.holds.get(*id) != Some(&1)).collect();
    assert!(missing.is_empty(), "accepted holds missing from the log: {missing:?}");
    let unique: HashSet<_> = accepted.iter().collect();
    assert_eq!(unique.len(), accepted.len());
    assert!(accepted.len() > 20, "the load got decisions through: {}", accepted.len());
}

async fn owns(process: &Process, partitions: i64, deadline: Duration) -> bool {
    testing::eventually(deadline, || async {
        (process.owned_partitions().await == Some(partitions)).then_some(())
    })
    .await
    .is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zombie_processor_commits_nothing_after_losing_its_partitions() {
    testing::init_logs();
    let topics = testing::topics("cmd-zombie", PARTITIONS);
    let first = Process::spawn(&topics, &testing::unique("zombie-a"));
    assert!(first.wait_ready(Duration::from_secs(90)).await);
    let second = Process::spawn(&topics, &testing::unique("zombie-b"));
    assert!(second.wait_ready(Duration::from_secs(90)).await);
    let client = Arc::new(RemoteClient::new(&topics));
    let resources = define_resources(&client).await;

    let load = Load::start(&client, &resources);
    load.advance(30).await;
    first.signal("STOP");
    assert!(
        owns(&second, i64::from(PARTITIONS), Duration::from_secs(60)).await,
        "partitions moved to the survivor"
    );
    first.signal("CONT");
    load.advance(30).await;
    let (accepted, _) = load.finish().await;

    assert_log_is_sound(&topics, &accepted).await;
    drop((first, second));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_holds_survive_kill_9() {
    testing::init_logs();
    let topics = testing::topics("cmd-kill9", PARTITIONS);
    let instance = testing::unique("kill9");
    let victim = Process::spawn(&topics, &instance);
    assert!(victim.wait_ready(Duration::from_secs(90)).await);
    let client = Arc::new(RemoteClient::new(&topics));
    let resources = define_resources(&client).await;

    let load = Load::start(&client, &resources);
    load.advance(30).await;
    victim.signal("KILL");
    drop(victim);
    // The same instance id: its new producer fences the dead one's open transaction at once.
    let revived = Process::spawn(&topics, &instance);
    assert!(revived.wait_ready(Duration::from_secs(90)).await);
    load.advance(30).await;
    let (accepted, _) = load.finish().await;

    assert_log_is_sound(&topics, &accepted).await;
    drop(revived);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processors_joining_and_leaving_share_partitions_safely() {
    testing::init_logs();
    let topics = testing::topics("cmd-rebalance", PARTITIONS);
    let first = Process::spawn(&topics, &testing::unique("join-a"));
    assert!(first.wait_ready(Duration::from_secs(90)).await);
    let client = Arc::new(RemoteClient::new(&topics));
    let resources = define_resources(&client).await;

    let load = Load::start(&client, &resources);
    load.advance(30).await;
    let second = Process::spawn(&topics, &testing::unique("join-b"));
    assert!(second.wait_ready(Duration::from_secs(90)).await);
    assert!(
        testing::eventually(Duration::from_secs(60), || async {
            (second.owned_partitions().await.unwrap_or(0) > 0).then_some(())
        })
        .await
        .is_some(),
        "the newcomer took partitions"
    );
    load.advance(30).await;
    first.signal("TERM");
    assert!(first.wait(), "the leaving processor exits cleanly");
    assert!(owns(&second, i64::from(PARTITIONS), Duration::from_secs(60)).await);
    load.advance(30).await;
    let (accepted, _) = load.finish().await;

    assert_log_is_sound(&topics, &accepted).await;
    drop(second);
}
