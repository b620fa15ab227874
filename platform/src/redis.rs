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
use redis::{Cmd, Pipeline, RedisError, RedisFuture, Value};
use secrecy::ExposeSecret;
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
        let urls: Vec<String> = args.urls.iter().map(|u| u.expose_secret().to_owned()).collect();
        let target = if args.cluster {
            Target::Cluster(
                ClusterClient::builder(urls)
                    .connection_timeout(CONNECT_TIMEOUT)
                    .response_timeout(RESPONSE_TIMEOUT)
                    .retries(2)
                    .build()?,
            )
        } else {
            let [url] = urls.as_slice() else {
                return Err(RedisError::from((
                    redis::ErrorKind::InvalidClientConfig,
                    "several Redis URLs need cluster mode (HOLDFAST_REDIS_CLUSTER=true)",
                )));
            };
            Target::Single(redis::Client::open(url.as_str())?)
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
