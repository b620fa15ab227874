//! The command service's metrics, all in one place. Labels have low cardinality: routes,
//! command kinds and outcome codes, never resource or reservation ids.

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
};

/// Latency buckets (seconds) for requests and appends: fine-grained below 50 ms.
const LATENCY_BUCKETS: &[f64] = &[
    0.000_5, 0.001, 0.002, 0.003, 0.005, 0.007_5, 0.01, 0.015, 0.02, 0.025, 0.035, 0.05, 0.075, 0.1, 0.25,
    0.5, 1.0, 2.5, 5.0,
];

/// Every metric of the command service.
#[derive(Clone, Debug)]
pub struct Metrics {
    /// HTTP request latency by route, method and status.
    pub requests: HistogramVec,
    /// Decisions by command kind and outcome (`accepted`, `repeated` or a rejection code),
    /// counted when their records are valid in the log.
    pub decisions: IntCounterVec,
    /// Records appended to the events topic, by kind (`event`, `rejection`, `claim`).
    pub appends: IntCounterVec,
    /// Time from handing a record to the producer to its delivery report.
    pub append_seconds: Histogram,
    /// Delivery reports that needed the records in between read (another writer appended).
    pub gap_checks: IntCounter,
    /// Claims appended (a tenure started).
    pub claims: IntCounter,
    /// Tenures ended without being fenced, by reason (`append-failed`: claim again and restore).
    pub reclaims: IntCounterVec,
    /// Tenures fenced: another writer claimed the partition after us.
    pub fenced: IntCounter,
    /// Callers answered "undecided" (503): their decision's append failed or was fenced, or it
    /// was not known valid (or the command not queued) within the wait.
    pub undecided: IntCounter,
    /// Time to restore one partition's state from the log, up to its claim.
    pub restore_seconds: Histogram,
    /// Partitions restored, by source (`standby`: handed over by this instance's standby;
    /// `log`: read from the partition's start).
    pub restores: IntCounterVec,
    /// Valid records read while restoring partitions.
    pub restored_events: IntCounter,
    /// Void records skipped while restoring partitions.
    pub restore_void_records: IntCounter,
    /// Restores that failed and are tried again (Kafka or the schema registry did not answer).
    pub restore_retries: IntCounter,
    /// Partitions stopped because a valid record of theirs cannot be decoded (an operator must
    /// act: deploy a build that reads it, or repair the registry).
    pub stopped_partitions: IntGauge,
    /// Partitions this instance owns, has claimed and restored.
    pub owned_partitions: IntGauge,
    /// Commands whose callers still wait for an outcome.
    pub in_flight: InFlight,
    /// Commands handed to their partition's owner, by result (`decided`; `undecided`: not
    /// confirmed in the log in time; `not_owner`: the owner did not own it; `unreachable`: no
    /// connection; `unclear`: no answer in time).
    pub forwards: IntCounterVec,
    /// Time from handing a command to the owner to its answer.
    pub forward_seconds: Histogram,
    /// Commands in each batch sent to an owner.
    pub forward_batch: Histogram,
    /// Time from a partition's assignment to its lane taking commands, by where its state came
    /// from (`standby`: a warm standby; `log`: read from the start).
    pub takeover_seconds: HistogramVec,
}

