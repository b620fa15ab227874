//! What the fuzz targets share: the writer schemas the `event_frame` target decodes with, the
//! two registry-free codecs that know them, and how a fuzz input becomes a Confluent frame.
//!
//! The targets themselves are in `src/bin/`; `examples/seeds.rs` writes the seed corpora with
//! the same table, so a seed's first byte picks the same writer schema as the target reads.
//! Nothing here talks to a registry, Kafka or the network.

use holdfast_domain::EventType;
use holdfast_platform::codec::log::Protocol;
use holdfast_platform::codec::schemas::{self, RESERVATION_HELD_V0};
use holdfast_platform::codec::{CodecError, EventCodec};
use holdfast_platform::config::RegistryArgs;
use serde_json::{Value, json};

/// How a writer schema differs from the current schema of its event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// The current schema itself: read by the positional hand reader.
    Current,
    /// A newer writer: one more optional field (with a null default).
    Evolved,
    /// The same fields in reverse order: another shape, resolved by apache-avro.
    Reordered,
    /// An older writer: without the optional fields that have a default.
    Trimmed,
}

impl Variant {
    /// Every variant, in table order.
    pub const ALL: [Self; 4] = [Self::Current, Self::Evolved, Self::Reordered, Self::Trimmed];
}

/// What a writer schema of the table describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An event type's schema in one of its variants.
    Event(EventType, Variant),
    /// `ReservationHeld` version 0, which the upcaster reads.
    ReservationHeldV0,
    /// A protocol record of the events topic.
    Protocol(Protocol),
    /// A record that is no Holdfast event.
    Foreign,
}

/// One writer schema the codecs know, under its schema id.
#[derive(Debug, Clone)]
pub struct Writer {
    /// The schema id a frame names.
    pub id: u32,
    /// What the schema describes.
    pub kind: Kind,
    /// The schema's JSON.
    pub source: String,
}

/// Every writer schema, in the order a fuzz input's first byte indexes them.
///
/// # Panics
/// When an embedded schema is not a JSON record (a build defect the unit tests catch).
#[must_use]
pub fn writers() -> Vec<Writer> {
    let mut kinds: Vec<Kind> = Variant::ALL
        .into_iter()
        .flat_map(|v| EventType::ALL.into_iter().map(move |t| Kind::Event(t, v)))
        .collect();
    kinds.push(Kind::ReservationHeldV0);
    kinds.extend(Protocol::ALL.map(Kind::Protocol));
    kinds.push(Kind::Foreign);
    kinds
        .into_iter()
        .zip(1..)
        .map(|(kind, id)| {
            let source = match kind {
                Kind::Event(t, v) => variant(schemas::source(t), v),
                Kind::ReservationHeldV0 => RESERVATION_HELD_V0.to_owned(),
                Kind::Protocol(p) => p.source().to_owned(),
                Kind::Foreign => FOREIGN.to_owned(),
            };
            Writer { id, kind, source }
        })
        .collect()
}

/// A record from outside the Holdfast namespaces.
const FOREIGN: &str = r#"{"type":"record","name":"Teleported","namespace":"dev.other.v1",
    "fields":[{"name":"event_version","type":"int"},{"name":"who","type":"string"}]}"#;

/// `source` (an event schema's JSON) changed into `variant`.
///
/// # Panics
/// When `source` is not a JSON record with fields (a build defect).
#[must_use]
pub fn variant(source: &str, variant: Variant) -> String {
    let mut schema: Value = serde_json::from_str(source).expect("an embedded schema is JSON");
    let fields = schema["fields"].as_array_mut().expect("an event schema is a record with fields");
    match variant {
        Variant::Current => return source.to_owned(),
        Variant::Evolved => fields.push(json!({
            "name": "channel",
            "type": ["null", "string"],
            "default": null,
            "doc": "Where the command came from (a field only newer writers know)."
        })),
        Variant::Reordered => fields.reverse(),
        Variant::Trimmed => fields.retain(|f| !f.get("default").is_some_and(Value::is_null)),
    }
    schema.to_string()
}

