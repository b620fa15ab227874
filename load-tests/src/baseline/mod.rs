//! Baselines measured right before a run, on the same machine and the same Kafka and
//! PostgreSQL: what the raw clients do with Holdfast's write shapes and nothing in between.
//!
//! A load run's figures mean little on their own on a shared machine; beside what the same
//! broker does for one raw append, or for raw appends as fast as it takes them, they become
//! ratios that can be compared across machines and runs ([`crate::compare`]). Each baseline
//! uses the write shape of the service it stands for:
//!
//! - [`append`] (`append.rs`): one idempotent `acks=all` producer with the command service's
//!   settings ([`holdfast_platform::kafka::producer_config`], linger 0) appending one record
//!   of event size at a time, waiting for each acknowledgement, spread over the partitions:
//!   the latency floor of a decision;
//! - [`produce`] (`produce.rs`): idempotent producers (1 and 2 by default; the command service
//!   appends through `HOLDFAST_APPEND_PRODUCERS` of them) appending records of event size over
//!   every partition as fast as the broker acknowledges them: the throughput ceiling of
//!   decisions;
//! - both into a topic of their own with the events topic's partition count, deleted
//!   afterwards ([`kafka`]). The topic is warmed up first with a few seconds of raw produce:
//!   on this machine the first seconds of writes to a fresh 480-partition topic run at a
//!   fraction of the later rate (and single appends wait longer), a cost a long-lived events
//!   topic never pays;
//! - [`upsert`] (`upsert.rs`): batches of reservations written through the projection's own
//!   write path ([`holdfast_projection_workers::store::write::changes`]), one transaction
//!   each, into the projection's own schema (its migrations) in a scratch database that is
//!   dropped afterwards;
//! - [`typical_event_bytes`]: the record size the Kafka baselines use, measured by encoding a
//!   typical `ReservationHeld` through the platform's codec.
//!
//! This module owns the settings, the results and the errors. It must leave nothing behind
//! on the services it measures (topics, databases), and it never touches Holdfast's own topics
//! or databases.

mod append;
mod produce;
mod topic;
mod upsert;

use std::time::Duration;

use holdfast_domain::{
    CommandMeta, CustomerId, Event, EventPayload, Quantity, ReservationId, ResourceId, SlotRange,
};
use holdfast_platform::codec::{CodecError, EventCodec};
use holdfast_platform::{RegistryArgs, TopicArgs};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use serde::{Deserialize, Serialize};

pub use self::append::append_into;
pub use self::produce::produce_into;
pub use self::topic::kafka;
use self::topic::{QUEUE_FULL_PATIENCE, VISIBLE_PATIENCE};
pub use self::upsert::upsert;

/// Settings of the baselines (sane defaults via [`Default`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaselineSettings {
    /// How long each throughput baseline runs (10 s by default): every producer count of
    /// [`Self::producers`] and the upserts.
    pub seconds: Duration,
    /// How long the Kafka baselines' fresh topic is written to, unmeasured, before they start
    /// (5 s by default).
    pub warmup: Duration,
    /// Partitions of the Kafka baselines' topic (480 by default, like the events topic).
    pub partitions: i32,
    /// Sequential single appends whose latency is measured (2,000 by default).
    pub appends: usize,
    /// Producer counts the produce baseline runs with, one after the other (1 and 2 by
    /// default).
    pub producers: Vec<usize>,
    /// Rows per upsert batch, one transaction each (500 by default).
    pub upsert_batch: usize,
}

impl Default for BaselineSettings {
    fn default() -> Self {
        Self {
            seconds: Duration::from_secs(10),
            warmup: Duration::from_secs(5),
            partitions: 480,
            appends: 2_000,
            producers: vec![1, 2],
            upsert_batch: 500,
        }
    }
}

impl BaselineSettings {
    /// The defaults with the partition count of the deployment's events topic.
    #[must_use]
    pub fn like(topics: &TopicArgs) -> Self {
        Self { partitions: topics.partitions, ..Self::default() }
    }

    /// Refuses settings that cannot measure anything.
    fn check(&self) -> Result<(), BaselineError> {
        let wrong = |what: &str| Err(BaselineError::Settings(what.to_owned()));
        if self.seconds.is_zero() {
            return wrong("seconds must be positive");
        }
        if self.partitions < 1 {
            return wrong("partitions must be at least 1");
        }
        if self.appends == 0 || self.upsert_batch == 0 {
            return wrong("appends and upsert_batch must be at least 1");
        }
        if self.producers.is_empty() || self.producers.contains(&0) {
            return wrong("producers must list counts of at least 1");
        }
        Ok(())
    }
}