impl Metrics {
    /// Creates and registers every metric.
    ///
    /// # Errors
    /// When a metric is registered twice in `registry`.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let latency =
            |name: &str, help: &str| HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec());
        let metrics = Self {
            requests: HistogramVec::new(
                latency("http_request_duration_seconds", "HTTP request latency."),
                &["route", "method", "status"],
            )?,
            decisions: IntCounterVec::new(
                Opts::new("decisions_total", "Commands decided (valid in the log), by kind and outcome."),
                &["command", "outcome"],
            )?,
            appends: IntCounterVec::new(
                Opts::new("appends_total", "Records appended to the events topic, by kind."),
                &["kind"],
            )?,
            append_seconds: Histogram::with_opts(latency(
                "append_duration_seconds",
                "Time from producing a record to its delivery report.",
            ))?,
            gap_checks: IntCounter::new(
                "append_gap_checks_total",
                "Delivery reports past the next offset: the records in between were read.",
            )?,
            claims: IntCounter::new("partition_claims_total", "Claims appended: tenures started.")?,
            reclaims: IntCounterVec::new(
                Opts::new("partition_reclaims_total", "Tenures abandoned to claim again, by reason."),
                &["reason"],
            )?,
            fenced: IntCounter::new("partition_fenced_total", "Tenures fenced by a newer claim.")?,
            undecided: IntCounter::new(
                "undecided_total",
                "Callers answered undecided: their append failed or the writer was fenced.",
            )?,
            restore_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "partition_restore_seconds",
                    "Time to restore one partition from the log up to its claim.",
                )
                .buckets(vec![0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0]),
            )?,
            restores: IntCounterVec::new(
                Opts::new("partition_restores_total", "Partitions restored up to a claim, by source."),
                &["source"],
            )?,
            restored_events: IntCounter::new(
                "restored_events_total",
                "Valid records read to restore partitions.",
            )?,
            restore_void_records: IntCounter::new(
                "restore_void_records_total",
                "Void records skipped while restoring partitions.",
            )?,
            restore_retries: IntCounter::new(
                "restore_retries_total",
                "Restores that failed on Kafka or the schema registry and are tried again.",
            )?,
            stopped_partitions: IntGauge::new(
                "stopped_partitions",
                "Partitions stopped on a valid record that cannot be decoded.",
            )?,
            owned_partitions: IntGauge::new("owned_partitions", "Partitions owned, claimed and restored.")?,
            in_flight: InFlight(IntGauge::new("commands_in_flight", "Commands whose callers still wait.")?),
            forwards: IntCounterVec::new(
                Opts::new("forwards_total", "Commands handed to their partition's owner, by result."),
                &["result"],
            )?,
            forward_seconds: Histogram::with_opts(latency(
                "forward_duration_seconds",
                "Time from handing a command to its partition's owner to the answer.",
            ))?,
            forward_batch: Histogram::with_opts(
                HistogramOpts::new("forward_batch_commands", "Commands in each batch sent to an owner.")
                    .buckets(vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0]),
            )?,
            takeover_seconds: HistogramVec::new(
                HistogramOpts::new(
                    "takeover_seconds",
                    "Time from a partition's assignment to its lane taking commands.",
                )
                .buckets(vec![0.01, 0.025, 0.05, 0.1, 0.2, 0.35, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0]),
                &["source"],
            )?,
        };
        registry.register(Box::new(metrics.requests.clone()))?;
        registry.register(Box::new(metrics.decisions.clone()))?;
        registry.register(Box::new(metrics.appends.clone()))?;
        registry.register(Box::new(metrics.append_seconds.clone()))?;
        registry.register(Box::new(metrics.gap_checks.clone()))?;
        registry.register(Box::new(metrics.claims.clone()))?;
        registry.register(Box::new(metrics.reclaims.clone()))?;
        registry.register(Box::new(metrics.fenced.clone()))?;
        registry.register(Box::new(metrics.undecided.clone()))?;
        registry.register(Box::new(metrics.restore_seconds.clone()))?;
        registry.register(Box::new(metrics.restores.clone()))?;
        registry.register(Box::new(metrics.restored_events.clone()))?;
        registry.register(Box::new(metrics.restore_void_records.clone()))?;
        registry.register(Box::new(metrics.restore_retries.clone()))?;
        registry.register(Box::new(metrics.stopped_partitions.clone()))?;
        registry.register(Box::new(metrics.owned_partitions.clone()))?;
        registry.register(Box::new(metrics.in_flight.0.clone()))?;
        registry.register(Box::new(metrics.forwards.clone()))?;
        registry.register(Box::new(metrics.forward_seconds.clone()))?;
        registry.register(Box::new(metrics.forward_batch.clone()))?;
        registry.register(Box::new(metrics.takeover_seconds.clone()))?;
        Ok(metrics)
    }
}

/// A gauge counting work in progress.
#[derive(Clone, Debug)]
pub struct InFlight(IntGauge);

impl InFlight {
    /// Counts one unit of work until the guard is dropped.
    #[must_use]
    pub fn guard(&self) -> InFlightGuard {
        self.0.inc();
        InFlightGuard(self.0.clone())
    }
}

/// Decrements its gauge when dropped.
#[derive(Debug)]
pub struct InFlightGuard(IntGauge);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}
