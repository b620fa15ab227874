//! Replaying partitions of the events topic fast and by the reader rule: one thread reads and
//! judges, a few decode, the caller folds — in log order.
//!
//! The reader thread applies [`ReaderRule::admit`] to every record as it comes off the log
//! (the rule needs nothing but the headers), so only valid records are decoded at all: void
//! records and claims are passed on as what they are. Decoding Avro costs more than reading
//! and folding together, so chunks of valid records go to decoder threads, and the caller's
//! closure gets every record back on the calling thread in exactly the order it was read, so
//! per-partition order — all a fold needs — is kept.
//!
//! Readers that follow partitions record by record as they grow use the same two steps:
//! [`judge`] and [`decode`].

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError, mpsc};
use std::time::Duration;

use holdfast_tenure::{Mark, ReaderRule, Token, Verdict, Void};
use rdkafka::ClientConfig;
use rdkafka::TopicPartitionList;
use rdkafka::error::KafkaError;
use rdkafka::message::Message;

use crate::codec::{CodecError, EventCodec, LogRecord};
use crate::headers::RecordHeaders;
use crate::kafka;

/// Records per chunk handed to a decoder.
const CHUNK: usize = 2_048;

/// One record of the log as the reader rule judged it.
#[derive(Debug)]
pub struct Replayed {
    /// Partition it was read from.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// What it is.
    pub entry: Entry,
}

/// A record judged by the reader rule.
#[derive(Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "nearly every entry of a replay is a valid record; boxing it would cost an allocation each"
)]
pub enum Entry {
    /// A claim: a tenure starts. Its body is not decoded.
    Claim(Token),
    /// A valid record, decoded (or why it could not be).
    Valid {
        /// The record.
        record: Result<LogRecord, CodecError>,
        /// The request fingerprint in its headers, if any.
        fingerprint: Option<u64>,
    },
    /// A void record: skipped by every reader. Not decoded.
    Void(Void),
}

/// What to replay: partitions with their first offsets, optional ends, and the reader rule's
/// state at each start (the default — no tenure — when reading from a partition's beginning).
#[derive(Debug, Default)]
pub struct Plan {
    /// Partitions and the offsets to start at.
    pub assignment: TopicPartitionList,
    /// Exclusive end offsets of partitions read only that far (others to their end).
    pub ends: HashMap<i32, i64>,
    /// The reader rule at each partition's start.
    pub rules: HashMap<i32, ReaderRule>,
}

impl Plan {
    /// Every listed partition of `topic` from its beginning to its end.
    ///
    /// # Errors
    /// When the topic name is invalid.
    pub fn from_beginning(
        topic: &str,
        partitions: impl IntoIterator<Item = i32>,
    ) -> Result<Self, KafkaError> {
        let mut assignment = TopicPartitionList::new();
        for partition in partitions {
            assignment.add_partition_offset(topic, partition, rdkafka::Offset::Beginning)?;
        }
        Ok(Self { assignment, ..Self::default() })
    }
}

/// What the reader thread passes on for one record: its place, and the bytes of a valid one.
enum Judged {
    Claim(Token),
    Valid { bytes: std::ops::Range<usize>, fingerprint: Option<u64> },
    Void(Void),
}

/// What the reader rule made of one record, before anything is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Judgement {
    /// A claim: a tenure starts.
    Claim(Token),
    /// A valid record: decode its payload ([`decode`]) and apply it.
    Valid,
    /// A void record: skip it.
    Void(Void),
}

/// Judges the next record of a partition, whose headers carry `mark`, by `rule`, and moves the
/// rule past it.
pub fn judge(rule: &mut ReaderRule, mark: Mark) -> Judgement {
    match rule.admit(&mark) {
        Verdict::Claim => match mark {
            Mark::Claim { token } => Judgement::Claim(token),
            _ => Judgement::Void(Void::Unmarked),
        },
        Verdict::Void(why) => Judgement::Void(why),
        Verdict::Valid => Judgement::Valid,
    }
}

/// Decodes the payload of a valid record, fetching a writer schema the codec has not seen yet
/// through `runtime`. Blocking: call it off the async reactor.
///
/// # Errors
/// When the payload does not decode, or the registry does not answer
/// ([`CodecError::RegistryUnreachable`]: worth trying again).
pub fn decode(
    codec: &EventCodec,
    runtime: &tokio::runtime::Handle,
    bytes: &[u8],
) -> Result<LogRecord, CodecError> {
    codec.decode_record_cached(bytes).unwrap_or_else(|| runtime.block_on(codec.decode_record(bytes)))
}

