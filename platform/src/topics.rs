//! Topic layout: the names, partition counts and settings of Holdfast's topics, and their
//! idempotent provisioning.
//!
//! The commands and events topics are co-partitioned (same count, same key, same
//! partitioner): the processor that owns commands partition `p` is the single writer of
//! events partition `p`. Provisioning therefore refuses to go on when an existing topic has a
//! different partition count instead of silently breaking that pairing.

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, Producer};
use rdkafka::types::RDKafkaErrorCode;

use crate::config::{KafkaArgs, TopicArgs};

/// The full set of topic names for one deployment (or one test).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicLayout {
    /// Commands, keyed by resource id.
    pub commands: String,
    /// Decided events, keyed by resource id; co-partitioned with `commands`.
    pub events: String,
    /// Replies to commands, for callers waiting on another instance.
    pub replies: String,
    /// Events a projection could not apply, with the reason in headers.
    pub events_dlq: String,
    /// Compacted per-partition state snapshots for fast restore.
    pub snapshots: String,
    /// The owners directory: the latest claim announced for each events partition (key: the
    /// partition), compacted, one partition. A hint for routing commands, never authority:
    /// the claims in the events log decide who owns a partition.
    pub owners: String,
    /// Partitions of the co-partitioned topics.
    pub partitions: i32,
    /// Replication factor for created topics.
    pub replication_factor: i32,
    /// `min.insync.replicas` for created topics.
    pub min_insync_replicas: i32,
}

