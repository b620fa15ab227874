//! Holdfast's command service: the HTTP command API and the owners of the events log's
//! partitions, each the single writer of its partition, fenced in the log itself.
//!
//! [`run`] is the whole service; `main` only parses configuration and calls it, and tests
//! start it in-process on a port-0 listener.

pub mod config;
pub mod dispatch;
pub mod envelope;
pub mod http;
pub mod lane;
pub mod metrics;
pub mod owners;
pub mod ownership;
pub mod rebalance;
pub mod replies;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use holdfast_platform::auth::Authenticator;
use holdfast_platform::codec::EventCodec;
use holdfast_platform::kafka::{KafkaProbe, producer_config, reader_config};
use holdfast_platform::producer::Producer;
use holdfast_platform::topics::{TopicError, TopicLayout};
use holdfast_platform::{Ops, Readiness, ServiceError, Shutdown, retry, service};
use tokio::net::TcpListener;

pub use crate::config::Config;
use crate::dispatch::{Dispatcher, Route};
use crate::lane::LaneContext;
use crate::lane::append::{Appender, Sending};
use crate::lane::restore::{Restorer, Restores};
use crate::lane::standby::Standbys;
use crate::lane::state::Memory;
use crate::metrics::Metrics;
use crate::owners::Owners;
use crate::ownership::MemberSettings;

/// Outcomes each instance keeps for polling and retries, beyond its partitions' own.
const RECENT_OUTCOMES: usize = 200_000;

/// Runs the command service on `listener` until `shutdown` is cancelled. Needs a multi-threaded
/// Tokio runtime: the group member blocks a thread of its own and calls back into it.
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
    let address =
        config.advertised_address.clone().or_else(|| listener.local_addr().ok().map(|a| a.to_string()));
    let owners = Arc::new(Owners::default());
    let topics_ready = Arc::new(AtomicBool::new(false));
    let schemas_ready = Arc::new(AtomicBool::new(false));
    let joined = Arc::new(AtomicBool::new(false));
    let readiness = Readiness::default()
        .with_kafka(KafkaProbe::new(&config.kafka, &format!("{instance}-probe"))?)
        .with_flag("topics", Arc::clone(&topics_ready), "topics not provisioned yet")
        .with_flag("schemas", Arc::clone(&schemas_ready), "event schemas not registered yet")
        .with("partitions", {
            let (owners, joined) = (Arc::clone(&owners), Arc::clone(&joined));
            move || {
                let restored = joined.load(Ordering::Acquire) && owners.all_ready();
                async move {
                    if restored {
                        Ok(())
                    } else {
                        Err("assigned partitions not claimed and restored yet".to_owned())
                    }
                }
            }
        });
    let ops = Ops::new("command-service", readiness);
    let metrics = Metrics::register(&ops.registry).map_err(anyhow::Error::new)?;
    let route = Route {
        commands_topic: layout.commands.clone(),
        partitions: layout.partitions,
        reply_partition: replies::partition_of(&instance, layout.partitions),
    };
    let dispatcher = Arc::new(Dispatcher::new(
        Producer::new(&producer_config(&config.kafka, &format!("{instance}-commands")))?,
        route,
        Arc::clone(&owners),
        config.command_wait,
        RECENT_OUTCOMES,
        metrics.clone(),
    ));
    let codec = Arc::new(EventCodec::new(&config.registry, &layout.events).map_err(anyhow::Error::new)?);
    let auth = Authenticator::new(&config.auth).await?;
    let state = http::AppState::new(Arc::clone(&dispatcher), metrics.clone(), auth)
        .with_max_in_flight(config.max_in_flight)
        .with_request_timeout(config.command_wait + std::time::Duration::from_secs(5));
    let router = http::router(state).merge(ops.router());

    let memory = Memory {
        window: time::Duration::try_from(config.idempotency_window).unwrap_or(time::Duration::HOUR),
        capacity: config.idempotency_capacity,
    };
    let (events_tx, events) = std::sync::mpsc::channel();
    let context = Arc::new(LaneContext {
        appender: Appender::new(
            &config.kafka,
            &instance,
            Sending {
                producers: usize::from(config.append_producers),
                linger: config.append_linger,
                timeout: config.append_timeout,
            },
            &layout.events,
            Arc::clone(&codec),
            metrics.clone(),
        )?,
        restores: Restores::start(Arc::new(Restorer::new(
            &config.kafka,
            &format!("{instance}-restore"),
            &layout.events,
            Arc::clone(&codec),
            tokio::runtime::Handle::current(),
            memory,
        ))),
        standbys: Standbys::start(
            &config.kafka,
            &format!("{instance}-standby"),
            &layout.events,
            Arc::clone(&codec),
            tokio::runtime::Handle::current(),
            memory,
        ),
        reader: reader_config(&config.kafka, &format!("{instance}-gaps")),
        replies: Producer::new(&producer_config(&config.kafka, &format!("{instance}-replies-out")))?,
        replies_topic: layout.replies.clone(),
        instance: instance.clone(),
        address,
        metrics,
        events: events_tx,
        shutdown: shutdown.clone(),
        tasks: tokio_util::task::TaskTracker::new(),
    });
    let member = MemberSettings {
        kafka: config.kafka.clone(),
        client_id: format!("{instance}-member"),
        topic: layout.commands.clone(),
        group_id: format!("{}holdfast.command-owners", config.topics.topic_prefix),
        session_timeout: config.session_timeout,
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
        let owning = tokio::task::spawn_blocking({
            let (owners, context, joined, shutdown) =
                (Arc::clone(&owners), Arc::clone(&context), Arc::clone(&joined), shutdown.clone());
            let runtime = tokio::runtime::Handle::current();
            move || ownership::run(&member, &owners, &context, &events, &runtime, &joined, &shutdown)
        });
        let replies = tokio::task::spawn_blocking({
            let (kafka, topic, shutdown) = (config.kafka.clone(), layout.replies.clone(), shutdown.clone());
            let (partition, dispatcher) = (dispatcher.reply_partition(), Arc::clone(&dispatcher));
            let client_id = format!("{instance}-replies");
            move || replies::follow(&kafka, &client_id, &topic, partition, &dispatcher, &shutdown)
        });
        let (owned, followed) = tokio::join!(owning, replies);
        owned.map_err(anyhow::Error::new)?.map_err(anyhow::Error::new)?;
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
