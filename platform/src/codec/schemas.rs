//! The event schemas, embedded in the binary from `schemas/*.avsc` and parsed once per process.
//!
//! This module owns the mapping between event types and Avro record names: the current
//! records live in [`NAMESPACE`]; superseded versions live in sibling namespaces
//! (`dev.holdfast.reservations.v0`, …), which gives them subjects of their own under
//! `TopicRecordNameStrategy`. It never talks to the registry.

use std::borrow::Cow;
use std::sync::LazyLock;

use apache_avro::Schema;
use apache_avro::schema::Name;
use holdfast_domain::EventType;

use super::CodecError;
use super::direct::Layout;
use super::positional::Shape;

/// Avro namespace of the current event records.
pub const NAMESPACE: &str = "dev.holdfast.reservations.v1";

/// Prefix shared by every Holdfast event namespace, current and superseded; a writer record
/// outside it is not a Holdfast event.
pub const NAMESPACE_FAMILY: &str = "dev.holdfast.reservations.";

/// `schemas/legacy/ReservationHeld.v0.avsc`: the superseded version 0 of `ReservationHeld`
/// (a relative `hold_seconds` instead of the absolute `expires_at`). Never written by this
/// build; embedded so tests and tools can produce old records that the upcaster must read.
pub const RESERVATION_HELD_V0: &str = include_str!("../../../schemas/legacy/ReservationHeld.v0.avsc");

/// The JSON of the current schema of `event_type`, exactly as in `schemas/<Type>.avsc`.
#[must_use]
pub fn source(event_type: EventType) -> &'static str {
    match event_type {
        EventType::ResourceDefined => include_str!("../../../schemas/ResourceDefined.avsc"),
        EventType::CapacityChanged => include_str!("../../../schemas/CapacityChanged.avsc"),
        EventType::ReservationHeld => include_str!("../../../schemas/ReservationHeld.avsc"),
        EventType::ReservationConfirmed => {
            include_str!("../../../schemas/ReservationConfirmed.avsc")
        }
        EventType::ReservationCancelled => {
            include_str!("../../../schemas/ReservationCancelled.avsc")
        }
        EventType::HoldExpired => include_str!("../../../schemas/HoldExpired.avsc"),
    }
}

/// The full Avro name of the current record of `event_type`, e.g.
/// `dev.holdfast.reservations.v1.ReservationHeld`.
#[must_use]
pub fn full_name(event_type: EventType) -> String {
    format!("{NAMESPACE}.{}", event_type.as_str())
}

/// The event type a writer record denotes: its simple name is an event type's name and its
/// namespace belongs to [`NAMESPACE_FAMILY`]. `None` for anything else.
#[must_use]
pub fn event_type_of(name: &Name) -> Option<EventType> {
    let namespace = name.namespace()?;
    if namespace.starts_with(NAMESPACE_FAMILY) { EventType::from_name(name.name()) } else { None }
}

/// Whether `schema` never refers to a named type by name (every named type is defined where
/// it is used), so reading and writing it needs no table of names.
pub(crate) fn is_self_contained(schema: &Schema) -> bool {
    match schema {
        Schema::Ref { .. } => false,
        Schema::Record(record) => record.fields.iter().all(|f| is_self_contained(&f.schema)),
        Schema::Union(union) => union.variants().iter().all(is_self_contained),
        Schema::Array(array) => is_self_contained(&array.items),
        Schema::Map(map) => is_self_contained(&map.types),
        _ => true,
    }
}

/// Position of `event_type` in [`EventType::ALL`], for per-type arrays.
pub(crate) fn index(event_type: EventType) -> usize {
    EventType::ALL.iter().position(|t| *t == event_type).unwrap_or_default()
}

