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
pub mod processor;
pub mod replies;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use holdfast_platform::codec::EventCodec;
use holdfast_platform::kafka::{KafkaProbe, producer_config};
use holdfast_platform::topics::{TopicError, TopicLayout};
use holdfast_platform::{Ops, Readiness, ServiceError, Shutdown, retry, service};
use tokio::net::TcpListener;

pub use crate::config::Config;
use crate::dispatch::Dispatcher;
use crate::metrics::Metrics;
use crate::processor::{ProcessorSettings, ProcessorShared};

/// Outcomes each instance keeps for polling and retries, beyond its partitions' own.
const RECENT_OUTCOMES: usize = 200_000;

/// Runs the command service on `listener` until `shutdown` is cancelled. Needs a multi-threaded
/// Tokio runtime: the partition processor blocks a thread of its own and calls back into it.
///
/// # Errors
/// When a client cannot be created, the topics do not match the configuration, a background
/// task fails, or the HTTP server fails.
pub async fn run(config: Config, listener: TcpListener, shutdown: Shutdown) -> Result<(), ServiceError> {
    let layout = TopicLayout::from_args(&config.topics);
    let instance = config
        .instance_id
        .clone()
        .unwrap_or_else(|| format!("command-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]));
    let topics_ready = Arc::new(AtomicBool::new(false));
    let schemas_ready = Arc::new(AtomicBool::new(false));
    let lanes_ready: Arc<[Arc<AtomicBool>]> =
        (0..config.processors).map(|_| Arc::new(AtomicBool::new(false))).collect();
    let readiness = Readiness::default()
        .with_kafka(KafkaProbe::new(&config.kafka, &format!("{instance}-probe"))?)
        .with_flag("topics", Arc::clone(&topics_ready), "topics not provisioned yet")
        .with_flag("schemas", Arc::clone(&schemas_ready), "event schemas not registered yet")
        .with("partitions", {
            let lanes = Arc::clone(&lanes_ready);
            move || {
                let restored = lanes.iter().all(|ready| ready.load(Ordering::Acquire));
                async move {
                    if restored { Ok(()) } else { Err("assigned partitions not restored yet".to_owned()) }
                }
            }
        });
    let ops = Ops::new("command-service", readiness);
    let metrics = Metrics::register(&ops.registry).map_err(anyhow::Error::new)?;
    let dispatcher = Arc::new(Dispatcher::new(
        producer_config(&config.kafka, &format!("{instance}-commands")).create()?,
        layout.commands.clone(),
        config.command_wait,
        RECENT_OUTCOMES,
        metrics.clone(),
    ));
    let codec = Arc::new(EventCodec::new(&config.registry, &layout.events).map_err(anyhow::Error::new)?);
    let state = http::AppState::new(Arc::clone(&dispatcher), metrics.clone())
        .with_max_in_flight(config.max_in_flight)
        .with_request_timeout(config.command_wait + std::time::Duration::from_secs(5));
    let router = http::router(state).merge(ops.router());

    let settings = ProcessorSettings {
        kafka: config.kafka.clone(),
        layout: layout.clone(),
        group_id: format!("{}holdfast.command-processors", config.topics.topic_prefix),
        transactional_id: String::new(),
        transaction_timeout: config.transaction_timeout,
        max_batch: config.max_batch,
        idempotency_window: time::Duration::try_from(config.idempotency_window)
            .unwrap_or(time::Duration::HOUR),
        session_timeout: config.session_timeout,
    };
    let replies_dispatcher = Arc::clone(&dispatcher);
    let shared = ProcessorShared {
        codec: Arc::clone(&codec),
        dispatcher,
        metrics,
        ready: Arc::new(AtomicBool::new(false)),
        runtime: tokio::runtime::Handle::current(),
    };
    let background = async {
        provision_topics(&config, &layout, &shutdown)
            .await
            .map_err(|e| ServiceError::Unexpected(anyhow::Error::new(e).context("topic provisioning")))?;
        topics_ready.store(true, Ordering::Release);
        if retry::until_ok("event schema registration", &shutdown, || codec.register_all()).await.is_none() {
            return Ok(());
        }
        schemas_ready.store(true, Ordering::Release);
        let processors = futures::future::join_all(lanes_ready.iter().enumerate().map(|(lane, ready)| {
            let settings =
                ProcessorSettings { transactional_id: format!("{instance}-p{lane}"), ..settings.clone() };
            let shared = ProcessorShared { ready: Arc::clone(ready), ..shared.clone() };
            let shutdown = shutdown.clone();
            tokio::task::spawn_blocking(move || processor::run(&settings, &shared, &shutdown))
        }));
        let replies = tokio::task::spawn_blocking({
            let (kafka, topic, shutdown) = (config.kafka.clone(), layout.replies.clone(), shutdown.clone());
            let (partitions, dispatcher) = (layout.partitions, Arc::clone(&replies_dispatcher));
            move || {
                replies::follow(
                    &kafka,
                    &format!("{instance}-replies"),
                    &topic,
                    partitions,
                    &dispatcher,
                    &shutdown,
                )
            }
        });
        let (processed, followed) = tokio::join!(processors, replies);
        for lane in processed {
            lane.map_err(anyhow::Error::new)?.map_err(anyhow::Error::new)?;
        }
        followed.map_err(anyhow::Error::new)?.map_err(anyhow::Error::new)?;
        Ok::<(), ServiceError>(())
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
            // Background work only ends on its own when it failed or shutdown began.
            shutdown.cancel();
            let served = server.await;
            finished?;
            served.map_err(ServiceError::from)
        }
    }
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
