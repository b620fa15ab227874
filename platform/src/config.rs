//! Typed settings shared by the services, read once at start-up from flags or environment
//! variables (every flag has an `HOLDFAST_*` variable). Defaults point at the local stack
//! on loopback, so `cargo run` works against `make up` with no configuration at all.
//!
//! Secrets (database and Redis URLs, which may carry passwords) are held in
//! [`SecretString`] so they never reach a log line through `Debug`.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use secrecy::SecretString;

/// Kafka connection settings. `Debug` shows the property names only: their values may be
/// credentials (`sasl.password`, `ssl.key.password`).
#[derive(Clone, Args)]
pub struct KafkaArgs {
    /// Comma-separated bootstrap servers.
    #[arg(long = "kafka-brokers", env = "HOLDFAST_KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    pub brokers: String,
    /// Extra librdkafka properties as `key=value`, comma-separated (e.g. security settings).
    #[arg(
        long = "kafka-property",
        env = "HOLDFAST_KAFKA_PROPERTIES",
        hide_env_values = true,
        value_delimiter = ',',
        value_parser = parse_key_value
    )]
    pub properties: Vec<(String, String)>,
    /// File holding the SASL password, read at start; it is set as `sasl.password` over any
    /// given in the properties. The other SASL and TLS settings are properties
    /// (`security.protocol=SASL_SSL`, `sasl.mechanisms=SCRAM-SHA-512`, `sasl.username`,
    /// `ssl.ca.location`).
    #[arg(id = "kafka_sasl_password", long = "kafka-sasl-password-file", env = "HOLDFAST_KAFKA_SASL_PASSWORD_FILE", value_parser = read_secret_file)]
    pub sasl_password: Option<SecretString>,
}

impl std::fmt::Debug for KafkaArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.properties.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("KafkaArgs")
            .field("brokers", &self.brokers)
            .field("properties", &names)
            .field("sasl_password", &self.sasl_password.as_ref().map(|_| "***"))
            .finish()
    }
}

/// Topic layout settings: names, partition count and replication.
#[derive(Debug, Clone, Args)]
pub struct TopicArgs {
    /// Prefix put before every topic name (isolates environments and tests on one cluster).
    #[arg(long = "topic-prefix", env = "HOLDFAST_TOPIC_PREFIX", default_value = "")]
    pub topic_prefix: String,
    /// Partitions of the co-partitioned commands and events topics.
    #[arg(long, env = "HOLDFAST_PARTITIONS", default_value_t = 480)]
    pub partitions: i32,
    /// Replication factor used when topics are created.
    #[arg(long, env = "HOLDFAST_REPLICATION_FACTOR", default_value_t = 1)]
    pub replication_factor: i32,
    /// `min.insync.replicas` set on created topics.
    #[arg(long, env = "HOLDFAST_MIN_INSYNC_REPLICAS", default_value_t = 1)]
    pub min_insync_replicas: i32,
}

/// Bearer-token settings (see `crate::auth`).
#[derive(Debug, Clone, Args)]
pub struct AuthArgs {
    /// JWKS document with the public keys of the token issuer (RS256, ES256): a file path or
    /// an `http(s)://` URL. Read at start and again when a token names an unknown key.
    #[arg(long = "auth-jwks", env = "HOLDFAST_AUTH_JWKS")]
    pub jwks: Option<String>,
    /// File holding a shared HS256 secret (at least 32 bytes). For local development only.
    #[arg(long = "auth-hs256-secret-file", env = "HOLDFAST_AUTH_HS256_SECRET_FILE")]
    pub hs256_secret_file: Option<PathBuf>,
    /// A shared HS256 secret given directly (at least 32 bytes), instead of the file. For local
    /// development and tests only.
    #[arg(long = "auth-hs256-secret", env = "HOLDFAST_AUTH_HS256_SECRET", hide_env_values = true, value_parser = parse_secret)]
    pub hs256_secret: Option<SecretString>,
    /// Required `iss` claim.
    #[arg(long = "auth-issuer", env = "HOLDFAST_AUTH_ISSUER", default_value = "holdfast-local")]
    pub issuer: String,
    /// Required `aud` claim (one of the token's audiences).
    #[arg(long = "auth-audience", env = "HOLDFAST_AUTH_AUDIENCE", default_value = "holdfast")]
    pub audience: String,
    /// Requests a second each client (token subject) may make on this instance, beyond its
    /// burst; 0 for no limit. Tokens with `resources:admin` are not limited.
    #[arg(long = "rate-limit", env = "HOLDFAST_RATE_LIMIT", default_value_t = 50)]
    pub rate_limit: u32,
    /// Requests a client may make at once before the rate applies.
    #[arg(long = "rate-burst", env = "HOLDFAST_RATE_BURST", default_value_t = 100)]
    pub rate_burst: u32,
}

