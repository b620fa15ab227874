//! Where answers come from and when: Redis and PostgreSQL agree on a realistic projected
//! state; with Redis unreachable every answer comes from PostgreSQL; a read with a fresh
//! position sees the write; pagination lists every reservation exactly once, in order, across
//! shards.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use holdfast_platform::testing;
use holdfast_projection_workers::testing::Workload;
use serde_json::Value;

use crate::support::{Stack, get_json, header, metric};

/// Waits until every partition in `positions` is readable through `min_position`.
async fn wait_projected(
    query: &holdfast_platform::testing::RunningService,
    positions: &HashMap<i32, String>,
) {
    for token in positions.values() {
        let reached = testing::eventually(Duration::from_secs(60), || async {
            let (status, _, _) =
                get_json(query, &format!("/v1/customers/nobody/reservations?min_position={token}"), &[])
                    .await;
            (status == 200).then_some(())
        })
        .await;
        assert!(reached.is_some(), "position {token} reached");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_and_postgres_agree_and_postgres_answers_while_redis_is_down() {
    let stack = Stack::new("q-sources", 6, 1).await;
    let worker = stack.start_worker().await;
    let mut workload = Workload::new("suite", 30, 7);
    let mut events = workload.definitions();
    events.extend(workload.events(3_000));
    let positions = stack.produce(&events).await;

    let cached = stack.start_query(stack.config()).await;
    let mut config = stack.config();
    config.redis.urls = vec!["redis://127.0.0.1:1".to_owned().into()];
    let uncached = stack.start_query(config).await;
    wait_projected(&uncached, &positions).await;

    let (status, _, ready) = get_json(&uncached, "/readyz", &[]).await;
    assert_eq!(status, 200, "ready without redis: {ready}");
    assert_eq!(ready["status"], "degraded");
    assert!(ready["checks"]["redis"].as_str().is_some_and(|r| r.starts_with("degraded")), "{ready}");

    for n in 0..30 {
        let path = format!("/v1/resources/suite-{n}/availability?from=2031-02-27&to=2031-04-15");
        let (status, headers, from_postgres) = get_json(&uncached, &path, &[]).await;
        assert_eq!(status, 200, "{from_postgres}");
        assert_eq!(header(&headers, "holdfast-source"), "postgres");
        // The cached side may trail PostgreSQL by a batch: wait until it shows the same position.
        let from_redis = testing::eventually(Duration::from_secs(30), || async {
            let (_, headers, body) = get_json(&cached, &path, &[]).await;
            (header(&headers, "holdfast-source") == "redis" && body["position"] == from_postgres["position"])
                .then_some(body)
        })
        .await
        .expect("redis answers at the same position");
        assert_eq!(from_redis, from_postgres, "suite-{n}");
    }
    let metrics = uncached.metrics().await;
    assert!(
        metric(&metrics, "holdfast_query_reads_total{kind=\"availability\",source=\"postgres\"}") >= 30.0
    );
    assert_eq!(metric(&metrics, "holdfast_query_reads_total{kind=\"availability\",source=\"redis\"}"), 0.0);
    let metrics = cached.metrics().await;
    assert!(metric(&metrics, "holdfast_query_reads_total{kind=\"availability\",source=\"redis\"}") >= 30.0);

    cached.stop().await.expect("clean stop");
    uncached.stop().await.expect("clean stop");
    worker.stop().await.expect("clean stop");
    stack.tear_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_is_readable_right_after_it_is_produced() {
    let stack = Stack::new("q-ryw", 4, 1).await;
    let worker = stack.start_worker().await;
    let query = stack.start_query(stack.config()).await;
    let defined = stack.produce_one_resource(&stack.define("desk-1", 10)).await;
    // The worker's first assignment takes a few seconds; reads are prompt once it runs.
    wait_projected(&query, &HashMap::from([(0, defined.clone())])).await;

    for round in 1..=5_u32 {
        let (id, events) = stack.hold("desk-1", "2031-05-01", "2031-05-02", 1, &format!("c-{round}"));
        let token = stack.produce_one_resource(&events).await;
        let (status, _, body) =
            get_json(&query, &format!("/v1/reservations/{id}?min_position={token}"), &[]).await;
        assert_eq!(status, 200, "round {round}: {body}");
        assert_eq!(body["status"], "held");
        let (status, _, body) = get_json(
            &query,
            "/v1/resources/desk-1/availability?from=2031-05-01&to=2031-05-02",
            &[("min-position", token.as_str())],
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["slots"][0]["held"], round, "round {round}");
    }

    // A position the projection never reaches: 503 with Retry-After once the bound passed.
    let (partition, _) = defined.split_once('.').expect("token");
    let started = Instant::now();
    let (status, headers, body) = get_json(
        &query,
        &format!(
            "/v1/resources/desk-1/availability?from=2031-05-01&to=2031-05-02&min_position={partition}.999999"
        ),
        &[],
    )
    .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["type"], "https://holdfast.dev/problems/position-not-reached");
    assert_eq!(header(&headers, "retry-after"), "1");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(1900) && waited < Duration::from_secs(5), "{waited:?}");
    let metrics = query.metrics().await;
    assert!(metric(&metrics, "holdfast_query_position_waits_total{outcome=\"timeout\"}") >= 1.0);

    query.stop().await.expect("clean stop");
    worker.stop().await.expect("clean stop");
    stack.tear_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pagination_returns_every_reservation_once_in_order_across_shards() {
    let stack = Stack::new("q-pages", 4, 2).await;
    let worker = stack.start_worker().await;
    let query = stack.start_query(stack.config()).await;
    let mut events = Vec::new();
    let mut expected = BTreeSet::new();
    for r in 0..8 {
        events.extend(stack.define(&format!("seat-{r}"), 100));
    }
    for n in 0..90 {
        let (id, held) = stack.hold(&format!("seat-{}", n % 8), "2031-06-01", "2031-06-02", 1, "carol");
        expected.insert(id.to_string());
        events.extend(held);
        // Another customer's holds interleave.
        events.extend(stack.hold(&format!("seat-{}", n % 8), "2031-06-01", "2031-06-02", 1, "dave").1);
    }
    let positions = stack.produce(&events).await;
    assert!(positions.len() > 1, "reservations on several partitions, hence both shards");
    wait_projected(&query, &positions).await;

    let mut seen: Vec<String> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(cursor) => format!("/v1/customers/carol/reservations?limit=7&cursor={cursor}"),
            None => "/v1/customers/carol/reservations?limit=7".to_owned(),
        };
        let (status, _, page) = get_json(&query, &path, &[]).await;
        assert_eq!(status, 200, "{page}");
        let items = page["items"].as_array().expect("items");
        assert!(items.len() <= 7);
        seen.extend(items.iter().map(|i| i["reservation_id"].as_str().expect("id").to_owned()));
        assert!(items.iter().all(|i| i["customer_id"] == "carol"));
        pages += 1;
        if pages == 3 {
            // A hold made mid-way is newer than the cursor: it shows up on a later page.
            let (id, held) = stack.hold("seat-0", "2031-06-02", "2031-06-03", 1, "carol");
            expected.insert(id.to_string());
            let token = stack.produce_one_resource(&held).await;
            wait_projected(&query, &HashMap::from([(0, token)])).await;
        }
        match &page["next_cursor"] {
            Value::String(next) => cursor = Some(next.clone()),
            Value::Null => break,
            other => panic!("next_cursor {other}"),
        }
    }
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "stable id order");
    let unique: BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "no reservation twice");
    assert_eq!(unique, expected, "every reservation");
    assert_eq!(pages, 91_usize.div_ceil(7));

    query.stop().await.expect("clean stop");
    worker.stop().await.expect("clean stop");
    stack.tear_down().await;
}
