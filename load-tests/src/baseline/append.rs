//! The single-append baseline: one idempotent `acks=all` producer appends one record of event
//! size at a time and waits for its acknowledgement before the next, spread over the
//! partitions in turn. Its latency is the floor under a decision's: the owner of a partition
//! answers a hold once its one append is acknowledged.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use holdfast_platform::KafkaArgs;

use super::topic::{Appender, acknowledged, check_event_bytes};
use super::{AppendBaseline, BaselineError};
use crate::record::{histogram, micros};

/// Runs the single-append baseline on an existing `topic`, leaving it as it is: after one
/// warm-up record per partition, `appends` records of `event_bytes` bytes one after the other
/// to partitions 0, 1, 2, … (around again), each timed from send to acknowledgement.
///
/// # Errors
/// See [`BaselineError`]; a failed append ends the baseline.
pub async fn append_into(
    kafka_args: &KafkaArgs,
    topic: &str,
    event_bytes: usize,
    appends: usize,
) -> Result<AppendBaseline, BaselineError> {
    check_event_bytes(event_bytes)?;
    if appends == 0 {
        return Err(BaselineError::Settings("appends must be at least 1".to_owned()));
    }
    let (kafka_args, topic) = (kafka_args.clone(), topic.to_owned());
    let client_id = format!("holdfast-baseline-append-{:08x}", rand::random::<u32>());
    tokio::task::spawn_blocking(move || {
        let mut appender = Appender::ready(&kafka_args, &client_id, &topic, event_bytes)?;
        let warmup_records = appender.warm_up()?;
        let partitions = appender.partitions();
        let mut latency = histogram();
        let started = Instant::now();
        for (_, partition) in (0..appends).zip((0..partitions).cycle()) {
            let sent = Instant::now();
            let delivery = appender.send(partition)?;
            acknowledged(futures::executor::block_on(delivery))?;
            latency.saturating_record(micros(sent.elapsed()));
        }
        let seconds = started.elapsed().as_secs_f64();
        // Dropped here, off the reactor: tearing a librdkafka client down may block.
        drop(appender);
        Ok(AppendBaseline {
            appends: latency.len(),
            p50_ms: millis(&latency, 0.50),
            p99_ms: millis(&latency, 0.99),
            max_ms: to_ms(latency.max()),
            mean_ms: latency.mean() / 1_000.0,
            event_bytes,
            partitions,
            seconds,
            warmup_records,
        })
    })
    .await
    .map_err(|e| BaselineError::Thread(e.to_string()))?
}

/// The `quantile` of `latency` (µs) in milliseconds.
fn millis(latency: &Histogram<u64>, quantile: f64) -> f64 {
    to_ms(latency.value_at_quantile(quantile))
}

fn to_ms(micros: u64) -> f64 {
    Duration::from_micros(micros).as_secs_f64() * 1_000.0
}
