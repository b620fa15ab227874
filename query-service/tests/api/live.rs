//! Live updates over Server-Sent Events: a snapshot first, the change a new hold causes within
//! a second, heartbeats, and a fresh snapshot for a reconnecting client.

use std::time::{Duration, Instant};

use holdfast_platform::testing;
use serde_json::Value;

use crate::support::Stack;

/// One Server-Sent Event (or comment).
#[derive(Debug, Default)]
struct SseEvent {
    event: String,
    id: String,
    data: String,
    comment: String,
}

/// Reads events off an open stream.
struct SseReader {
    response: reqwest::Response,
    buffer: String,
}

impl SseReader {
    async fn open(url: &str, last_event_id: Option<&str>) -> Self {
        let mut request = testing::http().get(url);
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = request.send().await.expect("stream opens");
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers().get("content-type").and_then(|v| v.to_str().ok()),
            Some("text/event-stream")
        );
        Self { response, buffer: String::new() }
    }

    /// The next event, or `None` after `deadline`.
    async fn next(&mut self, deadline: Duration) -> Option<SseEvent> {
        let until = tokio::time::Instant::now() + deadline;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = SseEvent::default();
                for line in block.lines() {
                    if let Some(comment) = line.strip_prefix(':') {
                        event.comment = comment.trim().to_owned();
                    } else if let Some((field, value)) = line.split_once(':') {
                        let value = value.strip_prefix(' ').unwrap_or(value).to_owned();
                        match field {
                            "event" => event.event = value,
                            "id" => event.id = value,
                            "data" => event.data.push_str(&value),
                            _ => {}
                        }
                    }
                }
                return Some(event);
            }
            let chunk = tokio::time::timeout_at(until, self.response.chunk()).await.ok()?.ok()??;
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// The next event that is not a comment.
    async fn next_event(&mut self, deadline: Duration) -> Option<SseEvent> {
        let until = Instant::now() + deadline;
        loop {
            let event = self.next(until.saturating_duration_since(Instant::now())).await?;
            if event.comment.is_empty() {
                return Some(event);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_shows_a_new_hold_within_a_second() {
    let stack = Stack::new("q-live", 4, 1).await;
    let worker = stack.start_worker().await;
    let mut config = stack.config();
    config.heartbeat = Duration::from_millis(300);
    let query = stack.start_query(config).await;
    let token = stack.produce_one_resource(&stack.define("hall-1", 8)).await;
    let url = query.url(&format!(
        "/v1/resources/hall-1/availability/stream?from=2031-07-01&to=2031-07-04&min_position={token}"
    ));

    let mut stream = SseReader::open(&url, None).await;
    let snapshot = stream.next_event(Duration::from_secs(5)).await.expect("a snapshot first");
    assert_eq!(snapshot.event, "snapshot");
    let body: Value = serde_json::from_str(&snapshot.data).expect("json");
    assert_eq!(body["slots"].as_array().map(Vec::len), Some(3));
    assert_eq!(body["slots"][1]["held"], 0);

    // Warm the projection path, then time one hold from its commit to the stream.
    for (round, day) in [(1_u32, "2031-07-02"), (2, "2031-07-02")] {
        let next_day = if day == "2031-07-02" { "2031-07-03" } else { "2031-07-04" };
        let (_, events) = stack.hold("hall-1", day, next_day, round, "eve");
        // From before the Kafka transaction: commit, projection, Redis, pub/sub, stream.
        let committed = Instant::now();
        stack.produce_one_resource(&events).await;
        let update = loop {
            let event = stream.next_event(Duration::from_secs(5)).await.expect("an update");
            if event.event == "update" {
                break event;
            }
        };
        let elapsed = committed.elapsed();
        let body: Value = serde_json::from_str(&update.data).expect("json");
        assert_eq!(body["slots"][0]["slot"], "2031-07-02");
        assert_eq!(body["slots"][0]["held"], if round == 1 { 1 } else { 3 });
        assert_eq!(update.id, body["version"].to_string());
        eprintln!("round {round}: update received {elapsed:?} after the transaction began");
        assert!(elapsed < Duration::from_secs(1), "update after {elapsed:?}");
    }

    // Heartbeats keep the stream alive.
    let heartbeat = stream.next(Duration::from_secs(2)).await.expect("a heartbeat");
    assert_eq!(heartbeat.comment, "heartbeat");

    // A reconnecting client gets a fresh snapshot first, with everything so far.
    drop(stream);
    let mut again = SseReader::open(&url, Some(&snapshot.id)).await;
    let fresh = again.next_event(Duration::from_secs(5)).await.expect("a snapshot");
    assert_eq!(fresh.event, "snapshot");
    let body: Value = serde_json::from_str(&fresh.data).expect("json");
    assert_eq!(body["slots"][1]["held"], 3);
    assert_ne!(fresh.id, snapshot.id);

    drop(again);
    query.stop().await.expect("clean stop, streams closed");
    worker.stop().await.expect("clean stop");
    stack.tear_down().await;
}

/// One client cannot take every stream: past its own cap it gets 429, while another client
/// still opens one. With no room for requests at all, reads are shed with 503 + Retry-After.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_are_capped_per_client_and_an_overloaded_instance_sheds_reads() {
    use holdfast_platform::auth::Scope;

    let stack = Stack::new("q-caps", 4, 1).await;
    let worker = stack.start_worker().await;
    let mut config = stack.config();
    config.max_streams_per_client = 1;
    let query = stack.start_query(config).await;
    let token = stack.produce_one_resource(&stack.define("hall-2", 8)).await;
    let url = query.url(&format!(
        "/v1/resources/hall-2/availability/stream?from=2031-07-01&to=2031-07-04&min_position={token}"
    ));
    let open = |subject: &str| {
        let request =
            reqwest::Client::new().get(&url).bearer_auth(testing::token(subject, &[Scope::AvailabilityRead]));
        request.send()
    };
    let first = open("ada").await.expect("answers");
    assert_eq!(first.status(), 200, "ada's first stream");
    let second = open("ada").await.expect("answers");
    assert_eq!(second.status(), 429, "ada's second stream is past her cap");
    assert!(second.headers().contains_key("retry-after"));
    let other = open("bob").await.expect("answers");
    assert_eq!(other.status(), 200, "bob is not affected by ada's streams");
    drop((first, other));

    let mut config = stack.config();
    config.max_in_flight = 0;
    let overloaded = stack.start_query(config).await;
    let read = testing::http()
        .get(overloaded.url("/v1/resources/hall-2/availability?from=2031-07-01&to=2031-07-04"))
        .send()
        .await
        .expect("answers");
    assert_eq!(read.status(), 503);
    assert_eq!(read.headers().get("retry-after").and_then(|v| v.to_str().ok()), Some("1"));
    let (status, _) = overloaded.get_json("/readyz").await;
    assert_eq!(status, 200, "health and readiness are not shed");

    overloaded.stop().await.expect("clean stop");
    query.stop().await.expect("clean stop");
    worker.stop().await.expect("clean stop");
    stack.tear_down().await;
}
