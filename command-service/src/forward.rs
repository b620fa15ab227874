//! Handing a command to the instance that owns its partition.
//!
//! With many instances behind a load balancer, most requests land on an instance that does
//! not own their resource's partition. That instance (the edge) authenticates and validates
//! the request as always, so the command's envelope names who sent it and what they may do.
//! Then, instead of sending the request on as it came (a second HTTP request, token check and
//! JSON validation on the owner for every command), it hands the envelope to the owner over
//! the peer channel: one pooled HTTP/2 connection per owner, on which the envelopes waiting
//! for the same owner travel together in one signed batch ([`PEER_PATH`]). The owner decides
//! each in its lane and answers each with its outcome, which the edge renders as if it had
//! decided it, naming the owner in [`DECIDED_BY`].
//!
//! The owner accepts only batches signed with the peer key (HMAC-SHA256 of the body, shared by
//! the instances of a deployment) and sent within [`FRESH_FOR`]: an envelope carries an
//! identity already proven, so only an instance may hand one over. A replayed batch decides
//! nothing new either, as every command is deduplicated by its id.
//!
//! An owner decides what it is handed or answers `not-owner` for each envelope of a partition
//! it does not own or has not finished restoring, having decided nothing. The edge then looks
//! at its directory again and tries once more if it names another owner, and otherwise queues
//! the command on the commands topic. Every path deduplicates by command id, so a command is
//! decided once whichever ways it travelled.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use holdfast_platform::auth::MIN_SECRET_BYTES;
use ring::hmac;
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::directory::{Directory, Route};
use crate::envelope::{CommandEnvelope, Outcome};
use crate::metrics::Metrics;

/// The owner's route that decides handed-over commands.
pub const PEER_PATH: &str = "/internal/v1/decisions";
/// The header carrying a batch's signature: lowercase hex of its HMAC-SHA256 under the peer key.
pub const SIGNATURE: &str = "holdfast-peer-signature";
/// The header on an answer naming the instance that decided it, when that was another one.
pub const DECIDED_BY: &str = "holdfast-decided-by";
/// Version of the peer channel's format.
pub const PEER_VERSION: u16 = 1;
/// How old a batch may be when it arrives (clocks of a deployment agree far better).
pub const FRESH_FOR: Duration = Duration::from_secs(30);
/// Largest batch body an owner reads.
pub const PEER_BODY_LIMIT: usize = 16 * 1024 * 1024;

/// Most envelopes in one batch.
const MAX_BATCH: usize = 512;
/// Batches in flight to one owner at a time. While they are, the next envelopes for it queue
/// and leave together as the next batch: under load, batches grow instead of requests.
const BATCHES_IN_FLIGHT: usize = 4;
/// Longest a forward may wait for its connection: an owner that does not accept within it is
/// treated as unreachable (nothing was sent).
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// How often a connection to an owner is pinged (HTTP/2 PING), and how long the answer may
/// take. An owner that does not answer a ping (paused, partitioned away) loses the connection,
/// and the commands waiting on it go through the commands topic with the time left, where the
/// partition's next owner decides them. A merely busy owner answers pings (the connection's
/// task answers them, not its lanes), so its commands wait for its decisions, as a local
/// caller would: giving up on a loaded owner would only add the topic path's work to it.
const PING_EVERY: Duration = Duration::from_secs(1);
const PING_TIMEOUT: Duration = Duration::from_secs(2);
/// How long an owner that could not be reached, or did not answer, is passed over: meanwhile
/// its partitions' commands go through the commands topic without waiting on it first.
const SUSPECT_FOR: Duration = Duration::from_secs(3);
/// How long a link to an owner stays open without commands for it.
const LINK_IDLE: Duration = Duration::from_secs(60);

/// The key batches are signed with.
#[derive(Clone)]
pub struct PeerKey(hmac::Key);

impl fmt::Debug for PeerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PeerKey(..)")
    }
}

/// Why no peer key could be made.
#[derive(Debug, thiserror::Error)]
pub enum PeerKeyError {
    /// The secret file could not be read.
    #[error("cannot read the peer secret {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The secret is too short to sign with.
    #[error("the peer secret needs at least {MIN_SECRET_BYTES} bytes")]
    TooShort,
}

