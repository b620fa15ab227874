//! Holdfast's query service: availability and reservations from Redis (hot path) and the
//! PostgreSQL read model (fallback and lists), read-your-writes waits and live updates.
//!
//! [`run`] is the whole service; `main` only parses configuration and calls it, and tests
//! start it in-process on a port-0 listener. [`read`] reads the read model, [`watermarks`]
//! waits for positions, [`live`] fans live updates out, [`http`] is the API.
//!
//! Readiness: PostgreSQL is required, Redis optional (see [`ops`]).

pub mod config;
pub mod http;
pub mod live;
pub mod metrics;
pub mod ops;
pub mod position;
pub mod read;
pub mod watermarks;

use std::sync::Arc;

use axum::Router;
use holdfast_platform::auth::Authenticator;
use holdfast_platform::auth::slots::ClientSlots;
use holdfast_platform::redis::Redis;
use holdfast_platform::service::InFlight;
use holdfast_platform::topics::TopicLayout;
use holdfast_platform::{Ops, Readiness, ServiceError, Shutdown, postgres, service};
use tokio::net::TcpListener;

pub use crate::config::Config;
use crate::http::{AppState, HttpSettings};
use crate::live::Live;
use crate::metrics::Metrics;
use crate::read::{ReadModel, ReadSettings};
use crate::watermarks::Watermarks;

/// Runs the query service on `listener` until `shutdown` is cancelled.
///
/// # Errors
/// When a client cannot be created or the HTTP server fails.
pub async fn run(config: Config, listener: TcpListener, shutdown: Shutdown) -> Result<(), ServiceError> {
    let layout = TopicLayout::from_args(&config.topics);
    let shards = postgres::shard_pools(&config.postgres)?;
    let redis = Redis::new(&config.redis)?;
    // Plain (non-sharded) PUBLISH reaches subscribers on any cluster node, so one seed will do.
    let pubsub = match config.redis.urls.first() {
        Some(url) => Some(holdfast_platform::redis::client(&config.redis, url)?),
        None => None,
    };
    // Readiness is answered by `ops` (Redis is optional there), not by the shared checks.
    let ops = Ops::new("query-service", Readiness::default());
    let metrics = Metrics::register(&ops.registry).map_err(anyhow::Error::new)?;
    let reads = Arc::new(ReadModel::new(
        redis.clone(),
        shards,
        ReadSettings {
            events_topic: layout.events.clone(),
            partitions: layout.partitions,
            cluster: config.redis.cluster,
            redis_timeout: config.redis_timeout,
            redis_retry: config.redis_retry,
        },
        metrics.clone(),
    ));
    let watermarks = Watermarks::new(layout.partitions, config.wait_poll);
    let live = Live::new(&config.redis.key_prefix);
    let state = AppState {
        reads: Arc::clone(&reads),
        watermarks: watermarks.clone(),
        live: live.clone(),
        metrics,
        settings: Arc::new(HttpSettings {
            max_wait: config.max_wait,
            heartbeat: config.heartbeat,
            stream_poll: config.stream_poll,
            max_streams: config.max_streams,
            request_timeout: config.request_timeout,
            max_in_flight: config.max_in_flight,
        }),
        shutdown: shutdown.clone(),
        streams: InFlight::default(),
        auth: Authenticator::new(&config.auth).await?,
        client_streams: ClientSlots::new(config.max_streams_per_client),
        client_waits: ClientSlots::new(config.max_waits_per_client),
        in_flight: InFlight::default(),
    };
    let ops = ops::OpsState { ops, shards: reads.shards().to_vec(), redis };
    let router = Router::new().merge(ops::router(ops)).merge(http::router(state));

    let server = service::serve(listener, router, shutdown.clone());
    let watcher = watermarks.run(&reads, &shutdown);
    let hub = live.run(pubsub, &shutdown);
    tokio::pin!(server);
    tokio::select! {
        served = &mut server => {
            shutdown.cancel();
            served.map_err(ServiceError::from)
        }
        () = async { tokio::join!(watcher, hub); } => {
            // Both only end on shutdown; let the server drain.
            server.await.map_err(ServiceError::from)
        }
    }
}
