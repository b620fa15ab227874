//! Query-service integration tests: the real service in-process on port 0, against the real
//! local stack, each test with topics, databases and a Redis key prefix of its own, fed by the
//! real projection worker.

mod contract;
mod live;
mod ops;
mod reads;
mod schemathesis;
mod support;
