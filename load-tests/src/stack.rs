//! Holdfast's services started by the load generator itself (`--spawn BIN_DIR`), so a run
//! owns everything it measures: its own topics, database and Redis key prefix, and processes
//! it can kill, pause and restart while the load goes on ([`crate::fault`]).
//!
//! Started: `--command-instances` command services (each appending through
//! `--append-producers` idempotent producers), one projection worker and one query service,
//! from release binaries, logging to `<out>/services/`. Kafka, PostgreSQL and Redis are the running local stack; restarting
//! them goes through the stack script (`--stack-control`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret as _, SecretString};
use tokio::process::{Child, Command};

use crate::driver::load_token;
use crate::fault::{FaultKind, Injected};
use crate::takeover::Takeovers;

/// Why the services could not be started.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    /// A binary is missing: build them (`cargo build --release`) and point `--spawn` at the
    /// folder that holds them.
    #[error("{0} is missing; build the services in release mode and point --spawn at them")]
    Missing(PathBuf),
    /// A process could not be started or signalled.
    #[error("cannot run {what}")]
    Process {
        /// Which.
        what: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A service did not become ready in time: see its log under `<out>/services/`.
    #[error("{0} did not become ready within {1:?}; see its log")]
    NotReady(String, Duration),
    /// The run's database could not be created or dropped: check `--postgres-url`.
    #[error("cannot prepare the run's database")]
    Database(#[from] sqlx::Error),
}

/// Which process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Command service instance `n`.
    Command(u16),
    /// The projection worker.
    Projection,
    /// The query service.
    Query,
}

impl Role {
    /// The binary the role runs (`command-service`, `projection-workers`, `query-service`).
    #[must_use]
    pub fn binary(self) -> &'static str {
        match self {
            Self::Command(_) => "command-service",
            Self::Projection => "projection-workers",
            Self::Query => "query-service",
        }
    }

    fn listen_variable(self) -> &'static str {
        match self {
            Self::Command(_) => "HOLDFAST_COMMAND_LISTEN",
            Self::Projection => "HOLDFAST_PROJECTION_LISTEN",
            Self::Query => "HOLDFAST_QUERY_LISTEN",
        }
    }

    /// `command-1`, `projection`, `query`.
    #[must_use]
    pub fn name(self) -> String {
        match self {
            Self::Command(n) => format!("command-{n}"),
            Self::Projection => "projection".to_owned(),
            Self::Query => "query".to_owned(),
        }
    }
}

/// What to start and where the run's data goes.
#[derive(Debug, Clone)]
pub struct SpawnSettings {
    /// Folder of the service binaries.
    pub bin_dir: PathBuf,
    /// Command-service instances.
    pub command_instances: u16,
    /// Idempotent producers each command-service instance appends through.
    pub append_producers: u16,
    /// The run's topic prefix.
    pub topic_prefix: String,
    /// Partitions of its topics.
    pub partitions: i32,
    /// URL of the run's own database.
    pub database_url: SecretString,
    /// The run's Redis key prefix.
    pub redis_prefix: String,
    /// Logs go to `<logs>/<role>.log`.
    pub logs: PathBuf,
    /// The stack script that restarts Kafka and PostgreSQL.
    pub stack_control: PathBuf,
    /// Redis URL for `FLUSHALL`.
    pub redis_url: String,
    /// How long a `stop-command` pause lasts.
    pub pause: Duration,
}

/// The running services.
#[derive(Debug)]
pub struct Spawned {
    settings: SpawnSettings,
    /// The HS256 secret the spawned services check tokens with (fresh for every run).
    secret: SecretString,
    ports: HashMap<Role, u16>,
    children: HashMap<Role, Child>,
    /// Which command instance the next command fault hits.
    next_victim: u16,
    /// The takeover counts of command processes stopped or killed, as last scraped.
    gone: Takeovers,
    /// The client that asks the services whether they are ready and for their metrics.
    probe: reqwest::Client,
}

/// How long a service may take to become ready (a command service restores its partitions
/// from the log first).
const READY_WITHIN: Duration = Duration::from_secs(180);

