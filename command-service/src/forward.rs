//! Forwarding a command to the instance that owns its partition.
//!
//! With many instances behind a load balancer, most requests land on an instance that does
//! not own their resource's partition. Such an instance sends the request on, as it came
//! (method, path, body, the caller's bearer token, its `Idempotency-Key`, trace context and
//! request id), to the owner's command API named in the owners directory, over one pooled
//! HTTP/2 connection per owner. The owner authenticates and validates it again, decides it in
//! its lane, and its answer goes back to the caller unchanged: the caller's identity is proven
//! by its own token, never vouched for by the forwarder.
//!
//! A forwarded request carries [`FORWARDED_BY`]. An owner never forwards such a request again:
//! it decides it, or refuses it with 421 `not-owner` when it does not own the partition (or
//! has not finished restoring it), having decided nothing. The forwarder then looks at its
//! directory again and tries once more if it names another owner, and otherwise queues the
//! command on the commands topic. Every path deduplicates by command id, so a command is
//! decided once whichever ways it travelled.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::Response;

use crate::directory::{Directory, Route};
use crate::metrics::Metrics;

/// The header marking a forwarded request; its value is the forwarding instance's id.
pub const FORWARDED_BY: &str = "holdfast-forwarded-by";
/// The header on a relayed answer naming the instance that decided it.
pub const DECIDED_BY: &str = "holdfast-decided-by";

/// Request headers that travel with a forwarded command.
const CARRIED: [&str; 7] = [
    "authorization",
    "content-type",
    "idempotency-key",
    "traceparent",
    "tracestate",
    "x-request-id",
    "accept",
];

/// Connection-level response headers that are not relayed.
const HOP_BY_HOP: [HeaderName; 3] = [header::CONNECTION, header::TRANSFER_ENCODING, header::UPGRADE];

/// Longest a forward may wait for its connection: an owner that does not accept within it is
/// treated as unreachable (nothing was sent).
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// How often an idle or busy connection to an owner is pinged (HTTP/2 PING), and how long the
/// answer may take. An owner that does not answer a ping (paused, partitioned away) loses the
/// connection, and the forwards waiting on it go through the commands topic with the time left,
/// where the partition's next owner decides them. A merely busy owner answers pings (the
/// connection's task answers them, not its lanes), so its forwards wait for its decisions, as a
/// local caller would: giving up on a loaded owner would only add the topic path's work to it.
const PING_EVERY: Duration = Duration::from_secs(1);
const PING_TIMEOUT: Duration = Duration::from_secs(2);
/// How long an owner that could not be reached, or did not answer, is passed over: meanwhile
/// its partitions' commands go through the commands topic without waiting on it first.
const SUSPECT_FOR: Duration = Duration::from_secs(3);

/// A command request as it arrived, to be sent on.
#[derive(Debug, Clone)]
pub struct Forwardable {
    /// Its method.
    pub method: Method,
    /// Its path and query.
    pub path: String,
    /// The headers that travel with it ([`CARRIED`]).
    pub headers: HeaderMap,
    /// Its body, as read.
    pub body: Bytes,
}

impl Forwardable {
    /// The parts of a request that travel with it.
    #[must_use]
    pub fn new(method: Method, path: String, all: &HeaderMap, body: Bytes) -> Self {
        let mut headers = HeaderMap::new();
        for name in CARRIED {
            for value in all.get_all(name) {
                headers.append(HeaderName::from_static(name), value.clone());
            }
        }
        Self { method, path, headers, body }
    }
}

/// How a forward ended.
#[derive(Debug)]
pub enum Forwarded {
    /// The owner answered: relay this to the caller.
    Answered(Response),
    /// The owner refused (not its partition, or not restored yet): nothing was decided there.
    Refused,
    /// No connection to the owner: nothing was sent.
    Unreachable,
    /// Sent, but no answer came in time: the owner may have decided it.
    Unclear,
}

/// Sends commands on to their partitions' owners.
#[derive(Debug, Clone)]
pub struct Forwarder {
    client: reqwest::Client,
    directory: Arc<Directory>,
    instance: HeaderValue,
    me: String,
    metrics: Metrics,
    /// Owners passed over until the instant given.
    suspects: Arc<Mutex<HashMap<String, tokio::time::Instant>>>,
}