/// Why topics could not be provisioned.
#[derive(Debug, thiserror::Error)]
pub enum TopicError {
    /// The cluster did not answer or refused the request; retry later or check the brokers.
    #[error("kafka admin request failed: {0}")]
    Kafka(#[from] KafkaError),
    /// Creating a topic failed for a reason other than "it already exists"; read the code.
    #[error("creating topic {topic} failed: {code}")]
    Create {
        /// The topic.
        topic: String,
        /// The broker's error.
        code: RDKafkaErrorCode,
    },
    /// A topic was created but the cluster's metadata does not show its partitions yet;
    /// retry shortly.
    #[error("topic {0} is not visible in the cluster metadata yet")]
    NotYetVisible(String),
    /// An existing topic has another partition count than configured: co-partitioning would
    /// break. An operator must reconcile the configuration with the cluster.
    #[error("topic {topic} has {actual} partitions but {expected} are configured")]
    PartitionMismatch {
        /// The topic.
        topic: String,
        /// What the configuration says.
        expected: i32,
        /// What the cluster has.
        actual: i32,
    },
}

/// A topic to provision: name, partitions, topic-level settings.
pub type TopicSpec<'a> = (&'a str, i32, Vec<(&'static str, String)>);

impl TopicLayout {
    /// The layout described by the configuration.
    #[must_use]
    pub fn from_args(args: &TopicArgs) -> Self {
        let name = |base: &str| format!("{}{base}", args.topic_prefix);
        Self {
            commands: name("reservations.commands"),
            events: name("reservations.events"),
            replies: name("reservations.replies"),
            events_dlq: name("reservations.events.dlq"),
            snapshots: name("reservations.snapshots"),
            owners: name("reservations.owners"),
            partitions: args.partitions,
            replication_factor: args.replication_factor,
            min_insync_replicas: args.min_insync_replicas,
        }
    }

    /// Every topic with its partition count and topic-level settings.
    #[must_use]
    pub fn specs(&self) -> Vec<TopicSpec<'_>> {
        let isr = self.min_insync_replicas.to_string();
        let durable = |extra: &[(&'static str, &str)]| {
            let mut settings = vec![("min.insync.replicas", isr.clone())];
            settings.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
            settings
        };
        vec![
            (self.commands.as_str(), self.partitions, durable(&[("retention.ms", "604800000")])),
            (self.events.as_str(), self.partitions, durable(&[("retention.ms", "-1")])),
            (self.replies.as_str(), self.partitions, durable(&[("retention.ms", "3600000")])),
            (self.events_dlq.as_str(), self.partitions, durable(&[("retention.ms", "-1")])),
            (
                self.snapshots.as_str(),
                self.partitions,
                durable(&[("cleanup.policy", "compact"), ("min.compaction.lag.ms", "60000")]),
            ),
            (self.owners.as_str(), 1, durable(&[("cleanup.policy", "compact"), ("segment.ms", "3600000")])),
        ]
    }

    /// Every topic name of the layout.
    #[must_use]
    pub fn names(&self) -> Vec<&str> {
        vec![&self.commands, &self.events, &self.replies, &self.events_dlq, &self.snapshots, &self.owners]
    }

    /// Creates missing topics and checks that existing ones have the configured partition
    /// count. Safe to run from every instance at every start.
    ///
    /// # Errors
    /// See [`TopicError`].
    #[tracing::instrument(skip_all, fields(partitions = self.partitions), err)]
    pub async fn ensure(&self, kafka: &KafkaArgs) -> Result<(), TopicError> {
        let admin = crate::kafka::admin(kafka, "holdfast-provisioning")?;
        let specs = self.specs();
        let new_topics: Vec<NewTopic<'_>> = specs
            .iter()
            .map(|(name, partitions, settings)| {
                settings.iter().fold(
                    NewTopic::new(name, *partitions, TopicReplication::Fixed(self.replication_factor)),
                    |topic, (key, value)| topic.set(key, value),
                )
            })
            .collect();
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
        for result in admin.create_topics(&new_topics, &options).await? {
            match result {
                Ok(topic) => tracing::info!(%topic, "topic created"),
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                // A client with least privilege may not create topics: the operator did, and
                // the counts below tell whether they are there.
                Err((
                    topic,
                    RDKafkaErrorCode::TopicAuthorizationFailed | RDKafkaErrorCode::ClusterAuthorizationFailed,
                )) => {
                    tracing::debug!(%topic, "not allowed to create topics; checking that it exists");
                }
                Err((topic, code)) => return Err(TopicError::Create { topic, code }),
            }
        }
        let expected: HashMap<&str, i32> = specs.iter().map(|(n, p, _)| (*n, *p)).collect();
        let actual = partition_counts(kafka, &self.names()).await?;
        for (topic, count) in actual {
            let want = expected.get(topic.as_str()).copied().unwrap_or(count);
            if count == 0 {
                return Err(TopicError::NotYetVisible(topic));
            }
            if count != want {
                return Err(TopicError::PartitionMismatch { topic, expected: want, actual: count });
            }
        }
        Ok(())
    }

    /// Deletes every topic of the layout (tests and tear-downs only).
    ///
    /// # Errors
    /// When the cluster does not answer.
    pub async fn delete(&self, kafka: &KafkaArgs) -> Result<(), KafkaError> {
        let admin = crate::kafka::admin(kafka, "holdfast-provisioning")?;
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
        admin.delete_topics(&self.names(), &options).await.map(|_| ())
    }
}

/// Partition counts of the named topics, from cluster metadata (blocking calls off the reactor).
async fn partition_counts(kafka: &KafkaArgs, topics: &[&str]) -> Result<Vec<(String, i32)>, KafkaError> {
    let config = crate::kafka::producer_config(kafka, "holdfast-provisioning");
    let topics: Vec<String> = topics.iter().map(|t| (*t).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let client: BaseProducer = config.create()?;
        let mut counts = Vec::with_capacity(topics.len());
        for topic in &topics {
            let metadata = client.client().fetch_metadata(Some(topic), Duration::from_secs(10))?;
            for t in metadata.topics() {
                #[allow(clippy::cast_possible_truncation, clippy::cast_possible_wrap)]
                counts.push((t.name().to_owned(), t.partitions().len() as i32));
            }
        }
        Ok(counts)
    })
    .await
    .unwrap_or(Err(KafkaError::Canceled))
}
