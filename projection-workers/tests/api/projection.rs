//! The projection against the real stack: PostgreSQL and Redis equal the log folded from
//! scratch (every row, versions included) after a mixed workload, after workers are killed
//! mid-stream, and across a rebalance between two workers.

use std::time::{Duration, Instant};

use holdfast_projection_workers::testing::Workload;

use crate::support::Stack;

const DEADLINE: Duration = Duration::from_secs(120);

/// `name` of a metric sample in Prometheus text, as a number (0 when absent).
pub fn metric(text: &str, sample: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(sample).and_then(|rest| rest.trim().parse().ok()))
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_workload_is_projected_exactly_into_postgres_and_redis() {
    let stack = Stack::new("proj-exact", 8).await;
    let mut workload = Workload::new("room", 80, 1);
    let mut events = workload.definitions();
    events.extend(workload.events(30_000));
    let backlog = events.len();
    stack.produce(events, 500).await;

    // A backlog first (catch-up speed), then live traffic in small transactions.
    let (_, ends) = stack.expected().await;
    let service = stack.start().await;
    let first = holdfast_platform::testing::eventually(DEADLINE, || async {
        (!stack.stored_offsets().await.values().all(|o| *o == 0)).then(Instant::now)
    })
    .await
    .expect("the worker starts applying");
    assert!(stack.wait_applied(&ends, DEADLINE).await, "backlog applied");
    let wall = first.elapsed();
    let metrics = service.metrics().await;
    let applied = metric(&metrics, "holdfast_projection_events_applied_total");
    let busy = metric(&metrics, "holdfast_projection_batch_duration_seconds_sum");
    eprintln!(
        "backlog of {backlog} events: about {wall:?} from the first commit to the last; \
         {applied} events in {busy:.2} s of batch time = {:.0} events/s",
        applied / busy.max(f64::EPSILON)
    );

    for _ in 0..5 {
        stack.produce(workload.events(400), 20).await;
    }
    let (expected, ends) = stack.expected().await;
    assert!(stack.wait_applied(&ends, DEADLINE).await, "live events applied");
    assert!(stack.wait_cached(&ends, DEADLINE).await, "redis caught up");
    stack.assert_postgres_exact(&expected).await;
    stack.assert_redis_exact(&expected).await;
    assert!(expected.reservations().count() > 5_000, "a substantial workload");

    assert!(service.wait_ready(Duration::from_secs(30)).await, "ready once caught up");
    let metrics = service.metrics().await;
    for partition in 0..8 {
        let lag = metric(&metrics, &format!("holdfast_projection_lag_events{{partition=\"{partition}\"}}"));
        assert!(lag <= 1.0, "partition {partition} lag {lag}");
    }
    assert_eq!(metric(&metrics, "holdfast_projection_assigned_partitions"), 8.0);
    assert!(metric(&metrics, "holdfast_projection_event_delay_seconds_count") > 0.0);

    service.stop().await.expect("clean stop");
    stack.tear_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_stream_neither_repeats_nor_skips_an_event() {
    let stack = Stack::new("proj-kill", 6).await;
    let mut workload = Workload::new("desk", 40, 2);
    let mut first = workload.definitions();
    first.extend(workload.events(3_000));
    stack.produce(first, 200).await;
    let rounds: Vec<_> = (0..6).map(|_| workload.events(1_500)).collect();

    let mut worker = stack.start_killable().await;
    let producer = {
        let stack = &stack;
        async move {
            for round in rounds {
                stack.produce(round, 50).await;
            }
        }
    };
    let killer = async {
        for delay_ms in [0_u64, 5, 13, 29, 61, 3] {
            let before: i64 = stack.stored_offsets().await.values().sum();
            let progressed = holdfast_platform::testing::eventually(DEADLINE, || async {
                let now: i64 = stack.stored_offsets().await.values().sum();
                (now > before).then_some(())
            })
            .await;
            assert!(progressed.is_some(), "the worker makes progress before each kill");
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            worker.abort();
            let _ = (&mut worker).await;
            worker = stack.start_killable().await;
        }
    };
    tokio::join!(producer, killer);

    let (expected, ends) = stack.expected().await;
    assert!(stack.wait_applied(&ends, DEADLINE).await, "everything applied after the last restart");
    assert!(stack.wait_cached(&ends, DEADLINE).await, "redis caught up");
    stack.assert_postgres_exact(&expected).await;
    stack.assert_redis_exact(&expected).await;
    worker.abort();
    let _ = worker.await;
    stack.tear_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_share_the_partitions_through_rebalances() {
    let stack = Stack::new("proj-rebalance", 8).await;
    let mut workload = Workload::new("table", 48, 3);
    let mut first = workload.definitions();
    first.extend(workload.events(2_000));
    stack.produce(first, 200).await;
    let rounds: Vec<_> = (0..12).map(|_| workload.events(600)).collect();

    let a = stack.start().await;
    let producer = async {
        for round in rounds {
            stack.produce(round, 30).await;
        }
    };
    let choreography = async {
        let started = Instant::now();
        let b = stack.start().await;
        let shared = holdfast_platform::testing::eventually(DEADLINE, || async {
            let on_b = metric(&b.metrics().await, "holdfast_projection_assigned_partitions");
            let on_a = metric(&a.metrics().await, "holdfast_projection_assigned_partitions");
            (on_a > 0.0 && on_b > 0.0 && on_a + on_b == 8.0).then_some(())
        })
        .await;
        assert!(shared.is_some(), "the partitions are split between both workers");
        eprintln!("partitions shared after {:?}", started.elapsed());
        (a, b)
    };
    let ((), (a, b)) = tokio::join!(producer, choreography);
    // The first worker leaves mid-stream: the second takes over its partitions.
    a.stop().await.expect("clean stop");
    let owns_all = holdfast_platform::testing::eventually(DEADLINE, || async {
        (metric(&b.metrics().await, "holdfast_projection_assigned_partitions") == 8.0).then_some(())
    })
    .await;
    assert!(owns_all.is_some(), "the remaining worker owns every partition");
    stack.produce(workload.events(500), 25).await;

    let (expected, ends) = stack.expected().await;
    assert!(stack.wait_applied(&ends, DEADLINE).await, "everything applied");
    assert!(stack.wait_cached(&ends, DEADLINE).await, "redis caught up");
    stack.assert_postgres_exact(&expected).await;
    stack.assert_redis_exact(&expected).await;
    b.stop().await.expect("clean stop");
    stack.tear_down().await;
}
