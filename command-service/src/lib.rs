//! Holdfast's command service: the HTTP command API and the partition processors that are
//! the single writers of the events topic.
//!
//! [`run`] is the whole service; `main` only parses configuration and calls it, and tests
//! start it in-process on a port-0 listener.

pub mod config;
pub mod dispatch;
pub mod envelope;
pub mod http;
pub mod metrics;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use holdfast_platform::kafka::KafkaProbe;
use holdfast_platform::topics::{TopicError, TopicLayout};
use holdfast_platform::{Ops, Readiness, ServiceError, Shutdown, retry, service};
use tokio::net::TcpListener;

pub use crate::config::Config;

/// Runs the command service on `listener` until `shutdown` is cancelled.
///
/// # Errors
/// When a client cannot be created or the HTTP server fails.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: Shutdown,
) -> Result<(), ServiceError> {
    let probe = KafkaProbe::new(&config.kafka, "holdfast-command-service")?;
    let topics_ready = Arc::new(AtomicBool::new(false));
    let readiness = Readiness::default().with_kafka(probe).with_flag(
        "topics",
        Arc::clone(&topics_ready),
        "topics not provisioned yet",
    );
    let ops = Ops::new("command-service", readiness);
    let router = Router::new().merge(ops.router());

    let layout = TopicLayout::from_args(&config.topics);
    let server = service::serve(listener, router, shutdown.clone());
    tokio::pin!(server);
    tokio::select! {
        served = &mut server => return served.map_err(ServiceError::from),
        provisioned = provision_topics(&config, &layout, &shutdown) => match provisioned {
            Ok(()) => topics_ready.store(true, Ordering::Release),
            Err(error) => {
                shutdown.cancel();
                let _ = server.await;
                return Err(ServiceError::Unexpected(anyhow::Error::new(error).context("topic provisioning")));
            }
        },
    }
    server.await.map_err(ServiceError::from)
}

/// Creates the topics, retrying while Kafka does not answer. A partition-count mismatch is
/// permanent (co-partitioning would break), so it ends the service instead of retrying.
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
        Some(Ok(())) => {
            tracing::info!(partitions = layout.partitions, "topics ready");
            Ok(())
        }
        Some(Err(permanent)) => Err(permanent),
        // Shutting down before Kafka answered: nothing was provisioned, nothing is wrong.
        None => Ok(()),
    }
}