/// Schema registry settings (Confluent-compatible API).
#[derive(Debug, Clone, Args)]
pub struct RegistryArgs {
    /// Base URL of the Confluent-compatible schema registry API.
    #[arg(
        long = "schema-registry-url",
        env = "HOLDFAST_SCHEMA_REGISTRY_URL",
        default_value = "http://127.0.0.1:8085/apis/ccompat/v7"
    )]
    pub url: String,
}

/// PostgreSQL settings: one URL per read-model shard.
#[derive(Debug, Clone, Args)]
pub struct PostgresArgs {
    /// Comma-separated PostgreSQL URLs; partition `p` belongs to shard `p mod n`.
    #[arg(
        id = "postgres_urls",
        long = "postgres-url",
        env = "HOLDFAST_POSTGRES_URLS",
        hide_env_values = true,
        value_delimiter = ',',
        value_parser = parse_secret,
        default_value = "postgres://holdfast:holdfast@127.0.0.1:5432/holdfast"
    )]
    pub urls: Vec<SecretString>,
    /// File holding the password of the URLs' role, read at start; it replaces any password
    /// in the URLs. TLS goes in the URLs: `?sslmode=verify-full&sslrootcert=/path/ca.pem`.
    #[arg(id = "postgres_password", long = "postgres-password-file", env = "HOLDFAST_POSTGRES_PASSWORD_FILE", value_parser = read_secret_file)]
    pub password: Option<SecretString>,
    /// Connections per shard pool.
    #[arg(
        long = "postgres-max-connections",
        env = "HOLDFAST_POSTGRES_MAX_CONNECTIONS",
        default_value_t = 16
    )]
    pub max_connections: u32,
}

/// Redis settings: a single server or the seed nodes of a cluster.
#[derive(Debug, Clone, Args)]
pub struct RedisArgs {
    /// Comma-separated Redis URLs (several only with `--redis-cluster`).
    #[arg(
        id = "redis_urls",
        long = "redis-url",
        env = "HOLDFAST_REDIS_URLS",
        hide_env_values = true,
        value_delimiter = ',',
        value_parser = parse_secret,
        default_value = "redis://127.0.0.1:6379"
    )]
    pub urls: Vec<SecretString>,
    /// File holding the password of the URLs' user (`redis://user@host`, or the `default`
    /// user), read at start; it replaces any password in the URLs.
    #[arg(id = "redis_password", long = "redis-password-file", env = "HOLDFAST_REDIS_PASSWORD_FILE", value_parser = read_secret_file)]
    pub password: Option<SecretString>,
    /// PEM file of the certificate authority that signed the server's certificate, for
    /// `rediss://` URLs served by a private CA (the system's roots are trusted otherwise).
    #[arg(id = "redis_ca_file", long = "redis-ca-file", env = "HOLDFAST_REDIS_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// Talk to a Redis Cluster instead of a single server.
    #[arg(long = "redis-cluster", env = "HOLDFAST_REDIS_CLUSTER", default_value_t = false)]
    pub cluster: bool,
    /// Prefix of every key Holdfast writes (isolates environments, shadow rebuilds and tests).
    #[arg(long = "redis-key-prefix", env = "HOLDFAST_REDIS_KEY_PREFIX", default_value = "hf:")]
    pub key_prefix: String,
}

