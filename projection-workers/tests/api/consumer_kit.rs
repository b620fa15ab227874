//! The consumer kit (`holdfast-consumer`) and its example, against the real broker and
//! registry, through a zombie episode: the kit hands out exactly the valid history, once, across
//! a restart in the middle of a tenure; the example's count of confirmed nights equals what
//! the projection put in PostgreSQL.

use std::collections::BTreeMap;
use std::time::Duration;

use holdfast_consumer::{EventConsumer, Settings, Valid};
use holdfast_platform::testing;

use crate::support::{Stack, contested_log};

#[path = "../../../consumer/examples/confirmed_nights/fold.rs"]
mod fold;

const DEADLINE: Duration = Duration::from_secs(120);

fn settings(stack: &Stack, group: &str) -> Settings {
    Settings {
        kafka: testing::kafka(),
        registry: testing::registry(),
        topic: stack.layout.events.clone(),
        group_id: group.to_owned(),
        client_id: group.to_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kit_reads_exactly_the_valid_history_and_the_example_matches_the_read_model() {
    let stack = Stack::new("kit", 1).await;
    let contested = contested_log(&stack, "suite", 34).await;
    let oracle = stack.oracle().await;
    let service = stack.start().await;
    let group = testing::unique("kit-nights");
    let valid = contested.events + contested.rejected;

    // The first consumer stops in the middle of the second tenure, committed; the second one
    // resumes there with the rule's state from the commit, or it would take the rest of that
    // tenure for void (no claim before it in what it read).
    let stop_after = contested.events / 2;
    let mut nights = fold::ConfirmedNights::default();
    let mut offsets = Vec::new();
    let first = EventConsumer::new(&settings(&stack, &group)).expect("consumer");
    for _ in 0..stop_after {
        let delivered =
            tokio::time::timeout(DEADLINE, first.next()).await.expect("in time").expect("a record");
        if let Valid::Event(event) = &delivered.record {
            nights.apply(event);
        }
        offsets.push(delivered.offset);
        first.commit(&delivered).expect("committed");
    }
    let skipped_first = first.skipped();
    drop(first);
    let second = EventConsumer::new(&settings(&stack, &group)).expect("consumer");
    let mut rejected = 0;
    while (offsets.len() as u64) < valid {
        let delivered =
            tokio::time::timeout(DEADLINE, second.next()).await.expect("in time").expect("a record");
        match &delivered.record {
            Valid::Event(event) => nights.apply(event),
            Valid::Rejected(_) => rejected += 1,
        }
        offsets.push(delivered.offset);
        second.commit(&delivered).expect("committed");
    }
    assert_eq!(rejected, contested.rejected, "the valid refused command");
    let mut sorted = offsets.clone();
    sorted.dedup();
    assert_eq!(sorted, offsets, "each valid record once, in offset order");
    let skipped = second.skipped();
    let void: u64 = contested.void.values().sum();
    assert_eq!(skipped.void + skipped_first.void, void, "every void record skipped");
    assert_eq!(skipped.claims + skipped_first.claims, contested.claims, "every claim skipped, once");
    assert_eq!(skipped.claims, 1, "the second consumer resumed from the commit's metadata, not the start");
    // Nothing more: the next record would be the owner's next append.
    assert!(tokio::time::timeout(Duration::from_secs(3), second.next()).await.is_err(), "nothing beyond");

    // The example's count against the read model the projection built from the same log.
    assert!(stack.wait_applied(&oracle.ends, DEADLINE).await, "the projection caught up");
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT resource_id, sum(confirmed)::bigint FROM availability GROUP BY resource_id")
            .fetch_all(&stack.pool)
            .await
            .expect("read model");
    let read_model: BTreeMap<String, u64> = rows
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(resource, n)| (resource, u64::try_from(n).unwrap_or(0)))
        .collect();
    let counted: BTreeMap<String, u64> = nights.by_resource.into_iter().filter(|(_, n)| *n > 0).collect();
    assert!(!counted.is_empty(), "the workload confirmed something");
    assert_eq!(counted, read_model, "confirmed nights per resource: the example against PostgreSQL");
    assert!(contested.ghosts.iter().all(|ghost| !counted.contains_key(ghost)), "no void record counted");
    service.stop().await.expect("the projection stops");
    stack.tear_down().await;
}
