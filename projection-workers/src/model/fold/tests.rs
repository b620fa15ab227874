//! The fold agrees with the domain's own fold, is idempotent, and gives the same rows whether
//! it sees the whole log at once or batch by batch with only the rows [`Needs`] names loaded.

use holdfast_domain::{Event, ResourceState};

use crate::model::{EventPosition, Needs, ReadModel, Status};
use crate::testing::Workload;

fn log(seed: u64, resources: usize, events: usize) -> (Vec<Event>, Workload) {
    let mut workload = Workload::new("room", resources, seed);
    let mut log = workload.definitions();
    log.extend(workload.events(events));
    (log, workload)
}

fn at(offset: usize) -> EventPosition {
    EventPosition { partition: 0, offset: i64::try_from(offset).expect("small") }
}

fn fold_all(log: &[Event]) -> ReadModel {
    let mut model = ReadModel::default();
    for (offset, event) in log.iter().enumerate() {
        model.apply(event, at(offset));
    }
    model
}

fn assert_matches_domain(model: &ReadModel, states: &[ResourceState]) {
    for state in states {
        let id = state.resource_id();
        let slots: Vec<_> = model.slots().filter(|s| &s.resource_id == id).collect();
        assert_eq!(slots.len(), state.slot_count(), "slot rows of {id}");
        for row in slots {
            let usage = state.usage_at(row.slot);
            assert_eq!(row.capacity, state.capacity_at(row.slot).get(), "capacity of {id} {}", row.slot);
            assert_eq!(
                (row.held, row.confirmed),
                (usage.held, usage.confirmed),
                "usage of {id} {}",
                row.slot
            );
        }
        let definition = state.definition().expect("defined");
        let resource = model.resources().find(|r| &r.resource_id == id).expect("resource row");
        assert_eq!((&resource.name, resource.capacity), (&definition.name, definition.capacity.get()));
    }
    let reservations: usize = states.iter().map(ResourceState::reservation_count).sum();
    assert_eq!(model.reservations().count(), reservations);
    for row in model.reservations() {
        let state =
            states.iter().find(|s| s.resource_id() == row.reservation_id.resource_id()).expect("owner");
        let expected = state.reservation(&row.reservation_id).expect("known to the domain");
        assert_eq!(row.status.as_str(), expected.status.as_str());
        assert_eq!((row.slot_from, row.slot_to), (expected.range.from(), expected.range.to()));
        assert_eq!(row.quantity, expected.quantity.get());
        assert_eq!(row.customer_id, expected.customer_id);
    }
}

#[test]
fn folding_the_log_gives_the_domain_state() {
    let (log, workload) = log(7, 12, 3_000);
    let model = fold_all(&log);
    assert_matches_domain(&model, workload.states());
    let statuses: std::collections::HashSet<Status> = model.reservations().map(|r| r.status).collect();
    assert_eq!(statuses.len(), 4, "the workload reaches every status: {statuses:?}");
}

#[test]
fn applying_an_event_twice_changes_nothing() {
    let (log, _) = log(8, 5, 800);
    let once = fold_all(&log);
    let mut twice = ReadModel::default();
    for (offset, event) in log.iter().enumerate() {
        twice.apply(event, at(offset));
        twice.apply(event, at(offset));
    }
    assert!(once.slots().eq(twice.slots()));
    assert!(once.reservations().eq(twice.reservations()));
    assert!(once.resources().eq(twice.resources()));
}

#[test]
fn batches_over_loaded_rows_equal_one_fold_of_everything() {
    let (log, _) = log(9, 6, 2_000);
    let full = fold_all(&log);
    let mut store = ReadModel::default();
    let mut offset = 0;
    for batch in log.chunks(37) {
        let mut needs = Needs::of(batch);
        let reservations: Vec<_> =
            needs.reservations.iter().filter_map(|id| store.reservation(id).cloned()).collect();
        needs.add_reservation_slots(&reservations);
        let resources = store.resources().filter(|r| needs.resources.contains(&r.resource_id)).cloned();
        let slots = store.slots().filter(|s| needs.slots.contains(&s.key())).cloned();
        let mut loaded: ReadModel =
            ReadModel::from_rows(resources.collect::<Vec<_>>(), slots.collect::<Vec<_>>(), reservations);
        for event in batch {
            loaded.apply(event, at(offset));
            offset += 1;
        }
        let changes = loaded.take_changes();
        // Write back: the store takes every changed row.
        let mut merged_resources: Vec<_> = store.resources().cloned().collect();
        let mut merged_slots: Vec<_> = store.slots().cloned().collect();
        let mut merged_reservations: Vec<_> = store.reservations().cloned().collect();
        merged_resources.retain(|r| !changes.resources.iter().any(|c| c.resource_id == r.resource_id));
        merged_slots.retain(|s| !changes.slots.iter().any(|c| c.key() == s.key()));
        merged_reservations
            .retain(|r| !changes.reservations.iter().any(|c| c.reservation_id == r.reservation_id));
        merged_resources.extend(changes.resources);
        merged_slots.extend(changes.slots);
        merged_reservations.extend(changes.reservations);
        store = ReadModel::from_rows(merged_resources, merged_slots, merged_reservations);
    }
    assert!(full.slots().eq(store.slots()), "slot rows differ");
    assert!(full.reservations().eq(store.reservations()), "reservation rows differ");
    assert!(full.resources().eq(store.resources()), "resource rows differ");
}

#[test]
fn changes_are_grouped_by_resource_with_their_newest_version() {
    let (log, _) = log(10, 3, 200);
    let mut model = fold_all(&log);
    let changes = model.take_changes();
    let grouped = changes.by_resource();
    assert_eq!(grouped.len(), 3);
    for group in &grouped {
        assert!(group.definition.is_some());
        let newest = group.slots.iter().map(|s| s.version).max().unwrap_or(0);
        assert!(group.version() >= newest);
    }
    assert!(model.take_changes().is_empty(), "taking changes unmarks them");
}

#[test]
fn an_untracked_fold_gives_the_same_rows_and_records_no_change() {
    let (log, _) = log(21, 6, 1_500);
    let tracked = fold_all(&log);
    let mut untracked = ReadModel::default();
    untracked.track_changes(false);
    for (offset, event) in log.iter().enumerate() {
        untracked.apply(event, at(offset));
    }
    assert!(untracked.take_changes().is_empty(), "nothing recorded while untracked");
    assert_eq!(untracked.slots().collect::<Vec<_>>(), tracked.slots().collect::<Vec<_>>());
    assert_eq!(untracked.reservations().collect::<Vec<_>>(), tracked.reservations().collect::<Vec<_>>());
    assert_eq!(untracked.counts(), tracked.counts());
}
