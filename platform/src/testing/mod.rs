//! Helpers for integration tests against the real local stack (`make up` / `infra/local`).
//!
//! Every test gets its own Kafka topics (a unique topic prefix), its own PostgreSQL database
//! and its own Redis key prefix, so tests run in parallel and never see each other's data.
//! Addresses come from the same `HOLDFAST_*` variables as the services, defaulting to loopback.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::auth::{Authenticator, LOCAL_AUDIENCE, LOCAL_ISSUER, Scope, mint_local};
use crate::config::{AuthArgs, KafkaArgs, PostgresArgs, RedisArgs, RegistryArgs, TopicArgs};

/// The HS256 secret every test service and test token shares (pass it to a service process
/// as `HOLDFAST_AUTH_HS256_SECRET`).
pub const TEST_SECRET: &str = "holdfast-tests-only-shared-secret-0123456789";
/// The subject of [`admin_token`].
pub const ADMIN: &str = "holdfast-test-admin";

/// Token settings of test services: the test secret, the default issuer and audience.
#[must_use]
pub fn auth() -> AuthArgs {
    AuthArgs {
        jwks: None,
        hs256_secret_file: None,
        hs256_secret: Some(SecretString::from(TEST_SECRET)),
        issuer: LOCAL_ISSUER.into(),
        audience: LOCAL_AUDIENCE.into(),
        rate_limit: 0,
        rate_burst: 0,
    }
}

/// The authenticator of [`auth`], for routers built in-process.
///
/// # Panics
/// Never: the test secret is valid.
#[must_use]
pub fn authenticator() -> Authenticator {
    Authenticator::hs256(TEST_SECRET.as_bytes(), LOCAL_ISSUER, LOCAL_AUDIENCE)
        .expect("the test secret is valid")
}

/// A token for `subject` with `scopes`, valid for an hour, accepted by test services.
///
/// # Panics
/// Never: the test secret is valid.
#[must_use]
pub fn token(subject: &str, scopes: &[Scope]) -> String {
    mint_local(TEST_SECRET.as_bytes(), subject, scopes, Duration::from_secs(3600))
        .expect("the test secret is valid")
}

/// A token with every scope: an administrator, who may act for any customer.
#[must_use]
pub fn admin_token() -> String {
    token(ADMIN, &Scope::ALL)
}

/// An HTTP client builder whose clients send [`admin_token`] with every request.
///
/// # Panics
/// Never: a token is ASCII.
pub fn http_builder() -> reqwest::ClientBuilder {
    let mut headers = reqwest::header::HeaderMap::new();
    let value = reqwest::header::HeaderValue::from_str(&format!("Bearer {}", admin_token())).expect("ASCII");
    headers.insert(reqwest::header::AUTHORIZATION, value);
    reqwest::Client::builder().default_headers(headers)
}

/// An HTTP client that sends [`admin_token`] with every request.
///
/// # Panics
/// When the client cannot be built (no TLS backend), which the build rules out.
#[must_use]
pub fn http() -> reqwest::Client {
    http_builder().build().expect("client")
}

/// A name no other test uses: `<prefix>_<12 hex digits>`.
#[must_use]
pub fn unique(prefix: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}_{}", &id[..12])
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty()).unwrap_or_else(|| default.to_owned())
}

/// `YYYY-MM-DD` of the day `n` days after today (UTC): dates for requests that must lie in the
/// booking window whenever the test runs.
#[must_use]
pub fn days_from_today(n: i64) -> String {
    (time::OffsetDateTime::now_utc().date() + time::Duration::days(n)).to_string()
}

/// Kafka settings of the local stack.
#[must_use]
pub fn kafka() -> KafkaArgs {
    KafkaArgs {
        brokers: env_or("HOLDFAST_KAFKA_BROKERS", "127.0.0.1:9092"),
        properties: Vec::new(),
        sasl_password: None,
    }
}

/// A topic layout of its own: unique prefix, `partitions` partitions, replication 1.
#[must_use]
pub fn topics(test: &str, partitions: i32) -> TopicArgs {
    TopicArgs {
        topic_prefix: format!("{}.", unique(&format!("t.{test}"))),
        partitions,
        replication_factor: 1,
        min_insync_replicas: 1,
    }
}

/// Schema registry settings of the local stack.
#[must_use]
pub fn registry() -> RegistryArgs {
    RegistryArgs { url: env_or("HOLDFAST_SCHEMA_REGISTRY_URL", "http://127.0.0.1:8085/apis/ccompat/v7") }
}

