//! Restores that must not skip: a schema registry outage while a partition is restored is
//! waited out (the old hold it needed to read still counts afterwards), and a valid record that
//! cannot be decoded stops its partition — not ready, counted — while the others serve. And the
//! owner's fast path: commands for partitions this instance owns never touch the commands or
//! replies topics.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use apache_avro::Schema;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use holdfast_domain::{
    Capacity, Command, CommandMeta, CustomerId, HoldTtl, Quantity, ReservationId, ResourceId, ResourceName,
    ResourceState, SlotRange, decide,
};
use holdfast_platform::codec::{EventCodec, samples, schemas, wire};
use holdfast_platform::partitioner::partition_for;
use holdfast_platform::testing::{self, LogWriter, TopicsGuard};
use holdfast_platform::topics::TopicLayout;
use holdfast_tenure::Mark;
use rdkafka::consumer::{BaseConsumer, Consumer};
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::support;

/// A registry in front of the real one that answers 503 to schema lookups by id while `down`.
#[derive(Clone)]
struct Front {
    upstream: String,
    down: Arc<AtomicBool>,
    http: reqwest::Client,
}

async fn forward(
    State(front): State<Front>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    if front.down.load(Ordering::Acquire) && uri.path().contains("/schemas/ids/") {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let upstream = format!("{}{}", front.upstream, path.trim_start_matches("/apis/ccompat/v7"));
    let mut request = front.http.request(method, upstream).body(body);
    for name in ["content-type", "accept"] {
        if let Some(value) = headers.get(name) {
            request = request.header(name, value);
        }
    }
    match request.send().await {
        Ok(answer) => {
            let status = StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            let kind = answer.headers().get("content-type").cloned();
            let bytes = answer.bytes().await.unwrap_or_default();
            let mut response = (status, bytes).into_response();
            if let Some(kind) = kind {
                response.headers_mut().insert("content-type", kind);
            }
            response
        }
        Err(_) => StatusCode::BAD_GATEWAY.into_response(),
    }
}

/// Starts the front; returns its registry URL and its switch.
pub(crate) async fn front() -> (String, Arc<AtomicBool>) {
    let down = Arc::new(AtomicBool::new(true));
    let front =
        Front { upstream: testing::registry().url, down: Arc::clone(&down), http: reqwest::Client::new() };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = axum::Router::new().fallback(forward).with_state(front);
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/apis/ccompat/v7"), down)
}

/// The events of one command decided on `state` (and applied to it).
fn decided(state: &mut ResourceState, command: &Command) -> holdfast_domain::Event {
    let events = decide(state, command, &CommandMeta::new(Uuid::now_v7()), OffsetDateTime::now_utc())
        .expect("accepted");
    for event in &events {
        state.apply(event);
    }
    events.into_iter().next().expect("one event")
}

/// The value of the Prometheus sample `name` in `metrics`.
fn sample(metrics: &str, name: &str) -> Option<f64> {
    metrics.lines().find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_outage_during_restore_is_waited_out_and_nothing_is_skipped() {
    testing::init_logs();
    let topics = testing::topics("cmd-registry", 1);
    let _cleanup = TopicsGuard::new(&topics);
    let layout = TopicLayout::from_args(&topics);
    ensure(&layout).await;
    let codec = Arc::new(EventCodec::new(&testing::registry(), &layout.events).expect("codec"));
    codec.register_all().await.expect("schemas");

    // A suite of 2 units, both held by an old writer with version 0 of ReservationHeld: reading
    // that hold needs its writer schema from the registry.
    let suite = ResourceId::parse("suite-1").expect("id");
    let mut state = ResourceState::new(suite.clone());
    let defined = decided(
        &mut state,
        &Command::DefineResource {
            resource_id: suite.clone(),
            name: ResourceName::parse("Suite").expect("name"),
            capacity: Capacity::new(2).expect("capacity"),
        },
    );
    let held = decided(
        &mut state,
        &Command::PlaceHold {
            reservation_id: ReservationId::new(&suite, Uuid::now_v7()),
            range: SlotRange::parse("2027-03-01", "2027-03-03").expect("range"),
            quantity: Quantity::new(2).expect("quantity"),
            customer_id: CustomerId::parse("old").expect("customer"),
            ttl: HoldTtl::from_seconds(3600).expect("ttl"),
        },
    );
    let mut log = LogWriter::new(&testing::kafka(), &layout.events, Arc::clone(&codec));
    log.event(&defined, 1).await;
    let v0 = Schema::parse_str(schemas::RESERVATION_HELD_V0).expect("v0 parses");
    let subject = format!("{}-dev.holdfast.reservations.v0.ReservationHeld", layout.events);
    let v0_id = register_raw(&subject, schemas::RESERVATION_HELD_V0).await;
    let bytes = wire::encode(v0_id, &v0, &samples::reservation_held_v0(&held)).expect("v0 encoded");
    let token = log.token(0).expect("claimed");
    log.raw(0, suite.as_str(), &bytes, Mark::Data { token, seq: 1 }).await;

    let (url, down) = front().await;
    let mut config = support::config(&topics);
    config.registry.url = url;
    let service = testing::RunningService::start(|listener, shutdown| {
        holdfast_command_service::run(config, listener, shutdown)
    })
    .await;
    let retried = testing::eventually(Duration::from_secs(60), || async {
        sample(&service.metrics().await, "holdfast_restore_retries_total ").filter(|n| *n > 0.0)
    })
    .await;
    assert!(retried.is_some(), "the restore waits for the registry");
    let (status, _) = service.get_json("/readyz").await;
    assert_eq!(status, 503, "not ready while its partition cannot be restored");

    down.store(false, Ordering::Release);
    assert!(service.wait_ready(Duration::from_secs(60)).await, "ready once the registry answers");
    let answer = testing::http()
        .post(service.url("/v1/reservations"))
        .json(&json!({"resource_id": "suite-1", "from": "2027-03-02", "to": "2027-03-03", "quantity": 1, "customer_id": "new"}))
        .send()
        .await
        .expect("answered");
    assert_eq!(answer.status().as_u16(), 409, "the old hold still takes both units");
    service.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_valid_record_stops_only_its_partition() {
    testing::init_logs();
    let topics = testing::topics("cmd-undecodable", 2);
    let _cleanup = TopicsGuard::new(&topics);
    let layout = TopicLayout::from_args(&topics);
    ensure(&layout).await;
    let codec = Arc::new(EventCodec::new(&testing::registry(), &layout.events).expect("codec"));
    codec.register_all().await.expect("schemas");
    let on = |p: i32| {
        (0..)
            .map(|n| format!("desk-{n}"))
            .find(|id| partition_for(id.as_bytes(), 2) == p)
            .expect("a resource on the partition")
    };
    let (broken, healthy) = (on(0), on(1));
    let mut log = LogWriter::new(&testing::kafka(), &layout.events, Arc::clone(&codec));
    for resource in [&broken, &healthy] {
        let id = ResourceId::parse(resource).expect("id");
        let mut state = ResourceState::new(id.clone());
        let event = decided(
            &mut state,
            &Command::DefineResource {
                resource_id: id,
                name: ResourceName::parse("Desk").expect("name"),
                capacity: Capacity::new(5).expect("capacity"),
            },
        );
        log.event(&event, 2).await;
    }
    // The next valid record of partition 0 is not Confluent-framed Avro at all.
    let token = log.token(0).expect("claimed");
    log.raw(0, &broken, b"\x07not avro", Mark::Data { token, seq: 1 }).await;

    let mut config = support::config(&topics);
    config.command_wait = Duration::from_secs(2);
    let service = testing::RunningService::start(|listener, shutdown| {
        holdfast_command_service::run(config, listener, shutdown)
    })
    .await;
    let http = testing::http();
    let hold = |resource: &str| {
        let body = json!({"resource_id": resource, "from": "2027-03-01", "to": "2027-03-02", "quantity": 1, "customer_id": "c"});
        http.post(service.url("/v1/reservations")).json(&body).send()
    };
    let served = testing::eventually(Duration::from_secs(60), || async {
        hold(&healthy).await.ok().filter(|r| r.status().as_u16() == 201).map(|_| ())
    })
    .await;
    assert!(served.is_some(), "the healthy partition decides");
    let stopped = testing::eventually(Duration::from_secs(30), || async {
        sample(&service.metrics().await, "holdfast_stopped_partitions ").filter(|n| *n == 1.0)
    })
    .await;
    assert!(stopped.is_some(), "the broken partition is reported stopped");
    let (status, _) = service.get_json("/readyz").await;
    assert_eq!(status, 503, "an instance with a stopped partition is not ready");
    let answer = hold(&broken).await.expect("answered");
    assert_eq!(answer.status().as_u16(), 202, "queued for its partition, never decided past the record");
    service.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_decides_without_the_commands_and_replies_topics() {
    testing::init_logs();
    let topics = testing::topics("cmd-fastpath", 4);
    let _cleanup = TopicsGuard::new(&topics);
    let service = support::start(support::config(&topics)).await;
    let http = testing::http();
    let post = |path: &str, body: serde_json::Value| http.post(service.url(path)).json(&body).send();
    let defined =
        post("/v1/resources", json!({"resource_id": "hall-1", "name": "Hall", "capacity": 100})).await;
    assert_eq!(defined.expect("answered").status().as_u16(), 201);
    for n in 0..20 {
        let body = json!({"resource_id": "hall-1", "from": "2027-03-01", "to": "2027-03-02", "quantity": 1, "customer_id": format!("c{n}")});
        assert_eq!(post("/v1/reservations", body).await.expect("answered").status().as_u16(), 201);
    }
    let layout = TopicLayout::from_args(&topics);
    let (commands, replies) = (layout.commands.clone(), layout.replies.clone());
    let records = tokio::task::spawn_blocking(move || {
        let reader: BaseConsumer =
            holdfast_platform::kafka::reader_config(&testing::kafka(), "fastpath-check")
                .create()
                .expect("reader");
        let mut total = 0;
        for topic in [&commands, &replies] {
            for partition in 0..4 {
                let (low, high) =
                    reader.fetch_watermarks(topic, partition, Duration::from_secs(10)).expect("watermarks");
                total += high - low;
            }
        }
        total
    })
    .await
    .expect("joined");
    assert_eq!(records, 0, "no command or reply went through Kafka");
    service.stop().await.expect("clean stop");
}

/// Creates the topics, waiting until the cluster shows them.
pub(crate) async fn ensure(layout: &TopicLayout) {
    let made = testing::eventually(Duration::from_secs(30), || async {
        layout.ensure(&testing::kafka()).await.ok()
    })
    .await;
    assert!(made.is_some(), "topics created");
}

/// Registers `schema` under `subject` directly; returns its id.
pub(crate) async fn register_raw(subject: &str, schema: &str) -> u32 {
    let url = format!("{}/subjects/{subject}/versions", testing::registry().url);
    let response = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/vnd.schemaregistry.v1+json")
        .body(json!({ "schema": schema }).to_string())
        .send()
        .await
        .expect("registry answers");
    let answer: serde_json::Value = response.json().await.expect("JSON");
    u32::try_from(answer["id"].as_u64().expect("id")).expect("u32 id")
}
