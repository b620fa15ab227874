//! The reply listener: follows the replies topic (`read_committed`) so that outcomes decided
//! by other instances reach the callers waiting here. Outcomes of this instance's own
//! partitions arrive in-process first; seeing them again here is harmless.

use std::sync::Arc;
use std::time::Duration;

use holdfast_platform::kafka::{self, reader_config};
use holdfast_platform::{KafkaArgs, Shutdown};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use crate::dispatch::Dispatcher;
use crate::envelope::Outcome;

/// Follows every partition of `topic` from a little before now until `shutdown`. Blocking: run it
/// on a thread of its own.
///
/// # Errors
/// When the consumer cannot be created or assigned.
pub fn follow(
    kafka: &KafkaArgs,
    client_id: &str,
    topic: &str,
    partitions: i32,
    dispatcher: &Arc<Dispatcher>,
    shutdown: &Shutdown,
) -> Result<(), KafkaError> {
    let mut config = reader_config(kafka, client_id);
    config.set("enable.partition.eof", "false").set("fetch.wait.max.ms", "10");
    let consumer: BaseConsumer = config.create()?;
    consumer.assign(&starting_offsets(&consumer, topic, partitions)?)?;
    while !shutdown.is_cancelled() {
        match consumer.poll(Duration::from_millis(100)) {
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
/// fetched, and a reply committed before that moment would never be seen. Outcomes seen
/// twice are harmless.
fn starting_offsets(
    consumer: &BaseConsumer,
    topic: &str,
    partitions: i32,
) -> Result<TopicPartitionList, KafkaError> {
    let since = std::time::SystemTime::now()
        .checked_sub(LOOKBACK)
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(0));
    kafka::offsets_since(consumer, topic, 0..partitions, since, Offset::End)
}

/// How far back following starts.
const LOOKBACK: Duration = Duration::from_secs(10);
