//! The produce baseline: idempotent producers (the command service's settings) appending
//! records of event size over every partition as fast as the broker acknowledges them. Its
//! rate is the ceiling over the command service's decisions: each is one such append.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use futures::future::join_all;
use futures::stream::FuturesUnordered;
use holdfast_platform::KafkaArgs;

use super::topic::{Appender, acknowledged, check_event_bytes};
use super::{BaselineError, ProduceBaseline};

/// Records one producer keeps unacknowledged at most: enough to fill every partition's
/// batches, few enough that the tail after the clock stops is short.
const WINDOW: usize = 20_000;

/// Runs the produce baseline on an existing `topic`, leaving it as it is: `producers`
/// producers on threads of their own, each first appending one warm-up record per partition,
/// then together, for `seconds`, records of `event_bytes` bytes to partitions 0, 1, 2, … in
/// turn (each producer starting at another one), keeping up to a window of them
/// unacknowledged. The rate counts acknowledged records from the first send to the last
/// acknowledgement.
///
/// # Errors
/// See [`BaselineError`]; the first error of any producer stops them all.
pub async fn produce_into(
    kafka_args: &KafkaArgs,
    topic: &str,
    event_bytes: usize,
    producers: usize,
    seconds: Duration,
) -> Result<ProduceBaseline, BaselineError> {
    check_event_bytes(event_bytes)?;
    if producers == 0 || seconds.is_zero() {
        return Err(BaselineError::Settings("producers and seconds must be positive".to_owned()));
    }
    let run = rand::random::<u32>();
    let ready = (0..producers).map(|index| {
        let (kafka_args, topic) = (kafka_args.clone(), topic.to_owned());
        tokio::task::spawn_blocking(move || {
            let client_id = format!("holdfast-baseline-produce-{run:08x}-{index}");
            let mut appender = Appender::ready(&kafka_args, &client_id, &topic, event_bytes)?;
            let warmed = appender.warm_up()?;
            Ok::<_, BaselineError>((appender, warmed))
        })
    });
    let mut appenders = Vec::with_capacity(producers);
    let (mut warmup_records, mut first_error) = (0, None);
    for joined in join_all(ready).await {
        match joined.map_err(|e| BaselineError::Thread(e.to_string())).and_then(|r| r) {
            Ok((appender, warmed)) => {
                appenders.push(appender);
                warmup_records += warmed;
            }
            Err(error) => first_error = first_error.or(Some(error)),
        }
    }
    if let Some(error) = first_error {
        // Off the reactor: tearing a librdkafka client down may block.
        let _ = tokio::task::spawn_blocking(move || drop(appenders)).await;
        return Err(error);
    }
    let partitions = appenders.first().map_or(0, Appender::partitions);

    let started = Instant::now();
    let until = started + seconds;
    let stop = Arc::new(AtomicBool::new(false));
    let runs = appenders.into_iter().enumerate().map(|(index, mut appender)| {
        let stop = Arc::clone(&stop);
        tokio::task::spawn_blocking(move || {
            let result = flood(&mut appender, index, until, &stop);
            if result.is_err() {
                stop.store(true, Ordering::Relaxed);
            }
            drop(appender);
            result
        })
    });
    let (mut records, mut last, mut failed) = (0, started, None);
    for joined in join_all(runs).await {
        match joined.map_err(|e| BaselineError::Thread(e.to_string())).and_then(|r| r) {
            Ok((acknowledged, at)) => {
                records += acknowledged;
                last = last.max(at);
            }
            Err(error) => failed = failed.or(Some(error)),
        }
    }
    if let Some(error) = failed {
        return Err(error);
    }
    // Until the last acknowledgement, not until the threads ended: tearing the producers down
    // is not producing.
    let seconds = last.duration_since(started).as_secs_f64();
    #[allow(clippy::cast_precision_loss, reason = "counts are far below 2^53")]
    let records_per_s = records as f64 / seconds;
    Ok(ProduceBaseline {
        records_per_s,
        producers,
        event_bytes,
        partitions,
        seconds,
        records,
        warmup_records,
    })
}

/// Sends records until `until` (or until another producer failed) with at most [`WINDOW`]
/// unacknowledged, then waits for the rest. Returns the records acknowledged and when the last
/// acknowledgement came.
fn flood(
    appender: &mut Appender,
    index: usize,
    until: Instant,
    stop: &AtomicBool,
) -> Result<(u64, Instant), BaselineError> {
    let partitions = appender.partitions().max(1);
    let mut partition = i32::try_from(index).unwrap_or(0) % partitions;
    let mut in_flight = FuturesUnordered::new();
    let mut acknowledged_records = 0_u64;
    futures::executor::block_on(async {
        loop {
            let sending = Instant::now() < until && !stop.load(Ordering::Relaxed);
            while sending && in_flight.len() < WINDOW {
                match appender.try_send(partition)? {
                    Some(delivery) => in_flight.push(delivery),
                    // The local queue is full: wait for acknowledgements below.
                    None => break,
                }
                partition = (partition + 1) % partitions;
            }
            match in_flight.next().await {
                Some(delivery) => {
                    acknowledged(delivery)?;
                    acknowledged_records += 1;
                }
                None if sending => std::thread::sleep(Duration::from_millis(1)),
                None => return Ok((acknowledged_records, Instant::now())),
            }
        }
    })
}
