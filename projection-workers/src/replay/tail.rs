//! `tail`: follow the log live (committed events only), decoded, as JSON lines, until
//! Ctrl-C. A reader thread polls every partition from its end (or its beginning) and hands
//! lines to the async side, which writes them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use holdfast_platform::Shutdown;
use holdfast_platform::kafka::reader_config;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;

use super::config::TailArgs;
use super::dump::DumpLine;
use super::{Context, Outcome, Output, ReplayError};

/// A record that could not be decoded, with its headers (a dead letter's say why).
#[derive(Debug, Clone, Serialize)]
struct Undecodable {
    partition: i32,
    offset: i64,
    error: String,
    headers: std::collections::BTreeMap<String, String>,
}

/// What the reader thread hands over.
enum Line {
    Event(Box<DumpLine>),
    Undecodable(Undecodable),
}

/// Follows the log until `shutdown` is cancelled.
///
/// # Errors
/// When Kafka fails or the output cannot be written.
pub async fn run(
    context: &Context,
    args: &TailArgs,
    output: &mut Output<'_>,
    shutdown: &Shutdown,
) -> Result<Outcome, ReplayError> {
    let (lines_tx, mut lines) = tokio::sync::mpsc::channel::<Line>(1024);
    let stop = Arc::new(AtomicBool::new(false));
    let config = reader_config(&context.log.kafka, &format!("holdfast-replay-tail-{}", std::process::id()));
    let topic = match &args.topic {
        Some(name) => format!("{}{name}", context.config.topics.topic_prefix),
        None => context.log.topic.clone(),
    };
    let start = if args.from_beginning { Offset::Beginning } else { Offset::End };
    let codec = Arc::clone(&context.log.codec);
    let runtime = tokio::runtime::Handle::current();
    let reading = {
        let stop = Arc::clone(&stop);
        tokio::task::spawn_blocking(move || -> Result<(), KafkaError> {
            let mut config = config;
            config.set("enable.partition.eof", "false");
            let consumer: BaseConsumer = config.create()?;
            let metadata = consumer.fetch_metadata(Some(&topic), Duration::from_secs(10))?;
            let partitions = metadata.topics().first().map_or(0, |t| t.partitions().len());
            let mut assignment = TopicPartitionList::new();
            for p in 0..i32::try_from(partitions).unwrap_or(0) {
                assignment.add_partition_offset(&topic, p, start)?;
            }
            consumer.assign(&assignment)?;
            while !stop.load(Ordering::Relaxed) {
                let Some(polled) = consumer.poll(Duration::from_millis(100)) else { continue };
                let message = polled?;
                let (partition, offset) = (message.partition(), message.offset());
                let payload = message.payload().unwrap_or_default();
                let decoded =
                    codec.decode_cached(payload).unwrap_or_else(|| runtime.block_on(codec.decode(payload)));
                let line = match decoded {
                    Ok(event) => Line::Event(Box::new(DumpLine { partition, offset, event })),
                    Err(error) => Line::Undecodable(Undecodable {
                        partition,
                        offset,
                        error: error.to_string(),
                        headers: headers_of(&message),
                    }),
                };
                if lines_tx.blocking_send(line).is_err() {
                    break;
                }
            }
            Ok(())
        })
    };
    tracing::info!("tailing the log; Ctrl-C to stop");
    let mut written: u64 = 0;
    loop {
        let line = tokio::select! {
            () = shutdown.cancelled() => break,
            line = lines.recv() => line,
        };
        match line {
            Some(Line::Event(line)) => output.json_line(&line)?,
            Some(Line::Undecodable(line)) => output.json_line(&line)?,
            None => break,
        }
        written += 1;
    }
    stop.store(true, Ordering::Relaxed);
    drop(lines);
    reading.await.map_err(|_| KafkaError::Canceled)??;
    tracing::info!(lines = written, "tail stopped");
    Ok(Outcome::Done)
}

/// A record's headers as text.
fn headers_of(message: &rdkafka::message::BorrowedMessage<'_>) -> std::collections::BTreeMap<String, String> {
    use rdkafka::message::Headers;
    message
        .headers()
        .map(|headers| {
            headers
                .iter()
                .map(|h| {
                    (h.key.to_owned(), String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned())
                })
                .collect()
        })
        .unwrap_or_default()
}
