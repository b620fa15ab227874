//! Operational endpoints every service serves: `/healthz` (the process is alive),
//! `/readyz` (its dependencies answer and its own start-up work is done) and `/metrics`
//! (Prometheus text format).
//!
//! Each service owns one [`Ops`]: a metrics registry of its own (so several services can
//! run in one test process) and a list of named readiness checks that run concurrently, each
//! bounded by a timeout, on every `/readyz` request.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus::{Encoder, IntGauge, Opts, Registry, TextEncoder};
use serde_json::json;

/// What a readiness check returns: `Ok` or the reason it is not ready.
pub type CheckFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

type Check = Arc<dyn Fn() -> CheckFuture + Send + Sync>;

/// The named readiness checks of one service.
#[derive(Clone, Default)]
pub struct Readiness {
    checks: Vec<(&'static str, Check)>,
}

impl fmt::Debug for Readiness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<_> = self.checks.iter().map(|(name, _)| *name).collect();
        f.debug_struct("Readiness").field("checks", &names).finish()
    }
}

impl Readiness {
    /// Adds a check; `check` is called on every `/readyz` request.
    #[must_use]
    pub fn with<F, Fut>(mut self, name: &'static str, check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        self.checks.push((name, Arc::new(move || Box::pin(check()) as CheckFuture)));
        self
    }

    /// Kafka answers a metadata request.
    #[must_use]
    pub fn with_kafka(self, probe: crate::kafka::KafkaProbe) -> Self {
        self.with("kafka", move || {
            let probe = probe.clone();
            async move { probe.check(Duration::from_secs(1)).await.map(|_| ()).map_err(|e| e.to_string()) }
        })
    }

    /// Every PostgreSQL shard answers a round trip.
    #[must_use]
    pub fn with_postgres(self, shards: Vec<sqlx::PgPool>) -> Self {
        self.with("postgres", move || {
            let shards = shards.clone();
            async move {
                for (shard, pool) in shards.iter().enumerate() {
                    crate::postgres::ping(pool).await.map_err(|e| format!("shard {shard}: {e}"))?;
                }
                Ok(())
            }
        })
    }

    /// Redis answers PING.
    #[must_use]
    pub fn with_redis(self, redis: crate::redis::Redis) -> Self {
        self.with("redis", move || {
            let redis = redis.clone();
            async move { redis.ping().await.map_err(|e| e.to_string()) }
        })
    }

    /// A piece of the service's own start-up work is done once `done` is set.
    #[must_use]
    pub fn with_flag(self, name: &'static str, done: Arc<AtomicBool>, pending: &'static str) -> Self {
        self.with(name, move || {
            let done = done.load(Ordering::Acquire);
            async move { if done { Ok(()) } else { Err(pending.to_owned()) } }
        })
    }

    /// Runs every check concurrently, each bounded by `timeout`.
    pub async fn evaluate(&self, timeout: Duration) -> Vec<(&'static str, Result<(), String>)> {
        let runs = self.checks.iter().map(|(name, check)| {
            let fut = check();
            async move {
                let outcome = match tokio::time::timeout(timeout, fut).await {
                    Ok(outcome) => outcome,
                    Err(_) => Err(format!("no answer within {}ms", timeout.as_millis())),
                };
                (*name, outcome)
            }
        });
        futures::future::join_all(runs).await
    }
}

/// A service's operational state: its metrics registry and readiness checks.
#[derive(Debug, Clone)]
pub struct Ops {
    /// Where the service registers its metrics.
    pub registry: Registry,
    readiness: Readiness,
    check_timeout: Duration,
}

impl Ops {
    /// Creates the ops state for `service`, registering `holdfast_build_info`.
    ///
    /// # Panics
    /// Never in practice: the build-info gauge has a valid, unique name.
    #[must_use]
    pub fn new(service: &'static str, readiness: Readiness) -> Self {
        let registry =
            Registry::new_custom(Some("holdfast".to_owned()), None).unwrap_or_else(|_| Registry::new());
        let info = IntGauge::with_opts(
            Opts::new("build_info", "Build information of the running service.")
                .const_label("service", service)
                .const_label("version", env!("CARGO_PKG_VERSION")),
        );
        if let Ok(info) = info {
            info.set(1);
            let _ = registry.register(Box::new(info));
        }
        Self { registry, readiness, check_timeout: Duration::from_secs(2) }
    }

    /// The `/healthz`, `/readyz` and `/metrics` routes, to merge into a service's router.
    pub fn router<S>(&self) -> Router<S> {
        Router::new()
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz))
            .route("/metrics", get(metrics))
            .with_state(self.clone())
    }
}

async fn healthz() -> impl IntoResponse {
    axum::Json(json!({ "status": "ok" }))
}

async fn readyz(State(ops): State<Ops>) -> Response {
    let results = ops.readiness.evaluate(ops.check_timeout).await;
    let ready = results.iter().all(|(_, r)| r.is_ok());
    // The body says only ok or failing: error texts can name hosts, users and the like. Why a
    // check fails goes to the log, for the operator.
    let checks: serde_json::Map<String, serde_json::Value> = results
        .into_iter()
        .map(|(name, r)| {
            let state = match r {
                Ok(()) => "ok",
                Err(detail) => {
                    tracing::warn!(check = name, %detail, "readiness check failing");
                    "failing"
                }
            };
            (name.to_owned(), json!(state))
        })
        .collect();
    if ready {
        return (StatusCode::OK, axum::Json(json!({ "status": "ready", "checks": checks }))).into_response();
    }
    let body = json!({
        "type": "https://holdfast.dev/problems/not-ready",
        "title": "Service not ready",
        "status": 503,
        "detail": "one or more dependencies are not ready",
        "checks": checks,
    });
    let mut response = (StatusCode::SERVICE_UNAVAILABLE, body.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
    headers.insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
    response
}

async fn metrics(State(ops): State<Ops>) -> Response {
    let encoder = TextEncoder::new();
    let mut buffer = Vec::new();
    if let Err(error) = encoder.encode(&ops.registry.gather(), &mut buffer) {
        tracing::warn!(%error, "metrics could not be encoded");
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    ([(header::CONTENT_TYPE, encoder.format_type().to_owned())], buffer).into_response()
}
