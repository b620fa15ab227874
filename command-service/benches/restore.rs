//! Time to restore one partition from the log: the work an owner does after it claims a
//! partition (a restart, a failover, a rebalance) before it decides that partition's commands.
//!
//! Needs the local stack (`make up`). Writes a realistic history of `HOLDFAST_BENCH_EVENTS`
//! events (default 1,000,000) into partition 0 of fresh topics: a few thousand resources,
//! multi-day holds, confirmations, cancellations and expiries, decided by the real domain
//! rules and appended as one tenure (a claim, then every event with its writer token and
//! sequence number) by an idempotent producer. Then restores that partition
//! `HOLDFAST_BENCH_RUNS` times (default 5) through the lanes' own [`Restorer`] — reader rule,
//! parallel decoding, the fold with its outcome memory — and prints the median, minimum and
//! maximum, beside the time a plain read of the same records takes (the baseline: no
//! reader rule, no decoding, no fold). The topics are deleted at the end.
//!
//! `cargo bench -p holdfast-command-service --bench restore`

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use holdfast_command_service::lane::restore::Restorer;
use holdfast_command_service::lane::state::Memory;
use holdfast_domain::{
    Capacity, Command, CommandMeta, CustomerId, Event, HoldTtl, Quantity, ReservationId, ResourceId,
    ResourceName, ResourceState, Slot, SlotRange, decide,
};
use holdfast_platform::codec::{ClaimRecord, EventCodec};
use holdfast_platform::headers::RecordHeaders;
use holdfast_platform::kafka::producer_config;
use holdfast_platform::testing;
use holdfast_platform::topics::TopicLayout;
use holdfast_tenure::{Mark, Token};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use time::macros::{date, datetime};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// Resources in the partition.
const RESOURCES: usize = 2_000;

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.replace('_', "").parse().ok()).unwrap_or(default)
}

/// A deterministic history: per step one command on a resource chosen round-robin.
struct History {
    resources: Vec<ResourceState>,
    /// Live holds per resource, to confirm, cancel or expire later.
    open: Vec<Vec<ReservationId>>,
    step: u64,
    now: OffsetDateTime,
}

impl History {
    fn new() -> Self {
        let resources = (0..RESOURCES)
            .map(|i| ResourceState::new(ResourceId::parse(&format!("hotel-{}:room-{i}", i % 50)).unwrap()))
            .collect();
        Self { resources, open: vec![Vec::new(); RESOURCES], step: 0, now: datetime!(2026-03-01 12:00 UTC) }
    }

    /// The events of the next accepted command.
    fn next(&mut self) -> Vec<Event> {
        loop {
            self.step += 1;
            let n = self.step;
            let index = usize::try_from(n).unwrap() % RESOURCES;
            self.now += Duration::milliseconds(1);
            let command = self.command(index, n);
            let meta = CommandMeta::new(Uuid::from_u128(u128::from(n)));
            if let Ok(events) = decide(&self.resources[index], &command, &meta, self.now) {
                for event in &events {
                    self.resources[index].apply(event);
                }
                if let Command::PlaceHold { reservation_id, .. } = command {
                    self.open[index].push(reservation_id);
                }
                if !events.is_empty() {
                    return events;
                }
            }
        }
    }

    fn command(&mut self, index: usize, n: u64) -> Command {
        let resource_id = self.resources[index].resource_id().clone();
        if self.resources[index].definition().is_none() {
            return Command::DefineResource {
                resource_id,
                name: ResourceName::parse("A room").unwrap(),
                capacity: Capacity::new(50).unwrap(),
            };
        }
        // Settle an open hold two times in three (confirm, cancel, expire), else hold anew.
        if !n.is_multiple_of(3)
            && let Some(reservation_id) = self.open[index].pop()
        {
            return match n % 5 {
                0..=2 => Command::ConfirmReservation { reservation_id, payment_ref: Some("pay".into()) },
                3 => Command::CancelReservation { reservation_id, reason: None },
                _ => Command::ExpireHold { reservation_id },
            };
        }
        let first = date!(2026 - 04 - 01) + Duration::days(i64::try_from(n % 300).unwrap());
        let from = Slot::from_date(first).unwrap();
        let to = Slot::from_date(first + Duration::days(i64::try_from(n % 4 + 1).unwrap())).unwrap();
        Command::PlaceHold {
            reservation_id: ReservationId::new(
                self.resources[index].resource_id(),
                Uuid::from_u128(u128::from(n) << 20),
            ),
            range: SlotRange::new(from, to).unwrap(),
            quantity: Quantity::new(u32::try_from(n % 3 + 1).unwrap()).unwrap(),
            customer_id: CustomerId::parse(&format!("customer-{}", n % 10_000)).unwrap(),
            ttl: HoldTtl::DEFAULT,
        }
    }
}

/// Appends `count` events into partition 0 of the events topic as one tenure.
fn seed(layout: &TopicLayout, codec: &EventCodec, count: usize) -> usize {
    let mut config = producer_config(&testing::kafka(), "restore-bench");
    let producer: BaseProducer = config.set("linger.ms", "5").create().expect("producer");
    let token = Token::fresh();
    let claim = ClaimRecord {
        token,
        partition: 0,
        owner: "restore-bench".into(),
        address: None,
        claimed_at: OffsetDateTime::now_utc(),
    };
    send(
        &producer,
        layout,
        "restore-bench",
        &codec.encode_claim(&claim).expect("claim"),
        Mark::Claim { token },
    );
    let mut history = History::new();
    let mut written = 0;
    let started = Instant::now();
    while written < count {
        for event in history.next() {
            let payload = codec.encode(&event).expect("encode");
            let mark = Mark::Data { token, seq: u64::try_from(written).unwrap() };
            send(&producer, layout, event.envelope.resource_id.as_str(), &payload, mark);
            written += 1;
            if written % 100_000 == 0 {
                println!(
                    "  seeded {written} events ({:.0}/s)",
                    written as f64 / started.elapsed().as_secs_f64()
                );
            }
        }
    }
    producer.flush(StdDuration::from_secs(60)).expect("flushed");
    written
}