/// The two codecs every frame is decoded with, each knowing every writer of [`writers`].
#[derive(Debug)]
pub struct Codecs {
    /// The codec as the services build it: current schemas are read positionally.
    pub current: EventCodec,
    /// A codec whose schemas are the [`Variant::Evolved`] candidates: evolved writers are
    /// read by field name, current ones through apache-avro's resolution.
    pub evolved: EventCodec,
}

impl Codecs {
    /// Both codecs, offline.
    ///
    /// # Errors
    /// A [`CodecError`] when a schema does not parse (a build defect).
    pub fn new() -> Result<Self, CodecError> {
        // Never called: every schema a frame can name is learnt below.
        let nowhere = RegistryArgs { url: "http://127.0.0.1:9".to_owned() };
        let current = EventCodec::new(&nowhere, "fuzz.events")?;
        let mut evolved = EventCodec::new(&nowhere, "fuzz.events")?;
        for event_type in EventType::ALL {
            evolved =
                evolved.with_schema(event_type, &variant(schemas::source(event_type), Variant::Evolved))?;
        }
        for writer in writers() {
            current.learn_schema(writer.id, &writer.source)?;
            evolved.learn_schema(writer.id, &writer.source)?;
        }
        Ok(Self { current, evolved })
    }
}

/// The Confluent frame a fuzz input stands for: its first byte picks a writer of `writers`
/// (the rest is the Avro body), or, one past the last writer, the rest is the whole frame.
#[must_use]
pub fn frame(writers: &[Writer], input: &[u8]) -> Vec<u8> {
    let Some((&pick, body)) = input.split_first() else { return Vec::new() };
    match writers.get(usize::from(pick) % (writers.len() + 1)) {
        Some(writer) => {
            let mut frame = Vec::with_capacity(body.len() + 5);
            frame.push(0);
            frame.extend_from_slice(&writer.id.to_be_bytes());
            frame.extend_from_slice(body);
            frame
        }
        None => body.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_writer_parses_and_both_codecs_learn_it() {
        let codecs = Codecs::new().expect("codecs");
        let writers = writers();
        assert_eq!(writers.len(), 28);
        for event_type in EventType::ALL {
            assert!(codecs.current.schema_id(event_type).is_some(), "{event_type}");
            assert!(codecs.evolved.schema_id(event_type).is_some(), "{event_type}");
            assert_ne!(codecs.current.schema_id(event_type), codecs.evolved.schema_id(event_type));
        }
    }

    /// The seeds are real records: a stale corpus (a schema changed since `examples/seeds.rs`
    /// wrote it) fails here rather than quietly fuzzing refusals.
    #[test]
    fn the_event_seeds_decode_with_both_codecs() {
        let codecs = Codecs::new().expect("codecs");
        let writers = writers();
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/corpus/event_frame");
        let mut seeds = 0;
        for entry in std::fs::read_dir(dir).expect("the seed corpus") {
            let path = entry.expect("a directory entry").path();
            let name = path.display().to_string();
            let frame = frame(&writers, &std::fs::read(&path).expect("a seed"));
            let refused = name.contains("foreign") || name.contains("wrong-magic");
            for codec in [&codecs.current, &codecs.evolved] {
                let decoded = codec.decode_record_cached(&frame);
                assert_eq!(matches!(decoded, Some(Ok(_))), !refused, "{name}: {decoded:?}");
            }
            seeds += 1;
        }
        assert!(seeds > writers.len(), "{seeds} seeds");
    }

    #[test]
    fn the_first_byte_picks_the_writer() {
        let writers = writers();
        assert_eq!(frame(&writers, &[0, 9, 9]), [0, 0, 0, 0, 1, 9, 9]);
        assert_eq!(frame(&writers, &[27, 1]), [0, 0, 0, 0, 28, 1]);
        assert_eq!(frame(&writers, &[28, 7, 7]), [7, 7]);
        assert_eq!(frame(&writers, &[29]), [0, 0, 0, 0, 1]);
        assert!(frame(&writers, &[]).is_empty());
    }
}
