//! One polled batch: decode, dead-letter what can never be applied, then apply the rest to
//! every shard concurrently (one PostgreSQL transaction per shard, offsets included).

use std::collections::{BTreeMap, HashMap};

use futures::future::join_all;
use rdkafka::message::{Message, OwnedMessage};
use time::OffsetDateTime;

use super::Worker;
use super::dlq::DeadLetter;
use crate::model::EventPosition;
use crate::store::StoreError;
use crate::store::apply::{Applied, Positioned, apply_batch};

/// What became of a batch.
#[derive(Debug, Default)]
pub(super) struct Outcome {
    /// What each committed shard transaction did.
    pub applied: Vec<Applied>,
    /// Partitions whose part of the batch did not commit; they are re-read from the offsets
    /// stored in PostgreSQL.
    pub failed: Vec<i32>,
    /// Kafka timestamp of the newest committed event per partition.
    pub newest: HashMap<i32, OffsetDateTime>,
    /// Shards whose live generation changed (a rebuild switched): every partition of theirs
    /// must be positioned again from the new generation.
    pub switched: Vec<usize>,
}

/// The part of a batch that goes to one shard.
#[derive(Debug, Default)]
struct ShardPart {
    /// Its events, in log order within each partition.
    events: Vec<Positioned>,
    /// Next offset of each of its partitions after the batch.
    ends: Vec<(i32, i64)>,
    /// Kafka timestamp (ms) of each event, for the delay metric.
    timestamps: Vec<Option<i64>>,
}

/// Applies `messages` and moves every partition of `ends` to its end offset, on each shard
/// only if its live generation is the one in `generations` (what the partitions were
/// positioned under).
pub(super) async fn process(
    worker: &Worker,
    messages: &[OwnedMessage],
    ends: &BTreeMap<i32, i64>,
    generations: &HashMap<usize, i64>,
) -> Outcome {
    let all_partitions = || ends.keys().copied().collect::<Vec<i32>>();
    let mut events: Vec<(Positioned, Option<i64>)> = Vec::with_capacity(messages.len());
    let mut letters: Vec<DeadLetter<'_>> = Vec::new();
    for message in messages {
        let position = EventPosition { partition: message.partition(), offset: message.offset() };
        let Some(payload) = message.payload() else {
            letters.push(DeadLetter {
                message,
                reason: "empty_payload",
                detail: "record has no payload".into(),
            });
            continue;
        };
        match worker.codec.decode(payload).await {
            Ok(event) => events.push((Positioned { position, event }, message.timestamp().to_millis())),
            Err(error) if error.is_retriable() => {
                tracing::warn!(%error, "events cannot be decoded now; the batch is retried");
                worker.metrics.failures.with_label_values(&["decode"]).inc();
                return Outcome { failed: all_partitions(), ..Outcome::default() };
            }
            Err(error) => {
                tracing::warn!(partition = position.partition, offset = position.offset, %error, "undecodable event dead-lettered");
                letters.push(DeadLetter { message, reason: error.reason_code(), detail: error.to_string() });
            }
        }
    }
    if !letters.is_empty() {
        if let Err(error) = worker.dead_letters.send(&letters).await {
            tracing::warn!(%error, "dead letters not acknowledged; the batch is retried");
            worker.metrics.failures.with_label_values(&["dead-letter"]).inc();
            return Outcome { failed: all_partitions(), ..Outcome::default() };
        }
        for letter in &letters {
            worker.metrics.dead_letters.with_label_values(&[letter.reason]).inc();
        }
    }

    let mut by_shard: BTreeMap<usize, ShardPart> = BTreeMap::new();
    for (&partition, &end) in ends {
        by_shard.entry(worker.shards.shard_of(partition)).or_default().ends.push((partition, end));
    }
    for (event, timestamp) in events {
        let part = by_shard.entry(worker.shards.shard_of(event.position.partition)).or_default();
        part.events.push(event);
        part.timestamps.push(timestamp);
    }
    let topic = worker.settings.topic.as_str();
    let runs = by_shard.iter().map(|(&shard, part)| {
        let expected = generations.get(&shard).copied();
        apply_batch(worker.shards.pool(shard), topic, &part.events, &part.ends, expected)
    });
    let results = join_all(runs).await;

    let mut outcome = Outcome::default();
    let now_millis = i64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
    for ((&shard, ShardPart { events, ends, timestamps }), result) in by_shard.iter().zip(results) {
        match result {
            Ok(applied) => {
                for (event, timestamp) in events.iter().zip(timestamps) {
                    let Some(millis) = *timestamp else { continue };
                    #[allow(clippy::cast_precision_loss)]
                    worker.metrics.event_delay_seconds.observe((now_millis - millis).max(0) as f64 / 1000.0);
                    if let Ok(at) = OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
                    {
                        let newest = outcome.newest.entry(event.position.partition).or_insert(at);
                        *newest = (*newest).max(at);
                    }
                }
                outcome.applied.push(applied);
            }
            Err(StoreError::GenerationChanged { expected, current }) => {
                tracing::info!(
                    shard,
                    expected,
                    current,
                    "read model switched generation; repositioning the shard's partitions"
                );
                outcome.switched.push(shard);
                outcome.failed.extend(ends.iter().map(|(p, _)| *p));
            }
            Err(error) => {
                tracing::warn!(%error, partitions = ?ends.iter().map(|e| e.0).collect::<Vec<_>>(), "batch not applied; re-reading its partitions");
                worker.metrics.failures.with_label_values(&["postgres"]).inc();
                outcome.failed.extend(ends.iter().map(|(p, _)| *p));
            }
        }
    }
    outcome
}
