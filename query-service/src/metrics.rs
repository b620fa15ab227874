//! The query service's metrics, all in one place. Labels have low cardinality: route
//! templates, sources and outcomes, never resource, reservation or customer ids.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry};

/// Latency buckets (seconds): fine-grained below 10 ms, where Redis answers live.
const LATENCY_BUCKETS: &[f64] = &[
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002, 0.003, 0.005, 0.007_5, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0,
];

/// Every metric of the query service.
#[derive(Clone, Debug)]
pub struct Metrics {
    /// HTTP request latency by route template, method and status.
    pub requests: HistogramVec,
    /// Reads answered, by what (`availability`, `reservation`, `customer`) and where from
    /// (`redis`, `postgres`): the cache hit ratio is `redis / (redis + postgres)`.
    pub reads: IntCounterVec,
    /// Why an availability read fell back to PostgreSQL (`redis_down`, `redis_error`,
    /// `redis_timeout`, `not_cached`, `malformed`, `behind`).
    pub fallbacks: IntCounterVec,
    /// Reads that passed a `min_position`, by outcome (`immediate`, `waited`, `timeout`).
    pub waits: IntCounterVec,
    /// How long reads waited for their `min_position`, by outcome.
    pub wait_seconds: HistogramVec,
    /// Live-update streams open.
    pub streams: IntGauge,
    /// Live-update events sent, by kind (`snapshot`, `update`, `heartbeat`).
    pub stream_events: IntCounterVec,
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
            reads: IntCounterVec::new(
                Opts::new("query_reads_total", "Reads answered, by kind and source."),
                &["kind", "source"],
            )?,
            fallbacks: IntCounterVec::new(
                Opts::new(
                    "query_redis_fallbacks_total",
                    "Availability reads served by PostgreSQL, by reason.",
                ),
                &["reason"],
            )?,
            waits: IntCounterVec::new(
                Opts::new("query_position_waits_total", "Reads with a min_position, by outcome."),
                &["outcome"],
            )?,
            wait_seconds: HistogramVec::new(
                latency("query_position_wait_seconds", "Time spent waiting for a min_position."),
                &["outcome"],
            )?,
            streams: IntGauge::new("query_streams_open", "Live-update streams open.")?,
            stream_events: IntCounterVec::new(
                Opts::new("query_stream_events_total", "Live-update events sent, by kind."),
                &["kind"],
            )?,
        };
        registry.register(Box::new(metrics.requests.clone()))?;
        registry.register(Box::new(metrics.reads.clone()))?;
        registry.register(Box::new(metrics.fallbacks.clone()))?;
        registry.register(Box::new(metrics.waits.clone()))?;
        registry.register(Box::new(metrics.wait_seconds.clone()))?;
        registry.register(Box::new(metrics.streams.clone()))?;
        registry.register(Box::new(metrics.stream_events.clone()))?;
        Ok(metrics)
    }
}