impl PeerKey {
    /// The key of `secret` (surrounding whitespace, such as a file's last newline, is not
    /// part of it).
    ///
    /// # Errors
    /// When the secret is shorter than [`MIN_SECRET_BYTES`].
    pub fn new(secret: &[u8]) -> Result<Self, PeerKeyError> {
        let secret = secret.trim_ascii();
        if secret.len() < MIN_SECRET_BYTES {
            return Err(PeerKeyError::TooShort);
        }
        Ok(Self(hmac::Key::new(hmac::HMAC_SHA256, secret)))
    }

    /// The key derived from a shared token secret (local development, where tokens are signed
    /// with one HS256 secret every instance holds): whoever holds it may mint any token anyway.
    ///
    /// # Errors
    /// When the secret is shorter than [`MIN_SECRET_BYTES`].
    pub fn derived(token_secret: &[u8]) -> Result<Self, PeerKeyError> {
        let token_secret = token_secret.trim_ascii();
        if token_secret.len() < MIN_SECRET_BYTES {
            return Err(PeerKeyError::TooShort);
        }
        let derived =
            hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, token_secret), b"holdfast peer channel 1");
        Self::new(derived.as_ref())
    }

    /// The key from the first of: the secret given, the secret file, the HS256 token secret
    /// given or its file. `None` when there is none of them: commands for other instances'
    /// partitions then go through the commands topic.
    ///
    /// # Errors
    /// When a file cannot be read or a secret is too short.
    pub fn configured(
        secret: Option<&SecretString>,
        file: Option<&std::path::Path>,
        auth: &holdfast_platform::AuthArgs,
    ) -> Result<Option<Self>, PeerKeyError> {
        let read = |path: &std::path::Path| {
            std::fs::read(path)
                .map_err(|source| PeerKeyError::Read { path: path.display().to_string(), source })
        };
        if let Some(secret) = secret {
            return Self::new(secret.expose_secret().as_bytes()).map(Some);
        }
        if let Some(file) = file {
            return Self::new(&read(file)?).map(Some);
        }
        if let Some(secret) = &auth.hs256_secret {
            return Self::derived(secret.expose_secret().as_bytes()).map(Some);
        }
        if let Some(file) = &auth.hs256_secret_file {
            return Self::derived(&read(file)?).map(Some);
        }
        Ok(None)
    }

    /// The signature of `body`, as [`SIGNATURE`] carries it.
    #[must_use]
    pub fn sign(&self, body: &[u8]) -> String {
        hmac::sign(&self.0, body).as_ref().iter().map(|byte| format!("{byte:02x}")).collect()
    }

    /// Whether `signature` is `body`'s (compared in constant time).
    #[must_use]
    pub fn verify(&self, body: &[u8], signature: &str) -> bool {
        let Some(bytes) = unhex(signature) else { return false };
        hmac::verify(&self.0, body, &bytes).is_ok()
    }
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

/// What an edge sends an owner: envelopes to decide.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    /// Format version ([`PEER_VERSION`]).
    pub v: u16,
    /// The sending instance.
    pub from: String,
    /// When it was sent.
    #[serde(with = "time::serde::rfc3339")]
    pub sent_at: OffsetDateTime,
    /// The commands, each with how long its caller still waits.
    pub commands: Vec<Handed>,
}

/// One command handed over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handed {
    /// The validated command, as the edge built it.
    pub envelope: CommandEnvelope,
    /// Milliseconds its caller still waits for the decision.
    pub wait_ms: u64,
}

/// The owner's answers, one per command, in the batch's order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answers {
    /// Format version ([`PEER_VERSION`]).
    pub v: u16,
    /// The answers.
    pub answers: Vec<PeerAnswer>,
}

/// What the owner made of one command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "kebab-case")]
pub enum PeerAnswer {
    /// Decided, and the decision is valid in the log.
    Decided {
        /// The outcome.
        outcome: Box<Outcome>,
    },
    /// Not this instance's partition (or not restored yet): nothing was decided.
    NotOwner,
    /// Decided in memory but not confirmed in the log within the wait: the caller retries.
    Undecided,
}

