//! Reading the events topic for the replay commands: where partitions start and end, and
//! replays of ranges of them by the reader rule through the platform's parallel decoder
//! ([`holdfast_platform::replay::replay`]), off the async reactor.
//!
//! The reader rule needs its state at the first offset read: a range that does not start at
//! its partition's beginning must come with the rule as it stood there ([`Span::rules`],
//! stored beside offsets by whoever read up to them). A command that needs only the records
//! from some point on (`--since`) still reads from the beginning and skips what it does not
//! need; the rule never starts in the middle of a partition from nothing.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use holdfast_platform::KafkaArgs;
use holdfast_platform::codec::EventCodec;
use holdfast_platform::kafka::reader_config;
use holdfast_platform::replay::{Entry, Plan, Replayed, replay};
use holdfast_tenure::{Mark, ReaderRule};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Offset, TopicPartitionList};
use time::OffsetDateTime;

use super::ReplayError;

/// How long a metadata request (watermarks, offsets for times) may take.
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

/// The events topic as the replay commands read it.
#[derive(Debug, Clone)]
pub struct Log {
    /// Kafka connection.
    pub kafka: KafkaArgs,
    /// The events topic.
    pub topic: String,
    /// Its partition count.
    pub partitions: i32,
    /// Decodes its records.
    pub codec: Arc<EventCodec>,
    /// Longest time one replay may take.
    pub deadline: Duration,
}

/// Per partition: an offset.
pub type Offsets = BTreeMap<i32, i64>;

/// Per partition: the reader rule at some offset.
pub type Rules = BTreeMap<i32, ReaderRule>;

/// What one replay reads.
#[derive(Debug, Clone, Default)]
pub struct Span {
    /// First offset of each partition to read (partitions not listed are not read).
    pub from: Offsets,
    /// The reader rule at each partition's first offset; a partition not listed starts with
    /// no tenure, which is right only at its beginning.
    pub rules: Rules,
    /// Exclusive end of the partitions read only that far; the others are read to their end.
    pub until: Offsets,
}

impl Span {
    /// Every partition of `0..partitions` from its beginning to its end.
    #[must_use]
    pub fn from_beginning(partitions: i32) -> Self {
        Self { from: (0..partitions).map(|p| (p, 0)).collect(), ..Self::default() }
    }
}

/// Moves `rule` past the record the reader thread judged as `entry`, so a fold knows the
/// rule's state after every record (to store it beside its offsets) without the record's
/// headers: a claim starts its tenure, a valid record carried the tenure's next sequence
/// number, and a void record changed nothing.
pub fn retrace(rule: &mut ReaderRule, entry: &Entry) {
    let mark = match entry {
        Entry::Claim(token) => Mark::Claim { token: *token },
        Entry::Valid { .. } => match rule.tenure() {
            Some(tenure) => Mark::Data { token: tenure.token, seq: tenure.next_seq },
            None => return,
        },
        Entry::Void(_) => return,
    };
    rule.admit(&mark);
}

impl Log {
    /// A reader client configuration with a unique client id.
    fn reader(&self, purpose: &str) -> rdkafka::ClientConfig {
        let id = format!("holdfast-replay-{purpose}-{}", std::process::id());
        reader_config(&self.kafka, &id)
    }

    /// The high watermark (end) of every partition.
    ///
    /// # Errors
    /// When Kafka does not answer.
    pub async fn ends(&self) -> Result<Offsets, ReplayError> {
        let (log, config) = (self.clone(), self.reader("watermarks"));
        blocking(move || {
            let consumer: BaseConsumer = config.create()?;
            (0..log.partitions)
                .map(|p| Ok((p, consumer.fetch_watermarks(&log.topic, p, METADATA_TIMEOUT)?.1)))
                .collect()
        })
        .await
    }

