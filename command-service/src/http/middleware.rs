//! Per-request plumbing around every route: a `tracing` span, the request timeout and the
//! latency metric. Request ids are set and echoed by tower-http's request-id layers (see
//! [`super::router`]), which run outside this one so the span can carry the id.
//!
//! Metric labels are the matched route *template* (`/v1/reservations/{id}/confirm`), a
//! normalized method and the status: never a raw path, which would explode cardinality.

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

/// Wraps one request: span, timeout (503 `timeout` with `Retry-After`), latency metric.
pub async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request.extensions().get::<MatchedPath>().map_or(UNMATCHED, MatchedPath::as_str).to_owned();
    let method = method_label(request.method());
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

    let headers_too_large = service::headers_too_large(request.headers());
    let response = if let Some(detail) = headers_too_large {
        Problem::new(ProblemType::HeadersTooLarge, detail, &path).into_response()
    } else {
        match tokio::time::timeout(state.request_timeout, next.run(request)).instrument(span.clone()).await {
            Ok(response) => response,
            Err(_) => {
                span.in_scope(|| tracing::warn!(timeout = ?state.request_timeout, "request timed out"));
                let detail =
                    "the request took too long; retry with the same Idempotency-Key to get its outcome";
                Problem::new(ProblemType::Timeout, detail, &path).retry_after(1).into_response()
            }
        }
    };

    let status = response.status();
    span.record("status", status.as_u16());
    span.in_scope(|| tracing::debug!(elapsed = ?started.elapsed(), "request finished"));
    state
        .metrics
        .requests
        .with_label_values(&[route.as_str(), method.as_str(), status.as_str()])
        .observe(started.elapsed().as_secs_f64());
    response
}

/// The method as a metric label: standard methods by name, anything else as `OTHER`.
fn method_label(method: &Method) -> String {
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
    if KNOWN.contains(method) { method.as_str().to_owned() } else { "OTHER".to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_labels_are_bounded() {
        assert_eq!(method_label(&Method::POST), "POST");
        let odd = Method::from_bytes(b"BREW").expect("extension method");
        assert_eq!(method_label(&odd), "OTHER");
    }
}
