//! Per-request plumbing around every route: a `tracing` span, the request timeout and the
//! latency metric (labelled by route template, never a raw path). Request ids are set and
//! echoed by tower-http's layers outside this one, so the span carries the id.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use holdfast_platform::service;
use tracing::Instrument;

use super::AppState;
use super::problem::{Problem, ProblemType};

/// Header carrying the request id (set when absent, echoed on the response).
pub const REQUEST_ID: &str = "x-request-id";

/// Route label of requests that matched no route.
const UNMATCHED: &str = "unmatched";

/// Wraps one request: span, timeout (503 `timeout` with `Retry-After`), latency metric. For a
/// live stream the latency is the time to its first byte (the snapshot), not its lifetime.
pub async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request.extensions().get::<MatchedPath>().map_or(UNMATCHED, MatchedPath::as_str).to_owned();
    let method = if KNOWN.contains(request.method()) { request.method().as_str() } else { "OTHER" };
    let method = method.to_owned();
    let path = request.uri().path().to_owned();
    let request_id =
        request.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let span = tracing::info_span!(
        "http_request",
        method = %method,
        route = %route,
        request_id = %request_id,
        status = tracing::field::Empty,
    );
    let timeout = state.settings.request_timeout;
    let headers_too_large = service::headers_too_large(request.headers());
    // Streams are long by design and capped on their own; every other request counts against
    // the in-flight bound, past which the instance sheds load instead of queueing it.
    let in_flight =
        (!route.ends_with("/stream")).then(|| state.in_flight.try_admit(state.settings.max_in_flight));
    let response = if matches!(in_flight, Some(None)) {
        let detail = "this instance is serving as many requests as it may; retry shortly";
        Problem::new(ProblemType::Unavailable, detail, &path).retry_after(1).into_response()
    } else if let Some(detail) = headers_too_large {
        Problem::new(ProblemType::HeadersTooLarge, detail, &path).into_response()
    } else {
        match tokio::time::timeout(timeout, next.run(request)).instrument(span.clone()).await {
            Ok(response) => response,
            Err(_) => {
                span.in_scope(|| tracing::warn!(?timeout, "request timed out"));
                Problem::new(ProblemType::Timeout, "the request took too long", &path)
                    .retry_after(1)
                    .into_response()
            }
        }
    };
    let status = response.status();
    span.record("status", status.as_u16());
    state
        .metrics
        .requests
        .with_label_values(&[route.as_str(), method.as_str(), status.as_str()])
        .observe(started.elapsed().as_secs_f64());
    response
}

/// Methods labelled by name; anything else is `OTHER`.
const KNOWN: [Method; 9] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
    Method::OPTIONS,
    Method::TRACE,
    Method::CONNECT,
];