/// What the single-append baseline measured: the latency of one acknowledged append.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct AppendBaseline {
    /// Appends measured, one after the other.
    pub appends: u64,
    /// Median latency from send to acknowledgement (ms).
    pub p50_ms: f64,
    /// 99th percentile (ms).
    pub p99_ms: f64,
    /// Largest (ms).
    pub max_ms: f64,
    /// Mean (ms).
    pub mean_ms: f64,
    /// Payload size of every record.
    pub event_bytes: usize,
    /// Partitions the appends were spread over (in turn).
    pub partitions: i32,
    /// Measured duration (s).
    pub seconds: f64,
    /// Records appended before the clock started (one per partition); not measured.
    pub warmup_records: u64,
}

/// What one produce baseline measured: acknowledged records per second.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct ProduceBaseline {
    /// Acknowledged records per second, all producers together.
    pub records_per_s: f64,
    /// Concurrent producers, one thread each.
    pub producers: usize,
    /// Payload size of every record.
    pub event_bytes: usize,
    /// Partitions the records were spread over.
    pub partitions: i32,
    /// Measured duration, from the first send to the last acknowledgement (s).
    pub seconds: f64,
    /// Records acknowledged in that time.
    pub records: u64,
    /// Records appended before the clock started (one per partition and producer); not in
    /// `records`.
    pub warmup_records: u64,
}

/// Both Kafka baselines, measured on one scratch topic.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct KafkaBaselines {
    /// Records written to warm the fresh topic up before any baseline was measured.
    pub warmup_records: u64,
    /// The single-append latency.
    pub append: AppendBaseline,
    /// The produce throughput, once per producer count.
    pub produce: Vec<ProduceBaseline>,
}

/// What the upsert baseline measured.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct UpsertBaseline {
    /// Rows written per second.
    pub rows_per_s: f64,
    /// Rows per batch (and transaction).
    pub batch: usize,
    /// Measured duration, from the first batch to the last commit.
    pub seconds: f64,
    /// Rows in committed batches; the read model was checked to hold all of them afterwards.
    pub rows: u64,
}

/// Why a baseline could not be measured.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    /// The settings cannot measure anything: fix them.
    #[error("invalid baseline settings: {0}")]
    Settings(String),
    /// Kafka failed or did not answer: check the brokers and retry. The baseline topic was
    /// deleted (or the failure is reported as [`BaselineError::DeleteTopic`]).
    #[error("kafka failed during {during}")]
    Kafka {
        /// The step that failed.
        during: &'static str,
        /// The client's error.
        #[source]
        source: KafkaError,
    },
    /// The baseline topic exists already: another baseline with the same topic prefix is
    /// running, or an interrupted one left it. Wait for the other, or delete the topic.
    #[error("baseline topic {0} exists already")]
    TopicExists(String),
    /// The cluster refused to create the baseline topic (partition limit, replication factor
    /// above the broker count, policy): read the code and fix the settings or the cluster.
    #[error("cannot create baseline topic {topic}: {code}")]
    CreateTopic {
        /// The topic.
        topic: String,
        /// The broker's answer.
        code: RDKafkaErrorCode,
    },
    /// The topic did not show every partition with a leader in time: the cluster is
    /// overloaded or unhealthy; retry later.
    #[error("topic {0} did not become ready within {VISIBLE_PATIENCE:?}")]
    TopicNotReady(String),
    /// The local producer queue stayed full: the broker does not keep up at all; retry later
    /// or with fewer producers.
    #[error("the producer queue stayed full for {QUEUE_FULL_PATIENCE:?}")]
    QueueFull,
    /// The baseline topic could not be deleted: delete it by hand (`kafka-topics.sh --delete
    /// --topic …`), since every partition left behind slows the broker down.
    #[error("cannot delete baseline topic {topic}: {reason}{}", after(earlier.as_deref()))]
    DeleteTopic {
        /// The topic.
        topic: String,
        /// Why.
        reason: String,
        /// The error that ended the run before, if one did.
        earlier: Option<Box<BaselineError>>,
    },
    /// The event could not be encoded: check that the schema registry is reachable (retry),
    /// or read the codec's error.
    #[error("cannot encode the typical event")]
    Codec(#[from] CodecError),
    /// The scratch database could not be created: check the database URL, the server and
    /// that the URL's role may create databases (`CREATEDB`), and retry.
    #[error("cannot create scratch database {database}")]
    CreateDatabase {
        /// The database.
        database: String,
        /// Why.
        #[source]
        source: sqlx::Error,
    },
    /// PostgreSQL failed: check the database URL and the server, and retry. The scratch
    /// database was dropped (or the failure is reported as [`BaselineError::DropDatabase`]).
    #[error("postgres failed during {during}")]
    Postgres {
        /// The step that failed.
        during: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// The scratch read model does not hold every row the baseline counted: the projection's
    /// write path skipped rows, so the rate would be wrong. A bug: report it.
    #[error(
        "the scratch read model holds {found} reservations ({found_confirmed} confirmed), \
         the baseline wrote {expected} ({expected_confirmed} confirmed)"
    )]
    Unwritten {
        /// Distinct reservations written.
        expected: u64,
        /// Distinct reservations confirmed by an update.
        expected_confirmed: u64,
        /// Reservations in the table.
        found: u64,
        /// Confirmed reservations in the table.
        found_confirmed: u64,
    },
    /// The scratch database could not be dropped: drop it by hand (`DROP DATABASE … WITH
    /// (FORCE)`).
    #[error("cannot drop scratch database {database}{}", after(earlier.as_deref()))]
    DropDatabase {
        /// The database.
        database: String,
        /// Why.
        #[source]
        source: sqlx::Error,
        /// The error that ended the run before, if one did.
        earlier: Option<Box<BaselineError>>,
    },
    /// A producer thread panicked: a bug, report it.
    #[error("a baseline producer thread ended abnormally: {0}")]
    Thread(String),
}

