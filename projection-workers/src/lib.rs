//! Holdfast's projection workers: they apply the events topic to the PostgreSQL read model
//! (exactly once, offsets stored with the effects) and mirror it into Redis.
//!
//! [`run`] is the whole service; `main` only parses configuration and calls it, and tests
//! start it in-process on a port-0 listener. The pieces are separable so the replay tools can
//! reuse them: [`model`] folds events into rows (pure), [`store`] reads and writes rows and
//! offsets in PostgreSQL, [`cache`] writes Redis, and [`worker`] is the Kafka loop. [`replay`] is
//! the replay CLI (rebuild, verify, dump, tail); [`follow`] is how readers find the live
//! generation of the read model.

pub mod cache;
pub mod config;
pub mod follow;
pub mod metrics;
pub mod model;
pub mod replay;
pub mod store;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod worker;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use holdfast_platform::codec::EventCodec;
use holdfast_platform::kafka::{KafkaProbe, producer_config};
use holdfast_platform::redis::Redis;
use holdfast_platform::topics::{TopicError, TopicLayout};
use holdfast_platform::{Ops, Readiness, ServiceError, Shutdown, postgres, retry, service};
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use tokio::net::TcpListener;

use crate::cache::Cache;
pub use crate::config::Config;
use crate::metrics::Metrics;
use crate::store::Shards;
use crate::worker::dlq::DeadLetters;
use crate::worker::progress::Progress;
use crate::worker::{Worker, WorkerSettings};

/// The read model's schema migrations, embedded in the binary.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Runs the projection workers until `shutdown` is cancelled; `listener` serves the health
/// and metrics endpoints.
///
/// # Errors
/// When a client cannot be created, the topics do not match the configuration, the worker
/// fails, or the HTTP server fails.
pub async fn run(config: Config, listener: TcpListener, shutdown: Shutdown) -> Result<(), ServiceError> {
    let layout = TopicLayout::from_args(&config.topics);
    let instance =
        config.instance_id.clone().unwrap_or_else(|| format!("projection-{}", &uuid_like_suffix()));
    let shards = Shards::new(postgres::shard_pools(&config.postgres)?);
    let redis = Redis::new(&config.redis)?;
    let probe = KafkaProbe::new(&config.kafka, &format!("{instance}-probe"))?;
    let migrated = Arc::new(AtomicBool::new(false));
    let progress_slot: Arc<OnceLock<Arc<Progress>>> = Arc::new(OnceLock::new());
    let readiness = Readiness::default()
        .with_kafka(probe)
        .with_flag("postgres", Arc::clone(&migrated), "read model not migrated yet")
        .with_redis(redis.clone())
        .with("projection", {
            let slot = Arc::clone(&progress_slot);
            move || {
                let state = slot.get().map_or_else(|| Err("not started yet".to_owned()), |p| p.readiness());
                async move { state }
            }
        });
    let ops = Ops::new("projection-workers", readiness);
    let metrics = Metrics::register(&ops.registry).map_err(anyhow::Error::new)?;
    let progress = Arc::new(Progress::new(metrics.clone(), config.ready_max_lag, config.session_timeout * 3));
    let _ = progress_slot.set(Arc::clone(&progress));
    let router = Router::new().merge(ops.router());

    let group_id = format!("{}{}", config.topics.topic_prefix, config.group);
    let worker = Worker {
        settings: WorkerSettings {
            kafka: config.kafka.clone(),
            topic: layout.events.clone(),
            group_id: group_id.clone(),
            client_id: instance.clone(),
            max_batch: config.max_batch,
            session_timeout: config.session_timeout,
            cache_check_interval: config.cache_check_interval,
            fetch_wait: config.fetch_wait,
            fetch_min_bytes: config.fetch_min_bytes,
        },
        codec: Arc::new(EventCodec::new(&config.registry, &layout.events).map_err(anyhow::Error::new)?),
        shards: shards.clone(),
        cache: Cache::new(redis, config.redis_timeout),
        dead_letters: DeadLetters::new(
            holdfast_platform::producer::Producer::new(&producer_config(
                &config.kafka,
                &format!("{instance}-dlq"),
            ))?,
            layout.events_dlq.clone(),
            group_id,
        ),
        metrics,
        progress,
    };

    let background = async {
        if !migrate_shards(shards.pools(), &migrated, &shutdown).await {
            return Ok(());
        }
        provision_topics(&config, &layout, &shutdown)
            .await
            .map_err(|e| ServiceError::Unexpected(anyhow::Error::new(e).context("topic provisioning")))?;
        if shutdown.is_cancelled() {
            return Ok(());
        }
        worker.run(&shutdown).await.map_err(ServiceError::from)
    };
    let server = service::serve(listener, router, shutdown.clone());
    tokio::pin!(server, background);
    tokio::select! {
        served = &mut server => {
            shutdown.cancel();
            let finished = background.await;
            served?;
            finished
        }
        finished = &mut background => {
            // The worker only ends on its own when it failed or shutdown began.
            shutdown.cancel();
            let served = server.await;
            finished?;
            served.map_err(ServiceError::from)
        }
    }
}

/// Twelve hex digits that differ between processes and starts.
fn uuid_like_suffix() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or(Duration::ZERO);
    format!("{:012x}", (u128::from(std::process::id()) << 32 ^ nanos.as_nanos()) & 0xffff_ffff_ffff)
}

/// Applies the migrations to every shard, retrying until each answers; `false` on shutdown.
async fn migrate_shards(shards: &[PgPool], migrated: &AtomicBool, shutdown: &Shutdown) -> bool {
    for pool in shards {
        if retry::until_ok("read-model migration", shutdown, || MIGRATOR.run(pool)).await.is_none() {
            return false;
        }
    }
    tracing::info!(shards = shards.len(), "read model migrated");
    migrated.store(true, Ordering::Release);
    true
}

/// Creates the topics (the dead-letter topic among them), retrying while Kafka does not
/// answer. A partition-count mismatch is permanent, so it ends the service.
async fn provision_topics(
    config: &Config,
    layout: &TopicLayout,
    shutdown: &Shutdown,
) -> Result<(), TopicError> {
    let attempt = || async {
        match layout.ensure(&config.kafka).await {
            Ok(()) => Ok(Ok(())),
            Err(permanent @ TopicError::PartitionMismatch { .. }) => Ok(Err(permanent)),
            Err(transient) => Err(transient),
        }
    };
    match retry::until_ok("topic provisioning", shutdown, attempt).await {
        Some(result) => result,
        None => Ok(()),
    }
}
