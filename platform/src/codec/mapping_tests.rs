//! Unit tests of the mapping (no registry): round trips through values and through the
//! binary datum, schema validity of every produced value, and typed errors for bad values.

use apache_avro::Schema;
use apache_avro::types::Value;
use holdfast_domain::{Event, EventType};

use super::{from_avro, to_avro};
use crate::codec::direct::{self, Layout};
use crate::codec::positional::{self, Shape};
use crate::codec::samples;
use crate::codec::{CodecError, schemas, wire};

fn schema(event_type: EventType) -> Schema {
    Schema::parse_str(schemas::source(event_type)).expect("schema parses")
}

fn set(value: &mut Value, name: &str, new: Value) {
    let Value::Record(fields) = value else { panic!("record") };
    let slot = fields.iter_mut().find(|(n, _)| n == name).expect("field exists");
    slot.1 = new;
}

fn decode_value(event: &Event, value: Value) -> Result<Event, CodecError> {
    from_avro(&schemas::full_name(event.payload.event_type()), 1, value)
}

#[test]
fn every_event_type_round_trips_through_values_and_bytes() {
    for seed in 0..200 {
        for event in samples::one_of_each(seed) {
            let event_type = event.payload.event_type();
            let schema = schema(event_type);
            let value = to_avro(&event);
            assert!(value.validate(&schema), "{event_type} value fits its schema (seed {seed})");
            assert_eq!(decode_value(&event, value.clone()).expect("from value"), event);

            let bytes = wire::encode(7, &schema, &value).expect("encoded");
            let (id, body) = wire::split(&bytes).expect("framed");
            let decoded = wire::decode(id, &schema, body).expect("decoded");
            assert_eq!(from_avro(event_type.as_str(), 1, decoded).expect("event"), event);
        }
    }
}

