//! Holds over HTTP against running instances, as clients would send them, for the failure
//! tests; and the audit of the events log that judges them afterwards.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use holdfast_platform::TopicArgs;
use holdfast_platform::audit::{AuditReport, audit_log};
use holdfast_platform::codec::EventCodec;
use holdfast_platform::testing;
use holdfast_platform::topics::TopicLayout;
use serde_json::{Value, json};
use tokio::task::JoinSet;

/// How long one request may take before the client gives up on it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A hold request, kept to be asked again with the same key.
#[derive(Debug, Clone)]
pub struct Request {
    key: String,
    body: Value,
}

/// What the load saw.
#[derive(Debug, Default)]
pub struct Tally {
    /// Reservation ids of holds answered 201.
    pub accepted: Vec<String>,
    /// Holds answered 409.
    pub refused: usize,
    /// Requests answered neither (503, 202, a timeout, a broken connection).
    pub undecided: Vec<Request>,
    /// Requests answered with a 5xx status while the load ran.
    pub server_errors: usize,
}

/// Defines `count` resources of `capacity` through `target`; returns their ids.
pub async fn define(target: SocketAddr, prefix: &str, count: usize, capacity: u32) -> Vec<String> {
    let client = testing::http();
    let mut ids = Vec::with_capacity(count);
    for i in 0..count {
        let id = format!("{prefix}-{i}");
        let body = json!({"resource_id": id, "name": "Hall", "capacity": capacity});
        let answered = testing::eventually(Duration::from_secs(30), || {
            let request = client.post(format!("http://{target}/v1/resources")).json(&body).send();
            async move { request.await.ok().filter(|r| r.status().as_u16() == 201).map(|_| ()) }
        })
        .await;
        assert!(answered.is_some(), "resource {id} defined");
        ids.push(id);
    }
    ids
}

/// Concurrent clients placing holds on a few resources, round-robin over the targets.
pub struct HttpLoad {
    stop: Arc<AtomicBool>,
    decided: Arc<AtomicUsize>,
    targets: Arc<RwLock<Vec<SocketAddr>>>,
    workers: JoinSet<Tally>,
}

impl HttpLoad {
    /// Starts `clients` clients holding 1–2 units for three nights on `resources`, each hold
    /// for `hold_seconds`.
    pub fn start(targets: Vec<SocketAddr>, resources: &[String], clients: usize, hold_seconds: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let decided = Arc::new(AtomicUsize::new(0));
        let targets = Arc::new(RwLock::new(targets));
        let mut workers = JoinSet::new();
        for client in 0..clients {
            let (stop, decided, targets) = (Arc::clone(&stop), Arc::clone(&decided), Arc::clone(&targets));
            let resources = resources.to_vec();
            workers.spawn(async move {
                let http = testing::http_builder().timeout(REQUEST_TIMEOUT).build().expect("client");
                let mut tally = Tally::default();
                let mut n = client;
                while !stop.load(Ordering::Relaxed) {
                    n += clients;
                    let target = {
                        let targets = targets.read().expect("targets");
                        targets[n % targets.len()]
                    };
                    let request = Request {
                        key: testing::unique("hold"),
                        body: json!({
                            "resource_id": resources[n % resources.len()],
                            "from": "2027-01-10", "to": "2027-01-13",
                            "quantity": 1 + n % 2, "customer_id": "load", "hold_seconds": hold_seconds,
                        }),
                    };
                    match send(&http, target, &request).await {
                        Some((201, id)) => {
                            tally.accepted.push(id);
                            decided.fetch_add(1, Ordering::Relaxed);
                        }
                        Some((409, _)) => {
                            tally.refused += 1;
                            decided.fetch_add(1, Ordering::Relaxed);
                        }
                        answered => {
                            if answered.is_some_and(|(status, _)| status >= 500) {
                                tally.server_errors += 1;
                            }
                            tally.undecided.push(request);
                        }
                    }
                }
                tally
            });
        }
        Self { stop, decided, targets, workers }
    }

