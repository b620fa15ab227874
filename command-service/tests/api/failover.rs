//! Single-writer guarantees under failure, against the real broker and judged on the events log
//! itself by the reader rule: instances trading partitions under load, an owner paused past its
//! session (SIGSTOP) and resumed after the new owner appended, and kill -9. Clients send holds
//! over HTTP to every instance, as a load balancer would. In every case no slot is ever over
//! capacity, every hold answered 201 is valid in the log exactly once, and every hold left
//! undecided (503, a timeout) is decided once asked again with its key.

use std::time::Duration;

use holdfast_platform::testing::{self, TopicsGuard};

use crate::load::{self, HttpLoad};
use crate::support::Process;

const PARTITIONS: i32 = 8;
const RESOURCES: usize = 24;

async fn owns(process: &Process, partitions: i64, deadline: Duration) -> bool {
    testing::eventually(deadline, || async {
        (process.owned_partitions().await == Some(partitions)).then_some(())
    })
    .await
    .is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_owner_resumed_after_the_new_owner_appended_is_never_acknowledged() {
    testing::init_logs();
    let topics = testing::topics("cmd-zombie", PARTITIONS);
    let _cleanup = TopicsGuard::new(&topics);
    // Its appends wait 2 s in its producer before they are sent, and are tried for a minute:
    // what it decided just before the pause is sent only after it wakes, past the new owner's
    // claims — the writes of a zombie that does not know yet.
    let zombie = Process::spawn_with(
        &topics,
        &testing::unique("zombie-a"),
        &[("HOLDFAST_APPEND_LINGER", "2s"), ("HOLDFAST_APPEND_TIMEOUT", "60s")],
    );
    assert!(zombie.wait_ready(Duration::from_secs(90)).await);
    let survivor = Process::spawn(&topics, &testing::unique("zombie-b"));
    assert!(survivor.wait_ready(Duration::from_secs(90)).await);
    let resources = load::define(survivor.addr, "hall", RESOURCES, 20).await;
    // Holds of 2 s: their expiry runs through the same fenced path as everything else.
    let load = HttpLoad::start(vec![zombie.addr, survivor.addr], &resources, 6, 2);
    load.advance(40).await;

    zombie.signal("STOP");
    load.retarget(vec![survivor.addr]);
    assert!(owns(&survivor, i64::from(PARTITIONS), Duration::from_secs(60)).await, "partitions moved");
    // The new owner has appended after its claims before the old one wakes.
    load.advance(60).await;
    zombie.signal("CONT");
    load.advance(60).await;
    let tally = load.finish().await;

    let report = load::assert_log_is_sound(&topics, &tally).await;
    assert!(report.void_total() > 0, "the woken owner's appends are in the log, and void: {:?}", report.void);
    // Every hold of 2 s that was not confirmed expires, whoever owns its partition by then.
    let expired = testing::eventually(Duration::from_secs(30), || async {
        let read_at = time::OffsetDateTime::now_utc();
        let report = load::assert_log_is_sound(&topics, &tally).await;
        let overdue = report
            .resources
            .values()
            .flat_map(|state| state.held_reservations())
            .filter(|(_, at)| *at < read_at - time::Duration::seconds(1))
            .count();
        (overdue == 0).then_some(())
    })
    .await;
    assert!(expired.is_some(), "holds past their expiry are expired in the log");
    drop((zombie, survivor));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_holds_survive_kill_9() {
    testing::init_logs();
    let topics = testing::topics("cmd-kill9", PARTITIONS);
    let _cleanup = TopicsGuard::new(&topics);
    let victim = Process::spawn(&topics, &testing::unique("kill9-a"));
    assert!(victim.wait_ready(Duration::from_secs(90)).await);
    let survivor = Process::spawn(&topics, &testing::unique("kill9-b"));
    assert!(survivor.wait_ready(Duration::from_secs(90)).await);
    let resources = load::define(survivor.addr, "hall", RESOURCES, 20).await;

    let load = HttpLoad::start(vec![victim.addr, survivor.addr], &resources, 6, 900);
    load.advance(40).await;
    victim.signal("KILL");
    drop(victim);
    load.retarget(vec![survivor.addr]);
    assert!(owns(&survivor, i64::from(PARTITIONS), Duration::from_secs(60)).await, "partitions moved");
    load.advance(60).await;
    let tally = load.finish().await;

    load::assert_log_is_sound(&topics, &tally).await;
    drop(survivor);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_trade_partitions_under_load() {
    testing::init_logs();
    let topics = testing::topics("cmd-trade", PARTITIONS);
    let _cleanup = TopicsGuard::new(&topics);
    let first = Process::spawn(&topics, &testing::unique("trade-a"));
    assert!(first.wait_ready(Duration::from_secs(90)).await);
    let resources = load::define(first.addr, "hall", RESOURCES, 20).await;

    let load = HttpLoad::start(vec![first.addr], &resources, 6, 900);
    load.advance(40).await;
    let second = Process::spawn(&topics, &testing::unique("trade-b"));
    assert!(second.wait_ready(Duration::from_secs(90)).await);
    load.retarget(vec![first.addr, second.addr]);
    assert!(
        testing::eventually(Duration::from_secs(60), || async {
            (second.owned_partitions().await.unwrap_or(0) > 0).then_some(())
        })
        .await
        .is_some(),
        "the newcomer took partitions"
    );
    load.advance(60).await;
    load.retarget(vec![second.addr]);
    first.signal("TERM");
    assert!(first.wait(), "the leaving instance exits cleanly");
    assert!(owns(&second, i64::from(PARTITIONS), Duration::from_secs(60)).await);
    let third = Process::spawn(&topics, &testing::unique("trade-c"));
    assert!(third.wait_ready(Duration::from_secs(90)).await);
    load.retarget(vec![second.addr, third.addr]);
    load.advance(60).await;
    let tally = load.finish().await;

    let report = load::assert_log_is_sound(&topics, &tally).await;
    assert!(report.claims >= u64::try_from(PARTITIONS).unwrap_or(0) * 2, "partitions were claimed again");
    drop((second, third));
}
