//! The HTTP command API: validates requests, turns them into domain commands, hands them to
//! the [`Dispatcher`] and renders the committed outcome.
//!
//! This module owns the routes of the public command contract (DESIGN.md, "Command API"),
//! its error format (RFC 9457 problem+json, [`problem`]) and its OpenAPI document. It decides
//! nothing: business rules live in the domain crate, decisions in the partition processors.
//! Invalid or unsupported requests are refused before anything is sent to Kafka, and bad
//! input never yields a 5xx.
//!
//! Choices where the contract is silent:
//! - unparseable JSON is 400 `malformed-json`; a non-object body, a wrong JSON type, a missing
//!   or out-of-range field or a bad header is 422 `invalid-input` listing every error;
//! - an id in the path that cannot be valid answers 404 (`unknown-resource`,
//!   `unknown-reservation`, `unknown-command`): nothing can exist under it;
//! - `Idempotency-Key` is optional; without it each request is a new command (its id is a
//!   UUIDv7), which may be handed to the owner of its partition with that id.
//! - every route but `/openapi.json` needs a bearer token ([`auth`]); the scopes each route
//!   needs are in [`auth::needed`]. The peer channel's route ([`peer`]), outside the public
//!   contract, takes batches signed with the peer key instead.

pub mod admin;
pub mod auth;
pub mod body;
pub mod commands;
pub mod dto;
pub mod field;
pub mod idempotency;
pub mod intake;
pub mod middleware;
pub mod openapi;
pub mod outcome;
pub mod peer;
pub mod problem;
pub mod reservations;
pub mod resources;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Method, Uri};
use axum::routing::{get, post, put};
use holdfast_platform::auth::Authenticator;
use holdfast_platform::service::InFlight;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

use self::admin::Partitions;
use self::commands::PendingCommands;
use self::problem::{Problem, ProblemType};
use crate::dispatch::Dispatcher;
use crate::forward::{Forwarder, PEER_PATH};
use crate::metrics::Metrics;

/// Default bound on commands waiting for their outcome on one instance.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 10_000;
/// Default time a request may take before it is answered 503 `timeout`.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How many 202-answered commands are remembered for polling.
const PENDING_REMEMBERED: usize = 100_000;

/// What every handler shares.
#[derive(Clone, Debug)]
pub struct AppState {
    /// Sends commands and waits for their outcomes.
    pub dispatcher: Arc<Dispatcher>,
    /// The service's metrics (request latency is recorded here). Behind an `Arc`: the state is
    /// cloned for every request, and the metrics are a dozen reference-counted handles.
    pub metrics: Arc<Metrics>,
    /// Commands allowed in flight at once; beyond it requests get 429 `rate-limited`.
    pub max_in_flight: usize,
    /// Longest a request may take before it is answered 503 `timeout`.
    pub request_timeout: Duration,
    /// Checks bearer tokens.
    pub auth: Authenticator,
    /// Hands commands to their partitions' owners and checks the batches other instances hand
    /// over, with its peer key; `None`: no peer channel, commands go through the commands topic.
    pub forwarder: Option<Forwarder>,
    /// What the admin API shows of this instance's partitions.
    pub partitions: Option<Arc<Partitions>>,
    in_flight: InFlight,
    pending: Arc<PendingCommands>,
}

impl AppState {
    /// State with the default limits ([`DEFAULT_MAX_IN_FLIGHT`], [`DEFAULT_REQUEST_TIMEOUT`]).
    #[must_use]
    pub fn new(dispatcher: Arc<Dispatcher>, metrics: Metrics, auth: Authenticator) -> Self {
        Self {
            dispatcher,
            metrics: Arc::new(metrics),
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            auth,
            forwarder: None,
            partitions: None,
            in_flight: InFlight::default(),
            pending: Arc::new(PendingCommands::new(PENDING_REMEMBERED)),
        }
    }

    /// The same state with another in-flight limit.
    #[must_use]
    pub fn with_max_in_flight(mut self, max_in_flight: usize) -> Self {
        self.max_in_flight = max_in_flight;
        self
    }

    /// The same state on the peer channel: handing commands to their owners with `forwarder`,
    /// and deciding those other instances hand over, signed with its key.
    #[must_use]
    pub fn with_peers(mut self, forwarder: Forwarder) -> Self {
        self.forwarder = Some(forwarder);
        self
    }

    /// The same state showing `partitions` on the admin API.
    #[must_use]
    pub fn with_partitions(mut self, partitions: Partitions) -> Self {
        self.partitions = Some(Arc::new(partitions));
        self
    }

    /// The same state with another request timeout.
    #[must_use]
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }
}

impl AppState {
    /// A place for one more command, or `None` when [`AppState::max_in_flight`] are in flight.
    fn try_acquire(&self) -> Option<holdfast_platform::service::Admitted> {
        self.in_flight.try_admit(self.max_in_flight)
    }
}

/// The command API: every route of the contract, `GET /openapi.json`, problem+json for
/// unknown routes (404) and methods (405), request ids, spans, timeout and latency metrics.
pub fn router(state: AppState) -> Router {
    let request_id = HeaderName::from_static(middleware::REQUEST_ID);
    let api = Router::new()
        .route("/v1/resources", post(resources::define))
        .route("/v1/resources/{id}/capacity", put(resources::change_capacity))
        .route("/v1/reservations", post(reservations::place_hold))
        .route("/v1/reservations/{id}/confirm", post(reservations::confirm))
        .route("/v1/reservations/{id}/cancel", post(reservations::cancel))
        .route("/v1/commands/{command_id}", get(commands::outcome))
        .route("/v1/admin/partitions", get(admin::partitions))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), auth::authenticate));
    Router::new()
        .merge(api)
        .route("/openapi.json", get(openapi::serve))
        .route(PEER_PATH, post(peer::decide))
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        // `body::read` enforces the limit itself, draining what it refuses.
        .layer(DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn_with_state(state.clone(), middleware::observe))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}

async fn not_found(uri: Uri) -> Problem {
    Problem::new(ProblemType::NotFound, "no such route", uri.path())
}

async fn method_not_allowed(method: Method, uri: Uri) -> Problem {
    let detail = format!("{method} is not allowed here; see the Allow header");
    Problem::new(ProblemType::MethodNotAllowed, detail, uri.path())
}
