//! Schema ids outlive a restart of the registry: records in Kafka name their writer schema by
//! id only, so a registry that forgot its ids would make every old record unreadable.
//!
//! The test runs a private Apicurio Registry (the distribution `infra/local/stack` installs)
//! on a free port with SQL storage in a fresh PostgreSQL database of its own, registers the
//! event schemas and encodes events, kills the registry, starts it again on the same database
//! and reads the old records with a codec that has never seen them. It leaves the stack's
//! registry alone, so it runs in parallel with every other test.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use holdfast_domain::Event;
use holdfast_platform::RegistryArgs;
use holdfast_platform::codec::{EventCodec, samples, wire};
use holdfast_platform::testing::{self, TestDatabase};

/// How long a JVM start may take on a small, busy machine.
const START_DEADLINE: Duration = Duration::from_secs(180);

/// Where the Apicurio distribution is: `HOLDFAST_REGISTRY_HOME`, else the link the stack
/// scripts keep at `<stack dir>/registry/current`.
fn distribution() -> PathBuf {
    if let Some(home) = std::env::var_os("HOLDFAST_REGISTRY_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(home);
    }
    let stack = std::env::var_os("HOLDFAST_STACK_DIR")
        .filter(|v| !v.is_empty())
        .map_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.stack"), PathBuf::from);
    stack.join("registry/current")
}

/// The distribution's entry point: `quarkus-run.jar` (fast-jar) or `*-runner.jar` (uber-jar).
///
/// # Panics
/// When there is none, saying how to get one.
fn registry_jar() -> PathBuf {
    let home = distribution();
    let fast = home.join("quarkus-run.jar");
    if fast.is_file() {
        return fast;
    }
    let runner = std::fs::read_dir(&home)
        .ok()
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.ends_with("-runner.jar")));
    runner.unwrap_or_else(|| {
        panic!(
            "no Apicurio Registry distribution in {}: run `infra/local/stack up` (it installs one \
             and links .stack/registry/current), or set HOLDFAST_REGISTRY_HOME to an unpacked \
             apicurio-registry-app distribution",
            home.display()
        )
    })
}

/// A port nothing listens on right now.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

/// Where the private registry keeps its schemas: JDBC URL, user and password of a database.
struct Storage {
    jdbc_url: String,
    username: String,
    password: String,
}

impl Storage {
    fn of(database: &TestDatabase) -> Self {
        let url = reqwest::Url::parse(database.url()).expect("the test database URL parses");
        let host = url.host_str().expect("a host");
        let port = url.port().unwrap_or(5432);
        Self {
            jdbc_url: format!("jdbc:postgresql://{host}:{port}/{}", database.name),
            username: url.username().to_owned(),
            password: url.password().unwrap_or_default().to_owned(),
        }
    }
}

/// A private Apicurio Registry process, killed when dropped (also when the test fails).
struct PrivateRegistry {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl PrivateRegistry {
    /// Starts the registry on a free port with SQL storage in `storage` and waits until it
    /// is ready.
    ///
    /// # Panics
    /// When Java cannot be started, or the registry exits or is not ready within the deadline
    /// (with the end of its log).
    async fn start(storage: &Storage, log_dir: &Path, run: &str) -> Self {
        let port = free_port();
        let log = log_dir.join(format!("registry-{run}.log"));
        let out = std::fs::File::create(&log).expect("registry log file");
        let err = out.try_clone().expect("registry log file");
        let child = Command::new("java")
            .args(["-Xms64m", "-Xmx384m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"])
            .arg("-Dquarkus.http.host=127.0.0.1")
            .arg(format!("-Dquarkus.http.port={port}"))
            .args(["-Dapicurio.storage.kind=sql", "-Dapicurio.storage.sql.kind=postgresql"])
            .arg(format!("-Dapicurio.datasource.url={}", storage.jdbc_url))
            .arg(format!("-Dapicurio.datasource.username={}", storage.username))
            .args([
                "-Dapicurio.datasource.jdbc.initial-size=1",
                "-Dapicurio.datasource.jdbc.min-size=1",
                "-Dapicurio.datasource.jdbc.max-size=4",
            ])
            .env("APICURIO_DATASOURCE_PASSWORD", &storage.password)
            .arg("-jar")
            .arg(registry_jar())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start `java` for the registry (Java 17+ on the PATH?): {e}"));
        let mut registry = Self { child, port, log };
        registry.wait_ready().await;
        registry
    }

