//! Read Holdfast's events topic as its valid history.
//!
//! `reservations.events` holds claims, the events of each partition's single writer, and void
//! records: appends of a writer that another instance had fenced (a zombie) or that followed a
//! failed append. Void records were never acknowledged to anyone, and applying one could count
//! capacity twice. Every reader must therefore judge every record by the **reader rule** before
//! it decodes anything:
//!
//! ```text
//! per partition: tenure = none
//! claim(token)        -> tenure = (token, next_seq = 0)     a claim always takes over
//! record(token, seq)  -> valid iff tenure == (token, seq); then next_seq += 1
//!                        otherwise void: skipped
//! ```
//!
//! [`EventConsumer`] is a Kafka consumer in your own consumer group that does this. It hands
//! you each valid record of its partitions, decoded through the schema registry, in offset
//! order, and counts what it skipped. The rule's state travels with your offsets:
//! [`EventConsumer::commit`] stores the tenure as it stood after the record in the commit's
//! metadata, so a consumer that takes the partition over resumes the rule exactly there. A
//! committed offset without that metadata (committed by another tool) makes the consumer read
//! the partition from its start to rebuild the rule, handing out only what lies at or after
//! the committed offset.
//!
//! ```no_run
//! # async fn run(settings: holdfast_consumer::Settings) -> Result<(), holdfast_consumer::ConsumerError> {
//! let consumer = holdfast_consumer::EventConsumer::new(&settings)?;
//! loop {
//!     let delivered = consumer.next().await?;
//!     if let holdfast_consumer::Valid::Event(event) = &delivered.record {
//!         println!("{} {:?}", event.envelope.resource_id, event.envelope.event_type);
//!     }
//!     consumer.commit(&delivered)?;
//! }
//! # }
//! ```

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use holdfast_domain::Event;
use holdfast_platform::codec::{CodecError, EventCodec, LogRecord, RejectedRecord};
use holdfast_platform::headers::RecordHeaders;
use holdfast_platform::kafka::consumer_config;
use holdfast_platform::{KafkaArgs, RegistryArgs};
use holdfast_tenure::{ReaderRule, Tenure, Token, Verdict};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

/// How the rule's state is written into a commit's metadata: `holdfast-tenure/1 <token> <next
/// seq>`, or `holdfast-tenure/1 none` before the partition's first claim.
pub const METADATA_PREFIX: &str = "holdfast-tenure/1";

/// How long a call to the group coordinator may take.
const COORDINATOR_TIMEOUT: Duration = Duration::from_secs(10);
/// The pause between attempts to reach an unreachable registry.
const REGISTRY_RETRY: Duration = Duration::from_secs(1);

/// Where to read and as whom.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Kafka connection (brokers, security properties).
    pub kafka: KafkaArgs,
    /// The schema registry (Confluent-compatible API).
    pub registry: RegistryArgs,
    /// The events topic (`reservations.events`, with your prefix if any).
    pub topic: String,
    /// Your consumer group.
    pub group_id: String,
    /// This consumer's client id (logs, quotas).
    pub client_id: String,
}

/// A valid record of the history.
#[derive(Debug, Clone, PartialEq)]
pub enum Valid {
    /// A domain event.
    Event(Event),
    /// A command refused by a business rule (nothing changed).
    Rejected(RejectedRecord),
}

/// One valid record, where it was and how far the rule had come.
#[derive(Debug, Clone)]
pub struct Delivered {
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// The record.
    pub record: Valid,
    /// The rule's tenure after the record: what a commit stores beside the next offset.
    tenure: Option<Tenure>,
}

/// What was skipped so far: claims and void records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Skipped {
    /// Claims read (a tenure started).
    pub claims: u64,
    /// Void records read.
    pub void: u64,
}

/// Why the consumer could not go on.
#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    /// Kafka refused or failed.
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    /// The codec could not be set up (a registry URL it cannot use).
    #[error("codec: {0}")]
    Codec(CodecError),
    /// A valid record does not decode: the history cannot be read past it. The consumer has
    /// moved past it; going on means missing a record of the history.
    #[error("the valid record at {partition}/{offset} does not decode: {source}")]
    Undecodable {
        /// Its partition.
        partition: i32,
        /// Its offset.
        offset: i64,
        /// Why.
        source: CodecError,
    },
}

