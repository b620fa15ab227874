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
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: Shutdown,
) -> Result<(), ServiceError> {
    let shards = postgres::shard_pools(&config.postgres)?;
    let redis = Redis::new(&config.redis)?;
    let readiness = Readiness::default()
        .with("postgres", move || {
            let shards = shards.clone();
            async move {
                for (shard, pool) in shards.iter().enumerate() {
                    postgres::ping(pool)
                        .await
                        .map_err(|e| format!("shard {shard}: {e}"))?;
                }
                Ok(())
            }
        })
        .with("redis", move || {
            let redis = redis.clone();
            async move { redis.ping().await.map_err(|e| e.to_string()) }
        });
    let ops = Ops::new("query-service", readiness);
    let router = Router::new().merge(ops.router());
    service::serve(listener, router, shutdown)
        .await
        .map_err(ServiceError::from)
}
