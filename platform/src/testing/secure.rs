//! Settings for the local stack's secure endpoints, as a production deployment uses them:
//! Kafka over SASL_SSL with a SCRAM user per service, PostgreSQL over TLS with a role per
//! service, Redis over TLS with an ACL user per service. Servers are verified against the
//! stack's own certificate authority; passwords come from the stack's secret files, through
//! the same `*_PASSWORD_FILE` settings the services read (see `infra/local/lib.sh`).

use std::path::PathBuf;

use secrecy::SecretString;

use crate::config::{KafkaArgs, PostgresArgs, RedisArgs, TopicArgs};

/// The topic prefix whose layout the stack's Kafka ACLs cover for tests
/// (`infra/local/kafka/SecureSetup.java`). One layout, so tests using it run one at a time.
pub const TOPIC_PREFIX: &str = "hf-secure.";

/// Where the stack keeps its files (`HOLDFAST_STACK_DIR`, by default `.stack/` at the
/// repository root).
fn stack_dir() -> PathBuf {
    std::env::var_os("HOLDFAST_STACK_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.stack"), PathBuf::from)
}

/// The certificate authority that signed the stack's servers.
#[must_use]
pub fn ca_file() -> PathBuf {
    stack_dir().join("tls/ca.pem")
}

/// The password file of `user` on `system` (`kafka`, `postgres` or `redis`).
#[must_use]
pub fn password_file(system: &str, user: &str) -> PathBuf {
    stack_dir().join("secrets").join(format!("{system}-{user}"))
}

/// The password of `user` on `system`.
///
/// # Panics
/// When the stack has not made it (`infra/local/stack up` does).
#[must_use]
pub fn password(system: &str, user: &str) -> SecretString {
    let file = password_file(system, user);
    let text = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("{} is missing ({e}): run infra/local/stack up", file.display()));
    SecretString::from(text.trim().to_owned())
}

/// Kafka through the SASL_SSL listener as `user` (`holdfast-command`, `holdfast-projection`).
#[must_use]
pub fn kafka(user: &str) -> KafkaArgs {
    let property = |key: &str, value: &str| (key.to_owned(), value.to_owned());
    KafkaArgs {
        brokers: "localhost:9094".to_owned(),
        properties: vec![
            property("security.protocol", "SASL_SSL"),
            property("sasl.mechanisms", "SCRAM-SHA-512"),
            property("sasl.username", user),
            property("ssl.ca.location", &ca_file().to_string_lossy()),
            property("ssl.endpoint.identification.algorithm", "https"),
        ],
        sasl_password: Some(password("kafka", user)),
    }
}

/// The topic layout the secure users may use, with `partitions` partitions.
#[must_use]
pub fn topics(partitions: i32) -> TopicArgs {
    TopicArgs {
        topic_prefix: TOPIC_PREFIX.to_owned(),
        partitions,
        replication_factor: 1,
        min_insync_replicas: 1,
    }
}

/// PostgreSQL database `database` over TLS (`verify-full`) as `role` (`holdfast_projection`,
/// `holdfast_query`); the password goes separately, as from a password file.
#[must_use]
pub fn postgres(role: &str, database: &str) -> PostgresArgs {
    let url = format!(
        "postgres://{role}@localhost:5432/{database}?sslmode=verify-full&sslrootcert={}",
        ca_file().display()
    );
    PostgresArgs {
        urls: vec![SecretString::from(url)],
        password: Some(password("postgres", role)),
        max_connections: 4,
    }
}

/// Redis over TLS as `user` (`holdfast-projection`, `holdfast-query`), with `key_prefix`.
#[must_use]
pub fn redis(user: &str, key_prefix: &str) -> RedisArgs {
    RedisArgs {
        urls: vec![SecretString::from(format!("rediss://{user}@localhost:6380"))],
        password: Some(password("redis", user)),
        ca_file: Some(ca_file()),
        cluster: false,
        key_prefix: key_prefix.to_owned(),
    }
}