/// ` (after: <error>)` when a cleanup failed after another error.
fn after(earlier: Option<&BaselineError>) -> String {
    earlier.map(|e| format!(" (after: {e})")).unwrap_or_default()
}

/// A typical `ReservationHeld` as the command service writes it for the load generator: ids
/// of the generator's shape, a two-day hold of one unit, a 900 s hold time, no trace context
/// (the generator sends none).
#[must_use]
pub fn typical_event() -> Event {
    #[allow(clippy::expect_used, reason = "constant values within the domain's rules")]
    let (resource, reservation_id, command, range, quantity, customer) = (
        ResourceId::parse("lt-0f3a9c21-r42").expect("valid resource id"),
        ReservationId::parse("r1_019b7a3c5e2f7d41a8c3e5f7091b2d4f_lt-0f3a9c21-r42").expect("valid id"),
        // The domain re-exports no UUID type: borrow one from a parsed reservation id.
        ReservationId::parse("r1_4f1c2e8a9b3d4c5e8f7a6b5c4d3e2f10_lt-0f3a9c21-r42").expect("valid id"),
        SlotRange::parse("2026-03-14", "2026-03-16").expect("valid range"),
        Quantity::new(1).expect("valid quantity"),
        CustomerId::parse("lt-0f3a9c21-c1234").expect("valid customer"),
    );
    let now = time::macros::datetime!(2026-03-01 09:30:15.123456 UTC);
    let payload = EventPayload::ReservationHeld {
        reservation_id,
        range,
        quantity,
        customer_id: customer,
        expires_at: now + time::Duration::seconds(900),
    };
    Event::from_decision(&resource, &CommandMeta::new(command.uuid()), now, 0, payload)
}

/// The encoded size of [`typical_event`] as Holdfast writes it: the 5-byte Confluent header
/// and the Avro body, through the platform's [`EventCodec`]. Registers the current schemas
/// under `events_topic` first (idempotent, what every service does at start); pass the
/// deployment's events topic so no other subjects appear in the registry.
///
/// # Errors
/// [`BaselineError::Codec`] when the registry is unreachable or refuses a schema.
pub async fn typical_event_bytes(
    registry: &RegistryArgs,
    events_topic: &str,
) -> Result<usize, BaselineError> {
    let codec = EventCodec::new(registry, events_topic)?;
    codec.register_all().await?;
    Ok(codec.encode(&typical_event())?.len())
}

#[cfg(test)]
mod tests {
    use holdfast_domain::EventType;

    use super::*;

    #[test]
    fn settings_that_measure_nothing_are_refused() {
        assert!(BaselineSettings::default().check().is_ok());
        let zero = |change: fn(&mut BaselineSettings)| {
            let mut settings = BaselineSettings::default();
            change(&mut settings);
            settings.check().is_err()
        };
        assert!(zero(|s| s.seconds = Duration::ZERO));
        assert!(zero(|s| s.partitions = 0));
        assert!(zero(|s| s.appends = 0));
        assert!(zero(|s| s.producers = Vec::new()));
        assert!(zero(|s| s.producers = vec![1, 0]));
        assert!(zero(|s| s.upsert_batch = 0));
    }

    #[test]
    fn defaults_follow_the_events_topic() {
        let topics = TopicArgs {
            topic_prefix: String::new(),
            partitions: 15,
            replication_factor: 3,
            min_insync_replicas: 2,
        };
        assert_eq!(BaselineSettings::like(&topics).partitions, 15);
        assert_eq!(BaselineSettings::default().partitions, 480);
        assert_eq!(BaselineSettings::default().producers, vec![1, 2]);
    }

    #[test]
    fn the_typical_event_is_a_hold() {
        let event = typical_event();
        assert_eq!(event.envelope.event_type, EventType::ReservationHeld);
        assert_eq!(event.envelope.resource_id.as_str(), "lt-0f3a9c21-r42");
        assert!(event.envelope.traceparent.is_none());
    }
}
