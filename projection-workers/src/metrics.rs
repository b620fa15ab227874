//! The projection workers' metrics, all in one place. Labels have low cardinality: partitions
//! (bounded by the topic's partition count), failure stages, dead-letter reasons and the
//! reader rule's void reasons; never a resource or reservation id.

use holdfast_tenure::Void;
use prometheus::{
    GaugeVec, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

/// Every metric of the projection workers.
#[derive(Clone, Debug)]
pub struct Metrics {
    /// Events per applied batch.
    pub batch_events: Histogram,
    /// Time from polling a batch to its PostgreSQL commit (and Redis write).
    pub batch_seconds: Histogram,
    /// Time from an event's Kafka timestamp to the commit that applied it.
    pub event_delay_seconds: Histogram,
    /// Events folded into the read model.
    pub applied: IntCounter,
    /// Events skipped because an earlier transaction had applied them.
    pub skipped: IntCounter,
    /// Records sent to the dead-letter topic, by reason.
    pub dead_letters: IntCounterVec,
    /// Void records skipped by the reader rule, by reason (`holdfast_tenure::Void::label`).
    pub void_records: IntCounterVec,
    /// Claims read: tenures started (an ownership change of a partition each).
    pub claims: IntCounter,
    /// Valid `CommandRejected` records read (they change no read-model state).
    pub rejected: IntCounter,
    /// Batches (or parts of batches) that failed, by stage; they are retried.
    pub failures: IntCounterVec,
    /// Events between the applied position and the end of each assigned partition.
    pub lag_events: IntGaugeVec,
    /// Age of the newest applied event of each assigned partition while it is behind.
    pub lag_seconds: GaugeVec,
    /// Partitions assigned to this worker.
    pub assigned: IntGauge,
    /// Partitions whose Redis copy is refilled from PostgreSQL.
    pub cache_refills: IntCounter,
    /// Redis writes that failed or timed out (Redis is then refilled when it answers).
    pub cache_failures: IntCounter,
}

/// Buckets (seconds) for batch latency and event delay: fine below 100 ms.
const LATENCY_BUCKETS: &[f64] =
    &[0.001, 0.002, 0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

impl Metrics {
    /// Creates and registers every metric.
    ///
    /// # Errors
    /// When a metric is registered twice in `registry`.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let latency =
            |name: &str, help: &str| HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec());
        let metrics = Self {
            batch_events: Histogram::with_opts(
                HistogramOpts::new("projection_batch_events", "Events per applied projection batch.")
                    .buckets(vec![
                        1.0, 5.0, 10.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0,
                    ]),
            )?,
            batch_seconds: Histogram::with_opts(latency(
                "projection_batch_duration_seconds",
                "Time from polling a projection batch to its commit.",
            ))?,
            event_delay_seconds: Histogram::with_opts(latency(
                "projection_event_delay_seconds",
                "Time from an event's Kafka timestamp to its commit into the read model.",
            ))?,
            applied: IntCounter::new("projection_events_applied_total", "Events applied to the read model.")?,
            skipped: IntCounter::new(
                "projection_events_skipped_total",
                "Events skipped because they had been applied already.",
            )?,
            dead_letters: IntCounterVec::new(
                Opts::new(
                    "projection_dead_letters_total",
                    "Records sent to the dead-letter topic, by reason.",
                ),
                &["reason"],
            )?,
            void_records: IntCounterVec::new(
                Opts::new(
                    "projection_void_records_total",
                    "Records the reader rule voided (a fenced writer's, out of sequence, unmarked), by reason.",
                ),
                &["reason"],
            )?,
            claims: IntCounter::new(
                "projection_claims_total",
                "Claims read from the events topic: tenures started by partition owners.",
            )?,
            rejected: IntCounter::new(
                "projection_rejected_records_total",
                "Valid CommandRejected records read (refused commands; they change no state).",
            )?,
            failures: IntCounterVec::new(
                Opts::new("projection_failures_total", "Failed projection batches, by stage (retried)."),
                &["stage"],
            )?,
            lag_events: IntGaugeVec::new(
                Opts::new("projection_lag_events", "Events not yet applied, per assigned partition."),
                &["partition"],
            )?,
            lag_seconds: GaugeVec::new(
                Opts::new(
                    "projection_lag_seconds",
                    "Age of the newest applied event while the partition is behind (0 when caught up).",
                ),
                &["partition"],
            )?,
            assigned: IntGauge::new("projection_assigned_partitions", "Partitions assigned to this worker.")?,
            cache_refills: IntCounter::new(
                "projection_cache_refills_total",
                "Partitions whose Redis copy was refilled from PostgreSQL.",
            )?,
            cache_failures: IntCounter::new(
                "projection_cache_failures_total",
                "Redis writes that failed or timed out.",
            )?,
        };
        registry.register(Box::new(metrics.batch_events.clone()))?;
        registry.register(Box::new(metrics.batch_seconds.clone()))?;
        registry.register(Box::new(metrics.event_delay_seconds.clone()))?;
        registry.register(Box::new(metrics.applied.clone()))?;
        registry.register(Box::new(metrics.skipped.clone()))?;
        registry.register(Box::new(metrics.dead_letters.clone()))?;
        registry.register(Box::new(metrics.void_records.clone()))?;
        registry.register(Box::new(metrics.claims.clone()))?;
        registry.register(Box::new(metrics.rejected.clone()))?;
        registry.register(Box::new(metrics.failures.clone()))?;
        registry.register(Box::new(metrics.lag_events.clone()))?;
        registry.register(Box::new(metrics.lag_seconds.clone()))?;
        registry.register(Box::new(metrics.assigned.clone()))?;
        registry.register(Box::new(metrics.cache_refills.clone()))?;
        registry.register(Box::new(metrics.cache_failures.clone()))?;
        // Every reason is exported from the start (at 0), so dashboards and alerts see the
        // series before the first void record.
        let reasons = [
            Void::Unmarked,
            Void::NoTenure,
            Void::OtherWriter,
            Void::OutOfSequence { expected: 0, found: 0 },
        ];
        for reason in reasons {
            metrics.void_records.with_label_values(&[reason.label()]);
        }
        Ok(metrics)
    }
}
