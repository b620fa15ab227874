//! A Kafka producer whose deliveries are awaited as futures, served by one thread of its own
//! that sleeps inside librdkafka while nothing happens.
//!
//! rdkafka's `FutureProducer` serves its delivery reports from a thread that polls in 100 ms
//! rounds, and each round ends in a busy loop: the time left is handed to librdkafka in whole
//! milliseconds, rounded down, so the last fraction of a millisecond is polled with a zero
//! timeout until it has passed — about 0.9 ms of one core per round. A command-service
//! instance has ten producers; idle, they spent 9 % of a core on nothing but that.
//!
//! Here a round lasts [`ROUND`], a whole number of milliseconds and a little more: the wait
//! handed to librdkafka is the round rounded down, and by the time librdkafka wakes up the
//! little more has passed too, so an idle round ends in its sleep, not in a loop. A round in
//! which reports arrived may still end in up to a millisecond of polling, once a second.
//! Reports wake the thread at once, whatever the round: the round bounds only how late the
//! thread notices it should stop.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::ClientContext;
use rdkafka::error::KafkaError;
use rdkafka::message::{Message, ToBytes};
use rdkafka::metadata::Metadata;
use rdkafka::producer::{
    BaseProducer, BaseRecord, DeliveryResult, FutureRecord, Producer as _, ProducerContext,
};
use rdkafka::types::RDKafkaErrorCode;
use tokio::sync::oneshot;

/// How long one poll of the delivery thread lasts at most: whole milliseconds plus a margin
/// librdkafka's wake-up always exceeds.
const ROUND: Duration = Duration::from_micros(1_000_050);

/// Where a record landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
}

/// The broker's answer to one record: where it landed, or why it was not written.
pub type Delivery = Result<Delivered, KafkaError>;

/// Resolves with the broker's answer to one sent record.
#[derive(Debug)]
pub struct DeliveryFuture(oneshot::Receiver<Delivery>);

impl Future for DeliveryFuture {
    type Output = Delivery;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx).map(|answer| answer.unwrap_or(Err(KafkaError::Canceled)))
    }
}

/// Hands each delivery report to the future waiting for it.
struct Reports;

impl ClientContext for Reports {}

impl ProducerContext for Reports {
    type DeliveryOpaque = Box<oneshot::Sender<Delivery>>;

    fn delivery(&self, result: &DeliveryResult<'_>, waiting: Self::DeliveryOpaque) {
        let answer = match result {
            Ok(message) => Ok(Delivered { partition: message.partition(), offset: message.offset() }),
            Err((error, _)) => Err(error.clone()),
        };
        // The sender may have stopped waiting; the answer is then nobody's.
        let _ = waiting.send(answer);
    }
}

/// A producer sending records whose deliveries are awaited; cheap to clone (one librdkafka
/// client and one delivery thread, shared). The thread stops within a second of the last
/// clone's drop.
#[derive(Clone)]
pub struct Producer {
    inner: Arc<Inner>,
}

struct Inner {
    producer: Arc<BaseProducer<Reports>>,
    stop: Arc<AtomicBool>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer").finish_non_exhaustive()
    }
}

impl Producer {
    /// A producer with `config`, and its delivery thread.
    ///
    /// # Errors
    /// When librdkafka refuses the configuration, or the thread cannot start.
    pub fn new(config: &ClientConfig) -> Result<Self, KafkaError> {
        let producer: Arc<BaseProducer<Reports>> = Arc::new(config.create_with_context(Reports)?);
        let stop = Arc::new(AtomicBool::new(false));
        let (polled, stopping) = (Arc::clone(&producer), Arc::clone(&stop));
        std::thread::Builder::new()
            .name("kafka-deliveries".to_owned())
            .spawn(move || {
                while !stopping.load(Ordering::Acquire) {
                    polled.poll(ROUND);
                }
            })
            .map_err(|_| KafkaError::ClientCreation("cannot start the delivery thread".to_owned()))?;
        Ok(Self { inner: Arc::new(Inner { producer, stop }) })
    }

    /// Queues `record` without waiting; the future resolves with the broker's answer.
    ///
    /// # Errors
    /// When librdkafka refuses the record (a full queue, an unknown partition); the record
    /// comes back with the error.
    #[allow(
        clippy::result_large_err,
        reason = "the refused record comes back to be sent again, as rdkafka's own send does"
    )]
    pub fn send_result<'a, K, P>(
        &self,
        record: FutureRecord<'a, K, P>,
    ) -> Result<DeliveryFuture, (KafkaError, FutureRecord<'a, K, P>)>
    where
        K: ToBytes + ?Sized,
        P: ToBytes + ?Sized,
    {
        let (answer, waiting) = oneshot::channel();
        let base = BaseRecord {
            topic: record.topic,
            partition: record.partition,
            payload: record.payload,
            key: record.key,
            timestamp: record.timestamp,
            headers: record.headers,
            delivery_opaque: Box::new(answer),
        };
        match self.inner.producer.send(base) {
            Ok(()) => Ok(DeliveryFuture(waiting)),
            Err((error, back)) => Err((
                error,
                FutureRecord {
                    topic: back.topic,
                    partition: back.partition,
                    payload: back.payload,
                    key: back.key,
                    timestamp: back.timestamp,
                    headers: back.headers,
                },
            )),
        }
    }

    /// Sends `record` and waits for the broker's answer, retrying while the local queue is
    /// full for at most `queue_timeout`.
    ///
    /// # Errors
    /// When the record is refused or not written.
    pub async fn send<K, P>(&self, record: FutureRecord<'_, K, P>, queue_timeout: Duration) -> Delivery
    where
        K: ToBytes + ?Sized,
        P: ToBytes + ?Sized,
    {
        let deadline = Instant::now() + queue_timeout;
        let mut record = record;
        loop {
            match self.send_result(record) {
                Ok(delivery) => return delivery.await,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back))
                    if Instant::now() < deadline =>
                {
                    record = back;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err((error, _)) => return Err(error),
            }
        }
    }

    /// The cluster's metadata for `topic` (every topic when `None`). Blocking.
    ///
    /// # Errors
    /// When the broker does not answer within `timeout`.
    pub fn fetch_metadata(&self, topic: Option<&str>, timeout: Duration) -> Result<Metadata, KafkaError> {
        self.inner.producer.client().fetch_metadata(topic, timeout)
    }

    /// Waits until every queued record is answered, at most `timeout`.
    ///
    /// # Errors
    /// When records are still unanswered after `timeout`.
    pub fn flush(&self, timeout: Duration) -> Result<(), KafkaError> {
        self.inner.producer.flush(timeout)
    }
}
