//! Smoke tests of the real client crates against the real local stack (`make up`): each test
//! owns its topic, subject, database or key prefix, so they run in parallel.

mod codec;
mod kafka;
mod redis;
mod registry;
mod replay;
