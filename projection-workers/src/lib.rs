//! Holdfast's projection workers: they apply the events topic to the PostgreSQL read model
//! (exactly once, offsets stored with the effects) and mirror it into Redis.
//!
//! [`run`] is the whole service; `main` only parses configuration and calls it, and tests
//! start it in-process on a port-0 listener.

pub mod config;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use holdfast_platform::kafka::KafkaProbe;
use holdfast_platform::redis::Redis;
use holdfast_platform::{Ops, Readiness, ServiceError, Shutdown, postgres, retry, service};
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use tokio::net::TcpListener;

pub use crate::config::Config;

/// The read model's schema migrations, embedded in the binary.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Runs the projection workers until `shutdown` is cancelled; `listener` serves the health
/// and metrics endpoints.
///
/// # Errors
/// When a client cannot be created or the HTTP server fails.
pub async fn run(config: Config, listener: TcpListener, shutdown: Shutdown) -> Result<(), ServiceError> {
    let shards = postgres::shard_pools(&config.postgres)?;
    let redis = Redis::new(&config.redis)?;
    let probe = KafkaProbe::new(&config.kafka, "holdfast-projection-workers")?;
    let migrated = Arc::new(AtomicBool::new(false));
    let readiness = Readiness::default()
        .with_kafka(probe)
        .with_flag("postgres", Arc::clone(&migrated), "read model not migrated yet")
        .with_redis(redis);
    let ops = Ops::new("projection-workers", readiness);
    let router = Router::new().merge(ops.router());
    let migrate = migrate_shards(&shards, &migrated, &shutdown);
    let (served, ()) = tokio::join!(service::serve(listener, router, shutdown.clone()), migrate);
    served.map_err(ServiceError::from)
}

/// Applies the migrations to every shard, retrying until each answers or shutdown.
async fn migrate_shards(shards: &[PgPool], migrated: &AtomicBool, shutdown: &Shutdown) {
    for pool in shards {
        if retry::until_ok("read-model migration", shutdown, || MIGRATOR.run(pool)).await.is_none() {
            return;
        }
    }
    tracing::info!(shards = shards.len(), "read model migrated");
    migrated.store(true, Ordering::Release);
}
