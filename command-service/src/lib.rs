//! Holdfast's command service: the HTTP command API and the owners of the events log's
//! partitions, each the single writer of its partition, fenced in the log itself.
//!
//! [`run`] is the whole service; `main` only parses configuration and calls it, and tests
//! start it in-process on a port-0 listener.

pub mod config;
pub mod directory;
pub mod dispatch;
pub mod envelope;
pub mod forward;
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
use crate::directory::Directory;
use crate::dispatch::{Dispatcher, Route};
use crate::forward::{Forwarder, PeerKey};
use crate::http::admin::Partitions;
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
    let directory = Arc::new(Directory::default());
    // Cancelled once the partitions are handed over (and a linger later): until then the
    // command API keeps serving, forwarding what still arrives to the partitions' new owners.
    let http_stop = Shutdown::new();
    // The replies and the owners directory are followed until the last request is answered.
    let followers_stop = Shutdown::new();
    // Dropped with this future, finished or not (a caller that gives up on it): the followers'
    // threads must not outlive it.
    let _followers_end = followers_stop.clone().drop_guard();
    let followers = std::sync::Mutex::new(Vec::new());
    let accepting = Arc::new(AtomicBool::new(true));
    let topics_ready = Arc::new(AtomicBool::new(false));
    let schemas_ready = Arc::new(AtomicBool::new(false));
    let joined = Arc::new(AtomicBool::new(false));
    let readiness = Readiness::default()
        .with_flag("accepting", Arc::clone(&accepting), "handing its partitions over: shutting down")
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
    let memory = Memory {
        window: time::Duration::try_from(config.idempotency_window).unwrap_or(time::Duration::HOUR),
        capacity: config.idempotency_capacity,
    };
    let standbys = Standbys::start(
        &config.kafka,
        &format!("{instance}-standby"),
        &layout.events,
        Arc::clone(&codec),
        tokio::runtime::Handle::current(),
        memory,
    );
    let peer_key =
        PeerKey::configured(config.peer_secret.as_ref(), config.peer_secret_file.as_deref(), &config.auth)
            .map_err(|e| ServiceError::Unexpected(anyhow::Error::new(e)))?;
    let partitions = Partitions {
        instance: instance.clone(),
        address: address.clone(),
        owners: Arc::clone(&owners),
        directory: Arc::clone(&directory),
        standbys: standbys.clone(),
    };
    let mut state = http::AppState::new(Arc::clone(&dispatcher), metrics.clone(), auth)
        .with_max_in_flight(config.max_in_flight)
        .with_request_timeout(config.command_wait + std::time::Duration::from_secs(5))
        .with_partitions(partitions);
    if let Some(key) = peer_key {
        let forwarder = Forwarder::new(&instance, Arc::clone(&directory), key, metrics.clone())
            .map_err(|e| ServiceError::Unexpected(anyhow::Error::new(e).context("peer channel client")))?;
        state = state.with_peers(forwarder);
    } else {
        tracing::warn!(
            "no peer secret (HOLDFAST_PEER_SECRET_FILE): commands for other instances' partitions go \
             through the commands topic"
        );
    }
    let router = http::router(state).merge(ops.router());

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
        standbys: standbys.clone(),
        reader: reader_config(&config.kafka, &format!("{instance}-gaps")),
        replies: Producer::new(&producer_config(&config.kafka, &format!("{instance}-replies-out")))?,
        replies_topic: layout.replies.clone(),
        owners_topic: layout.owners.clone(),
        directory: Arc::clone(&directory),
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
        let replies = tokio::task::spawn_blocking({
            let (kafka, topic, stop) = (config.kafka.clone(), layout.replies.clone(), followers_stop.clone());
            let (partition, dispatcher) = (dispatcher.reply_partition(), Arc::clone(&dispatcher));
            let client_id = format!("{instance}-replies");
            move || replies::follow(&kafka, &client_id, &topic, partition, &dispatcher, &stop)
        });
        let owners_directory = tokio::task::spawn_blocking({
            let (kafka, topic, stop) = (config.kafka.clone(), layout.owners.clone(), followers_stop.clone());
            let (directory, client_id) = (Arc::clone(&directory), format!("{instance}-owners"));
            move || directory::follow(&kafka, &client_id, &topic, &directory, &stop)
        });
        followers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend([replies, owners_directory]);
        let standing_by = tokio::spawn(stand_by(
            Arc::clone(&directory),
            Arc::clone(&owners),
            standbys.clone(),
            instance.clone(),
            usize::from(config.standbys),
            shutdown.clone(),
        ));
        let owning = tokio::task::spawn_blocking({
            let (owners, context, joined, shutdown) =
                (Arc::clone(&owners), Arc::clone(&context), Arc::clone(&joined), shutdown.clone());
            let runtime = tokio::runtime::Handle::current();
            move || ownership::run(&member, &owners, &context, &events, &runtime, &joined, &shutdown)
        });
        let owned = owning.await;
        standing_by.abort();
        standbys.follow(std::collections::BTreeSet::new());
        if shutdown.is_cancelled() && !http_stop.is_cancelled() {
            // Handed over: callers that still reach this instance are forwarded to the new
            // owners until load balancers have noticed it is not ready any more.
            tokio::time::sleep(config.handover_linger).await;
        }
        http_stop.cancel();
        owned.map_err(anyhow::Error::new)?.map_err(anyhow::Error::new)?;
        Ok::<(), ServiceError>(())
    };

    tokio::spawn({
        let (shutdown, accepting) = (shutdown.clone(), Arc::clone(&accepting));
        async move {
            shutdown.cancelled().await;
            accepting.store(false, Ordering::Release);
        }
    });
    let server = service::serve(listener, router, http_stop.clone());
    tokio::pin!(server, background);
    let ended = tokio::select! {
        served = &mut server => {
            shutdown.cancel();
            http_stop.cancel();
            let finished = background.await;
            served.map_err(ServiceError::from).and(finished)
        }
        finished = &mut background => {
            // Background work only ends on its own when it failed or the handover is done.
            shutdown.cancel();
            http_stop.cancel();
            let served = server.await;
            finished.and(served.map_err(ServiceError::from))
        }
    };
    followers_stop.cancel();
    let followers = std::mem::take(&mut *followers.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
    for follower in followers {
        follower.await.map_err(anyhow::Error::new)?.map_err(anyhow::Error::new)?;
    }
    ended
}

