//! A broker restart under load: appends in flight when the broker goes away end failed or
//! unclear, so the owner claims its partitions again and restores before it decides anything
//! else; callers left undecided get 503 and ask again with their keys. Judged on the log.
//!
//! This restarts the local stack's one broker, so it lives in a test binary of its own: cargo
//! runs test binaries one after another, and no other test shares the broker meanwhile.

#![allow(clippy::expect_used, clippy::unwrap_used)]

#[path = "api/load.rs"]
#[allow(dead_code)]
mod load;
#[path = "api/support.rs"]
#[allow(dead_code)]
mod support;

use std::time::Duration;

use holdfast_platform::testing::{self, TopicsGuard};

use crate::load::HttpLoad;
use crate::support::Process;

const PARTITIONS: i32 = 8;

/// The value of the Prometheus sample `name` on `process`.
async fn sample(process: &Process, name: &str) -> Option<f64> {
    let text = reqwest::get(format!("http://{}/metrics", process.addr)).await.ok()?.text().await.ok()?;
    text.lines().find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_under_load_loses_no_decision_and_overbooks_nothing() {
    testing::init_logs();
    let topics = testing::topics("cmd-broker", PARTITIONS);
    let _cleanup = TopicsGuard::new(&topics);
    // Appends fail 5 s after the broker went away: their outcome is unclear from then on.
    let owner =
        Process::spawn_with(&topics, &testing::unique("broker"), &[("HOLDFAST_APPEND_TIMEOUT", "5s")]);
    assert!(owner.wait_ready(Duration::from_secs(90)).await);
    let resources = load::define(owner.addr, "hall", 24, 20).await;
    let load = HttpLoad::start(vec![owner.addr], &resources, 6, 900);
    load.advance(60).await;

    let stack = concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/local/stack");
    let restarted = tokio::task::spawn_blocking(move || {
        std::process::Command::new(stack).args(["restart", "kafka"]).status().expect("the stack script runs")
    })
    .await
    .expect("joined");
    assert!(restarted.success(), "the broker restarted");
    load.advance(60).await;
    let tally = load.finish().await;

    load::assert_log_is_sound(&topics, &tally).await;
    let reclaims = sample(&owner, "holdfast_partition_reclaims_total{reason=\"append-failed\"} ").await;
    assert!(
        reclaims.unwrap_or(0.0) > 0.0,
        "appends in flight failed, and the owner claimed again: {reclaims:?}"
    );
    drop(owner);
}