/// Redis settings with a key prefix of its own.
#[must_use]
pub fn redis(test: &str) -> RedisArgs {
    RedisArgs {
        urls: vec![SecretString::from(env_or("HOLDFAST_REDIS_URLS", "redis://127.0.0.1:6379"))],
        password: None,
        ca_file: None,
        cluster: false,
        key_prefix: format!("{}:", unique(&format!("t:{test}"))),
    }
}

/// The administrative PostgreSQL URL tests create their databases through.
fn admin_url() -> String {
    env_or("HOLDFAST_TEST_POSTGRES_ADMIN_URL", "postgres://holdfast:holdfast@127.0.0.1:5432/postgres")
}

/// A database created for one test, dropped by [`TestDatabase::drop_database`].
#[derive(Debug)]
pub struct TestDatabase {
    /// The database's name.
    pub name: String,
    /// A URL that connects to it.
    pub url: SecretString,
}

impl TestDatabase {
    /// Creates a fresh, empty database.
    ///
    /// # Errors
    /// When PostgreSQL is unreachable or refuses.
    pub async fn create(test: &str) -> Result<Self, sqlx::Error> {
        let name = unique(&format!("t_{test}")).replace(['-', '.'], "_").to_lowercase();
        let url = crate::postgres::create_database(&SecretString::from(admin_url()), &name).await?;
        Ok(Self { url, name })
    }

    /// Settings that point a service at this database (one shard).
    #[must_use]
    pub fn postgres_args(&self) -> PostgresArgs {
        PostgresArgs { urls: vec![self.url.clone()], password: None, max_connections: 8 }
    }

    /// Drops the database, closing other sessions on it first.
    ///
    /// # Errors
    /// When PostgreSQL is unreachable or refuses.
    pub async fn drop_database(self) -> Result<(), sqlx::Error> {
        crate::postgres::drop_database(&SecretString::from(admin_url()), &self.name).await
    }

    /// The URL, for clients that need a plain string.
    #[must_use]
    pub fn url(&self) -> &str {
        self.url.expose_secret()
    }
}

/// Waits until `http://<addr>/readyz` answers 200, up to `deadline`; returns whether it did.
pub async fn wait_ready(addr: std::net::SocketAddr, deadline: Duration) -> bool {
    let client = reqwest::Client::new();
    let url = format!("http://{addr}/readyz");
    eventually(deadline, || {
        let request = client.get(&url).send();
        async move { request.await.ok().filter(|r| r.status().is_success()).map(|_| ()) }
    })
    .await
    .is_some()
}

