//! One polled batch: judge every record by the reader rule, decode the valid ones,
//! dead-letter what can never be applied, then apply the events to every shard concurrently
//! (one PostgreSQL transaction per shard, positions included).
//!
//! Claims, `CommandRejected` records and void records change no read-model state, but the
//! partition's stored position moves past them like past any event. Void records are never
//! decoded and never dead-lettered: they are not part of the log's history at all. They are
//! counted (with claims and rejections) once the transaction that moved past them commits, and
//! only those at or after the offset it started from, so a batch that is retried, or whose
//! records another worker applied first, counts nothing twice.

use std::collections::{BTreeMap, HashMap};

use futures::future::join_all;
use holdfast_platform::codec::LogRecord;
use holdfast_tenure::{ReaderRule, Verdict};
use rdkafka::message::{Message, OwnedMessage};
use time::OffsetDateTime;

use super::Worker;
use super::dlq::DeadLetter;
use super::judge::judge;
use crate::model::EventPosition;
use crate::store::StoreError;
use crate::store::apply::{Applied, Positioned, apply_batch};
use crate::store::offsets::Position;

/// Dead-letter reason of a valid record whose body is a claim (a writer never appends one
/// under data headers; it cannot be applied).
const CLAIM_AS_DATA: &str = "claim_as_data";

/// What became of a batch.
#[derive(Debug, Default)]
pub(super) struct Outcome {
    /// What each committed shard transaction did.
    pub applied: Vec<Applied>,
    /// Partitions whose part of the batch did not commit; they are re-read from the positions
    /// stored in PostgreSQL.
    pub failed: Vec<i32>,
    /// Kafka timestamp of the newest committed event per partition.
    pub newest: HashMap<i32, OffsetDateTime>,
    /// Shards whose live generation changed (a rebuild switched): every partition of theirs
    /// must be positioned again from the new generation.
    pub switched: Vec<usize>,
}

/// A record that changes no state, to count once its batch commits.
#[derive(Debug, Clone, Copy)]
enum Tally {
    /// A claim.
    Claim,
    /// A valid refused command.
    Rejected,
    /// A void record, with the reason's label.
    Void(&'static str),
}

/// The part of a batch that goes to one shard.
#[derive(Debug, Default)]
struct ShardPart {
    /// Its events, in log order within each partition.
    events: Vec<Positioned>,
    /// Position of each of its partitions after the batch.
    ends: Vec<(i32, Position)>,
    /// Kafka timestamp (ms) of each event, for the delay metric.
    timestamps: Vec<Option<i64>>,
    /// Its records that change no state.
    tallies: Vec<(EventPosition, Tally)>,
}

/// Applies `messages` and moves every partition of `ends` to its end offset, judging records
/// from `rules` (each partition's reader rule at its stored next offset), on each shard only if
/// its live generation is the one in `generations` (what the partitions were positioned under).
pub(super) async fn process(
    worker: &Worker,
    messages: &[OwnedMessage],
    ends: &BTreeMap<i32, i64>,
    rules: &HashMap<i32, ReaderRule>,
    generations: &HashMap<usize, i64>,
) -> Outcome {
    let all_partitions = || ends.keys().copied().collect::<Vec<i32>>();
    let (judged, after) = judge(messages, rules);
    let mut events: Vec<(Positioned, Option<i64>)> = Vec::with_capacity(messages.len());
    let mut tallies: Vec<(EventPosition, Tally)> = Vec::new();
    let mut letters: Vec<DeadLetter<'_>> = Vec::new();
    for judged in judged {
        let message = judged.message;
        let position = EventPosition { partition: message.partition(), offset: message.offset() };
        match judged.verdict {
            Verdict::Claim => {
                tallies.push((position, Tally::Claim));
                continue;
            }
            Verdict::Void(why) => {
                tallies.push((position, Tally::Void(why.label())));
                continue;
            }
            Verdict::Valid => {}
        }
        let Some(payload) = message.payload() else {
            letters.push(DeadLetter {
                message,
                reason: "empty_payload",
                detail: "record has no payload".into(),
            });
            continue;
        };
        match worker.codec.decode_record(payload).await {
            Ok(LogRecord::Event(event)) => {
                events.push((Positioned { position, event }, message.timestamp().to_millis()));
            }
            Ok(LogRecord::Rejected(_)) => tallies.push((position, Tally::Rejected)),
            Ok(LogRecord::Claim(_)) => {
                tracing::warn!(
                    partition = position.partition,
                    offset = position.offset,
                    "a claim's body under data headers dead-lettered"
                );
                letters.push(DeadLetter {
                    message,
                    reason: CLAIM_AS_DATA,
                    detail: "a claim record carries writer headers, not a claim header".into(),
                });
            }
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
        let rule = after.get(&partition).or_else(|| rules.get(&partition)).copied().unwrap_or_default();
        by_shard
            .entry(worker.shards.shard_of(partition))
            .or_default()
            .ends
            .push((partition, Position::new(end, &rule)));
    }
    for (event, timestamp) in events {
        let part = by_shard.entry(worker.shards.shard_of(event.position.partition)).or_default();
        part.events.push(event);
        part.timestamps.push(timestamp);
    }
    for (position, tally) in tallies {
        by_shard
            .entry(worker.shards.shard_of(position.partition))
            .or_default()
            .tallies
            .push((position, tally));
    }
    let topic = worker.settings.topic.as_str();
    let runs = by_shard.iter().map(|(&shard, part)| {
        let expected = generations.get(&shard).copied();
        apply_batch(worker.shards.pool(shard), topic, &part.events, &part.ends, expected)
    });
    let results = join_all(runs).await;

    let mut outcome = Outcome::default();
    let now_millis = i64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
    for ((&shard, part), result) in by_shard.iter().zip(results) {
        let ShardPart { events, ends, timestamps, tallies } = part;
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
                count(worker, &applied, tallies);
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

/// Counts the claims, rejections and void records a committed transaction moved past: those
/// at or after where it found each partition (earlier ones were counted by whoever moved past
/// them first).
fn count(worker: &Worker, applied: &Applied, tallies: &[(EventPosition, Tally)]) {
    let from: HashMap<i32, i64> = applied.offsets.iter().map(|a| (a.partition, a.from)).collect();
    let fresh = tallies
        .iter()
        .filter(|(position, _)| from.get(&position.partition).is_some_and(|from| position.offset >= *from));
    for (_, tally) in fresh {
        match tally {
            Tally::Claim => worker.metrics.claims.inc(),
            Tally::Rejected => worker.metrics.rejected.inc(),
            Tally::Void(label) => worker.metrics.void_records.with_label_values(&[label]).inc(),
        }
    }
}