impl Forwarder {
    /// A forwarder for instance `me`, routing by `directory`.
    ///
    /// # Errors
    /// When the HTTP client cannot be built (the TLS backend failed to start).
    pub fn new(me: &str, directory: Arc<Directory>, metrics: Metrics) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .http2_prior_knowledge()
            .connect_timeout(CONNECT_TIMEOUT)
            .pool_idle_timeout(Duration::from_secs(90))
            .http2_keep_alive_interval(PING_EVERY)
            .http2_keep_alive_timeout(PING_TIMEOUT)
            .http2_keep_alive_while_idle(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let instance = HeaderValue::from_str(me).unwrap_or_else(|_| HeaderValue::from_static("unnamed"));
        let suspects = Arc::default();
        Ok(Self { client, directory, instance, me: me.to_owned(), metrics, suspects })
    }

    /// Where `partition`'s commands go, if another instance is its ready owner and has not
    /// failed to answer lately.
    #[must_use]
    pub fn route(&self, partition: i32) -> Option<Route> {
        let route = self.directory.route(partition, &self.me)?;
        let mut suspects = self.suspects.lock().unwrap_or_else(PoisonError::into_inner);
        match suspects.get(&route.owner) {
            Some(until) if *until > tokio::time::Instant::now() => None,
            Some(_) => {
                suspects.remove(&route.owner);
                Some(route)
            }
            None => Some(route),
        }
    }

    fn suspect(&self, owner: &str) {
        let until = tokio::time::Instant::now() + SUSPECT_FOR;
        self.suspects.lock().unwrap_or_else(PoisonError::into_inner).insert(owner.to_owned(), until);
    }

    /// Forwards `request` for `partition` to its owner, until `deadline`; looks again and
    /// tries once more when the first owner refused or could not be reached. `None` when no
    /// other instance is known to own the partition (or none took it): queue it instead.
    pub async fn forward(
        &self,
        partition: i32,
        request: &Forwardable,
        deadline: tokio::time::Instant,
    ) -> Option<Forwarded> {
        let mut tried: Option<Route> = None;
        for _ in 0..2 {
            let route = self.route(partition).filter(|route| tried.as_ref() != Some(route))?;
            match self.send(&route, request, deadline).await {
                Forwarded::Refused => {
                    tracing::debug!(partition, owner = %route.owner, "forward refused: not the owner");
                    tried = Some(route);
                }
                Forwarded::Unreachable => {
                    tracing::debug!(partition, owner = %route.owner, "forward failed: owner unreachable");
                    self.suspect(&route.owner);
                    tried = Some(route);
                }
                Forwarded::Unclear => {
                    self.suspect(&route.owner);
                    return Some(Forwarded::Unclear);
                }
                answered => return Some(answered),
            }
        }
        None
    }

    /// One forward to `route`.
    async fn send(&self, route: &Route, request: &Forwardable, deadline: tokio::time::Instant) -> Forwarded {
        let started = tokio::time::Instant::now();
        let url = format!("http://{}{}", route.address, request.path);
        let mut headers = request.headers.clone();
        headers.insert(HeaderName::from_static(FORWARDED_BY), self.instance.clone());
        let sent = self
            .client
            .request(request.method.clone(), url)
            .headers(headers)
            .body(request.body.clone())
            .timeout(deadline.saturating_duration_since(started))
            .send();
        let result = match sent.await {
            Ok(response) if response.status() == StatusCode::MISDIRECTED_REQUEST => Forwarded::Refused,
            Ok(response) => match relay(response, &route.owner).await {
                Some(relayed) => Forwarded::Answered(relayed),
                None => Forwarded::Unclear,
            },
            Err(error) if error.is_connect() => Forwarded::Unreachable,
            Err(error) => {
                tracing::warn!(owner = %route.owner, %error, "forwarded command unanswered");
                Forwarded::Unclear
            }
        };
        let label = match result {
            Forwarded::Answered(_) => "answered",
            Forwarded::Refused => "refused",
            Forwarded::Unreachable => "unreachable",
            Forwarded::Unclear => "unclear",
        };
        self.metrics.forwards.with_label_values(&[label]).inc();
        self.metrics.forward_seconds.observe(started.elapsed().as_secs_f64());
        result
    }
}

/// The owner's answer as this instance's own, naming the owner in [`DECIDED_BY`]; `None` when
/// its body broke off.
async fn relay(response: reqwest::Response, owner: &str) -> Option<Response> {
    let status = response.status();
    let mut headers = response.headers().clone();
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
    headers.remove(header::CONTENT_LENGTH);
    let body = response.bytes().await.ok()?;
    let mut relayed = Response::new(Body::from(body));
    *relayed.status_mut() = status;
    *relayed.headers_mut() = headers;
    if let Ok(owner) = HeaderValue::from_str(owner) {
        relayed.headers_mut().insert(HeaderName::from_static(DECIDED_BY), owner);
    }
    Some(relayed)
}
