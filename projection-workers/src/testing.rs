//! A deterministic workload for tests: random commands decided by the real domain decider, so
//! the events are exactly those the command service would write (holds, confirmations,
//! cancellations, expiries, capacity changes, with rejections simply producing nothing).
//!
//! Compiled for unit tests and with the `testing` feature (integration tests); never in the
//! service.

use holdfast_domain::{
    Capacity, CapacityRange, Command, CommandMeta, CustomerId, Event, HoldTtl, Quantity, ReservationId,
    ReservationStatus, ResourceId, ResourceName, ResourceState, Slot, SlotRange, decide,
};
use time::OffsetDateTime;
use uuid::Uuid;

/// Generates events for a fixed set of resources from a seed.
#[derive(Debug, Clone)]
pub struct Workload {
    states: Vec<ResourceState>,
    reservations: Vec<Vec<ReservationId>>,
    rng: u64,
    now: OffsetDateTime,
    first_day: Slot,
}

impl Workload {
    /// `resources` resources named `<prefix>-<n>`, driven by `seed`.
    ///
    /// # Panics
    /// When `prefix` is not a valid resource id prefix.
    #[must_use]
    pub fn new(prefix: &str, resources: usize, seed: u64) -> Self {
        let states = (0..resources)
            .map(|n| {
                ResourceState::new(ResourceId::parse(&format!("{prefix}-{n}")).expect("valid resource id"))
            })
            .collect();
        let first_day = Slot::parse("2031-03-01").expect("valid day");
        Self {
            states,
            reservations: vec![Vec::new(); resources],
            rng: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            now: OffsetDateTime::from_unix_timestamp(1_900_000_000).expect("valid instant"),
            first_day,
        }
    }

    /// The resources' final states as the domain folds them (a second oracle beside the log).
    #[must_use]
    pub fn states(&self) -> &[ResourceState] {
        &self.states
    }

    /// The DefineResource events of every resource (capacities 3 to 12).
    pub fn definitions(&mut self) -> Vec<Event> {
        let mut events = Vec::new();
        for index in 0..self.states.len() {
            let capacity = Capacity::new(3 + self.below(10)).expect("valid capacity");
            let resource_id = self.states[index].resource_id().clone();
            let name = ResourceName::parse(&format!("Resource {resource_id}")).expect("valid name");
            events.extend(self.decide(index, &Command::DefineResource { resource_id, name, capacity }));
        }
        events
    }

    /// At least `count` further events from random commands.
    pub fn events(&mut self, count: usize) -> Vec<Event> {
        let mut events = Vec::with_capacity(count + 2);
        while events.len() < count {
            let index =
                usize::try_from(self.below(u32::try_from(self.states.len()).unwrap_or(1))).unwrap_or(0);
            let command = self.command(index);
            events.extend(self.decide(index, &command));
        }
        events
    }

    /// Decides `command` on resource `index`, folds and returns the events.
    fn decide(&mut self, index: usize, command: &Command) -> Vec<Event> {
        self.now += time::Duration::seconds(1);
        let now = match command {
            // Expiry is due only once the hold lapsed: decide it at that instant.
            Command::ExpireHold { reservation_id } => match self.states[index].reservation(reservation_id) {
                Some(r) => match r.status {
                    ReservationStatus::Held { expires_at } => expires_at.max(self.now),
                    _ => self.now,
                },
                None => self.now,
            },
            _ => self.now,
        };
        let meta = CommandMeta::new(Uuid::from_u128(u128::from(self.next()) << 64 | u128::from(self.next())));
        let Ok(events) = decide(&self.states[index], command, &meta, now) else { return Vec::new() };
        for event in &events {
            self.states[index].apply(event);
        }
        events
    }

    /// A random command for resource `index`.
    fn command(&mut self, index: usize) -> Command {
        let resource_id = self.states[index].resource_id().clone();
        let known = self.reservations[index].len();
        let roll = self.below(100);
        if roll < 45 || known == 0 {
            let from = self.random_day();
            let to = add_days(from, 1 + self.below(4));
            let reservation_id = ReservationId::new(&resource_id, Uuid::from_u128(u128::from(self.next())));
            self.reservations[index].push(reservation_id.clone());
            return Command::PlaceHold {
                reservation_id,
                range: SlotRange::new(from, to).expect("valid range"),
                quantity: Quantity::new(1 + self.below(3)).expect("valid quantity"),
                customer_id: CustomerId::parse(&format!("customer-{}", self.below(20)))
                    .expect("valid customer"),
                ttl: HoldTtl::from_seconds(600 + self.below(600)).expect("valid ttl"),
            };
        }
        let choice = usize::try_from(self.below(u32::try_from(known).unwrap_or(1))).unwrap_or(0);
        let pick = self.reservations[index][choice].clone();
        match roll {
            45..=69 => Command::ConfirmReservation {
                reservation_id: pick,
                payment_ref: Some(format!("pay-{}", self.below(1000))),
            },
            70..=81 => Command::CancelReservation {
                reservation_id: pick,
                reason: (self.below(2) == 0).then(|| "changed plans".to_owned()),
            },
            82..=93 => Command::ExpireHold { reservation_id: pick },
            _ => {
                let from = self.random_day();
                let to = add_days(from, 1 + self.below(6));
                Command::ChangeCapacity {
                    resource_id,
                    range: CapacityRange::new(from, to).expect("valid range"),
                    capacity: Capacity::new(2 + self.below(12)).expect("valid capacity"),
                }
            }
        }
    }

    /// One of the 40 days from the first.
    fn random_day(&mut self) -> Slot {
        let offset = self.below(40);
        add_days(self.first_day, offset)
    }

    /// xorshift64*: deterministic and good enough to pick commands.
    fn next(&mut self) -> u64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n`.
    fn below(&mut self, n: u32) -> u32 {
        u32::try_from(self.next() % u64::from(n.max(1))).unwrap_or(0)
    }
}

/// `from` plus `days`.
fn add_days(from: Slot, days: u32) -> Slot {
    Slot::from_date(from.date() + time::Duration::days(i64::from(days))).expect("valid day")
}