/// How a hand-over ended.
#[derive(Debug)]
pub enum Forwarded {
    /// The owner decided it, with this outcome.
    Decided {
        /// The outcome.
        outcome: Arc<Outcome>,
        /// The owner.
        owner: String,
    },
    /// The owner may have decided it, and could not confirm it in time.
    Undecided,
}

/// What became of one envelope sent to one owner.
#[derive(Debug)]
enum Sent {
    Answered(PeerAnswer),
    /// No connection to the owner: nothing was sent.
    Unreachable,
    /// Sent, but no answer came in time: the owner may have decided it.
    Unclear,
}

/// An envelope waiting in a link for its batch.
struct Item {
    handed: Handed,
    deadline: tokio::time::Instant,
    answer: oneshot::Sender<Sent>,
}

/// Hands commands to their partitions' owners.
#[derive(Debug, Clone)]
pub struct Forwarder {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    client: reqwest::Client,
    directory: Arc<Directory>,
    me: String,
    key: PeerKey,
    metrics: Metrics,
    /// Owners passed over until the instant given.
    suspects: Mutex<HashMap<String, tokio::time::Instant>>,
    /// The batching link to each owner address.
    links: Mutex<HashMap<String, mpsc::UnboundedSender<Item>>>,
}

impl Forwarder {
    /// A forwarder for instance `me`, routing by `directory` and signing with `key`.
    ///
    /// # Errors
    /// When the HTTP client cannot be built (the TLS backend failed to start).
    pub fn new(
        me: &str,
        directory: Arc<Directory>,
        key: PeerKey,
        metrics: Metrics,
    ) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .http2_prior_knowledge()
            .connect_timeout(CONNECT_TIMEOUT)
            .pool_idle_timeout(LINK_IDLE)
            .http2_keep_alive_interval(PING_EVERY)
            .http2_keep_alive_timeout(PING_TIMEOUT)
            .http2_keep_alive_while_idle(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let inner = Inner {
            client,
            directory,
            me: me.to_owned(),
            key,
            metrics,
            suspects: Mutex::default(),
            links: Mutex::default(),
        };
        Ok(Self { inner: Arc::new(inner) })
    }

    /// The key batches are signed with, shared by the instances of the deployment.
    #[must_use]
    pub fn key(&self) -> &PeerKey {
        &self.inner.key
    }

    /// Where `partition`'s commands go, if another instance is its ready owner and has not
    /// failed to answer lately.
    #[must_use]
    pub fn route(&self, partition: i32) -> Option<Route> {
        let route = self.inner.directory.route(partition, &self.inner.me)?;
        let mut suspects = lock(&self.inner.suspects);
        match suspects.get(&route.owner) {
            Some(until) if *until > tokio::time::Instant::now() => None,
            Some(_) => {
                suspects.remove(&route.owner);
                Some(route)
            }
            None => Some(route),
        }
    }

    fn suspect(&self, owner: &str) {
        let until = tokio::time::Instant::now() + SUSPECT_FOR;
        lock(&self.inner.suspects).insert(owner.to_owned(), until);
    }

    /// Hands `envelope` (of `partition`) to its owner, to be decided by `deadline`; looks
    /// again and tries once more when the first owner refused or could not be reached. `None`
    /// when no other instance is known to own the partition, none took it, or the answer did
    /// not come: queue it instead (by command id, it is decided once either way).
    pub async fn forward(
        &self,
        partition: i32,
        envelope: &CommandEnvelope,
        deadline: tokio::time::Instant,
    ) -> Option<Forwarded> {
        let mut tried: Option<Route> = None;
        for _ in 0..2 {
            let route = self.route(partition).filter(|route| tried.as_ref() != Some(route))?;
            let started = tokio::time::Instant::now();
            let sent = self.send(&route, envelope, deadline).await;
            let label = match &sent {
                Sent::Answered(PeerAnswer::Decided { .. }) => "decided",
                Sent::Answered(PeerAnswer::NotOwner) => "not_owner",
                Sent::Answered(PeerAnswer::Undecided) => "undecided",
                Sent::Unreachable => "unreachable",
                Sent::Unclear => "unclear",
            };
            self.inner.metrics.forwards.with_label_values(&[label]).inc();
            self.inner.metrics.forward_seconds.observe(started.elapsed().as_secs_f64());
            match sent {
                Sent::Answered(PeerAnswer::Decided { outcome }) => {
                    return Some(Forwarded::Decided { outcome: Arc::from(outcome), owner: route.owner });
                }
                Sent::Answered(PeerAnswer::Undecided) => return Some(Forwarded::Undecided),
                Sent::Answered(PeerAnswer::NotOwner) => {
                    tracing::debug!(partition, owner = %route.owner, "hand-over refused: not the owner");
                    tried = Some(route);
                }
                Sent::Unreachable => {
                    tracing::debug!(partition, owner = %route.owner, "hand-over failed: owner unreachable");
                    self.suspect(&route.owner);
                    tried = Some(route);
                }
                Sent::Unclear => {
                    self.suspect(&route.owner);
                    return None;
                }
            }
        }
        None
    }

