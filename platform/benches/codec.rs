//! Event codec throughput on one core with warm caches: encode, decode, and the round trip,
//! over a mix of one event of every type, in the Confluent wire format.
//!
//! The registry is needed only to register the schemas (set-up); when it does not answer,
//! the benchmark says so and exits cleanly. Decoding is polled once with `now_or_never`: a
//! decode that would wait (an HTTP call) fails the benchmark instead of being measured.
//!
//! The `compare` group measures the same mix three ways, so the hand-written codec has to earn
//! its place: `ours` (this crate's codec), `library` (`schema_registry_converter`'s
//! `AvroEncoder`/`AvroDecoder` with its schema caches warm, then the same mapping between Avro
//! values and events) and `apache-avro` (the Avro library directly, on schemas parsed once,
//! with the 5-byte Confluent header written and read by hand). Both others go through
//! `apache_avro::types::Value`; the library's async calls are driven by a current-thread
//! runtime (`block_on`), which adds well under a microsecond.
//!
//! `cargo bench -p holdfast-platform --bench codec -- --warm-up-time 1 --measurement-time 3`

use std::collections::HashMap;
use std::hint::black_box;

use apache_avro::Schema;
use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::writer::datum::GenericDatumWriter;
use criterion::{Criterion, Throughput};
use futures::FutureExt;
use holdfast_domain::{Event, EventType};
use holdfast_platform::codec::{EventCodec, from_avro, samples, schemas, to_avro, upcast};
use holdfast_platform::testing;
use schema_registry_converter::async_impl::avro::{AvroDecoder, AvroEncoder};
use schema_registry_converter::async_impl::schema_registry::SrSettings;
use schema_registry_converter::schema_registry_common::SubjectNameStrategy;

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

/// The other two ways to encode and decode, set up on the schemas `codec` registered.
struct Others {
    runtime: tokio::runtime::Runtime,
    encoder: AvroEncoder,
    decoder: AvroDecoder,
    /// The registered schema of each record, by full name, and by id.
    schemas: HashMap<String, (u32, Schema)>,
    by_id: HashMap<u32, (String, Schema)>,
    topic: String,
}

impl Others {
    fn new(codec: &EventCodec) -> Result<Self, String> {
        let runtime =
            tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
        let url = testing::registry().url;
        let (mut schemas, mut by_id) = (HashMap::new(), HashMap::new());
        for event_type in EventType::ALL {
            let id = codec.schema_id(event_type).ok_or("a schema not registered")?;
            let schema = Schema::parse_str(schemas::source(event_type)).map_err(|e| e.to_string())?;
            let name = schemas::full_name(event_type);
            schemas.insert(name.clone(), (id, schema.clone()));
            by_id.insert(id, (name, schema));
        }
        Ok(Self {
            runtime,
            encoder: AvroEncoder::new(SrSettings::new(url.clone())),
            decoder: AvroDecoder::new(SrSettings::new(url)),
            schemas,
            by_id,
            topic: codec.topic().to_owned(),
        })
    }

    fn library_encode(&self, event: &Event) -> Vec<u8> {
        let name = schemas::full_name(event.payload.event_type());
        let strategy = SubjectNameStrategy::TopicRecordNameStrategy(self.topic.clone(), name);
        self.runtime.block_on(self.encoder.encode_value(to_avro(event), &strategy)).expect("encodes")
    }

    fn library_decode(&self, bytes: &[u8]) -> Event {
        let decoded = self.runtime.block_on(self.decoder.decode(Some(bytes))).expect("decodes");
        let name = decoded.name.expect("a named record").fullname(None);
        let version = upcast::version_of(&decoded.value).expect("a version");
        from_avro(&name, version, decoded.value).expect("an event")
    }

    fn avro_encode(&self, event: &Event) -> Vec<u8> {
        let (id, schema) = &self.schemas[&schemas::full_name(event.payload.event_type())];
        let mut bytes = vec![0];
        bytes.extend_from_slice(&id.to_be_bytes());
        let writer = GenericDatumWriter::builder(schema).build().expect("a writer");
        bytes.extend(writer.write_value_to_vec(to_avro(event)).expect("encodes"));
        bytes
    }

    fn avro_decode(&self, bytes: &[u8]) -> Event {
        let id = u32::from_be_bytes(bytes[1..5].try_into().expect("a header"));
        let (name, schema) = &self.by_id[&id];
        let reader = GenericDatumReader::builder(schema).build().expect("a reader");
        let value = reader.read_value(&mut &bytes[5..]).expect("decodes");
        let version = upcast::version_of(&value).expect("a version");
        from_avro(name, version, value).expect("an event")
    }
}

fn compare(c: &mut Criterion, codec: &EventCodec, others: &Others) {
    let events = samples::one_of_each(42);
    let encoded: Vec<Vec<u8>> = events.iter().map(|e| codec.encode(e).expect("encodes")).collect();
    for (event, bytes) in events.iter().zip(&encoded) {
        assert_eq!(&others.library_decode(bytes), event, "the library reads our bytes");
        assert_eq!(&others.avro_decode(bytes), event, "apache-avro reads our bytes");
        assert_eq!(&decode_now(codec, &others.library_encode(event)), event, "we read the library's bytes");
        assert_eq!(&decode_now(codec, &others.avro_encode(event)), event, "we read apache-avro's bytes");
    }
    let mut group = c.benchmark_group("compare");
    group.throughput(Throughput::Elements(u64::try_from(events.len()).unwrap_or(1)));
    group.bench_function("encode/ours", |b| {
        b.iter(|| events.iter().for_each(|e| drop(black_box(codec.encode(black_box(e)).expect("encodes")))));
    });
    group.bench_function("encode/library", |b| {
        b.iter(|| events.iter().for_each(|e| drop(black_box(others.library_encode(black_box(e))))));
    });
    group.bench_function("encode/apache-avro", |b| {
        b.iter(|| events.iter().for_each(|e| drop(black_box(others.avro_encode(black_box(e))))));
    });
    group.bench_function("decode/ours", |b| {
        b.iter(|| encoded.iter().for_each(|bytes| drop(black_box(decode_now(codec, black_box(bytes))))));
    });
    group.bench_function("decode/library", |b| {
        b.iter(|| encoded.iter().for_each(|bytes| drop(black_box(others.library_decode(black_box(bytes))))));
    });
    group.bench_function("decode/apache-avro", |b| {
        b.iter(|| encoded.iter().for_each(|bytes| drop(black_box(others.avro_decode(black_box(bytes))))));
    });
    group.finish();
}

fn main() {
    match set_up() {
        Ok(codec) => {
            let mut criterion = Criterion::default().configure_from_args();
            bench(&mut criterion, &codec);
            match Others::new(&codec) {
                Ok(others) => compare(&mut criterion, &codec, &others),
                Err(why) => eprintln!("comparison skipped: {why}"),
            }
            criterion.final_summary();
        }
        Err(why) => eprintln!("codec benchmark skipped: {why} (start it with `make stack`)"),
    }
}
