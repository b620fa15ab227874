//! `schemas/asyncapi.yaml` describes the topics the code creates and the schemas it registers,
//! and nothing else: every topic with its partition count, retention and cleanup policy, and
//! the events channel's messages with exactly the Avro files the codec embeds. (A real
//! AsyncAPI parser checks the document itself: `infra/validate/asyncapi`.)

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use holdfast_domain::EventType;
use holdfast_platform::codec::{Protocol, schemas};
use holdfast_platform::config::TopicArgs;
use holdfast_platform::topics::TopicLayout;
use serde_norway::Value;

fn schemas_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas")
}

fn document() -> Value {
    let text = std::fs::read_to_string(schemas_dir().join("asyncapi.yaml")).expect("schemas/asyncapi.yaml");
    serde_norway::from_str(&text).expect("YAML")
}

/// The channels by topic: (partitions, cleanup policy, retention.ms if set).
fn channels(document: &Value) -> BTreeMap<String, (i64, String, Option<i64>)> {
    let channels = document["channels"].as_mapping().expect("channels");
    channels
        .values()
        .map(|channel| {
            let kafka = &channel["bindings"]["kafka"];
            let topic = channel["address"].as_str().expect("an address").to_owned();
            assert_eq!(kafka["topic"].as_str(), Some(topic.as_str()), "binding topic of {topic}");
            let config = &kafka["topicConfiguration"];
            let policy = config["cleanup.policy"].as_sequence().expect("cleanup.policy");
            let policy = policy.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(",");
            let partitions = kafka["partitions"].as_i64().expect("partitions");
            (topic, (partitions, policy, config["retention.ms"].as_i64()))
        })
        .collect()
}

#[test]
fn every_topic_the_code_creates_is_described_as_created() {
    let args = TopicArgs {
        topic_prefix: String::new(),
        partitions: 480,
        replication_factor: 3,
        min_insync_replicas: 2,
    };
    let layout = TopicLayout::from_args(&args);
    let created: BTreeMap<String, (i64, String, Option<i64>)> = layout
        .specs()
        .into_iter()
        .map(|(name, partitions, settings)| {
            let setting = |key: &str| settings.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone());
            let policy = setting("cleanup.policy").unwrap_or_else(|| "delete".to_owned());
            let retention = setting("retention.ms").map(|v| v.parse::<i64>().expect("a number"));
            (name.to_owned(), (i64::from(partitions), policy, retention))
        })
        .collect();
    let described = channels(&document());
    assert_eq!(described, created, "schemas/asyncapi.yaml against TopicLayout::specs");
}

#[test]
fn the_events_channel_carries_exactly_the_registered_schemas() {
    let document = document();
    let events = document["channels"]
        .as_mapping()
        .expect("channels")
        .values()
        .find(|channel| channel["address"] == "reservations.events")
        .expect("the events channel");
    let messages = &document["components"]["messages"];
    let described: BTreeSet<String> = events["messages"]
        .as_mapping()
        .expect("messages")
        .values()
        .map(|message| {
            let reference = message["$ref"].as_str().expect("a $ref");
            let name = reference.rsplit('/').next().expect("a name");
            let payload = &messages[name]["payload"];
            assert!(
                payload["schemaFormat"]
                    .as_str()
                    .is_some_and(|f| f.starts_with("application/vnd.apache.avro")),
                "{name} is Avro"
            );
            let file = payload["schema"]["$ref"].as_str().expect("a schema file");
            std::fs::read_to_string(schemas_dir().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
        })
        .collect();
    let registered: BTreeSet<String> = EventType::ALL
        .into_iter()
        .map(|t| schemas::source(t).to_owned())
        .chain(Protocol::ALL.into_iter().map(|p| p.source().to_owned()))
        .collect();
    assert_eq!(described.len(), registered.len(), "one message per registered schema");
    assert_eq!(described, registered, "the files referenced are the schemas the codec registers");
}

#[test]
fn the_tenure_headers_are_the_protocols() {
    let document = document();
    let headers = &document["components"]["schemas"]["TenureHeaders"]["properties"];
    for name in [
        holdfast_tenure::CLAIM_HEADER,
        holdfast_tenure::WRITER_HEADER,
        holdfast_tenure::SEQ_HEADER,
        holdfast_platform::headers::FINGERPRINT_HEADER,
    ] {
        assert!(headers.get(name).is_some(), "header {name} described");
    }
}
