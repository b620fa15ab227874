//! Projection-worker integration tests: the real service in-process on port 0, against the
//! real local stack, each test with topics, a database and a Redis key prefix of its own.

mod consumer_kit;
mod migrations;
mod ops;
mod projection;
mod replay;
mod resilience;
mod support;
