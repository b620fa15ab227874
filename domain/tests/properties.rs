//! Property tests of the decider over random command sequences.
//!
//! (a) no slot ever has held + confirmed > capacity; (b) folding the produced events from an
//! empty state rebuilds the decider-side state exactly; (c) decide is deterministic, event ids
//! included; (d) an expiry frees exactly what its hold took.

use holdfast_domain::{
    Capacity, CapacityRange, Command, CommandMeta, CustomerId, Event, EventPayload, HoldTtl, Quantity,
    Rejection, ReservationId, ResourceId, ResourceName, ResourceState, Slot, SlotRange, decide, evolve,
};
use proptest::prelude::*;
use time::macros::{date, datetime};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// Days the generated ranges can touch: offsets 0..HORIZON from the base day.
const HORIZON: i64 = 24 + 31;

/// One generated client or timer action, in terms of small indexes.
#[derive(Debug, Clone)]
enum Op {
    Define { capacity: u32 },
    ChangeCapacity { from: i64, days: i64, capacity: u32 },
    Hold { id: u8, from: i64, days: i64, quantity: u32, customer: u8, ttl: u32 },
    Confirm { id: u8 },
    Cancel { id: u8 },
    Expire { id: u8 },
}

fn op() -> impl Strategy<Value = Op> {
    let id = 0_u8..12;
    let days = prop_oneof![6 => 1_i64..5, 1 => 1_i64..=31];
    prop_oneof![
        1 => (0_u32..10).prop_map(|capacity| Op::Define { capacity }),
        2 => (0_i64..24, 1_i64..8, 0_u32..10)
            .prop_map(|(from, days, capacity)| Op::ChangeCapacity { from, days, capacity }),
        8 => (id.clone(), 0_i64..24, days, 1_u32..5, 0_u8..3, 1_u32..=3600).prop_map(
            |(id, from, days, quantity, customer, ttl)| Op::Hold { id, from, days, quantity, customer, ttl }
        ),
        3 => id.clone().prop_map(|id| Op::Confirm { id }),
        2 => id.clone().prop_map(|id| Op::Cancel { id }),
        3 => id.prop_map(|id| Op::Expire { id }),
    ]
}

/// A scenario: optionally define first, then steps of (seconds to advance the clock, op).
fn scenario() -> impl Strategy<Value = Vec<(i64, Op)>> {
    (any::<bool>(), 1_u32..10, prop::collection::vec((0_i64..1200, op()), 1..80)).prop_map(
        |(define_first, capacity, mut steps)| {
            if define_first {
                steps.insert(0, (0, Op::Define { capacity }));
            }
            steps
        },
    )
}

fn resource() -> ResourceId {
    ResourceId::parse("room-101").expect("valid")
}

fn day(n: i64) -> Slot {
    Slot::from_date(date!(2026 - 04 - 01) + Duration::days(n)).expect("valid")
}

fn reservation(id: u8) -> ReservationId {
    ReservationId::new(&resource(), Uuid::from_u128(u128::from(id) + 1))
}

fn command(op: &Op) -> Command {
    match *op {
        Op::Define { capacity } => Command::DefineResource {
            resource_id: resource(),
            name: ResourceName::parse("Room 101").expect("valid"),
            capacity: Capacity::new(capacity).expect("valid"),
        },
        Op::ChangeCapacity { from, days, capacity } => Command::ChangeCapacity {
            resource_id: resource(),
            range: CapacityRange::new(day(from), day(from + days)).expect("valid"),
            capacity: Capacity::new(capacity).expect("valid"),
        },
        Op::Hold { id, from, days, quantity, customer, ttl } => Command::PlaceHold {
            reservation_id: reservation(id),
            range: SlotRange::new(day(from), day(from + days)).expect("valid"),
            quantity: Quantity::new(quantity).expect("valid"),
            customer_id: CustomerId::parse(&format!("customer-{customer}")).expect("valid"),
            ttl: HoldTtl::from_seconds(ttl).expect("valid"),
        },
        Op::Confirm { id } => {
            Command::ConfirmReservation { reservation_id: reservation(id), payment_ref: None }
        }
        Op::Cancel { id } => {
            Command::CancelReservation { reservation_id: reservation(id), reason: Some("test".into()) }
        }
        Op::Expire { id } => Command::ExpireHold { reservation_id: reservation(id) },
    }
}

/// Everything a run of a scenario produced.
#[derive(Debug, PartialEq)]
struct Run {
    /// Decider-side state after the last step.
    state: ResourceState,
    /// Every event accepted, in order.
    events: Vec<Event>,
    /// Every decision's answer, in order.
    decisions: Vec<Result<Vec<Event>, Rejection>>,
}