/// The rule's state of one partition while it is assigned.
#[derive(Debug, Clone, Copy)]
struct PartitionState {
    rule: ReaderRule,
    /// Records before this offset are judged (the rule needs them) but not handed out.
    deliver_from: i64,
    /// The offset expected next: a record before it is one seen already.
    next: i64,
}

type States = Arc<Mutex<HashMap<i32, PartitionState>>>;

/// Forgets the rule's state of partitions taken away: whoever gets them next resumes from the
/// committed metadata.
struct Context {
    states: States,
}

impl ClientContext for Context {}

impl ConsumerContext for Context {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(revoked) = rebalance {
            let mut states = lock(&self.states);
            for element in revoked.elements() {
                states.remove(&element.partition());
            }
        }
    }
}

/// A consumer of the events topic that hands out its valid history.
pub struct EventConsumer {
    consumer: StreamConsumer<Context>,
    codec: EventCodec,
    topic: String,
    states: States,
    claims: AtomicU64,
    void: AtomicU64,
}

impl std::fmt::Debug for EventConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventConsumer").field("topic", &self.topic).finish_non_exhaustive()
    }
}

impl EventConsumer {
    /// A consumer in `settings.group_id`, subscribed to the events topic. It starts a partition
    /// without committed offsets at its beginning.
    ///
    /// # Errors
    /// When the consumer cannot be created or subscribed, or the registry URL is unusable.
    pub fn new(settings: &Settings) -> Result<Self, ConsumerError> {
        let states = States::default();
        let mut config = consumer_config(&settings.kafka, &settings.client_id, &settings.group_id);
        config.set("auto.offset.reset", "earliest");
        let consumer: StreamConsumer<Context> =
            config.create_with_context(Context { states: Arc::clone(&states) })?;
        consumer.subscribe(&[&settings.topic])?;
        let codec = EventCodec::new(&settings.registry, &settings.topic).map_err(ConsumerError::Codec)?;
        Ok(Self {
            consumer,
            codec,
            topic: settings.topic.clone(),
            states,
            claims: AtomicU64::new(0),
            void: AtomicU64::new(0),
        })
    }