fn send(producer: &BaseProducer, layout: &TopicLayout, key: &str, payload: &[u8], mark: Mark) {
    let headers = RecordHeaders { mark, fingerprint: Some(1) }.to_kafka();
    let mut record =
        BaseRecord::<str, [u8]>::to(&layout.events).partition(0).key(key).payload(payload).headers(headers);
    loop {
        match producer.send(record) {
            Ok(()) => return,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                producer.poll(StdDuration::from_millis(5));
            }
            Err((error, _)) => panic!("seeding failed: {error}"),
        }
    }
}

/// The baseline: the same records read by the same kind of consumer up to `end`, touched
/// (payload length summed) but neither judged nor decoded nor folded.
fn raw_read(layout: &TopicLayout, end: i64) -> StdDuration {
    let config = holdfast_platform::kafka::reader_config(&testing::kafka(), "restore-bench-raw");
    let plan = holdfast_platform::replay::Plan::from_beginning(&layout.events, [0]).unwrap();
    let ends = std::collections::HashMap::from([(0, end)]);
    let started = Instant::now();
    let mut bytes = 0_usize;
    holdfast_platform::kafka::read_until(&config, &plan.assignment, &ends, StdDuration::MAX, |message| {
        bytes += message.payload_len();
    })
    .expect("raw read");
    assert!(bytes > 0, "records were read");
    started.elapsed()
}

fn main() {
    let events = env_number("HOLDFAST_BENCH_EVENTS", 1_000_000);
    let runs = env_number("HOLDFAST_BENCH_RUNS", 5).max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let mut args = testing::topics("restore-bench", 1);
    // `HOLDFAST_BENCH_TOPIC_PREFIX` restores the topics of an earlier run kept with
    // `HOLDFAST_BENCH_KEEP=1` instead of seeding new ones.
    let reuse = std::env::var("HOLDFAST_BENCH_TOPIC_PREFIX").ok();
    if let Some(prefix) = &reuse {
        args.topic_prefix.clone_from(prefix);
    }
    // Reused topics are kept unless `HOLDFAST_BENCH_KEEP=0` says this is their last run.
    let keep = std::env::var("HOLDFAST_BENCH_KEEP").map_or(reuse.is_some(), |v| v == "1");
    let layout = TopicLayout::from_args(&args);
    runtime.block_on(layout.ensure(&testing::kafka())).expect("topics");
    let codec = Arc::new(EventCodec::new(&testing::registry(), &layout.events).expect("codec"));
    runtime.block_on(codec.register_all()).expect("schemas");

    let written = if reuse.is_some() {
        events
    } else {
        println!("seeding {events} events into {}[0] ...", layout.events);
        seed(&layout, &codec, events)
    };

    let memory = Memory { window: Duration::minutes(60), capacity: 10_000 };
    let restorer = Restorer::new(
        &testing::kafka(),
        "restore-bench-reader",
        &layout.events,
        Arc::clone(&codec),
        runtime.handle().clone(),
        memory,
    );
    // A new owner's claim would land at the end: restore everything before it.
    let reader: BaseConsumer =
        holdfast_platform::kafka::reader_config(&testing::kafka(), "restore-bench-end").create().unwrap();
    let (_, end) =
        reader.fetch_watermarks(&layout.events, 0, StdDuration::from_secs(10)).expect("watermarks");
    let mut times = Vec::with_capacity(runs);
    let mut raw_times = Vec::with_capacity(runs);
    for run in 1..=runs {
        let raw = raw_read(&layout, end);
        let started = Instant::now();
        let claims = std::collections::HashMap::from([(0, end)]);
        let mut restored = restorer.restore(&claims).expect("restore");
        let (mut state, restored) = restored.remove(&0).expect("partition 0").expect("restored");
        let elapsed = started.elapsed();
        state.arm_timers();
        let reservations: usize = state.resources.values().map(ResourceState::reservation_count).sum();
        println!(
            "  run {run}: {:.3} s, {} events ({:.0} events/s), {} void, {} resources, {reservations} reservations, {} open holds, {} outcomes remembered",
            elapsed.as_secs_f64(),
            restored.valid,
            restored.valid as f64 / elapsed.as_secs_f64(),
            restored.void,
            state.resources.len(),
            state.timers.len(),
            state.remembered(),
        );
        assert_eq!(restored.valid, written as u64, "every event restored");
        println!("         raw read of the same records: {:.3} s", raw.as_secs_f64());
        times.push(elapsed);
        raw_times.push(raw);
    }
    times.sort();
    raw_times.sort();
    let median = times[times.len() / 2];
    let raw = raw_times[raw_times.len() / 2];
    println!(
        "restore of one partition holding {written} events: median {:.3} s ({:.0} events/s), min {:.3} s, max {:.3} s over {runs} runs; raw read median {:.3} s (restore / raw read {:.2})",
        median.as_secs_f64(),
        written as f64 / median.as_secs_f64(),
        times[0].as_secs_f64(),
        times[times.len() - 1].as_secs_f64(),
        raw.as_secs_f64(),
        median.as_secs_f64() / raw.as_secs_f64(),
    );
    if keep {
        println!("topics kept: HOLDFAST_BENCH_TOPIC_PREFIX={}", args.topic_prefix);
    } else if let Err(error) = runtime.block_on(layout.delete(&testing::kafka())) {
        println!("could not delete the bench topics: {error}");
    }
}
