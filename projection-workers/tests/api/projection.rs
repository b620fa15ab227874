//! The projection against the real stack: PostgreSQL and Redis equal the log folded by the
//! reader rule from scratch (every row, versions included) after a mixed workload, after
//! workers are killed mid-stream, across a rebalance between two workers, over a log two
//! owners fought over (void records skipped and counted), and across a restart in the middle
//! of a tenure.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use holdfast_projection_workers::testing::Workload;
use holdfast_tenure::Tenure;

use crate::support::{Stack, contested_log};

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
    stack.produce(events).await;

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
        stack.produce(workload.events(400)).await;
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
    stack.produce(first).await;
    let rounds: Vec<_> = (0..6).map(|_| workload.events(1_500)).collect();

    let mut worker = stack.start_killable().await;
    // Each round is appended before the worker is waited for, so there is always something
    // left to apply when it is killed: a faster worker cannot run out of work before the last
    // kill (which a producer racing the killer allowed).
    for (round, delay_ms) in rounds.into_iter().zip([0_u64, 5, 13, 29, 61, 3]) {
        let before: i64 = stack.stored_offsets().await.values().sum();
        stack.produce(round).await;
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
    stack.produce(first).await;
    let rounds: Vec<_> = (0..12).map(|_| workload.events(600)).collect();

    let a = stack.start().await;
    let producer = async {
        for round in rounds {
            stack.produce(round).await;
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
    stack.produce(workload.events(500)).await;

    let (expected, ends) = stack.expected().await;
    assert!(stack.wait_applied(&ends, DEADLINE).await, "everything applied");
    assert!(stack.wait_cached(&ends, DEADLINE).await, "redis caught up");
    stack.assert_postgres_exact(&expected).await;
    stack.assert_redis_exact(&expected).await;
    b.stop().await.expect("clean stop");
    stack.tear_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn void_records_and_claims_change_nothing_and_valid_records_apply_exactly_once() {
    let stack = Stack::new("proj-void", 1).await;
    let contested = contested_log(&stack, "hall", 21).await;
    let oracle = stack.oracle().await;
    assert_eq!(oracle.void, contested.void, "the log holds the void records it was given");
    assert_eq!((oracle.events, oracle.claims, oracle.rejected), (contested.events, 3, 1));

    let service = stack.start().await;
    assert!(stack.wait_applied(&oracle.ends, DEADLINE).await, "the partition moved past every record");
    assert!(stack.wait_cached(&oracle.ends, DEADLINE).await, "redis caught up");
    stack.assert_postgres_exact(&oracle.model).await;
    stack.assert_redis_exact(&oracle.model).await;
    let ghosts: i64 = sqlx::query_scalar("SELECT count(*) FROM resources WHERE resource_id = ANY($1)")
        .bind(&contested.ghosts)
        .fetch_one(&stack.pool)
        .await
        .expect("count");
    assert_eq!(ghosts, 0, "no void record was applied");

    let metrics = service.metrics().await;
    for (reason, count) in &contested.void {
        let sample = format!("holdfast_projection_void_records_total{{reason=\"{reason}\"}}");
        #[allow(clippy::cast_precision_loss)]
        let expected = *count as f64;
        assert_eq!(metric(&metrics, &sample), expected, "{sample}");
    }
    #[allow(clippy::cast_precision_loss)]
    let events = contested.events as f64;
    assert_eq!(metric(&metrics, "holdfast_projection_events_applied_total"), events, "each valid event once");
    assert_eq!(metric(&metrics, "holdfast_projection_claims_total"), 3.0);
    assert_eq!(metric(&metrics, "holdfast_projection_rejected_records_total"), 1.0);
    let dead: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("holdfast_projection_dead_letters_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(dead.abs() < f64::EPSILON, "nothing dead-lettered: {dead}");
    let stored = stack.stored_tenures().await;
    let token = contested.owner.token(0).expect("the owner's tenure");
    let next_seq = contested.next_seq;
    assert_eq!(
        stored[&0],
        Some(Tenure { token, next_seq }),
        "the owner's tenure is stored beside the offset"
    );

    service.stop().await.expect("clean stop");
    stack.tear_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stored_tenure_survives_a_restart_mid_tenure() {
    let stack = Stack::new("proj-tenure", 1).await;
    let mut workload = Workload::new("room", 4, 31);
    let mut owner = stack.writer();
    let mut stale = stack.writer();
    // An older tenure, then the owner's claim and the first part of its tenure.
    stale.claim(0).await;
    for event in workload.definitions() {
        stale.event(&event, 1).await;
    }
    owner.claim(0).await;
    let before = workload.events(30);
    for event in &before {
        owner.event(event, 1).await;
    }
    let service = stack.start().await;
    let (_, ends) = stack.expected().await;
    assert!(stack.wait_applied(&ends, DEADLINE).await, "first part applied");
    let token = owner.token(0).expect("claimed");
    let next_seq = u64::try_from(before.len()).expect("small");
    assert_eq!(stack.stored_tenures().await[&0], Some(Tenure { token, next_seq }));
    service.stop().await.expect("clean stop");

    // While no worker runs: the stale owner appends with its old token, the owner goes on.
    let mut ghosts = Workload::new("ghost", 1, 32);
    for event in ghosts.definitions() {
        stale.event(&event, 1).await;
    }
    let after = workload.events(20);
    for event in &after {
        owner.event(event, 1).await;
    }
    // A restarted worker resumes from the stored tenure: a worker without it would void the
    // owner's continuation (no tenure); one that trusted the first writer it saw would apply
    // the stale record.
    let service = stack.start().await;
    let oracle = stack.oracle().await;
    assert!(stack.wait_applied(&oracle.ends, DEADLINE).await, "continuation applied");
    assert!(stack.wait_cached(&oracle.ends, DEADLINE).await, "redis caught up");
    stack.assert_postgres_exact(&oracle.model).await;
    stack.assert_redis_exact(&oracle.model).await;
    let ghost: i64 = sqlx::query_scalar("SELECT count(*) FROM resources WHERE resource_id = 'ghost-0'")
        .fetch_one(&stack.pool)
        .await
        .expect("count");
    assert_eq!(ghost, 0, "the stale owner's record is void");
    let metrics = service.metrics().await;
    #[allow(clippy::cast_precision_loss)]
    let continued = after.len() as f64;
    assert_eq!(
        metric(&metrics, "holdfast_projection_events_applied_total"),
        continued,
        "the continuation, once"
    );
    assert_eq!(metric(&metrics, "holdfast_projection_void_records_total{reason=\"other-writer\"}"), 1.0);
    assert_eq!(metric(&metrics, "holdfast_projection_void_records_total{reason=\"no-tenure\"}"), 0.0);
    let next_seq = u64::try_from(before.len() + after.len()).expect("small");
    assert_eq!(stack.stored_tenures().await[&0], Some(Tenure { token, next_seq }));
    assert_eq!(oracle.void, BTreeMap::from([("other-writer", 1)]));

    service.stop().await.expect("clean stop");
    stack.tear_down().await;
}
