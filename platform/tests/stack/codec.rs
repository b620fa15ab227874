//! The event codec against the real schema registry: registration under
//! `TopicRecordNameStrategy` with `BACKWARD_TRANSITIVE`, round trips of every event type,
//! schema evolution both ways, upcasting of an old event version, and a typed error for
//! every kind of bad input. Each test owns its topic name, hence its subjects.

use apache_avro::Schema;
use apache_avro::types::Value;
use futures::FutureExt;
use holdfast_domain::EventType;
use holdfast_platform::RegistryArgs;
use holdfast_platform::codec::{self, CodecError, EventCodec, samples, schemas, wire};
use holdfast_platform::testing;

/// A codec for a fresh topic, registered.
async fn registered(test: &str) -> EventCodec {
    testing::init_logs();
    let codec = EventCodec::new(&testing::registry(), &testing::unique(test)).expect("codec");
    codec.register_all().await.expect("schemas registered");
    codec
}

/// `source` with `field` (JSON) appended to the record's fields.
fn with_field(source: &str, field: serde_json::Value) -> String {
    let mut schema: serde_json::Value = serde_json::from_str(source).expect("schema JSON");
    schema["fields"].as_array_mut().expect("fields").push(field);
    schema.to_string()
}

/// POSTs `schema` to `subject` and returns the registry's status and body.
async fn post_schema(subject: &str, schema: &str) -> (u16, String) {
    let url = format!("{}/subjects/{subject}/versions", testing::registry().url);
    let response = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/vnd.schemaregistry.v1+json")
        .body(serde_json::json!({ "schema": schema }).to_string())
        .send()
        .await
        .expect("registry answers");
    (response.status().as_u16(), response.text().await.expect("body"))
}

