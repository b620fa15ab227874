//! An Avro record registered, encoded and decoded through the schema registry in the
//! Confluent wire format with `TopicRecordNameStrategy`.

use apache_avro::types::Value;
use holdfast_platform::testing;
use schema_registry_converter::async_impl::avro::{AvroDecoder, AvroEncoder};
use schema_registry_converter::async_impl::schema_registry::SrSettings;
use schema_registry_converter::schema_registry_common::{SchemaType, SubjectNameStrategy, SuppliedSchema};

const SCHEMA: &str = r#"{
  "type": "record", "name": "SmokeTested", "namespace": "dev.holdfast.smoke",
  "fields": [
    {"name": "resource_id", "type": "string"},
    {"name": "quantity", "type": "int"},
    {"name": "note", "type": ["null", "string"], "default": null}
  ]
}"#;

#[tokio::test]
async fn avro_round_trip_through_the_registry() {
    testing::init_logs();
    let registry = testing::registry();
    let topic = testing::unique("smoke.events");
    let settings = SrSettings::new(registry.url.clone());
    let encoder = AvroEncoder::new(settings.clone());
    let strategy = SubjectNameStrategy::TopicRecordNameStrategyWithSchema(
        topic.clone(),
        SuppliedSchema::new(
            Some("dev.holdfast.smoke.SmokeTested".to_owned()),
            SchemaType::Avro,
            SCHEMA.to_owned(),
        ),
    );
    let record = vec![
        ("resource_id", Value::String("room-101".to_owned())),
        ("quantity", Value::Int(3)),
        ("note", Value::Union(1, Box::new(Value::String("window seat".to_owned())))),
    ];
    let bytes = encoder.encode(record, strategy).await.expect("encoded and registered");

    assert_eq!(bytes[0], 0, "Confluent magic byte");
    let schema_id = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);

    // A fresh decoder knows nothing: it must fetch the schema by the id in the payload.
    let decoded = AvroDecoder::new(settings).decode(Some(&bytes)).await.expect("decoded");
    assert_eq!(decoded.name.map(|n| n.fullname(None)).as_deref(), Some("dev.holdfast.smoke.SmokeTested"));
    assert_eq!(
        decoded.value,
        Value::Record(vec![
            ("resource_id".to_owned(), Value::String("room-101".to_owned())),
            ("quantity".to_owned(), Value::Int(3)),
            ("note".to_owned(), Value::Union(1, Box::new(Value::String("window seat".to_owned())))),
        ])
    );

    let subject = format!("{topic}-dev.holdfast.smoke.SmokeTested");
    // Asked by name: the registry keeps every subject it ever had, too many to list.
    let versions: Vec<u32> = reqwest::get(format!("{}/subjects/{subject}/versions", registry.url))
        .await
        .expect("registry answers")
        .json()
        .await
        .expect("versions are JSON");
    assert_eq!(versions, [1], "{subject} registered (schema id {schema_id})");
}