/// The schemas a codec reads and writes: the embedded current ones, or a candidate in place
/// of one of them (see [`super::EventCodec::with_schema`]).
#[derive(Debug, Clone)]
pub(crate) struct Catalogue {
    /// Schema JSON, in [`EventType::ALL`] order.
    sources: Vec<Cow<'static, str>>,
    /// Parsed schemas, in the same order.
    schemas: Vec<Schema>,
    /// Their canonical forms: a writer schema with the same form decodes to the same shape.
    canonical: Vec<String>,
    /// How each schema can be read and written directly.
    layouts: Vec<Layout>,
}

impl Catalogue {
    /// The schema JSON of `event_type`.
    pub(crate) fn source(&self, event_type: EventType) -> &str {
        &self.sources[index(event_type)]
    }

    /// The parsed schema of `event_type`.
    pub(crate) fn schema(&self, event_type: EventType) -> &Schema {
        &self.schemas[index(event_type)]
    }

    /// The Parsing Canonical Form of the schema of `event_type`.
    pub(crate) fn canonical(&self, event_type: EventType) -> &str {
        &self.canonical[index(event_type)]
    }

    /// How `event_type`'s schema can be read and written directly.
    pub(crate) fn layout(&self, event_type: EventType) -> Layout {
        self.layouts[index(event_type)]
    }

    /// Puts the candidate `source` in place of `event_type`'s schema. It must parse and
    /// name the same record (so it evolves the same subject).
    pub(crate) fn replace(&mut self, event_type: EventType, source: String) -> Result<(), CodecError> {
        let invalid = |detail: String| CodecError::InvalidSchema { name: full_name(event_type), detail };
        let schema = Schema::parse_str(&source).map_err(|e| invalid(e.to_string()))?;
        let name = schema.name().map(|n| n.fullname(None));
        if name.as_deref() != Some(full_name(event_type).as_str()) {
            return Err(invalid(format!("a candidate must keep the record name, not {name:?}")));
        }
        let i = index(event_type);
        self.canonical[i] = schema.canonical_form();
        // A candidate's fields may differ from the embedded ones: they go by name.
        self.layouts[i] = Layout { self_contained: is_self_contained(&schema), positional: false };
        self.schemas[i] = schema;
        self.sources[i] = Cow::Owned(source);
        Ok(())
    }
}

/// Parsed once per process; an error names the schema that failed (a build defect).
static CATALOGUE: LazyLock<Result<Catalogue, (EventType, String)>> = LazyLock::new(|| {
    let mut schemas = Vec::with_capacity(EventType::ALL.len());
    for event_type in EventType::ALL {
        let schema = Schema::parse_str(source(event_type)).map_err(|e| (event_type, e.to_string()))?;
        schemas.push(schema);
    }
    Ok(Catalogue {
        sources: EventType::ALL.map(|t| Cow::Borrowed(source(t))).to_vec(),
        canonical: schemas.iter().map(Schema::canonical_form).collect(),
        layouts: schemas
            .iter()
            .map(|s| Layout { self_contained: is_self_contained(s), positional: true })
            .collect(),
        schemas,
    })
});

/// The canonical forms of the embedded schemas as they were before the envelope gained
/// `principal`, in [`EventType::ALL`] order: the writer schemas of every record written
/// until then.
static BEFORE_PRINCIPAL: LazyLock<Vec<Option<String>>> = LazyLock::new(|| {
    EventType::ALL
        .iter()
        .map(|t| {
            let mut json: serde_json::Value = serde_json::from_str(source(*t)).ok()?;
            json.get_mut("fields")?.as_array_mut()?.retain(|field| field["name"] != "principal");
            Schema::parse_str(&json.to_string()).ok().map(|schema| schema.canonical_form())
        })
        .collect()
});