/// How long a service may take to exit after `SIGTERM` before it is killed: the services'
/// shutdown grace (`HOLDFAST_SHUTDOWN_GRACE`, 20 s) and a margin.
const EXIT_WITHIN: Duration = Duration::from_secs(30);

impl Spawned {
    /// Starts every service and waits until each is ready.
    ///
    /// # Errors
    /// When a binary is missing, a process cannot start or a service is not ready in time.
    pub async fn start(settings: SpawnSettings) -> Result<Self, StackError> {
        std::fs::create_dir_all(&settings.logs)
            .map_err(|source| StackError::Process { what: "mkdir for the logs".into(), source })?;
        let mut roles: Vec<Role> = (1..=settings.command_instances).map(Role::Command).collect();
        roles.extend([Role::Projection, Role::Query]);
        let secret =
            SecretString::from(format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple()));
        let probe =
            reqwest::Client::builder().timeout(Duration::from_secs(2)).no_proxy().build().map_err(|e| {
                StackError::Process { what: "an HTTP client".into(), source: std::io::Error::other(e) }
            })?;
        let mut spawned = Self {
            settings,
            secret,
            ports: HashMap::new(),
            children: HashMap::new(),
            next_victim: 0,
            gone: Takeovers::default(),
            probe,
        };
        for role in &roles {
            let port = free_port().map_err(|source| StackError::Process { what: "bind".into(), source })?;
            spawned.ports.insert(*role, port);
            spawned.launch(*role)?;
        }
        for role in roles {
            spawned.wait_ready(role).await?;
        }
        Ok(spawned)
    }

    /// The process id of every running service, by role.
    #[must_use]
    pub fn pids(&self) -> Vec<(Role, u32)> {
        let mut pids: Vec<(Role, u32)> =
            self.children.iter().filter_map(|(role, child)| child.id().map(|pid| (*role, pid))).collect();
        pids.sort_by_key(|(role, _)| role.name());
        pids
    }

    /// Base URLs of the command-service instances.
    #[must_use]
    pub fn command_urls(&self) -> Vec<String> {
        (1..=self.settings.command_instances).map(|n| self.url(Role::Command(n))).collect()
    }

    /// A token the spawned services accept, with every scope (the load acts for many
    /// customers).
    ///
    /// # Errors
    /// Never in practice: the secret is 64 characters.
    pub fn token(&self) -> Result<String, String> {
        load_token(self.secret.expose_secret().as_bytes()).map_err(|e| e.to_string())
    }

    /// `http://127.0.0.1:<port>` of `role`.
    #[must_use]
    pub fn url(&self, role: Role) -> String {
        format!("http://127.0.0.1:{}", self.ports.get(&role).copied().unwrap_or(0))
    }

    fn launch(&mut self, role: Role) -> Result<(), StackError> {
        let s = &self.settings;
        let binary = s.bin_dir.join(role.binary());
        if !binary.is_file() {
            return Err(StackError::Missing(binary));
        }
        let log_path = s.logs.join(format!("{}.log", role.name()));
        let open = || std::fs::OpenOptions::new().create(true).append(true).open(&log_path);
        let io = |source| StackError::Process { what: format!("{} log", role.name()), source };
        let (stdout, stderr) = (open().map_err(io)?, open().map_err(io)?);
        let port = self.ports.get(&role).copied().unwrap_or(0);
        let mut command = Command::new(&binary);
        command
            .env(role.listen_variable(), format!("127.0.0.1:{port}"))
            .env("HOLDFAST_TOPIC_PREFIX", &s.topic_prefix)
            .env("HOLDFAST_PARTITIONS", s.partitions.to_string())
            .env("HOLDFAST_POSTGRES_URLS", s.database_url.expose_secret())
            .env("HOLDFAST_REDIS_KEY_PREFIX", &s.redis_prefix)
            .env("HOLDFAST_PROJECTION_GROUP", format!("{}projection", s.topic_prefix))
            .env("HOLDFAST_APPEND_PRODUCERS", s.append_producers.to_string())
            .env("HOLDFAST_SESSION_TIMEOUT", "6s")
            .env("HOLDFAST_LOG", "warn")
            .env("HOLDFAST_LOG_FORMAT", "json")
            .env("HOLDFAST_AUTH_HS256_SECRET", self.secret.expose_secret())
            .stdin(Stdio::null())
            .stdout(Stdio::from(stdout))
            .stderr(Stdio::from(stderr))
            .kill_on_drop(true);
        if let Role::Command(n) = role {
            command.env("HOLDFAST_INSTANCE_ID", format!("{}c{n}", s.topic_prefix.replace('.', "-")));
        }
        let child = command.spawn().map_err(|source| StackError::Process { what: role.name(), source })?;
        self.children.insert(role, child);
        Ok(())
    }

    async fn wait_ready(&mut self, role: Role) -> Result<(), StackError> {
        let url = format!("{}/readyz", self.url(role));
        let started = Instant::now();
        while started.elapsed() < READY_WITHIN {
            if let Ok(response) = self.probe.get(&url).send().await
                && response.status().is_success()
            {
                return Ok(());
            }
            let exited = self.children.get_mut(&role).and_then(|c| c.try_wait().ok().flatten());
            if exited.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(StackError::NotReady(role.name(), READY_WITHIN))
    }

    /// The takeover counts of the command instances ([`crate::takeover`]): those running now
    /// and those gone (their counts as scraped last).
    pub async fn takeovers(&self) -> Takeovers {
        let mut all = self.gone.clone();
        for n in 1..=self.settings.command_instances {
            if self.children.contains_key(&Role::Command(n)) {
                all.add(&self.scrape_takeovers(Role::Command(n)).await);
            }
        }
        all
    }

    /// `role`'s takeover counts (nothing when it does not answer).
    async fn scrape_takeovers(&self, role: Role) -> Takeovers {
        let url = format!("{}/metrics", self.url(role));
        match self.probe.get(&url).send().await {
            Ok(response) => Takeovers::parse(&response.text().await.unwrap_or_default()),
            Err(_) => Takeovers::default(),
        }
    }

    /// Keeps a command instance's counts before it goes.
    async fn retire(&mut self, role: Role) {
        if matches!(role, Role::Command(_)) && self.children.contains_key(&role) {
            let last = self.scrape_takeovers(role).await;
            self.gone.add(&last);
        }
    }

    /// `kill -9` of `role`, then the same process started again until ready.
    async fn kill_and_restart(&mut self, role: Role) -> Result<(), String> {
        self.retire(role).await;
        if let Some(mut child) = self.children.remove(&role) {
            child.kill().await.map_err(|e| format!("kill -9 {}: {e}", role.name()))?;
        }
        self.launch(role).map_err(|e| e.to_string())?;
        self.wait_ready(role).await.map_err(|e| e.to_string())
    }

    /// A rolling restart of the command instances: each in turn is stopped with `SIGTERM`
    /// (it hands its partitions over and exits; killed after [`EXIT_WITHIN`]), started again
    /// and waited for until ready before the next one.
    async fn restart_commands(&mut self) -> Result<(), String> {
        let mut problems = Vec::new();
        for n in 1..=self.settings.command_instances {
            let role = Role::Command(n);
            if let Err(problem) = self.terminate(role).await {
                problems.push(problem);
            }
            self.launch(role).map_err(|e| e.to_string())?;
            self.wait_ready(role).await.map_err(|e| e.to_string())?;
        }
        if problems.is_empty() { Ok(()) } else { Err(problems.join("; ")) }
    }

    /// `SIGTERM` to `role` and the wait until it exited; `kill -9` when it is still running
    /// after [`EXIT_WITHIN`] (reported as the error).
    async fn terminate(&mut self, role: Role) -> Result<(), String> {
        self.retire(role).await;
        let Some(mut child) = self.children.remove(&role) else { return Ok(()) };
        let Some(pid) = child.id() else { return Ok(()) };
        let term = signal("-TERM", pid).await;
        if term.is_ok()
            && let Ok(exited) = tokio::time::timeout(EXIT_WITHIN, child.wait()).await
        {
            return exited.map(drop).map_err(|e| format!("wait for {}: {e}", role.name()));
        }
        child.kill().await.map_err(|e| format!("kill -9 {}: {e}", role.name()))?;
        Err(match term {
            Ok(()) => format!("{} still ran {EXIT_WITHIN:?} after SIGTERM; killed", role.name()),
            Err(e) => format!("{e}; killed {}", role.name()),
        })
    }

    /// `SIGSTOP`, the pause, `SIGCONT`.
    async fn pause(&mut self, role: Role) -> Result<(), String> {
        let pid = self.children.get(&role).and_then(Child::id).ok_or("the process is not running")?;
        signal("-STOP", pid).await?;
        tokio::time::sleep(self.settings.pause).await;
        signal("-CONT", pid).await
    }

    /// Runs the stack script's `restart <component>`.
    async fn restart_component(&self, component: &str) -> Result<(), String> {
        let status = Command::new(&self.settings.stack_control)
            .args(["restart", component])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await
            .map_err(|e| format!("{}: {e}", self.settings.stack_control.display()))?;
        if status.success() { Ok(()) } else { Err(format!("restart {component}: {status}")) }
    }

    /// `FLUSHALL` on Redis.
    async fn flush_redis(&self) -> Result<(), String> {
        let client = redis::Client::open(self.settings.redis_url.as_str()).map_err(|e| e.to_string())?;
        let mut conn = client.get_multiplexed_async_connection().await.map_err(|e| e.to_string())?;
        redis::cmd("FLUSHALL").query_async::<()>(&mut conn).await.map_err(|e| e.to_string())
    }

    /// Injects `kind` now (`at_s` is its time since the schedule began) and returns what
    /// happened; a fault that could not be injected is reported, not fatal.
    pub async fn inject(&mut self, kind: FaultKind, at_s: f64) -> Injected {
        let takeovers_before = Some(self.takeovers().await);
        let started = Instant::now();
        let victim = Role::Command(self.next_victim % self.settings.command_instances.max(1) + 1);
        let outcome = match kind {
            FaultKind::KillCommand => self.kill_and_restart(victim).await,
            FaultKind::StopCommand => self.pause(victim).await,
            FaultKind::RestartCommand => self.restart_commands().await,
            FaultKind::KillProjection => self.kill_and_restart(Role::Projection).await,
            FaultKind::RestartKafka => self.restart_component("kafka").await,
            FaultKind::RestartPostgres => self.restart_component("postgres").await,
            FaultKind::FlushRedis => self.flush_redis().await,
        };
        if matches!(kind, FaultKind::KillCommand | FaultKind::StopCommand) {
            self.next_victim += 1;
        }
        Injected {
            kind,
            at_s,
            took_s: started.elapsed().as_secs_f64(),
            error: outcome.err(),
            takeovers_before,
        }
    }

    /// Stops every service with SIGTERM (they drain), killing those still running after
    /// [`EXIT_WITHIN`].
    pub async fn stop(mut self) {
        for child in self.children.values() {
            if let Some(pid) = child.id() {
                let _ = signal("-CONT", pid).await;
                let _ = signal("-TERM", pid).await;
            }
        }
        for (_, mut child) in self.children.drain() {
            if tokio::time::timeout(EXIT_WITHIN, child.wait()).await.is_err() {
                let _ = child.kill().await;
            }
        }
    }
}

/// Sends a signal with `kill(1)`.
async fn signal(flag: &str, pid: u32) -> Result<(), String> {
    let status = Command::new("kill")
        .args([flag, &pid.to_string()])
        .status()
        .await
        .map_err(|e| format!("kill {flag} {pid}: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("kill {flag} {pid}: {status}")) }
}

/// A port that was free a moment ago.
fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Where logs of the spawned services go inside a results folder.
#[must_use]
pub fn logs_dir(out: &Path) -> PathBuf {
    out.join("services")
}
