//! `/healthz`, `/readyz` and `/metrics` of the query service.
//!
//! The shared `holdfast_platform::Ops` supplies the metrics registry; readiness is answered
//! here because the query service has an optional dependency: PostgreSQL must answer (503
//! otherwise), Redis only makes reads faster, so without it the service is ready but
//! `"status": "degraded"` with the reason under `checks.redis`. Taking every instance out of
//! rotation for a cache outage would turn a slowdown into an outage.

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use holdfast_platform::Ops;
use holdfast_platform::redis::Redis;
use prometheus::{Encoder, TextEncoder};
use serde_json::json;
use sqlx::PgPool;

/// Longest a readiness probe of one dependency may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// What the ops routes need.
#[derive(Debug, Clone)]
pub struct OpsState {
    /// Registry of the service's metrics.
    pub ops: Ops,
    /// Every read-model shard (required).
    pub shards: Vec<PgPool>,
    /// The cache (optional).
    pub redis: Redis,
}

/// The ops routes.
pub fn router(state: OpsState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { axum::Json(json!({ "status": "ok" })) }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn readyz(State(state): State<OpsState>) -> Response {
    let postgres = async {
        for (shard, pool) in state.shards.iter().enumerate() {
            match tokio::time::timeout(CHECK_TIMEOUT, holdfast_platform::postgres::ping(pool)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(format!("shard {shard}: {e}")),
                Err(_) => return Err(format!("shard {shard}: no answer within {CHECK_TIMEOUT:?}")),
            }
        }
        Ok(())
    };
    let redis = async {
        match tokio::time::timeout(CHECK_TIMEOUT, state.redis.ping()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {CHECK_TIMEOUT:?}")),
        }
    };
    let (postgres, redis) = tokio::join!(postgres, redis);
    let status = match (&postgres, &redis) {
        (Err(_), _) => "not-ready",
        (Ok(()), Err(_)) => "degraded",
        (Ok(()), Ok(())) => "ready",
    };
    // The body says only ok, failing or degraded: error texts can name hosts and users. Why a
    // check fails goes to the log, for the operator.
    if let Err(detail) = &postgres {
        tracing::warn!(check = "postgres", %detail, "readiness check failing");
    }
    if let Err(detail) = &redis {
        tracing::warn!(check = "redis", %detail, "readiness check failing; reads are served from postgres");
    }
    let checks = json!({
        "postgres": if postgres.is_ok() { "ok" } else { "failing" },
        "redis": if redis.is_ok() { "ok" } else { "degraded: serving from postgres" },
    });
    if postgres.is_ok() {
        return (StatusCode::OK, axum::Json(json!({ "status": status, "checks": checks }))).into_response();
    }
    let body = json!({
        "type": "https://holdfast.dev/problems/not-ready",
        "title": "Service not ready",
        "status": 503,
        "detail": "the read model cannot be reached",
        "checks": checks,
    });
    let mut response = (StatusCode::SERVICE_UNAVAILABLE, body.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
    headers.insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
    response
}

async fn metrics(State(state): State<OpsState>) -> Response {
    let encoder = TextEncoder::new();
    let mut buffer = Vec::new();
    if let Err(error) = encoder.encode(&state.ops.registry.gather(), &mut buffer) {
        tracing::warn!(%error, "metrics could not be encoded");
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    ([(header::CONTENT_TYPE, encoder.format_type().to_owned())], buffer).into_response()
}
