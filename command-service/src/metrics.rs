//! The command service's metrics, all in one place. Labels have low cardinality: routes,
//! command kinds and outcome codes, never resource or reservation ids.

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
};

/// Latency buckets (seconds) for requests and commits: fine-grained below 50 ms.
const LATENCY_BUCKETS: &[f64] = &[
    0.000_5, 0.001, 0.002, 0.003, 0.005, 0.007_5, 0.01, 0.015, 0.02, 0.025, 0.035, 0.05, 0.075, 0.1, 0.25,
    0.5, 1.0, 2.5, 5.0,
];

/// Every metric of the command service.
#[derive(Clone, Debug)]
pub struct Metrics {
    /// HTTP request latency by route, method and status.
    pub requests: HistogramVec,
    /// Decisions by command kind and outcome (`accepted` or a rejection code).
    pub decisions: IntCounterVec,
    /// Commands per transaction.
    pub batch_size: Histogram,
    /// Time from `begin_transaction` to a successful `commit_transaction`.
    pub commit_seconds: Histogram,
    /// Aborted transactions by reason.
    pub aborts: IntCounterVec,
    /// Time to restore one partition's state from the log.
    pub restore_seconds: Histogram,
    /// Events read while restoring partitions.
    pub restored_events: IntCounter,
    /// Partitions this instance owns and has restored.
    pub owned_partitions: IntGauge,
    /// Commands handed to Kafka whose outcome the caller is still waiting for.
    pub in_flight: InFlight,
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
                Opts::new("decisions_total", "Commands decided, by kind and outcome."),
                &["command", "outcome"],
            )?,
            batch_size: Histogram::with_opts(
                HistogramOpts::new("transaction_commands", "Commands decided per Kafka transaction.")
                    .buckets(vec![1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0]),
            )?,
            commit_seconds: Histogram::with_opts(latency(
                "transaction_duration_seconds",
                "Time from begin to committed transaction.",
            ))?,
            aborts: IntCounterVec::new(
                Opts::new("transaction_aborts_total", "Aborted transactions, by reason."),
                &["reason"],
            )?,
            restore_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "partition_restore_seconds",
                    "Time to restore one partition from the log.",
                )
                .buckets(vec![0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0]),
            )?,
            restored_events: IntCounter::new("restored_events_total", "Events read to restore partitions.")?,
            owned_partitions: IntGauge::new("owned_partitions", "Command partitions owned and restored.")?,
            in_flight: InFlight(IntGauge::new(
                "commands_in_flight",
                "Commands handed to Kafka whose callers still wait.",
            )?),
        };
        registry.register(Box::new(metrics.requests.clone()))?;
        registry.register(Box::new(metrics.decisions.clone()))?;
        registry.register(Box::new(metrics.batch_size.clone()))?;
        registry.register(Box::new(metrics.commit_seconds.clone()))?;
        registry.register(Box::new(metrics.aborts.clone()))?;
        registry.register(Box::new(metrics.restore_seconds.clone()))?;
        registry.register(Box::new(metrics.restored_events.clone()))?;
        registry.register(Box::new(metrics.owned_partitions.clone()))?;
        registry.register(Box::new(metrics.in_flight.0.clone()))?;
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
