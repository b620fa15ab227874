//! The whole system over the secure transports, as production runs it: each service connects
//! with its own credentials (Kafka SCRAM over TLS, a PostgreSQL role over TLS, a Redis ACL
//! user over TLS, every server verified against the stack's CA, every password read from a
//! file), a hold goes in through the command API and comes out of the query API, and each
//! credential is refused what its service must not do.
//!
//! The stack's Kafka ACLs cover one topic layout for tests (`testing::secure::TOPIC_PREFIX`),
//! so this is the only test using it.

use std::time::Duration;

use clap::Parser as _;
use holdfast_platform::kafka::producer_config;
use holdfast_platform::testing::{self, RunningService, TestDatabase, secure};
use holdfast_platform::topics::TopicLayout;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord};
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};
use sqlx::Connection as _;

/// The test database handed to the service roles, as an operator would: the projection role
/// owns it (it creates its generations' schemas and tables), the query role may read every
/// table the projection role makes.
async fn database_for_services() -> TestDatabase {
    let database = TestDatabase::create("secure").await.expect("database");
    let mut admin = sqlx::PgConnection::connect(database.url()).await.expect("admin connection");
    for statement in [
        format!("ALTER DATABASE \"{}\" OWNER TO holdfast_projection", database.name),
        "ALTER DEFAULT PRIVILEGES FOR ROLE holdfast_projection GRANT USAGE ON SCHEMAS TO holdfast_query"
            .to_owned(),
        "ALTER DEFAULT PRIVILEGES FOR ROLE holdfast_projection GRANT SELECT ON TABLES TO holdfast_query"
            .to_owned(),
    ] {
        sqlx::query(&statement).execute(&mut admin).await.expect(&statement);
    }
    admin.close().await.expect("closed");
    database
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_service_works_over_tls_with_its_own_credentials_and_no_more() {
    testing::init_logs();
    // The operator's part, on the plain listener: the topics (the services may not create them).
    let topics = secure::topics(4);
    let layout = TopicLayout::from_args(&topics);
    let _ = layout.delete(&testing::kafka()).await;
    testing::eventually(Duration::from_secs(60), || async { layout.ensure(&testing::kafka()).await.ok() })
        .await
        .expect("topics created");
    let database = database_for_services().await;
    let key_prefix = format!("{}:", testing::unique("t:secure"));

    let command = {
        let mut config = holdfast_command_service::Config::parse_from(["command-service"]);
        config.auth = testing::auth();
        config.kafka = secure::kafka("holdfast-command");
        config.topics = topics.clone();
        config.registry = testing::registry();
        RunningService::start(|listener, shutdown| holdfast_command_service::run(config, listener, shutdown))
            .await
    };
    let projection = {
        let mut config = holdfast_projection_workers::Config::parse_from(["projection-workers"]);
        config.kafka = secure::kafka("holdfast-projection");
        config.registry = testing::registry();
        config.topics = topics.clone();
        config.postgres = secure::postgres("holdfast_projection", &database.name);
        config.redis = secure::redis("holdfast-projection", &key_prefix);
        RunningService::start(|listener, shutdown| {
            holdfast_projection_workers::run(config, listener, shutdown)
        })
        .await
    };
    assert!(command.wait_ready(Duration::from_secs(90)).await, "command service ready over SASL_SSL");
    assert!(projection.wait_ready(Duration::from_secs(90)).await, "projection workers ready over TLS");
    let query = {
        let mut config = holdfast_query_service::Config::parse_from(["query-service"]);
        config.auth = testing::auth();
        config.topics = topics.clone();
        config.postgres = secure::postgres("holdfast_query", &database.name);
        config.redis = secure::redis("holdfast-query", &key_prefix);
        RunningService::start(|listener, shutdown| holdfast_query_service::run(config, listener, shutdown))
            .await
    };
    assert!(query.wait_ready(Duration::from_secs(60)).await, "query service ready over TLS");

    // A hold through the command API comes out of the query API.
    let http = testing::http();
    let post = |path: &str, body: Value| {
        let request = http.post(command.url(path)).json(&body);
        async move {
            let response = request.send().await.expect("answered");
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (status, body) =
        post("/v1/resources", json!({"resource_id": "vault-1", "name": "Vault", "capacity": 3})).await;
    assert_eq!(status, 201, "{body}");
    let (from, to) = (testing::days_from_today(10), testing::days_from_today(11));
    let hold = json!({"resource_id": "vault-1", "from": from, "to": to, "quantity": 2, "customer_id": "ada"});
    let (status, body) = post("/v1/reservations", hold).await;
    assert_eq!(status, 201, "{body}");
    let position = body["position"].as_str().expect("a position").to_owned();
    let path = format!("/v1/resources/vault-1/availability?from={from}&to={to}&min_position={position}");
    let (status, availability) = query.get_json(&path).await;
    assert_eq!(status, 200, "{availability}");
    assert_eq!(availability["slots"][0]["held"], 2, "{availability}");
    assert_eq!(availability["slots"][0]["available"], 1, "{availability}");

    // Each credential is refused what its service must not do.
    let producer: FutureProducer =
        producer_config(&secure::kafka("holdfast-projection"), "secure-test").create().expect("producer");
    let forged = producer
        .send(
            FutureRecord::<str, [u8]>::to(&layout.events).key("vault-1").payload(b"forged"),
            Duration::from_secs(20),
        )
        .await;
    assert!(
        matches!(forged, Err((KafkaError::MessageProduction(RDKafkaErrorCode::TopicAuthorizationFailed), _))),
        "the projection workers' user may not write decisions: {forged:?}"
    );
    let reader_url = secure::postgres("holdfast_query", &database.name);
    let options: sqlx::postgres::PgConnectOptions =
        reader_url.urls[0].expose_secret().parse().expect("options");
    let options = options.password(secure::password("postgres", "holdfast_query").expose_secret());
    let mut reader = sqlx::PgConnection::connect_with(&options).await.expect("query role connects over TLS");
    let tls: bool = sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(&mut reader)
        .await
        .expect("ssl status");
    assert!(tls, "the query role's connection is encrypted");
    let write = sqlx::query("CREATE TABLE intruder (x int)").execute(&mut reader).await;
    assert!(
        write
            .as_ref()
            .is_err_and(|e| e.as_database_error().and_then(|d| d.code()).as_deref() == Some("42501")),
        "the query role may not write: {write:?}"
    );
    reader.close().await.expect("closed");
    let plain =
        sqlx::PgConnection::connect_with(&options.clone().ssl_mode(sqlx::postgres::PgSslMode::Disable)).await;
    assert!(plain.is_err(), "the service roles may not connect without TLS");
    let cache =
        holdfast_platform::redis::Redis::new(&secure::redis("holdfast-query", &key_prefix)).expect("client");
    let mut conn = cache.conn().await.expect("query user connects over TLS");
    let set: Result<(), redis::RedisError> =
        redis::cmd("SET").arg(cache.key("intruder")).arg(1).query_async(&mut conn).await;
    assert!(
        set.as_ref().is_err_and(|e| e.code() == Some("NOPERM")),
        "the query service's Redis user may not write: {set:?}"
    );

    query.stop().await.expect("query stops");
    projection.stop().await.expect("projection stops");
    command.stop().await.expect("command stops");
    let mut cleaner = testing::redis("secure");
    cleaner.key_prefix = key_prefix;
    testing::delete_keys(&cleaner).await.expect("keys deleted");
    layout.delete(&testing::kafka()).await.expect("topics deleted");
    database.drop_database().await.expect("database dropped");
}
