//! Holdfast's query service: availability and reservations from Redis (hot path) and the
//! PostgreSQL read model (fallback and lists).
//!
//! [`run`] is the whole service; `main` only parses configuration and calls it, and tests
//! start it in-process on a port-0 listener.

pub mod config;

use axum::Router;
use holdfast_platform::redis::Redis;
use holdfast_platform::{Ops, Readiness, ServiceError, Shutdown, postgres, service};
use tokio::net::TcpListener;

pub use crate::config::Config;

/// Runs the query service on `listener` until `shutdown` is cancelled.
///
/// # Errors
/// When a client cannot be created or the HTTP server fails.
pub async fn run(config: Config, listener: TcpListener, shutdown: Shutdown) -> Result<(), ServiceError> {
    let shards = postgres::shard_pools(&config.postgres)?;
    let redis = Redis::new(&config.redis)?;
    let readiness = Readiness::default().with_postgres(shards).with_redis(redis);
    let ops = Ops::new("query-service", readiness);
    let router = Router::new().merge(ops.router());
    service::serve(listener, router, shutdown).await.map_err(ServiceError::from)
}