    /// The Confluent-compatible API of this registry.
    fn args(&self) -> RegistryArgs {
        RegistryArgs { url: format!("http://127.0.0.1:{}/apis/ccompat/v7", self.port) }
    }

    async fn wait_ready(&mut self) {
        let client = reqwest::Client::new();
        let health = format!("http://127.0.0.1:{}/health/ready", self.port);
        let started = tokio::time::Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("registry status") {
                panic!("the registry exited ({status}) before it was ready:\n{}", self.log_tail());
            }
            let ready = client.get(&health).timeout(Duration::from_secs(5)).send().await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                eprintln!("registry on port {} ready in {:.1?}", self.port, started.elapsed());
                return;
            }
            assert!(
                started.elapsed() < START_DEADLINE,
                "the registry was not ready within {START_DEADLINE:?}:\n{}",
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Kills the process (SIGKILL: nothing may depend on a clean shutdown) and reaps it.
    fn kill(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for PrivateRegistry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Drops the test's database when dropped, also when the test fails half-way.
struct DatabaseGuard(Option<TestDatabase>);

impl Drop for DatabaseGuard {
    fn drop(&mut self) {
        let Some(database) = self.0.take() else { return };
        let name = database.name.clone();
        // A runtime of its own on a thread of its own: drop may run inside the test's runtime.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            runtime.block_on(database.drop_database()).ok()
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("could not drop the test database {name}");
        }
    }
}

/// A directory for the registry's logs, removed when dropped.
struct LogDir(PathBuf);

impl Drop for LogDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test]
async fn schema_ids_survive_a_registry_restart() {
    testing::init_logs();
    let jar = registry_jar();
    eprintln!("registry distribution: {}", jar.display());
    let database = DatabaseGuard(Some(
        TestDatabase::create("registry_restart").await.expect("a database for the registry"),
    ));
    let storage = Storage::of(database.0.as_ref().expect("created"));
    let logs = LogDir(std::env::temp_dir().join(testing::unique("holdfast-registry-restart")));
    std::fs::create_dir_all(&logs.0).expect("log directory");
    let topic = testing::unique("registry_restart.events");

    // Before: register every subject and write records of every event type.
    let first = PrivateRegistry::start(&storage, &logs.0, "first").await;
    let writer = EventCodec::new(&first.args(), &topic).expect("codec");
    let registered = writer.register_all().await.expect("schemas registered");
    let written: Vec<(Event, Vec<u8>)> = (0..5)
        .flat_map(samples::one_of_each)
        .map(|event| {
            let bytes = writer.encode(&event).expect("encoded");
            (event, bytes)
        })
        .collect();
    first.kill();

    // After: the same database, a new process, a codec that has seen nothing.
    let second = PrivateRegistry::start(&storage, &logs.0, "second").await;
    let reader = EventCodec::new(&second.args(), &topic).expect("codec");
    for (event, bytes) in &written {
        let event_type = event.payload.event_type();
        let (id, _) = wire::split(bytes).expect("Confluent framing");
        assert_eq!(Some(id), writer.schema_id(event_type), "{event_type}: the id written before the restart");
        // The reader has registered nothing: it must fetch the writer schema by that id.
        let decoded = reader.decode(bytes).await.unwrap_or_else(|e| {
            panic!("{event_type}: schema id {id} written before the restart does not resolve after it: {e}")
        });
        assert_eq!(&decoded, event, "{event_type}");
    }
    // Registering the same schemas again finds them: every subject keeps its id.
    let again = reader.register_all().await.expect("schemas registered again");
    assert_eq!(again, registered, "the same subjects and schema ids after the restart");

    drop(second);
    drop(database);
}
