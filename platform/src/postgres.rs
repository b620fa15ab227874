//! PostgreSQL pools, one per read-model shard.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use crate::config::PostgresArgs;

/// Opens a lazily-connecting pool: a service starts (and reports "not ready") while the
/// database is still down, instead of crashing in a restart loop.
///
/// # Errors
/// When the URL cannot be parsed.
pub fn lazy_pool(url: &SecretString, max_connections: u32) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect_lazy(url.expose_secret())
}

/// One lazily-connecting pool per configured shard, in shard order.
///
/// # Errors
/// When a URL cannot be parsed.
pub fn shard_pools(args: &PostgresArgs) -> Result<Vec<PgPool>, sqlx::Error> {
    args.urls.iter().map(|url| lazy_pool(url, args.max_connections)).collect()
}

/// The readiness probe: one round trip.
///
/// # Errors
/// When the database does not answer.
pub async fn ping(pool: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT 1").execute(pool).await.map(|_| ())
}