#[test]
fn domain_rules_apply_on_decode_and_name_the_field() {
    let held = samples::event(EventType::ReservationHeld, 1);
    let cases: [(&str, Value); 7] = [
        ("resource_id", Value::String(String::new())),
        ("quantity", Value::Int(0)),
        ("quantity", Value::Int(-5)),
        ("to", Value::Date(0)),
        ("customer_id", Value::String(" padded ".into())),
        ("reservation_id", Value::String("r1_nope".into())),
        ("expires_at", Value::TimestampMicros(i64::MAX)),
    ];
    for (field, bad) in cases {
        let mut value = to_avro(&held);
        set(&mut value, field, bad);
        match decode_value(&held, value) {
            Err(CodecError::InvalidField { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: expected InvalidField, got {other:?}"),
        }
    }
}

#[test]
fn wrong_types_missing_fields_and_inconsistencies_are_invalid_fields() {
    let cancelled = samples::event(EventType::ReservationCancelled, 2);
    let expect_invalid = |value: Value, field: &str| match decode_value(&cancelled, value) {
        Err(CodecError::InvalidField { field: f, .. }) => assert_eq!(f, field),
        other => panic!("{field}: expected InvalidField, got {other:?}"),
    };
    let mut value = to_avro(&cancelled);
    set(&mut value, "released", Value::Enum(2, "REFUNDED".into()));
    expect_invalid(value, "released");
    let mut value = to_avro(&cancelled);
    set(&mut value, "event_id", Value::Int(3));
    expect_invalid(value, "event_id");
    let mut value = to_avro(&cancelled);
    set(&mut value, "event_type", Value::String("HoldExpired".into()));
    expect_invalid(value, "event_type");
    let mut value = to_avro(&cancelled);
    let other = samples::event(EventType::HoldExpired, 99);
    set(&mut value, "resource_id", Value::String(other.envelope.resource_id.to_string()));
    expect_invalid(value, "reservation_id");
    let Value::Record(mut fields) = to_avro(&cancelled) else { panic!("record") };
    fields.retain(|(n, _)| n != "occurred_at");
    expect_invalid(Value::Record(fields), "occurred_at");
}

#[test]
fn optional_fields_may_be_absent_and_unknown_fields_are_ignored() {
    let confirmed = samples::event(EventType::ReservationConfirmed, 3);
    let Value::Record(mut fields) = to_avro(&confirmed) else { panic!("record") };
    fields.retain(|(n, _)| !matches!(n.as_str(), "payment_ref" | "traceparent" | "tracestate" | "principal"));
    fields.push(("loyalty_points".into(), Value::Int(12)));
    let decoded = decode_value(&confirmed, Value::Record(fields)).expect("decodes");
    assert_eq!((decoded.envelope.traceparent, decoded.envelope.principal), (None, None));
    assert!(matches!(
        decoded.payload,
        holdfast_domain::EventPayload::ReservationConfirmed { payment_ref: None, .. }
    ));
}

#[test]
fn unknown_record_names_and_versions_are_refused() {
    let event = samples::event(EventType::HoldExpired, 4);
    let err = from_avro("dev.holdfast.reservations.v1.ReservationTeleported", 1, to_avro(&event))
        .expect_err("unknown");
    assert!(matches!(err, CodecError::UnknownRecordName { .. }), "{err}");
    let err = from_avro("HoldExpired", 9, to_avro(&event)).expect_err("too new");
    assert!(matches!(err, CodecError::UnsupportedVersion { version: 9, .. }), "{err}");
    let err = from_avro("HoldExpired", 1, Value::Null).expect_err("not a record");
    assert!(matches!(err, CodecError::InvalidField { .. }), "{err}");
}

#[test]
fn the_direct_path_writes_the_same_bytes_and_reads_the_same_events() {
    let layouts = [(true, true), (true, false), (false, true), (false, false)]
        .map(|(self_contained, positional)| Layout { self_contained, positional });
    for seed in 0..200 {
        for event in samples::one_of_each(seed) {
            let event_type = event.payload.event_type();
            let schema = schema(event_type);
            let generic = wire::encode(7, &schema, &to_avro(&event)).expect("generic");
            for layout in layouts {
                let mut bytes = wire::start(7);
                direct::write(&mut bytes, &schema, layout, &event).expect("direct");
                assert_eq!(bytes, generic, "{event_type} seed {seed} {layout:?}");
                let body = &bytes[wire::HEADER_LEN..];
                let event_read = if layout.positional {
                    positional::read(7, body, event_type, Shape::Current)
                        .expect("read")
                        .into_event(event_type)
                } else {
                    wire::read_datum(7, body, |input| direct::read(input, &schema, layout, event_type))
                        .expect("read")
                        .into_event(event_type)
                };
                assert_eq!(event_read.expect("event"), event, "{event_type} seed {seed} {layout:?}");
            }
        }
    }
}

#[test]
fn the_direct_readers_report_every_cut_as_truncation() {
    let event = samples::event(EventType::ReservationCancelled, 5);
    let schema = schema(EventType::ReservationCancelled);
    for positional in [true, false] {
        let layout = Layout { self_contained: true, positional };
        let mut bytes = wire::start(1);
        direct::write(&mut bytes, &schema, layout, &event).expect("direct");
        let body = &bytes[wire::HEADER_LEN..];
        for cut in 0..body.len() {
            let result = if positional {
                positional::read(1, &body[..cut], EventType::ReservationCancelled, Shape::Current).map(|_| ())
            } else {
                wire::read_datum(1, &body[..cut], |input| {
                    direct::read(input, &schema, layout, EventType::ReservationCancelled)
                })
                .map(|_| ())
            };
            assert!(matches!(result, Err(CodecError::Truncated { .. })), "cut at {cut}: {result:?}");
        }
    }
}

/// The positional reader refuses what apache-avro's reader refuses, with the same kind of error.
#[test]
fn the_positional_reader_refuses_malformed_bodies_as_apache_avro_does() {
    let event = samples::event(EventType::ReservationHeld, 3);
    let event_type = EventType::ReservationHeld;
    let schema = schema(event_type);
    let mut bytes = wire::start(1);
    direct::write(&mut bytes, &schema, Layout { self_contained: true, positional: true }, &event)
        .expect("direct");
    let body = bytes[wire::HEADER_LEN..].to_vec();
    let kind = |result: Result<(), CodecError>| match result {
        Ok(()) => "ok",
        Err(CodecError::Truncated { .. }) => "truncated",
        Err(CodecError::Corrupt { .. }) => "corrupt",
        Err(_) => "other",
    };
    let generic = |body: &[u8]| {
        let value = wire::decode(1, &schema, body)?;
        from_avro(&schemas::full_name(event_type), 1, value).map(|_| ())
    };
    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
    let mut padded = body.clone();
    padded.push(0);
    cases.push(("a byte left over", padded));
    // The event id's length (36 characters, zig-zag 72) made negative.
    let mut negative = body.clone();
    negative[0] = 0x47;
    cases.push(("a negative string length", negative));
    let mut not_utf8 = body.clone();
    not_utf8[1] = 0xff;
    cases.push(("a string that is not UTF-8", not_utf8));
    // The traceparent union's branch, after the three other ids: 0 (null) or 1 (string);
    // branch 2 does not exist.
    // Where `occurred_at` starts: after the event id, the type, the version (one byte) and
    // the resource id, each string one length byte and its characters.
    let occurred_at: usize =
        1 + 36 + 1 + event_type.as_str().len() + 1 + 1 + event.envelope.resource_id.as_str().len();
    let mut branch = body.clone();
    let after_ids = occurred_at + varint_len(&body[occurred_at..]) + 3 * 37;
    assert!(matches!(body[after_ids], 0 | 2), "the traceparent's branch: null (0) or string (2)");
    branch[after_ids] = 4;
    cases.push(("an unknown union branch", branch));
    let mut overlong = body[..occurred_at].to_vec();
    overlong.extend([0xff; 11]);
    cases.push(("a varint of eleven bytes", overlong));
    for (case, bytes) in cases {
        let ours = kind(
            positional::read(1, &bytes, event_type, Shape::Current)
                .and_then(|r| r.into_event(event_type).map(|_| ())),
        );
        assert_ne!(ours, "ok", "{case}");
        assert_eq!(ours, kind(generic(&bytes)), "{case}");
    }
}

/// Bytes taken by the varint at the start of `bytes`.
fn varint_len(bytes: &[u8]) -> usize {
    bytes.iter().position(|b| b & 0x80 == 0).expect("a varint ends") + 1
}

#[test]
fn field_counts_match_the_schemas() {
    for event_type in EventType::ALL {
        let Schema::Record(record) = schema(event_type) else { panic!("record") };
        assert_eq!(direct::field_count(event_type), record.fields.len(), "{event_type}");
    }
}

#[test]
fn records_written_before_the_principal_are_read_by_position() {
    for seed in 0..200 {
        for mut event in samples::one_of_each(seed) {
            event.envelope.principal = None;
            let event_type = event.payload.event_type();
            let mut json: serde_json::Value =
                serde_json::from_str(schemas::source(event_type)).expect("json");
            json["fields"].as_array_mut().expect("fields").retain(|f| f["name"] != "principal");
            let before = Schema::parse_str(&json.to_string()).expect("the schema before principal");
            let shape = schemas::positional_shape(event_type, &before.canonical_form());
            assert_eq!(shape, Some(Shape::BeforePrincipal), "{event_type}");
            let Value::Record(mut fields) = to_avro(&event) else { panic!("record") };
            fields.retain(|(name, _)| name != "principal");
            let bytes = wire::encode(7, &before, &Value::Record(fields)).expect("encoded as before");
            let read = positional::read(7, &bytes[wire::HEADER_LEN..], event_type, Shape::BeforePrincipal)
                .expect("read")
                .into_event(event_type);
            assert_eq!(read.expect("event"), event, "{event_type} seed {seed}");
        }
    }
    let current = schema(EventType::HoldExpired).canonical_form();
    assert_eq!(schemas::positional_shape(EventType::HoldExpired, &current), Some(Shape::Current));
    let legacy = Schema::parse_str(schemas::RESERVATION_HELD_V0).expect("v0").canonical_form();
    assert_eq!(schemas::positional_shape(EventType::ReservationHeld, &legacy), None, "v0 is resolved");
}