/// The schema id `subject` gives `schema` (registering it).
async fn register_raw(subject: &str, schema: &str) -> u32 {
    let (status, body) = post_schema(subject, schema).await;
    assert_eq!(status, 200, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    u32::try_from(answer["id"].as_u64().expect("id")).expect("u32 id")
}

#[tokio::test]
async fn every_event_type_round_trips_and_a_fresh_codec_fetches_the_schemas() {
    let codec = registered("codec.roundtrip").await;
    let cold = EventCodec::new(&testing::registry(), codec.topic()).expect("codec");
    for seed in 0..25 {
        for event in samples::one_of_each(seed) {
            let event_type = event.payload.event_type();
            let bytes = codec.encode(&event).expect("encoded");
            let (id, _) = wire::split(&bytes).expect("Confluent framing");
            assert_eq!((bytes[0], Some(id)), (0, codec.schema_id(event_type)));
            // Known ids decode without waiting: no registry call on the hot path.
            let decoded = codec.decode(&bytes).now_or_never().expect("no I/O").expect("decoded");
            assert_eq!(decoded, event, "{event_type} seed {seed}");
            // Never registered: it fetches each writer schema by id, once.
            assert_eq!(cold.decode(&bytes).await.expect("decoded cold"), event);
        }
    }
}

#[tokio::test]
async fn instances_starting_together_all_register() {
    testing::init_logs();
    // Several instances register the same fresh subjects at the same moment: the registry
    // refuses all but one of the concurrent "create the compatibility rule" requests, and
    // none of the instances may fail for it.
    let topic = testing::unique("codec_race");
    let codecs: Vec<EventCodec> =
        (0..6).map(|_| EventCodec::new(&testing::registry(), &topic).expect("codec")).collect();
    let results = futures::future::join_all(codecs.iter().map(EventCodec::register_all)).await;
    for result in results {
        let registered = result.expect("every instance registers");
        assert_eq!(registered.len(), EventType::ALL.len() + codec::Protocol::ALL.len());
    }
}

#[tokio::test]
async fn subjects_are_registered_backward_transitive() {
    let codec = registered("codec.subjects").await;
    let again = codec.register_all().await.expect("idempotent");
    let registry = testing::registry();
    for registration in again {
        let subject = &registration.subject;
        assert_eq!(subject, &format!("{}-{}", codec.topic(), registration.record));
        // Asked by name: the registry keeps every subject it ever had, too many to list.
        let versions = reqwest::get(format!("{}/subjects/{subject}/versions", registry.url))
            .await
            .expect("registry answers");
        assert_eq!(versions.status().as_u16(), 200, "{subject} registered");
        if let Some(event_type) =
            EventType::ALL.into_iter().find(|t| schemas::full_name(*t) == registration.record)
        {
            assert_eq!(Some(registration.schema_id), codec.schema_id(event_type));
        }
        let config: serde_json::Value = reqwest::get(format!("{}/config/{subject}", registry.url))
            .await
            .expect("registry answers")
            .json()
            .await
            .expect("JSON");
        eprintln!("{subject}: id {} config {config}", registration.schema_id);
        assert_eq!(config["compatibilityLevel"], "BACKWARD_TRANSITIVE", "{subject}");
    }
}

#[tokio::test]
async fn incompatible_changes_are_refused_with_409() {
    let codec = registered("codec.incompatible").await;
    let subject = codec.subject(EventType::ReservationHeld);
    let current = schemas::source(EventType::ReservationHeld);
    let new_required = with_field(
        current,
        serde_json::json!({"name": "channel", "type": "string", "doc": "Sales channel."}),
    );
    let mut int_to_string: serde_json::Value = serde_json::from_str(current).expect("JSON");
    for field in int_to_string["fields"].as_array_mut().expect("fields") {
        if field["name"] == "quantity" {
            field["type"] = "string".into();
        }
    }
    for (change, schema) in
        [("new field without default", new_required.clone()), ("int -> string", int_to_string.to_string())]
    {
        let (status, body) = post_schema(&subject, &schema).await;
        eprintln!("{change}: {status} {body}");
        assert_eq!(status, 409, "{change}: {body}");
        assert!(body.contains("\"error_code\":409"), "{body}");
    }
    // The codec surfaces the same refusal as a typed error at start-up.
    let candidate = EventCodec::new(&testing::registry(), codec.topic())
        .expect("codec")
        .with_schema(EventType::ReservationHeld, &new_required)
        .expect("candidate parses");
    match candidate.register_all().await {
        Err(CodecError::Registry { status: Some(409), .. }) => {}
        other => panic!("expected a 409 refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn a_compatible_change_is_accepted_and_both_generations_read_each_other() {
    let old = registered("codec.compatible").await;
    let field = serde_json::json!({"name": "channel", "type": ["null", "string"], "default": null, "doc": "Sales channel, if known."});
    let new_schema = with_field(schemas::source(EventType::ReservationHeld), field);
    let new = EventCodec::new(&testing::registry(), old.topic())
        .expect("codec")
        .with_schema(EventType::ReservationHeld, &new_schema)
        .expect("candidate parses");
    new.register_all().await.expect("a new optional field with a default is accepted");
    let (old_id, new_id) =
        (old.schema_id(EventType::ReservationHeld), new.schema_id(EventType::ReservationHeld));
    assert_ne!(old_id, new_id, "a second version of the subject");
    for seed in 0..10 {
        let event = samples::event(EventType::ReservationHeld, seed);
        let written_old = old.encode(&event).expect("old writer");
        let written_new = new.encode(&event).expect("new writer");
        assert_eq!(new.decode(&written_old).await.expect("new reads old"), event);
        assert_eq!(old.decode(&written_new).await.expect("old reads new"), event);
    }
}

#[tokio::test]
async fn an_old_event_version_is_upcast_on_read() {
    let codec = registered("codec.upcast").await;
    let v0_schema = Schema::parse_str(schemas::RESERVATION_HELD_V0).expect("v0 parses");
    let subject = format!("{}-dev.holdfast.reservations.v0.ReservationHeld", codec.topic());
    let v0_id = register_raw(&subject, schemas::RESERVATION_HELD_V0).await;
    // v0 writers recorded no principal.
    let mut event = samples::event(EventType::ReservationHeld, 7);
    event.envelope.principal = None;
    let bytes = wire::encode(v0_id, &v0_schema, &samples::reservation_held_v0(&event)).expect("v0 encoded");
    assert_eq!(codec.decode(&bytes).await.expect("upcast"), event);
}

#[tokio::test]
async fn bad_input_gives_the_matching_typed_error() {
    let codec = registered("codec.errors").await;
    let event = samples::event(EventType::ReservationConfirmed, 3);
    let good = codec.encode(&event).expect("encoded");
    let expect =
        |result: Result<holdfast_domain::Event, CodecError>, what: &str, ok: fn(&CodecError) -> bool| {
            let err = result.expect_err(what);
            eprintln!("{what}: {err}");
            assert!(ok(&err), "{what}: {err:?}");
            assert!(!err.is_retriable());
        };

    let mut wrong_magic = good.clone();
    wrong_magic[0] = 1;
    expect(codec.decode(&wrong_magic).await, "wrong magic byte", |e| {
        matches!(e, CodecError::WrongMagicByte { found: 1 })
    });
    expect(codec.decode(&good[..3]).await, "truncated header", |e| matches!(e, CodecError::Truncated { .. }));
    expect(codec.decode(&good[..good.len() / 2]).await, "truncated body", |e| {
        matches!(e, CodecError::Truncated { .. })
    });

    let mut trailing = good.clone();
    trailing.extend_from_slice(b"junk");
    expect(codec.decode(&trailing).await, "trailing bytes", |e| matches!(e, CodecError::Corrupt { .. }));
    let mut garbled = good.clone();
    garbled[wire::HEADER_LEN + 1..wire::HEADER_LEN + 9].copy_from_slice(b"zzzzzzzz"); // inside event_id
    expect(codec.decode(&garbled).await, "corrupt uuid", |e| matches!(e, CodecError::Corrupt { .. }));

    let mut unknown_id = good.clone();
    unknown_id[1..5].copy_from_slice(&0x7fff_fff0_u32.to_be_bytes());
    expect(codec.decode(&unknown_id).await, "unknown schema id", |e| {
        matches!(e, CodecError::UnknownSchemaId { schema_id: 0x7fff_fff0 })
    });

    let foreign =
        r#"{"type":"record","name":"Invoice","namespace":"dev.other","fields":[{"name":"n","type":"int"}]}"#;
    let foreign_id = register_raw(&format!("{}-dev.other.Invoice", codec.topic()), foreign).await;
    let schema = Schema::parse_str(foreign).expect("parses");
    let bytes = wire::encode(foreign_id, &schema, &Value::Record(vec![("n".into(), Value::Int(1))]))
        .expect("encoded");
    expect(
        codec.decode(&bytes).await,
        "unknown record name",
        |e| matches!(e, CodecError::UnknownRecordName { name } if name == "dev.other.Invoice"),
    );

    let mut bad_value = codec::to_avro(&event);
    if let Value::Record(fields) = &mut bad_value {
        fields.retain(|(name, _)| name != "reservation_id");
        fields.push(("reservation_id".into(), Value::String("r1_not-an-id".into())));
    }
    let id = codec.schema_id(EventType::ReservationConfirmed).expect("registered");
    let schema = Schema::parse_str(schemas::source(EventType::ReservationConfirmed)).expect("parses");
    let bytes = wire::encode(id, &schema, &bad_value).expect("encoded");
    expect(
        codec.decode(&bytes).await,
        "invalid field",
        |e| matches!(e, CodecError::InvalidField { field, .. } if field == "reservation_id"),
    );
}

#[tokio::test]
async fn an_unreachable_registry_is_a_retriable_error() {
    let nowhere = RegistryArgs { url: "http://127.0.0.1:9/apis/ccompat/v7".to_owned() };
    let codec = EventCodec::new(&nowhere, "nowhere.events").expect("codec");
    let event = samples::event(EventType::HoldExpired, 1);
    assert!(matches!(codec.encode(&event), Err(CodecError::NotRegistered { .. })));
    let err = codec.register_all().await.expect_err("unreachable");
    assert!(err.is_retriable(), "{err:?}");
    let bytes = [0, 0, 0, 0, 42, 0];
    let err = codec.decode(&bytes).await.expect_err("unreachable");
    assert!(matches!(err, CodecError::RegistryUnreachable { .. }), "{err:?}");
}
