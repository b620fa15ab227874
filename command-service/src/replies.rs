//! The reply listener: follows this instance's replies partition, where the owners of other
//! partitions publish the outcomes of commands this instance queued on the commands topic.
//!
//! An instance names its replies partition in every command it queues (`reply_to`), so it
//! reads one partition, not all of them. Several instances may share one; outcomes of commands
//! nobody here waits for are remembered briefly and otherwise harmless. The consumer waits
//! long on an empty partition (librdkafka's `fetch.wait.max.ms`, 500 ms): a reply arriving
//! meanwhile is returned at once, so waiting long costs no latency, only idle fetches.

use std::sync::Arc;
use std::time::Duration;

use holdfast_platform::kafka::{self, reader_config};
use holdfast_platform::partitioner::partition_for;
use holdfast_platform::{KafkaArgs, Shutdown};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use crate::dispatch::Dispatcher;
use crate::envelope::Outcome;

/// The replies partition of `instance` among `partitions`.
#[must_use]
pub fn partition_of(instance: &str, partitions: i32) -> i32 {
    partition_for(instance.as_bytes(), partitions)
}

/// Follows `partition` of `topic` from a little before now until `shutdown`. Blocking: run it
/// on a thread of its own.
///
/// # Errors
/// When the consumer cannot be created or assigned.
pub fn follow(
    kafka: &KafkaArgs,
    client_id: &str,
    topic: &str,
    partition: i32,
    dispatcher: &Arc<Dispatcher>,
    shutdown: &Shutdown,
) -> Result<(), KafkaError> {
    let mut config = reader_config(kafka, client_id);
    config.set("enable.partition.eof", "false").set("fetch.wait.max.ms", "500");
    let consumer: BaseConsumer = config.create()?;
    consumer.assign(&starting_offset(&consumer, topic, partition)?)?;
    while !shutdown.is_cancelled() {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(message)) => match message.payload().map(serde_json::from_slice::<Outcome>) {
                Some(Ok(outcome)) => dispatcher.resolve(outcome),
                _ => tracing::warn!(
                    partition = message.partition(),
                    offset = message.offset(),
                    "unreadable reply skipped"
                ),
            },
            Some(Err(error)) => tracing::warn!(%error, "replies consumer error"),
            None => {}
        }
    }
    Ok(())
}

/// Where following starts: the first reply written in the last [`LOOKBACK`]. Starting at the
/// end instead would leave a gap: `Offset::End` is resolved only when the partition is first
/// fetched, and a reply written before that moment would never be seen. Outcomes seen twice
/// are harmless.
fn starting_offset(
    consumer: &BaseConsumer,
    topic: &str,
    partition: i32,
) -> Result<TopicPartitionList, KafkaError> {
    let since = std::time::SystemTime::now()
        .checked_sub(LOOKBACK)
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(0));
    kafka::offsets_since(consumer, topic, [partition], since, Offset::End)
}

/// How far back following starts.
const LOOKBACK: Duration = Duration::from_secs(10);
