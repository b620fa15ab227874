//! Writes the seed corpus of the `event_frame` target: real records of every writer schema
//! of `holdfast_fuzz::writers`, each file the writer's index byte followed by the Avro body
//! (the form the target reads), plus two whole frames for the raw-frame index.
//!
//!   cargo run --example seeds [-- OUT_DIR]     (default: fuzz/corpus/event_frame)
//!
//! Events come from the codec's deterministic samples, so the seeds change only when a schema
//! or the samples do.

use std::collections::HashMap;
use std::path::PathBuf;

use apache_avro::Schema;
use apache_avro::types::Value;
use holdfast_domain::{EventType, ResourceId};
use holdfast_fuzz::{Kind, Writer, writers};
use holdfast_platform::codec::wire::{self, HEADER_LEN};
use holdfast_platform::codec::{samples, to_avro};
use uuid::Uuid;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::env::args()
        .nth(1)
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus/event_frame"), PathBuf::from);
    std::fs::create_dir_all(&out)?;
    let writers = writers();
    let mut written = 0;
    for (index, writer) in writers.iter().enumerate() {
        for (n, values) in values_of(writer).into_iter().enumerate() {
            let schema = Schema::parse_str(&writer.source)?;
            let frame = wire::encode(writer.id, &schema, &record(&schema, values))?;
            let mut seed = vec![u8::try_from(index)?];
            seed.extend_from_slice(&frame[HEADER_LEN..]);
            std::fs::write(out.join(format!("{index:02}-{}-{n}.bin", name(writer))), seed)?;
            written += 1;
            // Whole frames for the raw index: one of a known schema id, one with a wrong magic byte.
            if index == 0 && n == 0 {
                let raw = u8::try_from(writers.len())?;
                std::fs::write(out.join("raw-known-id.bin"), [&[raw][..], &frame].concat())?;
                std::fs::write(out.join("raw-wrong-magic.bin"), [&[raw, b'{'][..], &frame[1..]].concat())?;
                written += 2;
            }
        }
    }
    eprintln!("wrote {written} seeds to {}", out.display());
    Ok(())
}

/// A short file-name part for `writer`.
fn name(writer: &Writer) -> String {
    match writer.kind {
        Kind::Event(t, v) => format!("{t}-{v:?}").to_lowercase(),
        Kind::ReservationHeldV0 => "reservationheld-v0".to_owned(),
        Kind::Protocol(p) => p.full_name().rsplit('.').next().unwrap_or_default().to_lowercase(),
        Kind::Foreign => "foreign".to_owned(),
    }
}

/// Field values of a few records `writer` can write, by field name.
fn values_of(writer: &Writer) -> Vec<HashMap<String, Value>> {
    let events = |t: EventType| (1..=2).map(move |seed| fields(to_avro(&samples::event(t, seed))));
    match writer.kind {
        Kind::Event(t, _) => events(t).collect(),
        Kind::ReservationHeldV0 => events(EventType::ReservationHeld)
            .map(|mut f| {
                f.remove("expires_at");
                f.insert("event_version".into(), Value::Int(0));
                f.insert("hold_seconds".into(), Value::Int(900));
                f
            })
            .collect(),
        Kind::Protocol(p) if p.full_name().ends_with("PartitionClaimed") => vec![HashMap::from([
            ("token".into(), Value::Uuid(Uuid::from_u128(0x0193_5b3e_0000_7000_8000_0000_0000_0007))),
            ("partition".into(), Value::Int(17)),
            ("owner".into(), Value::String("command-service-0".into())),
            ("address".into(), Value::Union(1, Box::new(Value::String("10.0.0.7:8080".into())))),
            ("claimed_at".into(), Value::TimestampMicros(1_767_225_600_000_000)),
        ])],
        Kind::Protocol(_) => {
            let resource = ResourceId::parse("hotel.berlin:room-101").expect("valid");
            let rejection = holdfast_domain::Rejection::UnknownResource { resource_id: resource.clone() };
            vec![HashMap::from([
                ("resource_id".into(), Value::String(resource.to_string())),
                ("occurred_at".into(), Value::TimestampMicros(1_767_225_600_000_000)),
                ("command_id".into(), Value::Uuid(Uuid::from_u128(1))),
                ("correlation_id".into(), Value::Uuid(Uuid::from_u128(2))),
                ("principal".into(), Value::Union(1, Box::new(Value::String("customer-42".into())))),
                ("command".into(), Value::String("PlaceHold".into())),
                ("code".into(), Value::String(rejection.code().into())),
                ("detail".into(), Value::String(rejection.to_string())),
                ("rejection".into(), Value::String(serde_json::to_string(&rejection).expect("json"))),
            ])]
        }
        Kind::Foreign => vec![HashMap::from([
            ("event_version".into(), Value::Int(1)),
            ("who".into(), Value::String("someone else".into())),
        ])],
    }
}

/// The fields of a generic record, by name.
fn fields(value: Value) -> HashMap<String, Value> {
    match value {
        Value::Record(fields) => fields.into_iter().collect(),
        _ => HashMap::new(),
    }
}

/// A record of `schema` from `values`: its fields in the schema's order, null where absent.
fn record(schema: &Schema, mut values: HashMap<String, Value>) -> Value {
    let Schema::Record(record) = schema else { return Value::Null };
    Value::Record(
        record
            .fields
            .iter()
            .map(|f| {
                let value = values.remove(&f.name).unwrap_or_else(|| Value::Union(0, Box::new(Value::Null)));
                (f.name.clone(), value)
            })
            .collect(),
    )
}