/// Logging and shutdown settings.
#[derive(Debug, Clone, Args)]
pub struct TelemetryArgs {
    /// Log format: `pretty` for people, `json` for log pipelines.
    #[arg(long = "log-format", env = "HOLDFAST_LOG_FORMAT", default_value = "pretty")]
    pub log_format: LogFormat,
    /// Log filter in `tracing` directive syntax (`RUST_LOG` is honoured too).
    #[arg(long = "log", env = "HOLDFAST_LOG", default_value = "info")]
    pub filter: String,
    /// How long a SIGTERM may take to drain in-flight work before the process exits anyway.
    #[arg(long = "shutdown-grace", env = "HOLDFAST_SHUTDOWN_GRACE", default_value = "20s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,
}

/// How log lines are rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable, coloured when the output is a terminal.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// Parses `key=value`.
fn parse_key_value(raw: &str) -> Result<(String, String), String> {
    let (key, value) = raw.split_once('=').ok_or_else(|| format!("expected key=value, got {raw:?}"))?;
    let key = key.trim();
    if key.is_empty() {
        return Err(format!("empty key in {raw:?}"));
    }
    Ok((key.to_owned(), value.trim().to_owned()))
}

fn parse_secret(raw: &str) -> Result<SecretString, String> {
    if raw.trim().is_empty() {
        return Err("must not be empty".to_owned());
    }
    Ok(SecretString::from(raw.trim().to_owned()))
}

/// Reads a secret from the file at `path`: its content without surrounding whitespace (a
/// mounted Kubernetes secret or a file written by `echo` ends with a newline).
fn read_secret_file(path: &str) -> Result<SecretString, String> {
    let content = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    parse_secret(&content).map_err(|e| format!("{path}: {e}"))
}

/// Parses durations such as `250ms`, `20s`, `5m`, or a bare number of seconds.
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    let raw = raw.trim();
    let split = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
    let (digits, unit) = raw.split_at(split);
    let value: u64 =
        digits.parse().map_err(|_| format!("expected a duration like 250ms, 20s or 5m, got {raw:?}"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(value)),
        "" | "s" => Ok(Duration::from_secs(value)),
        "m" => Ok(Duration::from_secs(value * 60)),
        _ => Err(format!("unknown duration unit {unit:?} in {raw:?} (use ms, s or m)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_settings_show_property_names_but_not_values() {
        let kafka = KafkaArgs {
            brokers: "b:9096".into(),
            properties: vec![("sasl.password".into(), "PLANTED-kafka-password".into())],
            sasl_password: Some(SecretString::from("PLANTED-file-password")),
        };
        let shown = format!("{kafka:?}");
        assert!(shown.contains("sasl.password") && shown.contains("b:9096"), "{shown}");
        assert!(!shown.contains("PLANTED"), "{shown}");
    }

    #[test]
    fn secret_files_are_read_trimmed_and_must_hold_something() {
        let dir = std::env::temp_dir().join(format!("holdfast-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let (full, blank) = (dir.join("full"), dir.join("blank"));
        std::fs::write(&full, "s3cret\n").expect("written");
        std::fs::write(&blank, "\n").expect("written");
        let read = |p: &std::path::Path| read_secret_file(p.to_str().expect("utf-8"));
        assert_eq!(
            read(&full).map(|s| secrecy::ExposeSecret::expose_secret(&s).to_owned()),
            Ok("s3cret".into())
        );
        assert!(read(&blank).is_err_and(|e| e.contains("must not be empty")));
        assert!(read(&dir.join("missing")).is_err_and(|e| e.contains("cannot read")));
        std::fs::remove_dir_all(&dir).expect("removed");
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("20s"), Ok(Duration::from_secs(20)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("2h").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn key_values_need_an_equals_sign() {
        assert_eq!(
            parse_key_value("security.protocol=SSL"),
            Ok(("security.protocol".to_owned(), "SSL".to_owned()))
        );
        assert!(parse_key_value("nonsense").is_err());
        assert!(parse_key_value("=x").is_err());
    }
}
