//! The reply listener: follows the replies topic (`read_committed`) so that outcomes decided
//! by other instances reach the callers waiting here. Outcomes of this instance's own
//! partitions arrive in-process first; seeing them again here is harmless.

use std::sync::Arc;
use std::time::Duration;

use holdfast_platform::kafka::reader_config;
use holdfast_platform::{KafkaArgs, Shutdown};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use crate::dispatch::Dispatcher;
use crate::envelope::Outcome;

/// Follows every partition of `topic` from its current end until `shutdown`. Blocking: run it
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
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions {
        assignment.add_partition_offset(topic, partition, Offset::End)?;
    }
    consumer.assign(&assignment)?;
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
