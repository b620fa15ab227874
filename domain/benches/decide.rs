//! Throughput of decide + evolve on one resource that already knows a few thousand
//! reservations: a realistic mix of place hold (3-day range), confirm and cancel.
//!
//! Reported as elements/s where one element is one decision (decide + folding its events).

use std::hint::black_box;
use std::time::{Duration as StdDuration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use holdfast_domain::{
    Capacity, Command, CommandMeta, CustomerId, HoldTtl, Quantity, ReservationId, ResourceId, ResourceName,
    ResourceState, Slot, SlotRange, decide, evolve,
};
use time::macros::{date, datetime};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// Reservations already in the state before measuring.
const EXISTING: u128 = 3_000;
/// Hold/confirm/cancel rounds run between two resets of the state.
const ROUNDS_PER_CHUNK: usize = 1_000;

fn resource() -> ResourceId {
    ResourceId::parse("hotel.berlin:room-101").expect("valid")
}

fn t0() -> OffsetDateTime {
    datetime!(2026-03-01 12:00 UTC)
}

fn hold(n: u128, first_day: i64, days: i64, quantity: u32) -> Command {
    let from = Slot::from_date(date!(2026 - 04 - 01) + Duration::days(first_day)).expect("valid");
    let to = Slot::from_date(from.date() + Duration::days(days)).expect("valid");
    Command::PlaceHold {
        reservation_id: ReservationId::new(&resource(), Uuid::from_u128(n)),
        range: SlotRange::new(from, to).expect("valid"),
        quantity: Quantity::new(quantity).expect("valid"),
        customer_id: CustomerId::parse(&format!("customer-{}", n % 500)).expect("valid"),
        ttl: HoldTtl::DEFAULT,
    }
}

fn apply(state: ResourceState, command: &Command, n: u128, now: OffsetDateTime) -> ResourceState {
    let events = decide(&state, command, &CommandMeta::new(Uuid::from_u128(n)), now).expect("accepted");
    events.iter().fold(state, evolve)
}

/// A resource with `EXISTING` reservations spread over 120 days, in every status.
fn populated_state() -> ResourceState {
    let define = Command::DefineResource {
        resource_id: resource(),
        name: ResourceName::parse("Room 101").expect("valid"),
        capacity: Capacity::new(1_000_000).expect("valid"),
    };
    let mut state = apply(ResourceState::new(resource()), &define, 0, t0());
    for n in 1..=EXISTING {
        let first_day = i64::try_from(n % 120).expect("small");
        let days = i64::try_from(n % 5 + 1).expect("small");
        let quantity = u32::try_from(n % 3 + 1).expect("small");
        state = apply(state, &hold(n, first_day, days, quantity), n, t0());
        let id = ReservationId::new(&resource(), Uuid::from_u128(n));
        let next = match n % 6 {
            0 | 1 => Some(Command::ConfirmReservation { reservation_id: id, payment_ref: None }),
            2 => Some(Command::CancelReservation { reservation_id: id, reason: None }),
            _ => None,
        };
        if let Some(command) = next {
            state = apply(state, &command, (1 << 64) + n, t0());
        }
    }
    state
}

/// The commands of one chunk: hold a fresh reservation, confirm it, cancel it.
fn chunk_commands() -> Vec<(Command, CommandMeta)> {
    (0..ROUNDS_PER_CHUNK)
        .flat_map(|round| {
            let n = 1_000_000 + u128::try_from(round).expect("small");
            let id = ReservationId::new(&resource(), Uuid::from_u128(n));
            let first_day = i64::try_from(round % 90).expect("small");
            [
                hold(n, first_day, 3, 2),
                Command::ConfirmReservation { reservation_id: id.clone(), payment_ref: Some("pay-1".into()) },
                Command::CancelReservation { reservation_id: id, reason: None },
            ]
        })
        .zip(1_u128..)
        .map(|(command, n)| (command, CommandMeta::new(Uuid::from_u128(n << 32))))
        .collect()
}

fn mix(c: &mut Criterion) {
    let base = populated_state();
    let commands = chunk_commands();
    let now = t0() + Duration::seconds(5);
    let mut group = c.benchmark_group("decide+evolve");
    group.throughput(Throughput::Elements(1));
    group.bench_function("hold-confirm-cancel mix, 3000 reservations", |b| {
        b.iter_custom(|iters| {
            let mut elapsed = StdDuration::ZERO;
            let mut done = 0_u64;
            while done < iters {
                // Reset outside the timed section so the state stays at a few thousand reservations.
                let mut state = base.clone();
                let take = usize::try_from(iters - done).unwrap_or(usize::MAX).min(commands.len());
                let start = Instant::now();
                for (command, meta) in &commands[..take] {
                    if let Ok(events) = decide(&state, command, meta, now) {
                        state = events.iter().fold(state, evolve);
                    }
                }
                elapsed += start.elapsed();
                black_box(&state);
                done += take as u64;
            }
            elapsed
        });
    });
    group.finish();

    let mut group = c.benchmark_group("decide");
    group.throughput(Throughput::Elements(1));
    let command = hold(2_000_000, 30, 3, 2);
    let meta = CommandMeta::new(Uuid::from_u128(7));
    group.bench_function("place hold only, 3000 reservations", |b| {
        b.iter(|| decide(black_box(&base), black_box(&command), &meta, now));
    });
    group.finish();
}

criterion_group!(benches, mix);
criterion_main!(benches);