/// The shape in which the hand reader reads a writer schema of `event_type` with the
/// canonical form `canonical`: the embedded schema's, or its form before `principal`; `None`
/// for any other writer.
pub(crate) fn positional_shape(event_type: EventType, canonical: &str) -> Option<Shape> {
    let embedded = catalogue().ok()?;
    if canonical == embedded.canonical(event_type) {
        Some(Shape::Current)
    } else if BEFORE_PRINCIPAL[index(event_type)].as_deref() == Some(canonical) {
        Some(Shape::BeforePrincipal)
    } else {
        None
    }
}

/// The embedded current schemas, parsed.
///
/// # Errors
/// [`CodecError::InvalidSchema`] when an embedded schema does not parse (a build defect the
/// unit tests catch).
pub(crate) fn catalogue() -> Result<&'static Catalogue, CodecError> {
    CATALOGUE.as_ref().map_err(|(event_type, detail)| CodecError::InvalidSchema {
        name: full_name(*event_type),
        detail: detail.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use apache_avro::schema::RecordSchema;

    fn parse(src: &str) -> Schema {
        Schema::parse_str(src).expect("embedded schema parses")
    }

    #[test]
    fn every_schema_parses_with_its_name_and_documented_fields() {
        for event_type in EventType::ALL {
            let schema = parse(source(event_type));
            let Schema::Record(RecordSchema { name, fields, doc, .. }) = &schema else {
                panic!("{event_type} is not a record");
            };
            assert_eq!(name.fullname(None), full_name(event_type));
            assert_eq!(event_type_of(name), Some(event_type));
            assert!(doc.is_some(), "{event_type} has a doc");
            let names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
            assert_eq!(
                &names[..11],
                [
                    "event_id",
                    "event_type",
                    "event_version",
                    "resource_id",
                    "occurred_at",
                    "command_id",
                    "causation_id",
                    "correlation_id",
                    "traceparent",
                    "tracestate",
                    "principal",
                ],
                "{event_type} starts with the envelope"
            );
            for field in fields {
                assert!(field.doc.is_some(), "{event_type}.{} has a doc", field.name);
            }
        }
        assert!(catalogue().is_ok());
    }

    #[test]
    fn logical_types_are_parsed_as_such() {
        let schema = parse(source(EventType::ReservationHeld));
        let Schema::Record(record) = &schema else {
            panic!("record");
        };
        let kind = |name: &str| {
            let field = &record.fields[record.lookup[name]];
            std::mem::discriminant(&field.schema)
        };
        assert_eq!(
            kind("event_id"),
            std::mem::discriminant(&parse(r#"{"type":"string","logicalType":"uuid"}"#))
        );
        assert_eq!(kind("occurred_at"), std::mem::discriminant(&Schema::TimestampMicros));
        assert_eq!(kind("expires_at"), std::mem::discriminant(&Schema::TimestampMicros));
        assert_eq!(kind("from"), std::mem::discriminant(&Schema::Date));
    }

    #[test]
    fn every_schema_is_self_contained_and_references_are_noticed() {
        for event_type in EventType::ALL {
            assert!(is_self_contained(&parse(source(event_type))), "{event_type}");
        }
        let with_ref = parse(
            r#"{"type":"record","name":"R","fields":[
                {"name":"a","type":{"type":"enum","name":"E","symbols":["X"]}},
                {"name":"b","type":["null","E"]}]}"#,
        );
        assert!(!is_self_contained(&with_ref));
    }

    #[test]
    fn the_legacy_schema_parses_in_its_own_namespace() {
        let schema = parse(RESERVATION_HELD_V0);
        let name = schema.name().expect("named");
        assert_eq!(name.namespace(), Some("dev.holdfast.reservations.v0"));
        assert_eq!(event_type_of(name), Some(EventType::ReservationHeld));
    }

    #[test]
    fn foreign_records_are_not_events() {
        for foreign in
            ["dev.other.ReservationHeld", "ReservationHeld", "dev.holdfast.reservations.v1.Teleported"]
        {
            let name = Name::new(foreign).expect("valid name");
            assert_eq!(event_type_of(&name), None, "{foreign}");
        }
    }
}
