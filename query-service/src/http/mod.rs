//! The HTTP read API (DESIGN.md, "Read API" and the query side of the contract table):
//! availability, reservations, customers' lists, live updates, and the OpenAPI document.
//!
//! This module owns the routes, their parameters, caching headers and error format
//! (RFC 9457 problem+json, [`problem`]). Reads go through [`crate::read`], read-your-writes
//! waits through [`crate::watermarks`], live updates through [`crate::live`].
//!
//! Choices where the contract is silent:
//! - a resource or reservation id in the path that cannot be valid answers 404 (nothing can
//!   exist under it), as the command API does; an invalid customer id is 422 (customers are
//!   not known to Holdfast, so a list is never 404);
//! - `min_position` comes from the query or the `Min-Position` header (the query wins);
//! - bad input is 422 `invalid-input` listing every bad parameter, never a 5xx; an unknown
//!   query parameter is bad input too (a misspelt `min_position` must not quietly read
//!   without waiting);
//! - an empty `Min-Position` header counts as absent.

pub mod auth;
pub mod availability;
pub mod middleware;
pub mod openapi;
pub mod params;
pub mod problem;
pub mod reservations;
pub mod stream;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, Method, Uri};
use axum::routing::get;
use holdfast_platform::Shutdown;
use holdfast_platform::auth::Authenticator;
use holdfast_platform::auth::slots::ClientSlots;
use holdfast_platform::service::InFlight;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

use self::problem::{Problem, ProblemType};
use crate::live::Live;
use crate::metrics::Metrics;
use crate::read::ReadModel;
use crate::watermarks::Watermarks;

/// Tunables of the HTTP layer.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Longest wait for a `min_position`.
    pub max_wait: Duration,
    /// Interval of live-stream heartbeats.
    pub heartbeat: Duration,
    /// Snapshot polling interval of streams while live updates are down.
    pub stream_poll: Duration,
    /// Most streams open at once.
    pub max_streams: usize,
    /// Longest a request may take.
    pub request_timeout: Duration,
    /// Most requests (streams aside) served at once.
    pub max_in_flight: usize,
}

/// What every handler shares.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The read model.
    pub reads: Arc<ReadModel>,
    /// Read-your-writes waits.
    pub watermarks: Watermarks,
    /// Live-update fan-out.
    pub live: Live,
    /// The service's metrics.
    pub metrics: Metrics,
    /// Tunables.
    pub settings: Arc<HttpSettings>,
    /// Ends live streams when the service stops.
    pub shutdown: Shutdown,
    /// Streams open now.
    pub streams: InFlight,
    /// Checks bearer tokens.
    pub auth: Authenticator,
    /// Each client's open live-update streams.
    pub client_streams: Arc<ClientSlots>,
    /// Each client's parked read-your-writes waits.
    pub client_waits: Arc<ClientSlots>,
    /// Requests (streams aside) being served now, against `HttpSettings::max_in_flight`.
    pub in_flight: InFlight,
}

/// The read API: every route, `GET /openapi.json`, problem+json for unknown routes (404) and
/// methods (405), request ids, spans, timeout and latency metrics.
pub fn router(state: AppState) -> Router {
    let request_id = HeaderName::from_static(middleware::REQUEST_ID);
    let api = Router::new()
        .route("/v1/resources/{id}/availability", get(availability::availability))
        .route("/v1/resources/{id}/availability/stream", get(stream::stream))
        .route("/v1/reservations/{id}", get(reservations::reservation))
        .route("/v1/customers/{id}/reservations", get(reservations::customer_reservations))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), auth::authenticate));
    Router::new()
        .merge(api)
        .route("/openapi.json", get(openapi::serve))
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
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
