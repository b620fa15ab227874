//! Reading the events topic for the replay commands: where partitions start and end, and
//! replays of ranges of them through the platform's parallel decoder
//! ([`holdfast_platform::replay::replay`]), off the async reactor.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use holdfast_platform::KafkaArgs;
use holdfast_platform::codec::EventCodec;
use holdfast_platform::kafka::reader_config;
use holdfast_platform::replay::{Replayed, replay};
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
    /// there is none); 0 everywhere without `since`.
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

    /// Replays every partition from `from` to its end, calling `apply(state, record)` in log
    /// order (per partition) on a blocking thread, and returns the state.
    ///
    /// # Errors
    /// When Kafka fails or the deadline passes.
    pub async fn replay<S: Send + 'static>(
        &self,
        from: &Offsets,
        mut state: S,
        mut apply: impl FnMut(&mut S, Replayed) + Send + 'static,
    ) -> Result<S, ReplayError> {
        let mut assignment = TopicPartitionList::new();
        for (&partition, &offset) in from {
            assignment.add_partition_offset(&self.topic, partition, Offset::Offset(offset))?;
        }
        let (config, codec, deadline) = (self.reader("read"), Arc::clone(&self.codec), self.deadline);
        let runtime = tokio::runtime::Handle::current();
        blocking(move || {
            replay(&config, &assignment, deadline, &codec, &runtime, |record| apply(&mut state, record))?;
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

/// Events between `from` and `to` over all partitions.
#[must_use]
pub fn distance(from: &Offsets, to: &Offsets) -> u64 {
    to.iter().map(|(p, end)| u64::try_from(end - from.get(p).copied().unwrap_or(0)).unwrap_or(0)).sum()
}
