//! PostgreSQL pools, one per read-model shard, and databases created and dropped by tools
//! and tests that need one of their own.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use std::str::FromStr as _;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection as _, PgConnection, PgPool};

use crate::config::PostgresArgs;

/// Opens a lazily-connecting pool: a service starts (and reports "not ready") while the
/// database is still down, instead of crashing in a restart loop.
///
/// # Errors
/// When the URL cannot be parsed.
pub fn lazy_pool(url: &SecretString, max_connections: u32) -> Result<PgPool, sqlx::Error> {
    lazy_pool_with(url, None, max_connections)
}

/// [`lazy_pool`] with `password` (when given) in place of the URL's.
fn lazy_pool_with(
    url: &SecretString,
    password: Option<&SecretString>,
    max_connections: u32,
) -> Result<PgPool, sqlx::Error> {
    let mut options = PgConnectOptions::from_str(url.expose_secret())?;
    if let Some(password) = password {
        options = options.password(password.expose_secret());
    }
    Ok(PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect_lazy_with(options))
}

/// One lazily-connecting pool per configured shard, in shard order, each with the password
/// file's password when one is configured.
///
/// # Errors
/// When a URL cannot be parsed.
pub fn shard_pools(args: &PostgresArgs) -> Result<Vec<PgPool>, sqlx::Error> {
    args.urls.iter().map(|url| lazy_pool_with(url, args.password.as_ref(), args.max_connections)).collect()
}

/// The readiness probe: one round trip.
///
/// # Errors
/// When the database does not answer.
pub async fn ping(pool: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT 1").execute(pool).await.map(|_| ())
}

/// `url` with its database replaced by `name` (query parameters kept).
#[must_use]
pub fn database_url(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let server = match base.find("://") {
        Some(scheme) => match base[scheme + 3..].find('/') {
            Some(slash) => &base[..scheme + 3 + slash],
            None => base,
        },
        None => base,
    };
    match query {
        Some(query) => format!("{server}/{name}?{query}"),
        None => format!("{server}/{name}"),
    }
}

/// Creates the empty database `name` on the server `server_url` connects to (the URL's
/// role needs `CREATEDB`); returns a URL of the new database.
///
/// # Errors
/// When PostgreSQL is unreachable or refuses.
pub async fn create_database(server_url: &SecretString, name: &str) -> Result<SecretString, sqlx::Error> {
    let mut admin = PgConnection::connect(server_url.expose_secret()).await?;
    sqlx::query(&format!("CREATE DATABASE \"{name}\"")).execute(&mut admin).await?;
    admin.close().await?;
    Ok(SecretString::from(database_url(server_url.expose_secret(), name)))
}

/// Drops the database `name` (if it exists) on the server `server_url` connects to, closing
/// other sessions on it first.
///
/// `WITH (FORCE)` may only end sessions of roles the caller is a member of; a session of
/// another role (a worker still closing its pool) makes PostgreSQL refuse, so the drop is
/// tried again for a few seconds while such sessions end.
///
/// # Errors
/// When PostgreSQL is unreachable or refuses.
pub async fn drop_database(server_url: &SecretString, name: &str) -> Result<(), sqlx::Error> {
    const ATTEMPTS: u32 = 10;
    let mut admin = PgConnection::connect(server_url.expose_secret()).await?;
    let statement = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
    let mut attempt = 1;
    loop {
        match sqlx::query(&statement).execute(&mut admin).await {
            Ok(_) => break,
            // 42501 insufficient_privilege: a session this role may not end; 55006
            // object_in_use: a session that is still being ended.
            Err(sqlx::Error::Database(error))
                if attempt < ATTEMPTS && matches!(error.code().as_deref(), Some("42501" | "55006")) =>
            {
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
            Err(error) => return Err(error),
        }
    }
    admin.close().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_is_replaced_in_the_url() {
        assert_eq!(
            database_url("postgres://u:p@127.0.0.1:5432/holdfast", "lt_1"),
            "postgres://u:p@127.0.0.1:5432/lt_1"
        );
        assert_eq!(database_url("postgres://h:5432", "lt_1"), "postgres://h:5432/lt_1");
        assert_eq!(
            database_url("postgres://h/db?sslmode=require", "lt_1"),
            "postgres://h/lt_1?sslmode=require"
        );
    }
}
