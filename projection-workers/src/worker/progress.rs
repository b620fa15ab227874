//! How far each assigned partition is applied and where its end is: the lag metrics and the
//! readiness check ("caught up on every assigned partition").
//!
//! The applied position comes from the worker loop after each commit; the end from
//! librdkafka's statistics (the last stable offset: nothing writes the events topic in
//! transactions, so it is the high watermark). Claims and void records count as applied once
//! the position has moved past them, so a partition whose tail is void is caught up.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use crate::metrics::Metrics;

/// Shared progress of one worker.
#[derive(Debug)]
pub struct Progress {
    inner: Mutex<Inner>,
    metrics: Metrics,
    max_lag: i64,
    started: Instant,
    settle: Duration,
}

#[derive(Debug, Default)]
struct Inner {
    /// Whether the group has handed this worker an assignment (possibly empty).
    joined: bool,
    partitions: HashMap<i32, Partition>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Partition {
    /// Stored next offset, once read from PostgreSQL.
    applied: Option<i64>,
    /// Last stable offset reported by the consumer.
    end: Option<i64>,
    /// Kafka timestamp of the newest applied event.
    newest: Option<OffsetDateTime>,
}

impl Progress {
    /// Progress that reports ready while every partition is at most `max_lag` events behind;
    /// a worker that got no assignment within `settle` of starting counts as ready too (more
    /// workers than partitions).
    #[must_use]
    pub fn new(metrics: Metrics, max_lag: i64, settle: Duration) -> Self {
        Self { inner: Mutex::new(Inner::default()), metrics, max_lag, started: Instant::now(), settle }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Partitions were assigned (not yet positioned).
    pub fn assigned(&self, partitions: &[i32]) {
        let mut inner = self.lock();
        inner.joined = true;
        for &p in partitions {
            inner.partitions.entry(p).or_default();
        }
        self.metrics.assigned.set(i64::try_from(inner.partitions.len()).unwrap_or(i64::MAX));
    }

    /// Partitions were taken away.
    pub fn revoked(&self, partitions: &[i32]) {
        let mut inner = self.lock();
        for p in partitions {
            inner.partitions.remove(p);
            let label = p.to_string();
            let _ = self.metrics.lag_events.remove_label_values(&[&label]);
            let _ = self.metrics.lag_seconds.remove_label_values(&[&label]);
        }
        self.metrics.assigned.set(i64::try_from(inner.partitions.len()).unwrap_or(i64::MAX));
    }

    /// `partition` is applied up to `next_offset`; `newest` is the newest applied event's time.
    pub fn applied(&self, partition: i32, next_offset: i64, newest: Option<OffsetDateTime>) {
        let mut inner = self.lock();
        if let Some(entry) = inner.partitions.get_mut(&partition) {
            entry.applied = Some(entry.applied.map_or(next_offset, |a| a.max(next_offset)));
            entry.newest = newest.or(entry.newest);
            self.publish(partition, *entry);
        }
    }

    /// `partition`'s position is being re-read from PostgreSQL (after assignment or a failure).
    pub fn repositioning(&self, partition: i32) {
        if let Some(entry) = self.lock().partitions.get_mut(&partition) {
            entry.applied = None;
        }
    }

    /// Last stable offsets from the consumer's statistics.
    pub fn ends(&self, ends: impl IntoIterator<Item = (i32, i64)>) {
        let mut inner = self.lock();
        for (partition, end) in ends {
            if let Some(entry) = inner.partitions.get_mut(&partition)
                && end >= 0
            {
                entry.end = Some(end);
                self.publish(partition, *entry);
            }
        }
    }

    /// The partitions assigned and positioned, with their applied next offsets.
    #[must_use]
    pub fn positioned(&self) -> HashMap<i32, i64> {
        self.lock().partitions.iter().filter_map(|(p, e)| e.applied.map(|a| (*p, a))).collect()
    }

    /// Ok when the worker has caught up (within `max_lag`) on every assigned partition.
    ///
    /// # Errors
    /// Why it is not ready.
    pub fn readiness(&self) -> Result<(), String> {
        let inner = self.lock();
        if !inner.joined && self.started.elapsed() < self.settle {
            return Err("no partitions assigned yet".to_owned());
        }
        let mut behind: Vec<String> = Vec::new();
        for (partition, entry) in &inner.partitions {
            match (entry.applied, entry.end) {
                (None, _) => behind.push(format!("{partition}: positioning")),
                (Some(_), None) => behind.push(format!("{partition}: end unknown")),
                (Some(applied), Some(end)) if end - applied > self.max_lag => {
                    behind.push(format!("{partition}: {} behind", end - applied));
                }
                _ => {}
            }
        }
        if behind.is_empty() {
            return Ok(());
        }
        behind.sort();
        let shown = behind.len().min(5);
        Err(format!("catching up on {} partitions ({})", behind.len(), behind[..shown].join(", ")))
    }

    fn publish(&self, partition: i32, entry: Partition) {
        let (Some(applied), Some(end)) = (entry.applied, entry.end) else { return };
        let lag = (end - applied).max(0);
        let label = partition.to_string();
        self.metrics.lag_events.with_label_values(&[&label]).set(lag);
        let age = match entry.newest {
            Some(newest) if lag > 0 => (OffsetDateTime::now_utc() - newest).as_seconds_f64().max(0.0),
            _ => 0.0,
        };
        self.metrics.lag_seconds.with_label_values(&[&label]).set(age);
    }
}