/// Records read together: the payloads of the valid ones back to back.
struct Chunk {
    sequence: u64,
    bytes: Vec<u8>,
    records: Vec<(i32, i64, Judged)>,
}

impl Chunk {
    fn new(sequence: u64) -> Self {
        Self { sequence, bytes: Vec::with_capacity(CHUNK * 160), records: Vec::with_capacity(CHUNK) }
    }
}

/// Reads `plan` like [`kafka::read_until`], judges every record by the reader rule and calls
/// `apply` with each, valid ones decoded, in the order read. Schemas the codec has not seen
/// yet are fetched through `runtime`. Blocking: call it off the async reactor.
///
/// # Errors
/// When Kafka fails while reading, or `deadline` passes first.
pub fn replay(
    config: &ClientConfig,
    plan: &Plan,
    deadline: Duration,
    codec: &EventCodec,
    runtime: &tokio::runtime::Handle,
    mut apply: impl FnMut(Replayed),
) -> Result<(), KafkaError> {
    let decoders = std::thread::available_parallelism().map_or(2, std::num::NonZero::get).clamp(1, 4);
    let (raw_tx, raw_rx) = mpsc::sync_channel::<Chunk>(decoders * 2);
    let raw_rx = Mutex::new(raw_rx);
    let (decoded_tx, decoded_rx) = mpsc::sync_channel::<(u64, Vec<Replayed>)>(decoders * 2);

    std::thread::scope(|scope| {
        let reader = scope.spawn(move || {
            let mut rules = plan.rules.clone();
            let mut chunk = Chunk::new(0);
            let read = kafka::read_until(config, &plan.assignment, &plan.ends, deadline, |message| {
                let headers = RecordHeaders::read(message);
                let partition = message.partition();
                let judged = match judge(rules.entry(partition).or_default(), headers.mark) {
                    Judgement::Claim(token) => Judged::Claim(token),
                    Judgement::Void(why) => Judged::Void(why),
                    Judgement::Valid => {
                        let start = chunk.bytes.len();
                        chunk.bytes.extend_from_slice(message.payload().unwrap_or_default());
                        Judged::Valid { bytes: start..chunk.bytes.len(), fingerprint: headers.fingerprint }
                    }
                };
                chunk.records.push((partition, message.offset(), judged));
                if chunk.records.len() == CHUNK {
                    let next = Chunk::new(chunk.sequence + 1);
                    // A closed channel means the decoders are gone; the read ends below.
                    let _ = raw_tx.send(std::mem::replace(&mut chunk, next));
                }
            });
            if !chunk.records.is_empty() {
                let _ = raw_tx.send(chunk);
            }
            read
        });
        for _ in 0..decoders {
            let decoded_tx = decoded_tx.clone();
            let raw_rx = &raw_rx;
            scope.spawn(move || {
                loop {
                    let next = raw_rx.lock().unwrap_or_else(PoisonError::into_inner).recv();
                    let Ok(chunk) = next else { return };
                    let entries = chunk
                        .records
                        .into_iter()
                        .map(|(partition, offset, judged)| {
                            let entry = match judged {
                                Judged::Claim(token) => Entry::Claim(token),
                                Judged::Void(why) => Entry::Void(why),
                                Judged::Valid { bytes, fingerprint } => {
                                    let record = decode(codec, runtime, &chunk.bytes[bytes]);
                                    Entry::Valid { record, fingerprint }
                                }
                            };
                            Replayed { partition, offset, entry }
                        })
                        .collect();
                    if decoded_tx.send((chunk.sequence, entries)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(decoded_tx);

        // Chunks arrive in any order from the decoders; hand them on in sequence.
        let mut waiting: BTreeMap<u64, Vec<Replayed>> = BTreeMap::new();
        let mut next = 0;
        for (sequence, entries) in decoded_rx {
            waiting.insert(sequence, entries);
            while let Some(entries) = waiting.remove(&next) {
                entries.into_iter().for_each(&mut apply);
                next += 1;
            }
        }
        reader.join().unwrap_or(Err(KafkaError::Canceled))
    })
}
