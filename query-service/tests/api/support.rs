//! Shared set-up: a test's own topics, database(s) and Redis prefix; events decided by the
//! real domain and appended the way a partition's owner writes them (Avro, a claim and then
//! marked records of its tenure), projected by the real projection worker running in-process; and the query
//! service under test in front of it all.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Parser;
use holdfast_domain::{
    Capacity, Command, CommandMeta, CustomerId, Event, HoldTtl, Quantity, ReservationId, ResourceId,
    ResourceName, ResourceState, SlotRange, decide,
};
use holdfast_platform::codec::EventCodec;
use holdfast_platform::testing::{self, LogWriter, RunningService, TestDatabase};
use holdfast_platform::topics::TopicLayout;
use holdfast_platform::{PostgresArgs, RedisArgs, TopicArgs};
use holdfast_query_service::{Config, run};
use time::OffsetDateTime;

/// Everything one test owns on the local stack.
pub struct Stack {
    /// Topic names and partition count.
    pub topics: TopicArgs,
    /// The layout derived from `topics`.
    pub layout: TopicLayout,
    /// The test's databases, one per read-model shard.
    pub databases: Vec<TestDatabase>,
    /// The test's Redis settings (own key prefix).
    pub redis: RedisArgs,
    writer: tokio::sync::Mutex<LogWriter>,
    states: Mutex<HashMap<ResourceId, ResourceState>>,
}

impl Stack {
    /// Creates topics, `shards` databases and a Redis prefix for test `name`.
    pub async fn new(name: &str, partitions: i32, shards: usize) -> Self {
        testing::init_logs();
        let topics = testing::topics(name, partitions);
        let layout = TopicLayout::from_args(&topics);
        let provisioned = testing::eventually(Duration::from_secs(30), || async {
            layout.ensure(&testing::kafka()).await.ok()
        })
        .await;
        assert!(provisioned.is_some(), "topics created");
        let mut databases = Vec::new();
        for shard in 0..shards {
            databases.push(TestDatabase::create(&format!("{name}_{shard}")).await.expect("database"));
        }
        let codec = Arc::new(EventCodec::new(&testing::registry(), &layout.events).expect("codec"));
        codec.register_all().await.expect("schemas registered");
        let writer = tokio::sync::Mutex::new(LogWriter::new(&testing::kafka(), &layout.events, codec));
        Self { redis: testing::redis(name), topics, layout, databases, writer, states: Mutex::default() }
    }

    /// Settings of every shard.
    pub fn postgres(&self) -> PostgresArgs {
        PostgresArgs {
            urls: self.databases.iter().map(|d| d.url.clone()).collect(),
            password: None,
            max_connections: 8,
        }
    }

    /// Starts a projection worker in-process.
    pub async fn start_worker(&self) -> RunningService {
        let mut config = holdfast_projection_workers::Config::parse_from(["projection-workers"]);
        config.kafka = testing::kafka();
        config.registry = testing::registry();
        config.topics = self.topics.clone();
        config.postgres = self.postgres();
        config.redis = self.redis.clone();
        config.session_timeout = Duration::from_secs(6);
        config.cache_check_interval = Duration::from_millis(200);
        RunningService::start(|listener, shutdown| {
            holdfast_projection_workers::run(config, listener, shutdown)
        })
        .await
    }

    /// The query service's settings for this stack.
    pub fn config(&self) -> Config {
        let mut config = Config::parse_from(["query-service"]);
        config.auth = testing::auth();
        config.postgres = self.postgres();
        config.redis = self.redis.clone();
        config.topics = self.topics.clone();
        config
    }

    /// Starts the query service in-process with `config`.
    pub async fn start_query(&self, config: Config) -> RunningService {
        let service = RunningService::start(|listener, shutdown| run(config, listener, shutdown)).await;
        assert!(service.wait_ready(Duration::from_secs(30)).await, "query service ready");
        service
    }

    /// Decides `command` against the resource's state (as the command service would) and
    /// returns the events; a rejection is a bug in the test.
    pub fn decide(&self, command: &Command) -> Vec<Event> {
        let mut states = self.states.lock().expect("states");
        let state = states
            .entry(command.resource_id().clone())
            .or_insert_with(|| ResourceState::new(command.resource_id().clone()));
        let meta = CommandMeta::new(uuid::Uuid::now_v7());
        let events = decide(state, command, &meta, OffsetDateTime::now_utc()).expect("command accepted");
        for event in &events {
            state.apply(event);
        }
        events
    }

    /// The events defining `resource` with `capacity`.
    pub fn define(&self, resource: &str, capacity: u32) -> Vec<Event> {
        self.decide(&Command::DefineResource {
            resource_id: ResourceId::parse(resource).expect("valid id"),
            name: ResourceName::parse(&format!("Resource {resource}")).expect("valid name"),
            capacity: Capacity::new(capacity).expect("valid capacity"),
        })
    }

    /// The events of a hold of `quantity` on `[from, to)` for `customer`, and its id.
    pub fn hold(
        &self,
        resource: &str,
        from: &str,
        to: &str,
        quantity: u32,
        customer: &str,
    ) -> (ReservationId, Vec<Event>) {
        let resource = ResourceId::parse(resource).expect("valid id");
        let reservation_id = ReservationId::new(&resource, uuid::Uuid::now_v7());
        let events = self.decide(&Command::PlaceHold {
            reservation_id: reservation_id.clone(),
            range: SlotRange::parse(from, to).expect("valid range"),
            quantity: Quantity::new(quantity).expect("valid quantity"),
            customer_id: CustomerId::parse(customer).expect("valid customer"),
            ttl: HoldTtl::from_seconds(3600).expect("valid ttl"),
        });
        (reservation_id, events)
    }

    /// Appends `events` as their partitions' owner would; returns each partition's position
    /// token after its last event (what a command answer would carry).
    pub async fn produce(&self, events: &[Event]) -> HashMap<i32, String> {
        let mut writer = self.writer.lock().await;
        let mut positions = HashMap::new();
        for event in events {
            let (partition, offset) = writer.event(event, self.topics.partitions).await;
            positions.insert(partition, format!("{partition}.{}", offset + 1));
        }
        positions
    }

    /// The position token of the last of `events` on `resource`'s partition.
    pub async fn produce_one_resource(&self, events: &[Event]) -> String {
        let positions = self.produce(events).await;
        assert_eq!(positions.len(), 1, "events of one resource share a partition");
        positions.into_values().next().expect("one position")
    }

    /// Drops the databases and the topics.
    pub async fn tear_down(self) {
        for database in self.databases {
            database.drop_database().await.expect("database dropped");
        }
        let _ = self.layout.delete(&testing::kafka()).await;
    }
}

/// GETs `path` with `headers`; returns the response.
pub async fn get(service: &RunningService, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = testing::http().get(service.url(path));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("the service answers")
}

/// Status, headers and JSON body of a GET.
pub async fn get_json(
    service: &RunningService,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, serde_json::Value) {
    let response = get(service, path, headers).await;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.json().await.unwrap_or(serde_json::Value::Null))
}

/// A header's value as text ("" when absent).
pub fn header<'a>(headers: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
}

/// `name` of a metric sample in Prometheus text, as a number (0 when absent).
pub fn metric(text: &str, sample: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(sample).and_then(|rest| rest.trim().parse().ok()))
        .unwrap_or(0.0)
}
