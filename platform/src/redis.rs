//! Redis access that works the same against a single server and a Redis Cluster.
//!
//! [`Redis`] connects on first use and reconnects after failures, so a service starts while
//! Redis is down and recovers when it returns. Keys that belong together carry a cluster hash
//! tag (`{...}`) chosen by the caller.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{
    Cmd, ConnectionInfo, IntoConnectionInfo as _, Pipeline, RedisError, RedisFuture, TlsCertificates, Value,
};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::OnceCell;

use crate::config::RedisArgs;

/// A multiplexed connection to a single server or a cluster.
#[derive(Clone)]
pub enum RedisConn {
    /// A single server, reconnecting automatically.
    Single(ConnectionManager),
    /// A cluster, routing each command by its key's slot.
    Cluster(ClusterConnection),
}

impl std::fmt::Debug for RedisConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Single(_) => "RedisConn::Single",
            Self::Cluster(_) => "RedisConn::Cluster",
        })
    }
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(conn) => conn.req_packed_command(cmd),
            Self::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(conn) => conn.req_packed_commands(cmd, offset, count),
            Self::Cluster(conn) => conn.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(conn) => conn.get_db(),
            Self::Cluster(conn) => conn.get_db(),
        }
    }
}

/// How long one connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a command may wait for its answer before it fails (and the caller may retry).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Fail fast while Redis is down (callers retry and readiness reports it) instead of the
/// client's default of retrying with exponential backoff for minutes.
fn manager_config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_number_of_retries(2)
        .set_factor(100)
        .set_max_delay(1_000)
        .set_connection_timeout(CONNECT_TIMEOUT)
        .set_response_timeout(RESPONSE_TIMEOUT)
}

/// A client of the server at `url`, with the settings' password and certificate authority.
///
/// # Errors
/// When the URL is malformed or the CA file cannot be read.
pub fn client(args: &RedisArgs, url: &SecretString) -> Result<redis::Client, RedisError> {
    let info = connection_info(args, url)?;
    match &args.ca_file {
        Some(path) => redis::Client::build_with_tls(info, tls_certificates(path)?),
        None => redis::Client::open(info),
    }
}

/// `url` as connection settings, with the password file's password in place of the URL's.
fn connection_info(args: &RedisArgs, url: &SecretString) -> Result<ConnectionInfo, RedisError> {
    let mut info = url.expose_secret().into_connection_info()?;
    if let Some(password) = &args.password {
        info.redis.password = Some(password.expose_secret().to_owned());
    }
    Ok(info)
}

/// A private certificate authority to verify `rediss://` servers by, from a PEM file. Redis's
/// TLS is rustls, whose crypto provider is ring, the one its crate features name.
fn tls_certificates(path: &std::path::Path) -> Result<TlsCertificates, RedisError> {
    let pem = std::fs::read(path).map_err(|e| {
        RedisError::from((
            redis::ErrorKind::InvalidClientConfig,
            "cannot read the Redis CA file",
            format!("{}: {e}", path.display()),
        ))
    })?;
    Ok(TlsCertificates { client_tls: None, root_cert: Some(pem) })
}

enum Target {
    Single(redis::Client),
    Cluster(ClusterClient),
}

/// A lazily-connected Redis handle, cheap to clone.
#[derive(Clone)]
pub struct Redis {
    target: Arc<Target>,
    conn: Arc<OnceCell<RedisConn>>,
    /// Prefix of every key this deployment writes.
    pub key_prefix: String,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis").field("key_prefix", &self.key_prefix).finish_non_exhaustive()
    }
}

impl Redis {
    /// Prepares the client; nothing is connected yet.
    ///
    /// # Errors
    /// When a URL is malformed, or several are given without cluster mode.
    pub fn new(args: &RedisArgs) -> Result<Self, RedisError> {
        let target = if args.cluster {
            let nodes =
                args.urls.iter().map(|url| connection_info(args, url)).collect::<Result<Vec<_>, _>>()?;
            let mut builder = ClusterClient::builder(nodes)
                .connection_timeout(CONNECT_TIMEOUT)
                .response_timeout(RESPONSE_TIMEOUT)
                .retries(2);
            if let Some(path) = &args.ca_file {
                builder = builder.certs(tls_certificates(path)?);
            }
            Target::Cluster(builder.build()?)
        } else {
            let [url] = args.urls.as_slice() else {
                return Err(RedisError::from((
                    redis::ErrorKind::InvalidClientConfig,
                    "several Redis URLs need cluster mode (HOLDFAST_REDIS_CLUSTER=true)",
                )));
            };
            Target::Single(client(args, url)?)
        };
        Ok(Self {
            target: Arc::new(target),
            conn: Arc::new(OnceCell::new()),
            key_prefix: args.key_prefix.clone(),
        })
    }

    /// A connection, established on first use. Clones share one multiplexed connection.
    ///
    /// # Errors
    /// When Redis cannot be reached; the next call tries again.
    pub async fn conn(&self) -> Result<RedisConn, RedisError> {
        let conn = self
            .conn
            .get_or_try_init(|| async {
                match self.target.as_ref() {
                    Target::Single(client) => {
                        ConnectionManager::new_with_config(client.clone(), manager_config())
                            .await
                            .map(RedisConn::Single)
                    }
                    Target::Cluster(client) => client.get_async_connection().await.map(RedisConn::Cluster),
                }
            })
            .await?;
        Ok(conn.clone())
    }

    /// `key_prefix` + `key`.
    #[must_use]
    pub fn key(&self, key: &str) -> String {
        format!("{}{key}", self.key_prefix)
    }

    /// The readiness probe: a PING round trip.
    ///
    /// # Errors
    /// When Redis does not answer.
    pub async fn ping(&self) -> Result<(), RedisError> {
        let mut conn = self.conn().await?;
        redis::cmd("PING").query_async::<String>(&mut conn).await.map(|_| ())
    }
}
