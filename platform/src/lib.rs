//! Shared plumbing for every Holdfast service: typed configuration, telemetry, Kafka,
//! PostgreSQL and Redis clients, the Avro codec, the ops HTTP endpoints and shutdown.
//!
//! Nothing here knows about reservations: business rules live in `holdfast-domain`, and each
//! service crate wires these pieces together.

pub mod audit;
pub mod auth;
pub mod codec;
pub mod config;
pub mod headers;
pub mod kafka;
pub mod ops;
pub mod partitioner;
pub mod postgres;
pub mod producer;
pub mod read_model;
pub mod redis;
pub mod registry;
pub mod replay;
pub mod retry;
pub mod service;
pub mod shutdown;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod topics;

pub use config::{AuthArgs, KafkaArgs, PostgresArgs, RedisArgs, RegistryArgs, TelemetryArgs, TopicArgs};
pub use ops::{Ops, Readiness};
pub use service::ServiceError;
pub use shutdown::Shutdown;
