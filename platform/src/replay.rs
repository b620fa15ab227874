//! Replaying partitions of the events topic fast: one thread reads, a few decode, the caller
//! folds — in log order.
//!
//! Decoding Avro costs more than reading the log and folding events together, so a replay
//! that does everything on one thread is bound by that one core. [`replay`] reads with
//! [`kafka::read_to_end`] on a thread of its own, hands chunks of raw records to decoder
//! threads, and gives the decoded events back to the caller's closure on the calling
//! thread in exactly the order they were read, so per-partition order — all a fold needs —
//! is kept.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError, mpsc};
use std::time::Duration;

use holdfast_domain::Event;
use rdkafka::ClientConfig;
use rdkafka::TopicPartitionList;
use rdkafka::error::KafkaError;

use crate::codec::{CodecError, EventCodec};
use crate::kafka;

/// Records per chunk handed to a decoder.
const CHUNK: usize = 2_048;

/// One record of the log, decoded or not.
#[derive(Debug)]
pub struct Replayed {
    /// Partition it was read from.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// The event, or why it could not be decoded.
    pub event: Result<Event, CodecError>,
}

/// Raw records read together: their payloads back to back.
struct Chunk {
    sequence: u64,
    bytes: Vec<u8>,
    records: Vec<(i32, i64, std::ops::Range<usize>)>,
}

impl Chunk {
    fn new(sequence: u64) -> Self {
        Self { sequence, bytes: Vec::with_capacity(CHUNK * 160), records: Vec::with_capacity(CHUNK) }
    }
}

/// Reads `assignment` to its end like [`kafka::read_to_end`] and calls `apply` with every
/// record decoded, in the order read. Schemas the codec has not seen yet are fetched through
/// `runtime`. Blocking: call it off the async reactor.
///
/// # Errors
/// When Kafka fails while reading, or `deadline` passes first.
pub fn replay(
    config: &ClientConfig,
    assignment: &TopicPartitionList,
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
            let mut chunk = Chunk::new(0);
            let read = kafka::read_to_end(config, assignment, deadline, |partition, offset, payload| {
                let start = chunk.bytes.len();
                chunk.bytes.extend_from_slice(payload);
                chunk.records.push((partition, offset, start..chunk.bytes.len()));
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
                    let events = chunk
                        .records
                        .into_iter()
                        .map(|(partition, offset, range)| {
                            let bytes = &chunk.bytes[range];
                            let event = codec
                                .decode_cached(bytes)
                                .unwrap_or_else(|| runtime.block_on(codec.decode(bytes)));
                            Replayed { partition, offset, event }
                        })
                        .collect();
                    if decoded_tx.send((chunk.sequence, events)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(decoded_tx);

        // Chunks arrive in any order from the decoders; hand them on in sequence.
        let mut waiting: BTreeMap<u64, Vec<Replayed>> = BTreeMap::new();
        let mut next = 0;
        for (sequence, events) in decoded_rx {
            waiting.insert(sequence, events);
            while let Some(events) = waiting.remove(&next) {
                events.into_iter().for_each(&mut apply);
                next += 1;
            }
        }
        reader.join().unwrap_or(Err(KafkaError::Canceled))
    })
}