/// Runs `steps`, calling `check(before, command, events, after)` after each accepted decision.
fn run(
    steps: &[(i64, Op)],
    mut check: impl FnMut(&ResourceState, &Command, &[Event], &ResourceState) -> Result<(), TestCaseError>,
) -> Result<Run, TestCaseError> {
    let mut now: OffsetDateTime = datetime!(2026-03-01 12:00 UTC);
    let mut state = ResourceState::new(resource());
    let mut events = Vec::new();
    let mut decisions = Vec::new();
    for (n, (advance, op)) in (1_u128..).zip(steps) {
        now += Duration::seconds(*advance);
        let command = command(op);
        let decision = decide(&state, &command, &CommandMeta::new(Uuid::from_u128(n)), now);
        if let Ok(new_events) = &decision {
            let after = new_events.iter().fold(state.clone(), evolve);
            check(&state, &command, new_events, &after)?;
            state = after;
            events.extend(new_events.iter().cloned());
        }
        decisions.push(decision);
    }
    Ok(Run { state, events, decisions })
}

fn no_overbooking(state: &ResourceState) -> Result<(), TestCaseError> {
    for d in 0..HORIZON {
        let slot = day(d);
        let (usage, capacity) = (state.usage_at(slot), state.capacity_at(slot));
        prop_assert!(
            usage.in_use() <= capacity.get(),
            "{slot}: held {} + confirmed {} > capacity {}",
            usage.held,
            usage.confirmed,
            capacity.get()
        );
    }
    Ok(())
}

/// For a HoldExpired decision: usage after = usage before − quantity on each slot of its range.
fn expiry_frees_its_hold(
    before: &ResourceState,
    events: &[Event],
    after: &ResourceState,
) -> Result<(), TestCaseError> {
    for event in events {
        let EventPayload::HoldExpired { reservation_id } = &event.payload else {
            continue;
        };
        let hold = before.reservation(reservation_id).expect("expired hold was known");
        for slot in hold.range.slots() {
            let (b, a) = (before.usage_at(slot), after.usage_at(slot));
            prop_assert_eq!(a.held, b.held - hold.quantity.get(), "held on {}", slot);
            prop_assert_eq!(a.confirmed, b.confirmed, "confirmed on {}", slot);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// (a) No sequence of commands ever overbooks a slot.
    #[test]
    fn no_slot_is_ever_overbooked(steps in scenario()) {
        run(&steps, |_, _, _, after| no_overbooking(after))?;
    }

    /// (b) Replaying the produced events from scratch rebuilds the decider-side state.
    #[test]
    fn replaying_events_rebuilds_the_state(steps in scenario()) {
        let run = run(&steps, |_, _, _, _| Ok(()))?;
        let replayed = run.events.iter().fold(ResourceState::new(resource()), evolve);
        prop_assert_eq!(replayed, run.state);
    }

    /// (c) The same inputs give the same decisions, event ids included; ids never repeat.
    #[test]
    fn decide_is_deterministic(steps in scenario()) {
        let first = run(&steps, |_, _, _, _| Ok(()))?;
        let second = run(&steps, |_, _, _, _| Ok(()))?;
        prop_assert_eq!(&first, &second);
        let mut ids: Vec<Uuid> = first.events.iter().map(|e| e.envelope.event_id).collect();
        ids.sort_unstable();
        ids.dedup();
        prop_assert_eq!(ids.len(), first.events.len());
    }

    /// (d) Every expiry in a random history frees exactly what its hold took.
    #[test]
    fn expiries_free_exactly_their_hold(steps in scenario()) {
        run(&steps, |before, _, events, after| expiry_frees_its_hold(before, events, after))?;
    }

    /// (d') After any history, a fresh hold expired at its deadline leaves usage as before it.
    #[test]
    fn a_fresh_hold_expires_back_to_the_previous_usage(
        steps in scenario(),
        from in 0_i64..24,
        days in 1_i64..=31,
        quantity in 1_u32..5,
    ) {
        let run = run(&steps, |_, _, _, _| Ok(()))?;
        let now = datetime!(2030-01-01 0:00 UTC);
        let id = ReservationId::new(&resource(), Uuid::from_u128(u128::MAX));
        let hold = Command::PlaceHold {
            reservation_id: id.clone(),
            range: SlotRange::new(day(from), day(from + days)).expect("valid"),
            quantity: Quantity::new(quantity).expect("valid"),
            customer_id: CustomerId::parse("late").expect("valid"),
            ttl: HoldTtl::DEFAULT,
        };
        let Ok(held) = decide(&run.state, &hold, &CommandMeta::new(Uuid::from_u128(u128::MAX)), now) else {
            return Ok(()); // not enough room after this history; nothing to expire
        };
        let with_hold = held.iter().fold(run.state.clone(), evolve);
        let expire = Command::ExpireHold { reservation_id: id };
        let expired = decide(&with_hold, &expire, &CommandMeta::new(Uuid::from_u128(1 << 100)), now + HoldTtl::DEFAULT.duration())
            .expect("expiry is never rejected");
        prop_assert_eq!(expired.len(), 1);
        expiry_frees_its_hold(&with_hold, &expired, &expired.iter().fold(with_hold.clone(), evolve))?;
        let after = expired.iter().fold(with_hold, evolve);
        for d in 0..HORIZON {
            prop_assert_eq!(after.usage_at(day(d)), run.state.usage_at(day(d)));
        }
    }
}