    /// One hand-over to `route`, through its link.
    async fn send(&self, route: &Route, envelope: &CommandEnvelope, deadline: tokio::time::Instant) -> Sent {
        let wait = deadline.saturating_duration_since(tokio::time::Instant::now());
        let handed = Handed {
            envelope: envelope.clone(),
            wait_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
        };
        let (answer, answered) = oneshot::channel();
        let mut item = Item { handed, deadline, answer };
        // A link that just closed for idleness is replaced once ([`Forwarder::link`] starts a
        // new one in place of a closed one).
        for _ in 0..2 {
            match self.link(&route.address).send(item) {
                Ok(()) => return answered.await.unwrap_or(Sent::Unclear),
                Err(mpsc::error::SendError(back)) => item = back,
            }
        }
        Sent::Unreachable
    }

    /// The link to the owner at `address`, started if there is none.
    fn link(&self, address: &str) -> mpsc::UnboundedSender<Item> {
        let mut links = lock(&self.inner.links);
        if let Some(link) = links.get(address).filter(|link| !link.is_closed()) {
            return link.clone();
        }
        let (sender, receiver) = mpsc::unbounded_channel();
        links.insert(address.to_owned(), sender.clone());
        tokio::spawn(carry(Arc::clone(&self.inner), address.to_owned(), receiver));
        sender
    }
}

/// A link: sends what queues for the owner at `address` in batches, at most
/// [`BATCHES_IN_FLIGHT`] at a time, until it has been idle for [`LINK_IDLE`].
async fn carry(inner: Arc<Inner>, address: String, mut queue: mpsc::UnboundedReceiver<Item>) {
    let in_flight = Arc::new(Semaphore::new(BATCHES_IN_FLIGHT));
    loop {
        let Ok(permit) = Arc::clone(&in_flight).acquire_owned().await else { return };
        let first = match tokio::time::timeout(LINK_IDLE, queue.recv()).await {
            Ok(Some(item)) => item,
            Ok(None) => return,
            Err(_) => {
                queue.close();
                // Whatever slipped in before the close still goes.
                let mut rest = Vec::new();
                while let Ok(item) = queue.try_recv() {
                    rest.push(item);
                }
                if !rest.is_empty() {
                    send_batch(&inner, &address, rest).await;
                }
                return;
            }
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(item) => batch.push(item),
                Err(_) => break,
            }
        }
        let (inner, address) = (Arc::clone(&inner), address.clone());
        tokio::spawn(async move {
            send_batch(&inner, &address, batch).await;
            drop(permit);
        });
    }
}