    /// Sends from now on to `targets` only.
    pub fn retarget(&self, targets: Vec<SocketAddr>) {
        *self.targets.write().expect("targets") = targets;
    }

    /// Decisions (201 or 409) so far.
    pub fn decided(&self) -> usize {
        self.decided.load(Ordering::Relaxed)
    }

    /// Waits until `decisions` more commands were decided.
    pub async fn advance(&self, decisions: usize) {
        let target = self.decided() + decisions;
        let advanced = testing::eventually(Duration::from_secs(90), || async {
            (self.decided() >= target).then_some(())
        })
        .await;
        assert!(advanced.is_some(), "the load got {decisions} more decisions through");
    }

    /// Stops the clients, then asks every undecided hold again with its key until it is
    /// decided (its first decision, if it had one).
    pub async fn finish(mut self) -> Tally {
        self.stop.store(true, Ordering::Relaxed);
        let mut tally = Tally::default();
        while let Some(done) = self.workers.join_next().await {
            let done = done.expect("load client");
            tally.accepted.extend(done.accepted);
            tally.refused += done.refused;
            tally.undecided.extend(done.undecided);
            tally.server_errors += done.server_errors;
        }
        let http = testing::http_builder().timeout(REQUEST_TIMEOUT).build().expect("client");
        let targets = self.targets.read().expect("targets").clone();
        let mut left = Vec::new();
        for (n, request) in std::mem::take(&mut tally.undecided).into_iter().enumerate() {
            let answer =
                testing::eventually(Duration::from_secs(60), || {
                    let (http, request, target) = (&http, &request, targets[n % targets.len()]);
                    async move {
                        send(http, target, request).await.filter(|(status, _)| matches!(status, 201 | 409))
                    }
                })
                .await;
            match answer {
                Some((201, id)) => tally.accepted.push(id),
                Some(_) => tally.refused += 1,
                None => left.push(request),
            }
        }
        tally.undecided = left;
        tally
    }
}

/// Sends one hold; (status, reservation id) when answered.
async fn send(http: &reqwest::Client, target: SocketAddr, request: &Request) -> Option<(u16, String)> {
    let response = http
        .post(format!("http://{target}/v1/reservations"))
        .header("Idempotency-Key", &request.key)
        .json(&request.body)
        .send()
        .await
        .ok()?;
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    Some((status, body["reservation_id"].as_str().unwrap_or_default().to_owned()))
}

/// Audits the events topic by the reader rule: no slot over capacity, every valid record
/// decodes, and every hold answered 201 is valid in the log exactly once.
pub async fn assert_log_is_sound(topics: &TopicArgs, tally: &Tally) -> AuditReport {
    let layout = TopicLayout::from_args(topics);
    let codec = Arc::new(EventCodec::new(&testing::registry(), &layout.events).expect("codec"));
    codec.register_all().await.expect("schemas");
    let report =
        audit_log(&testing::kafka(), &layout.events, topics.partitions, codec, Duration::from_secs(60))
            .await
            .expect("log audited");
    assert!(report.overbookings.is_empty(), "overbooked: {:?}", report.overbookings);
    assert_eq!(report.undecodable, 0, "every valid record decodes");
    assert!(report.duplicated_holds().is_empty(), "held twice: {:?}", report.duplicated_holds());
    let holds: std::collections::HashMap<String, u32> =
        report.holds.iter().map(|(id, n)| (id.to_string(), *n)).collect();
    let missing: Vec<_> = tally.accepted.iter().filter(|id| holds.get(*id) != Some(&1)).collect();
    assert!(missing.is_empty(), "holds answered 201 but not valid in the log exactly once: {missing:?}");
    let unique: HashSet<_> = tally.accepted.iter().collect();
    assert_eq!(unique.len(), tally.accepted.len(), "no reservation answered twice");
    assert!(tally.undecided.is_empty(), "every hold decided in the end: {} left", tally.undecided.len());
    assert!(tally.accepted.len() > 20, "the load got holds through: {}", tally.accepted.len());
    report
}