    /// Per partition, the first offset whose timestamp is at or after `since` (the end when
    /// there is none); 0 everywhere without `since`. Where to start projecting, never where
    /// to start reading (see the module's documentation).
    ///
    /// # Errors
    /// When Kafka does not answer.
    pub async fn starts(&self, since: Option<OffsetDateTime>) -> Result<Offsets, ReplayError> {
        let Some(since) = since else {
            return Ok((0..self.partitions).map(|p| (p, 0)).collect());
        };
        let millis = i64::try_from(since.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
        let (log, config) = (self.clone(), self.reader("times"));
        let ends = self.ends().await?;
        blocking(move || {
            let consumer: BaseConsumer = config.create()?;
            let mut query = TopicPartitionList::new();
            for p in 0..log.partitions {
                query.add_partition_offset(&log.topic, p, Offset::Offset(millis))?;
            }
            let found = consumer.offsets_for_times(query, METADATA_TIMEOUT)?;
            Ok((0..log.partitions)
                .map(|p| {
                    let end = ends.get(&p).copied().unwrap_or(0);
                    let start = match found.find_partition(&log.topic, p).map(|e| e.offset()) {
                        Some(Offset::Offset(o)) if o >= 0 => o,
                        _ => end,
                    };
                    (p, start)
                })
                .collect())
        })
        .await
    }

    /// Replays `span` by the reader rule, calling `apply(state, record)` with every record
    /// (valid ones decoded) in log order per partition, on a blocking thread, and returns the
    /// state.
    ///
    /// # Errors
    /// When Kafka fails or the deadline passes.
    pub async fn replay<S: Send + 'static>(
        &self,
        span: &Span,
        mut state: S,
        mut apply: impl FnMut(&mut S, Replayed) + Send + 'static,
    ) -> Result<S, ReplayError> {
        let mut assignment = TopicPartitionList::new();
        for (&partition, &offset) in &span.from {
            assignment.add_partition_offset(&self.topic, partition, Offset::Offset(offset))?;
        }
        let plan = Plan {
            assignment,
            ends: span.until.iter().map(|(p, o)| (*p, *o)).collect::<HashMap<i32, i64>>(),
            rules: span.rules.iter().map(|(p, r)| (*p, *r)).collect(),
        };
        let (config, codec, deadline) = (self.reader("read"), Arc::clone(&self.codec), self.deadline);
        let runtime = tokio::runtime::Handle::current();
        blocking(move || {
            replay(&config, &plan, deadline, &codec, &runtime, |record| apply(&mut state, record))?;
            Ok(state)
        })
        .await
    }
}

/// Runs blocking Kafka work on the blocking pool.
pub(super) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ReplayError> + Send + 'static,
) -> Result<T, ReplayError> {
    tokio::task::spawn_blocking(work).await.map_err(|_| ReplayError::Kafka(KafkaError::Canceled))?
}

/// Records between `from` and `to` over all partitions.
#[must_use]
pub fn distance(from: &Offsets, to: &Offsets) -> u64 {
    to.iter().map(|(p, end)| u64::try_from(end - from.get(p).copied().unwrap_or(0)).unwrap_or(0)).sum()
}

#[cfg(test)]
mod tests {
    use holdfast_tenure::{Token, Verdict};
    use uuid::Uuid;

    use super::*;

    /// What the reader thread would pass on for `mark`, judged by `rule`.
    fn entry(rule: &mut ReaderRule, mark: Mark) -> Entry {
        match rule.admit(&mark) {
            Verdict::Claim => match mark {
                Mark::Claim { token } => Entry::Claim(token),
                _ => unreachable!("only claims are judged claims"),
            },
            Verdict::Valid => Entry::Valid {
                record: Err(holdfast_platform::codec::CodecError::Truncated { detail: String::new() }),
                fingerprint: None,
            },
            Verdict::Void(why) => Entry::Void(why),
        }
    }

    #[test]
    fn retracing_the_verdicts_keeps_the_rule_of_the_reader() {
        let (a, b) = (Token(Uuid::from_u128(1)), Token(Uuid::from_u128(2)));
        let data = |token, seq| Mark::Data { token, seq };
        let log = [
            data(a, 0),
            Mark::Claim { token: a },
            data(a, 0),
            data(a, 1),
            data(a, 3),
            Mark::Unmarked,
            Mark::Claim { token: b },
            data(a, 2),
            data(b, 0),
            data(b, 0),
            data(b, 1),
            Mark::Claim { token: b },
            data(b, 0),
        ];
        let (mut reader, mut retraced) = (ReaderRule::default(), ReaderRule::default());
        for mark in log {
            let entry = entry(&mut reader, mark);
            retrace(&mut retraced, &entry);
            assert_eq!(retraced, reader, "after {mark:?}");
        }
    }
}
