//! Command-service integration tests: the real service in-process on port 0, against the real
//! local stack, each test with topics of its own.

mod decisions;
mod failover;
mod http;
mod instances;
mod load;
mod ops;
mod reservations;
mod restore;
mod schemathesis;
mod standby;
mod support;