    /// The next valid record of any assigned partition (in offset order within a partition),
    /// decoded. Claims and void records are skipped and counted ([`EventConsumer::skipped`]).
    /// A registry that does not answer is waited for: nothing is skipped.
    ///
    /// # Errors
    /// When Kafka fails, or a valid record does not decode ([`ConsumerError::Undecodable`]).
    pub async fn next(&self) -> Result<Delivered, ConsumerError> {
        loop {
            let message = self.consumer.recv().await?;
            let (partition, offset) = (message.partition(), message.offset());
            let Some(mut state) = self.state_at(partition, offset)? else { continue };
            if offset < state.next {
                continue;
            }
            state.next = offset + 1;
            let verdict = state.rule.admit(&RecordHeaders::read(&message).mark);
            lock(&self.states).insert(partition, state);
            match verdict {
                Verdict::Claim => {
                    self.claims.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                Verdict::Void(_) => {
                    self.void.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                Verdict::Valid if offset < state.deliver_from => continue,
                Verdict::Valid => {}
            }
            let payload = message.payload().unwrap_or_default().to_vec();
            drop(message);
            let record = self.decode(&payload).await.map_err(|source| ConsumerError::Undecodable {
                partition,
                offset,
                source,
            })?;
            let record = match record {
                LogRecord::Event(event) => Valid::Event(event),
                LogRecord::Rejected(rejected) => Valid::Rejected(rejected),
                // A claim's body under writer headers: not history.
                LogRecord::Claim(_) => continue,
            };
            return Ok(Delivered { partition, offset, record, tenure: state.rule.tenure() });
        }
    }

    /// Commits `delivered` as handled: the next offset, with the rule's tenure in the metadata.
    ///
    /// # Errors
    /// When Kafka refuses the commit.
    pub fn commit(&self, delivered: &Delivered) -> Result<(), ConsumerError> {
        let mut offsets = TopicPartitionList::new();
        offsets.add_partition_offset(
            &self.topic,
            delivered.partition,
            Offset::Offset(delivered.offset + 1),
        )?;
        if let Some(mut element) = offsets.find_partition(&self.topic, delivered.partition) {
            element.set_metadata(metadata(delivered.tenure));
        }
        self.consumer.commit(&offsets, CommitMode::Sync)?;
        Ok(())
    }

    /// Claims and void records skipped so far.
    #[must_use]
    pub fn skipped(&self) -> Skipped {
        Skipped { claims: self.claims.load(Ordering::Relaxed), void: self.void.load(Ordering::Relaxed) }
    }

    /// The partition's state when a record at `offset` arrives; `None` when the consumer went
    /// back to the partition's start to rebuild the rule (that record comes again).
    fn state_at(&self, partition: i32, offset: i64) -> Result<Option<PartitionState>, ConsumerError> {
        if let Some(state) = lock(&self.states).get(&partition) {
            return Ok(Some(*state));
        }
        let mut asked = TopicPartitionList::new();
        asked.add_partition(&self.topic, partition);
        let committed = self.consumer.committed_offsets(asked, COORDINATOR_TIMEOUT)?;
        let element = committed.find_partition(&self.topic, partition);
        let stored = element.as_ref().map(|e| (e.offset(), parse_metadata(e.metadata())));
        let state = match stored {
            // Resumed where the last commit left it, with the rule as it stood there.
            Some((Offset::Offset(at), Some(tenure))) if at == offset => {
                PartitionState { rule: ReaderRule::resume(tenure), deliver_from: at, next: at }
            }
            // Committed without the rule's state (another tool), or not where reading resumed:
            // the rule is rebuilt from the partition's start.
            Some((Offset::Offset(at), _)) if offset > 0 => {
                tracing::info!(
                    partition,
                    committed = at,
                    "no reader-rule state for the committed offset: reading the partition from its start"
                );
                let state = PartitionState { rule: ReaderRule::default(), deliver_from: at, next: 0 };
                lock(&self.states).insert(partition, state);
                self.consumer.seek(&self.topic, partition, Offset::Beginning, COORDINATOR_TIMEOUT)?;
                return Ok(None);
            }
            Some((Offset::Offset(at), _)) => {
                PartitionState { rule: ReaderRule::default(), deliver_from: at, next: 0 }
            }
            // Nothing committed: reading starts at the partition's beginning.
            _ => PartitionState { rule: ReaderRule::default(), deliver_from: 0, next: 0 },
        };
        lock(&self.states).insert(partition, state);
        Ok(Some(state))
    }

    async fn decode(&self, payload: &[u8]) -> Result<LogRecord, CodecError> {
        loop {
            let decoded = match self.codec.decode_record_cached(payload) {
                Some(decoded) => decoded,
                None => self.codec.decode_record(payload).await,
            };
            match decoded {
                Err(CodecError::RegistryUnreachable { detail }) => {
                    tracing::warn!(%detail, "schema registry unreachable; waiting for it");
                    tokio::time::sleep(REGISTRY_RETRY).await;
                }
                decoded => return decoded,
            }
        }
    }
}

/// The commit metadata of `tenure`.
#[must_use]
pub fn metadata(tenure: Option<Tenure>) -> String {
    match tenure {
        Some(Tenure { token, next_seq }) => format!("{METADATA_PREFIX} {} {next_seq}", token.header_value()),
        None => format!("{METADATA_PREFIX} none"),
    }
}

/// The tenure in commit metadata made by [`metadata`]: `Some(None)` before any claim, `None`
/// when the metadata is not ours.
#[must_use]
pub fn parse_metadata(text: &str) -> Option<Option<Tenure>> {
    let rest = text.strip_prefix(METADATA_PREFIX)?.strip_prefix(' ')?;
    if rest == "none" {
        return Some(None);
    }
    let (token, next_seq) = rest.split_once(' ')?;
    let token = Token::parse(token.as_bytes())?;
    let next_seq = next_seq.parse().ok()?;
    Some(Some(Tenure { token, next_seq }))
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rules_state_round_trips_through_commit_metadata() {
        let token = Token::parse(b"00000000-0000-0000-0000-000000000007").expect("a uuid");
        for tenure in [None, Some(Tenure { token, next_seq: 0 }), Some(Tenure { token, next_seq: 41 })] {
            assert_eq!(parse_metadata(&metadata(tenure)), Some(tenure));
        }
        for foreign in ["", "42", "holdfast-tenure/1", "holdfast-tenure/2 none", "holdfast-tenure/1 x 1"] {
            assert_eq!(parse_metadata(foreign), None, "{foreign:?}");
        }
    }
}