/// How often the partitions to stand by for are worked out again from the owners directory.
const STANDBY_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// Keeps `standbys` following the partitions this instance stands by for, by the owners
/// directory ([`Directory::standing_by`]), until `shutdown`. A partition this instance was
/// assigned is left as it is until its lane is ready: followed, its lane takes its state from
/// the standby; once taken, it is followed no more while the lane owns it.
async fn stand_by(
    directory: Arc<Directory>,
    owners: Arc<Owners>,
    standbys: Standbys,
    instance: String,
    count: usize,
    shutdown: Shutdown,
) {
    use std::collections::BTreeSet;

    let mut following = BTreeSet::new();
    let mut tick = tokio::time::interval(STANDBY_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = shutdown.cancelled() => return,
        }
        let lanes = owners.all();
        let assigned: BTreeSet<i32> = lanes.iter().map(|(partition, _)| *partition).collect();
        let taking: BTreeSet<i32> =
            lanes.iter().filter(|(_, lane)| !lane.is_ready()).map(|(partition, _)| *partition).collect();
        let wanted: BTreeSet<i32> = directory
            .standing_by(&instance, count)
            .difference(&assigned)
            .copied()
            .chain(following.intersection(&taking).copied())
            .collect();
        if wanted != following {
            tracing::debug!(partitions = wanted.len(), "standing by");
            standbys.follow(wanted.clone());
            following = wanted;
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