/// Sends one batch and hands each caller its answer.
async fn send_batch(inner: &Inner, address: &str, items: Vec<Item>) {
    let now = tokio::time::Instant::now();
    let (handed, waiting): (Vec<Handed>, Vec<_>) = items
        .into_iter()
        .filter(|item| !item.answer.is_closed() && item.deadline > now)
        .map(|item| (item.handed, (item.deadline, item.answer)))
        .unzip();
    let Some(last) = waiting.iter().map(|(deadline, _)| *deadline).max() else { return };
    inner.metrics.forward_batch.observe(handed.len() as f64);
    let batch = Batch {
        v: PEER_VERSION,
        from: inner.me.clone(),
        sent_at: OffsetDateTime::now_utc(),
        commands: handed,
    };
    let answers = match serde_json::to_vec(&batch) {
        Ok(body) => post(inner, address, body, last - now, batch.commands.len()).await,
        Err(error) => {
            tracing::error!(%error, "a batch could not be encoded");
            Err(Sent::Unreachable)
        }
    };
    match answers {
        Ok(answers) => {
            for ((_, caller), answer) in waiting.into_iter().zip(answers) {
                let _ = caller.send(Sent::Answered(answer));
            }
        }
        Err(failed) => {
            let unreachable = matches!(failed, Sent::Unreachable);
            for (_, caller) in waiting {
                let _ = caller.send(if unreachable { Sent::Unreachable } else { Sent::Unclear });
            }
        }
    }
}

/// Posts a signed batch of `count` commands; its answers, or how it failed.
async fn post(
    inner: &Inner,
    address: &str,
    body: Vec<u8>,
    timeout: Duration,
    count: usize,
) -> Result<Vec<PeerAnswer>, Sent> {
    let signature = inner.key.sign(&body);
    let response = inner
        .client
        .post(format!("http://{address}{PEER_PATH}"))
        .header(SIGNATURE, signature)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .timeout(timeout)
        .send()
        .await
        .map_err(|error| {
            if error.is_connect() {
                Sent::Unreachable
            } else {
                tracing::warn!(%address, %error, "handed-over commands unanswered");
                Sent::Unclear
            }
        })?;
    let status = response.status();
    let bytes = response.bytes().await.map_err(|_| Sent::Unclear)?;
    if !status.is_success() {
        // Refused as a whole (a key that differs, a clock far off): nothing was decided.
        tracing::warn!(%address, %status, body = %String::from_utf8_lossy(&bytes), "an owner refused a batch");
        return Err(Sent::Unreachable);
    }
    match serde_json::from_slice::<Answers>(&bytes) {
        Ok(answers) if answers.answers.len() == count => Ok(answers.answers),
        Ok(_) | Err(_) => {
            tracing::warn!(%address, "an owner's answers do not match its batch");
            Err(Sent::Unclear)
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"a peer secret of at least thirty-two bytes";

    #[test]
    fn signatures_verify_only_with_the_same_key_and_body() {
        let key = PeerKey::new(SECRET).expect("long enough");
        let signature = key.sign(b"batch");
        assert_eq!(signature.len(), 64, "hex of HMAC-SHA256");
        assert!(key.verify(b"batch", &signature));
        assert!(!key.verify(b"batch!", &signature), "another body");
        let other = PeerKey::new(b"another peer secret of thirty-two bytes or more").expect("long enough");
        assert!(!other.verify(b"batch", &signature), "another key");
        for bad in ["", "zz", "abc", &signature[..62]] {
            assert!(!key.verify(b"batch", bad), "{bad:?}");
        }
    }

    #[test]
    fn short_secrets_are_refused_and_derived_keys_differ_from_their_source() {
        assert!(matches!(PeerKey::new(b"short"), Err(PeerKeyError::TooShort)));
        assert!(matches!(PeerKey::new(b"  padded but short \n"), Err(PeerKeyError::TooShort)));
        let derived = PeerKey::derived(SECRET).expect("long enough");
        let plain = PeerKey::new(SECRET).expect("long enough");
        assert!(!plain.verify(b"x", &derived.sign(b"x")), "the token secret itself signs nothing");
        let again = PeerKey::derived(SECRET).expect("long enough");
        assert!(again.verify(b"x", &derived.sign(b"x")), "every instance derives the same key");
    }

    #[test]
    fn answers_travel_as_tagged_json() {
        let answers = Answers { v: PEER_VERSION, answers: vec![PeerAnswer::NotOwner, PeerAnswer::Undecided] };
        let json = serde_json::to_value(&answers).expect("encodes");
        assert_eq!(json["answers"][0]["answer"], "not-owner");
        assert_eq!(serde_json::from_value::<Answers>(json).expect("decodes"), answers);
    }
}