/// Polls `condition` every 50 ms until it returns `Some`, or gives up after `deadline`.
pub async fn eventually<T, F, Fut>(deadline: Duration, mut condition: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let until = tokio::time::Instant::now() + deadline;
    loop {
        if let Some(value) = condition().await {
            return Some(value);
        }
        if tokio::time::Instant::now() >= until {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Routes service logs to the test output when `TEST_LOG` is set.
pub fn init_logs() {
    crate::telemetry::init_for_tests();
}

/// Creates one topic with `partitions` partitions (replication 1).
///
/// # Errors
/// When Kafka refuses or does not answer.
pub async fn create_topic(
    kafka: &KafkaArgs,
    topic: &str,
    partitions: i32,
) -> Result<(), rdkafka::error::KafkaError> {
    use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
    let admin = crate::kafka::admin(kafka, "holdfast-test")?;
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = admin
        .create_topics(&[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))], &options)
        .await?;
    for result in results {
        result.map_err(|(_, code)| rdkafka::error::KafkaError::AdminOp(code))?;
    }
    Ok(())
}

/// A service started in-process on a port-0 listener.
#[derive(Debug)]
pub struct RunningService {
    /// Where it listens.
    pub addr: std::net::SocketAddr,
    shutdown: crate::Shutdown,
    handle: Option<tokio::task::JoinHandle<Result<(), crate::ServiceError>>>,
}

impl RunningService {
    /// Binds 127.0.0.1:0 and runs `service` on it in a task of its own.
    ///
    /// # Panics
    /// When no port can be bound.
    pub async fn start<F, Fut>(service: F) -> Self
    where
        F: FnOnce(tokio::net::TcpListener, crate::Shutdown) -> Fut,
        Fut: std::future::Future<Output = Result<(), crate::ServiceError>> + Send + 'static,
    {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let shutdown = crate::Shutdown::new();
        let handle = Some(tokio::spawn(service(listener, shutdown.clone())));
        Self { addr, shutdown, handle }
    }

    /// `http://<addr><path>`.
    #[must_use]
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// GETs `path` with [`admin_token`] and returns the status and the JSON body (`Null` when
    /// it is not JSON).
    ///
    /// # Panics
    /// When the service does not answer.
    pub async fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        let response = http().get(self.url(path)).send().await.expect("the service answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// The `/metrics` text.
    ///
    /// # Panics
    /// When the service does not answer.
    pub async fn metrics(&self) -> String {
        let response = reqwest::get(self.url("/metrics")).await.expect("the service answers");
        response.text().await.expect("metrics text")
    }

    /// Waits until `/readyz` answers 200, up to `deadline`; returns whether it did.
    pub async fn wait_ready(&self, deadline: Duration) -> bool {
        wait_ready(self.addr, deadline).await
    }

    /// Whether the service's task has ended (by itself: an error or a finished run).
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.handle.as_ref().is_none_or(tokio::task::JoinHandle::is_finished)
    }

    /// Cancels the shutdown token and waits for the service to end.
    ///
    /// # Errors
    /// The service's own error.
    ///
    /// # Panics
    /// When the service's task panicked.
    pub async fn stop(mut self) -> Result<(), crate::ServiceError> {
        self.shutdown.cancel();
        self.handle.take().expect("running").await.expect("service task panicked")
    }

    /// Waits for the service to end by itself (without cancelling it).
    ///
    /// # Panics
    /// When the service's task panicked or did not end within `deadline`.
    pub async fn join(mut self, deadline: Duration) -> Result<(), crate::ServiceError> {
        tokio::time::timeout(deadline, self.handle.take().expect("running"))
            .await
            .expect("service ended within the deadline")
            .expect("service task panicked")
    }
}

impl Drop for RunningService {
    /// A test that fails half-way still stops its service, so its background threads end.
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Starts `binary` (listening on 127.0.0.1:0), waits for its "listening" log line, sends it
/// SIGTERM and returns its exit status. Fails when it does not start or stop within 30 s.
///
/// # Errors
/// A message saying what went wrong.
pub fn run_then_sigterm(binary: &str, env: &[(&str, &str)]) -> Result<std::process::ExitStatus, String> {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let mut child = Command::new(binary)
        .env("HOLDFAST_AUTH_HS256_SECRET", TEST_SECRET)
        .envs(env.iter().copied())
        .env("HOLDFAST_LOG_FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {binary}: {e}"))?;
    let stderr = child.stderr.take().ok_or("no stderr")?;
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let started = std::time::Instant::now();
    let mut log = Vec::new();
    loop {
        let left = Duration::from_secs(30).saturating_sub(started.elapsed());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains("listening") => break,
            Ok(line) => log.push(line),
            Err(_) => {
                let _ = child.kill();
                return Err(format!("{binary} never logged 'listening':\n{}", log.join("\n")));
            }
        }
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .map_err(|e| format!("cannot run kill: {e}"))?;
    if !status.success() {
        return Err("kill -TERM failed".to_owned());
    }
    let stopping = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return Ok(status);
        }
        if stopping.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            return Err(format!("{binary} did not exit within 30 s of SIGTERM"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Appends records to an events topic the way a partition's owner does — a claim, then
/// records of its tenure with the next sequence numbers — and also records no writer of the
/// protocol would count (a zombie's, an out-of-sequence one), for tests of every reader.
#[derive(Debug)]
pub struct LogWriter {
    producer: crate::producer::Producer,
    topic: String,
    codec: std::sync::Arc<crate::codec::EventCodec>,
    tenures: std::collections::HashMap<i32, holdfast_tenure::Writer>,
}

impl LogWriter {
    /// A writer of `topic` encoding with `codec` (registered).
    ///
    /// # Panics
    /// When the producer cannot be created.
    #[must_use]
    pub fn new(kafka: &KafkaArgs, topic: &str, codec: std::sync::Arc<crate::codec::EventCodec>) -> Self {
        let producer =
            crate::producer::Producer::new(&crate::kafka::producer_config(kafka, "holdfast-test-log"))
                .expect("producer");
        Self { producer, topic: topic.to_owned(), codec, tenures: Default::default() }
    }

    /// Appends a claim to `partition` with a fresh token; later [`Self::event`]s belong to it.
    /// Returns the claim's offset.
    ///
    /// # Panics
    /// When Kafka does not take the record.
    pub async fn claim(&mut self, partition: i32) -> i64 {
        let token = holdfast_tenure::Token::fresh();
        let claim = crate::codec::ClaimRecord {
            token,
            partition,
            owner: "test".to_owned(),
            address: None,
            claimed_at: time::OffsetDateTime::now_utc(),
        };
        let payload = self.codec.encode_claim(&claim).expect("claim encoded");
        let offset = self.send(partition, "claim", &payload, holdfast_tenure::Mark::Claim { token }).await;
        self.tenures.insert(partition, holdfast_tenure::Writer::new(token, offset));
        offset
    }

    /// Appends `event` to its resource's partition as the next valid record of the current
    /// tenure there (claiming first when there is none). Returns (partition, offset).
    ///
    /// # Panics
    /// When Kafka does not take the record.
    pub async fn event(&mut self, event: &holdfast_domain::Event, partitions: i32) -> (i32, i64) {
        let key = event.envelope.resource_id.as_str().to_owned();
        let partition = crate::partitioner::partition_for(key.as_bytes(), partitions);
        let payload = self.codec.encode(event).expect("event encoded");
        (partition, self.valid_raw(partition, &key, &payload).await)
    }

    /// Appends `payload` — whatever its bytes — as the next valid record of the current tenure
    /// of `partition` (claiming first when there is none). Returns its offset.
    ///
    /// # Panics
    /// When Kafka does not take the record.
    pub async fn valid_raw(&mut self, partition: i32, key: &str, payload: &[u8]) -> i64 {
        if !self.tenures.contains_key(&partition) {
            self.claim(partition).await;
        }
        let mark = self.tenures.get_mut(&partition).map(holdfast_tenure::Writer::next_mark).expect("tenure");
        self.send(partition, key, payload, mark).await
    }

    /// Appends `payload` to `partition` under any `mark` (a zombie's token, a wrong sequence
    /// number, none). Returns its offset.
    ///
    /// # Panics
    /// When Kafka does not take the record.
    pub async fn raw(&self, partition: i32, key: &str, payload: &[u8], mark: holdfast_tenure::Mark) -> i64 {
        self.send(partition, key, payload, mark).await
    }

    /// The token of the current tenure of `partition`, if this writer claimed it.
    #[must_use]
    pub fn token(&self, partition: i32) -> Option<holdfast_tenure::Token> {
        self.tenures.get(&partition).map(holdfast_tenure::Writer::token)
    }

    async fn send(&self, partition: i32, key: &str, payload: &[u8], mark: holdfast_tenure::Mark) -> i64 {
        let headers = crate::headers::RecordHeaders { mark, fingerprint: None }.to_kafka();
        let record = rdkafka::producer::FutureRecord::to(&self.topic)
            .partition(partition)
            .key(key)
            .payload(payload)
            .headers(headers);
        let delivered = self.producer.send(record, Duration::from_secs(30)).await.expect("appended");
        delivered.offset
    }
}

/// Deletes the topics of a test's layout when dropped — also when the test fails half-way, so
/// a failing test leaves no partitions behind on the shared broker.
#[derive(Debug)]
pub struct TopicsGuard {
    kafka: KafkaArgs,
    layout: crate::topics::TopicLayout,
}

impl TopicsGuard {
    /// Guards the topics `topics` describes.
    #[must_use]
    pub fn new(topics: &TopicArgs) -> Self {
        Self { kafka: kafka(), layout: crate::topics::TopicLayout::from_args(topics) }
    }
}

impl Drop for TopicsGuard {
    fn drop(&mut self) {
        let (kafka, layout) = (self.kafka.clone(), self.layout.clone());
        // A runtime of its own on a thread of its own: drop may run inside a test's runtime.
        let deleted = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            runtime.block_on(layout.delete(&kafka)).ok()
        })
        .join();
        if !matches!(deleted, Ok(Some(()))) {
            eprintln!("could not delete the test's topics {:?}", self.layout.names());
        }
    }
}

/// Deletes every key under `redis`'s prefix (a test's clean-up); returns how many there were.
///
/// # Errors
/// When Redis does not answer.
pub async fn delete_keys(redis: &RedisArgs) -> Result<usize, redis::RedisError> {
    let redis = crate::redis::Redis::new(redis)?;
    let mut conn = redis.conn().await?;
    let keys: Vec<String> =
        redis::cmd("KEYS").arg(format!("{}*", redis.key_prefix)).query_async(&mut conn).await?;
    for key in &keys {
        let () = redis::cmd("DEL").arg(key).query_async(&mut conn).await?;
    }
    Ok(keys.len())
}

/// Fails unless the file `docs/api/<name>` holds `document` as generated (pretty JSON);
/// with `HOLDFAST_BLESS` set, rewrites the file instead. The committed OpenAPI documents are
/// linted offline by `make validate-infra` and read by people without a running service.
///
/// # Panics
/// When the file is stale, naming the command that rewrites it (`bless`).
pub fn committed_document(document: &impl serde::Serialize, name: &str, bless: &str) {
    let generated = serde_json::to_string_pretty(document).expect("the document serializes") + "\n";
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/api").join(name);
    if std::env::var_os("HOLDFAST_BLESS").is_some() {
        std::fs::write(&path, &generated).expect("docs/api is writable");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(committed == generated, "{} is stale: run `HOLDFAST_BLESS=1 {bless}`", path.display());
}

pub mod schemathesis;
pub mod secure;
