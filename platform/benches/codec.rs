//! Event codec throughput on one core with warm caches: encode, decode, and the round trip,
//! over a mix of one event of every type, in the Confluent wire format.
//!
//! The registry is needed only to register the schemas (set-up); when it does not answer,
//! the benchmark says so and exits cleanly. Decoding is polled once with `now_or_never`: a
//! decode that would wait (an HTTP call) fails the benchmark instead of being measured.
//!
//! `cargo bench -p holdfast-platform --bench codec -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::{Criterion, Throughput};
use futures::FutureExt;
use holdfast_domain::Event;
use holdfast_platform::codec::{EventCodec, samples};
use holdfast_platform::testing;

/// A registered codec on a fresh topic, or why there is none.
fn set_up() -> Result<EventCodec, String> {
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    let registry = testing::registry();
    let codec = EventCodec::new(&registry, &testing::unique("bench.events")).map_err(|e| e.to_string())?;
    runtime
        .block_on(codec.register_all())
        .map_err(|e| format!("the schema registry at {} did not register the schemas: {e}", registry.url))?;
    Ok(codec)
}

/// Decodes without waiting: the cache must answer.
fn decode_now(codec: &EventCodec, bytes: &[u8]) -> Event {
    match codec.decode(bytes).now_or_never() {
        Some(Ok(event)) => event,
        Some(Err(e)) => panic!("decode failed: {e}"),
        None => panic!("decode waited: the hot path must not call the registry"),
    }
}

fn bench(c: &mut Criterion, codec: &EventCodec) {
    let events = samples::one_of_each(42);
    let encoded: Vec<Vec<u8>> = events.iter().map(|e| codec.encode(e).expect("encodes")).collect();
    for (event, bytes) in events.iter().zip(&encoded) {
        assert_eq!(&decode_now(codec, bytes), event, "round trip before measuring");
    }
    let mut group = c.benchmark_group("codec");
    group.throughput(Throughput::Elements(u64::try_from(events.len()).unwrap_or(1)));
    group.bench_function("encode", |b| {
        b.iter(|| {
            for event in &events {
                black_box(codec.encode(black_box(event)).expect("encodes"));
            }
        });
    });
    group.bench_function("decode", |b| {
        b.iter(|| {
            for bytes in &encoded {
                black_box(decode_now(codec, black_box(bytes)));
            }
        });
    });
    group.bench_function("encode+decode", |b| {
        b.iter(|| {
            for event in &events {
                let bytes = codec.encode(black_box(event)).expect("encodes");
                black_box(decode_now(codec, &bytes));
            }
        });
    });
    group.finish();
}

fn main() {
    match set_up() {
        Ok(codec) => {
            let mut criterion = Criterion::default().configure_from_args();
            bench(&mut criterion, &codec);
            criterion.final_summary();
        }
        Err(why) => eprintln!("codec benchmark skipped: {why} (start it with `make stack`)"),
    }
}
