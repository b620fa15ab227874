//! Deterministic sample events for tests and benchmarks: every event type, with optional
//! fields present or absent, Unicode text, ranges and instants varied by a seed.
//!
//! Compiled only for tests and the `testing` feature; production code never builds events
//! here. Instants have whole microseconds, the precision the wire keeps.

use apache_avro::Uuid;
use holdfast_domain::{
    Capacity, CommandMeta, CustomerId, Event, EventPayload, EventType, Quantity, ReleasedFrom, ReservationId,
    ResourceId, ResourceName, Slot,
};
use time::{Duration, OffsetDateTime};

/// One event of `event_type`, varied by `seed` (the same seed gives the same event). Every
/// generated value is within the domain's rules, so the `expect`s below cannot fire.
#[must_use]
pub fn event(event_type: EventType, seed: u64) -> Event {
    let mut rng = Rng(seed);
    let resource = ResourceId::parse(&format!("hotel.{}:room-{}", rng.below(50), rng.below(1000)))
        .expect("valid resource id");
    let mut meta = CommandMeta::new(Uuid::from_u128(u128::from(rng.next()) << 64 | u128::from(rng.next())));
    meta.correlation_id = Uuid::from_u128(u128::from(rng.next()));
    if rng.below(2) == 0 {
        meta.traceparent = Some(format!("00-{:032x}-{:016x}-01", rng.next(), rng.next()));
        meta.tracestate = (rng.below(2) == 0).then(|| "vendor=opaque,zoë=1".to_owned());
    }
    meta.principal = (rng.below(4) != 0).then(|| format!("customer-{}@example.org", rng.below(1000)));
    let micros = 1_767_225_600_000_000 + i64::try_from(rng.below(1 << 40)).expect("small");
    let now = OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000).expect("in range");
    let from = Slot::from_date(now.date() + Duration::days(i64::try_from(rng.below(300)).expect("small")))
        .expect("valid slot");
    let days = |max: u64, rng: &mut Rng| i64::try_from(1 + rng.below(max)).expect("small");
    let reservation_id = ReservationId::new(&resource, Uuid::from_u128(u128::from(rng.next())));
    let optional =
        |rng: &mut Rng, text: &str| (rng.below(2) == 0).then(|| format!("{text} #{}", rng.below(1000)));
    let payload = match event_type {
        EventType::ResourceDefined => EventPayload::ResourceDefined {
            name: ResourceName::parse(&format!("Zimmer {} – Meerblick", rng.below(500))).expect("valid name"),
            capacity: Capacity::new(u32::try_from(rng.below(1_000_001)).expect("small")).expect("valid"),
        },
        EventType::CapacityChanged => EventPayload::CapacityChanged {
            range: span(from, days(366, &mut rng)),
            capacity: Capacity::new(u32::try_from(rng.below(1_000_001)).expect("small")).expect("valid"),
        },
        EventType::ReservationHeld => EventPayload::ReservationHeld {
            reservation_id,
            range: span(from, days(31, &mut rng)),
            quantity: Quantity::new(u32::try_from(1 + rng.below(1_000_000)).expect("small")).expect("valid"),
            customer_id: CustomerId::parse(&format!("customer-{}@example.com", rng.below(1 << 20)))
                .expect("valid"),
            expires_at: now + Duration::seconds(i64::try_from(1 + rng.below(3600)).expect("small")),
        },
        EventType::ReservationConfirmed => {
            EventPayload::ReservationConfirmed { reservation_id, payment_ref: optional(&mut rng, "pay") }
        }
        EventType::ReservationCancelled => EventPayload::ReservationCancelled {
            reservation_id,
            reason: optional(&mut rng, "plans changed"),
            released: if rng.below(2) == 0 { ReleasedFrom::Held } else { ReleasedFrom::Confirmed },
        },
        EventType::HoldExpired => EventPayload::HoldExpired { reservation_id },
    };
    let index = u32::try_from(rng.below(4)).expect("small");
    Event::from_decision(&resource, &meta, now, index, payload)
}

/// One event of every type, varied by `seed`.
#[must_use]
pub fn one_of_each(seed: u64) -> Vec<Event> {
    EventType::ALL.into_iter().map(|t| event(t, seed)).collect()
}

/// `[from, from + days)`, a valid range for both reservations and capacity changes.
fn span<const MAX: u16>(from: Slot, days: i64) -> holdfast_domain::values::DaySpan<MAX> {
    let to = Slot::from_date(from.date() + Duration::days(days)).expect("valid slot");
    holdfast_domain::values::DaySpan::new(from, to).expect("valid range")
}

/// SplitMix64: small, deterministic, good enough to vary test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What a version-0 writer (`schemas/legacy/ReservationHeld.v0.avsc`) recorded for the
/// `ReservationHeld` event `held`: its TTL as `hold_seconds` instead of `expires_at`, and no
/// principal (v0 had none, so `held` should have none for a round trip).
///
/// # Panics
/// When `held` is not a `ReservationHeld`, or its TTL does not fit an `int`.
#[must_use]
pub fn reservation_held_v0(held: &Event) -> apache_avro::types::Value {
    use apache_avro::types::Value;
    let EventPayload::ReservationHeld { expires_at, .. } = &held.payload else {
        panic!("not a ReservationHeld: {held:?}")
    };
    let hold_seconds = i32::try_from((*expires_at - held.envelope.occurred_at).whole_seconds()).expect("ttl");
    let Value::Record(mut fields) = super::to_avro(held) else { unreachable!("events are records") };
    fields.retain(|(name, _)| name != "expires_at" && name != "principal");
    fields.push(("hold_seconds".into(), Value::Int(hold_seconds)));
    for (name, value) in &mut fields {
        if name == "event_version" {
            *value = Value::Int(0);
        }
    }
    Value::Record(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_deterministic_and_typed() {
        for seed in 0..20 {
            for (event, event_type) in one_of_each(seed).iter().zip(EventType::ALL) {
                assert_eq!(event.payload.event_type(), event_type);
                assert_eq!(event, &super::event(event_type, seed));
            }
        }
    }

    #[test]
    fn capacity_ranges_may_exceed_a_month() {
        let longest = (0..200)
            .filter_map(|seed| match event(EventType::CapacityChanged, seed).payload {
                EventPayload::CapacityChanged { range, .. } => Some(range.len()),
                _ => None,
            })
            .max();
        assert!(longest > Some(31));
    }
}
