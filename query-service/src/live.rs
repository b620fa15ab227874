//! Live updates: one Redis pub/sub connection per instance, pattern-subscribed to every
//! resource's update channel (`<prefix>avail-updates:{<id>}`), fanned out in process to the
//! streams watching each resource.
//!
//! One pattern subscription made at start-up means a new stream never waits for a SUBSCRIBE
//! round trip and cannot race an UNSUBSCRIBE; the price is that every update reaches every
//! instance (about 200 bytes per projected batch and resource, a few hundred KB/s at ten times
//! the reference load). Per-channel subscriptions are the change to make if that ever matters.
//!
//! Whenever the connection is (re)established or lost, the hub moves its epoch; streams answer
//! a new epoch with a fresh snapshot, because updates may have been missed in between.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::read::layout::Update;
use futures::StreamExt;
use holdfast_platform::Shutdown;
use redis::Client;
use tokio::sync::{broadcast, watch};

/// Updates buffered per resource before a slow stream lags (and resynchronises by snapshot).
const BUFFER: usize = 64;
/// Pause before reconnecting after the pub/sub connection failed.
const RECONNECT: Duration = Duration::from_secs(1);

/// The connection's state as streams see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    /// Moves on every connect and disconnect.
    pub epoch: u64,
    /// Whether updates are flowing.
    pub connected: bool,
}

/// The in-process fan-out of live updates; cheap to clone.
#[derive(Debug, Clone)]
pub struct Live {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Senders of the resources someone watches.
    watched: Mutex<HashMap<String, broadcast::Sender<Arc<Update>>>>,
    link: watch::Sender<Link>,
    channel_prefix: String,
}

/// A stream's subscription to one resource; unsubscribes when dropped.
#[derive(Debug)]
pub struct Subscription {
    /// Updates of the resource.
    pub updates: broadcast::Receiver<Arc<Update>>,
    /// The connection state.
    pub link: watch::Receiver<Link>,
    /// Declared last so it runs after `updates` is dropped.
    _guard: Guard,
}

#[derive(Debug)]
struct Guard {
    live: Live,
    resource: String,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let mut watched = self.live.lock();
        if watched.get(&self.resource).is_some_and(|sender| sender.receiver_count() == 0) {
            watched.remove(&self.resource);
        }
    }
}

impl Live {
    /// The hub for keys under `prefix`.
    #[must_use]
    pub fn new(prefix: &str) -> Self {
        let (link, _) = watch::channel(Link { epoch: 0, connected: false });
        Self {
            inner: Arc::new(Inner {
                watched: Mutex::new(HashMap::new()),
                link,
                channel_prefix: crate::read::layout::channel_prefix(prefix),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, broadcast::Sender<Arc<Update>>>> {
        self.inner.watched.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Subscribes to `resource`'s updates.
    #[must_use]
    pub fn subscribe(&self, resource: &str) -> Subscription {
        let updates = self
            .lock()
            .entry(resource.to_owned())
            .or_insert_with(|| broadcast::channel(BUFFER).0)
            .subscribe();
        Subscription {
            updates,
            link: self.inner.link.subscribe(),
            _guard: Guard { live: self.clone(), resource: resource.to_owned() },
        }
    }

    /// Whether updates are flowing now.
    #[must_use]
    pub fn connected(&self) -> bool {
        self.inner.link.borrow().connected
    }

    /// The hub loop: connect, pattern-subscribe, dispatch; reconnect after failures. Ends on
    /// shutdown.
    pub async fn run(&self, client: Option<Client>, shutdown: &Shutdown) {
        let Some(client) = client else {
            shutdown.cancelled().await;
            return;
        };
        let pattern = format!("{}*}}", glob_escape(&self.inner.channel_prefix));
        loop {
            let connect = async {
                let mut pubsub = client.get_async_pubsub().await?;
                pubsub.psubscribe(&pattern).await?;
                Ok::<_, redis::RedisError>(pubsub)
            };
            let connected = tokio::select! {
                connected = tokio::time::timeout(Duration::from_secs(2), connect) => connected,
                () = shutdown.cancelled() => return,
            };
            match connected {
                Ok(Ok(pubsub)) => {
                    tracing::info!("live updates connected");
                    self.set_link(true);
                    let mut messages = pubsub.into_on_message();
                    loop {
                        tokio::select! {
                            message = messages.next() => match message {
                                Some(message) => self.dispatch(message.get_channel_name(), message.get_payload_bytes()),
                                None => break,
                            },
                            () = shutdown.cancelled() => return,
                        }
                    }
                    tracing::warn!("live updates disconnected; streams poll until they return");
                    self.set_link(false);
                }
                Ok(Err(error)) => tracing::debug!(%error, "live updates cannot connect"),
                Err(_) => tracing::debug!("live updates cannot connect in time"),
            }
            tokio::select! {
                () = tokio::time::sleep(RECONNECT) => {}
                () = shutdown.cancelled() => return,
            }
        }
    }

    fn set_link(&self, connected: bool) {
        self.inner.link.send_modify(|link| {
            link.epoch += 1;
            link.connected = connected;
        });
    }

    /// Hands one message to the streams of its resource.
    fn dispatch(&self, channel: &str, payload: &[u8]) {
        let Some(resource) =
            channel.strip_prefix(self.inner.channel_prefix.as_str()).and_then(|rest| rest.strip_suffix('}'))
        else {
            return;
        };
        let watched = self.lock();
        let Some(sender) = watched.get(resource) else { return };
        match serde_json::from_slice::<Update>(payload) {
            Ok(update) => {
                let _ = sender.send(Arc::new(update));
            }
            Err(error) => tracing::warn!(%error, resource, "undecodable live update ignored"),
        }
    }
}

/// `raw` with Redis glob characters escaped.
fn glob_escape(raw: &str) -> String {
    let mut escaped = String::with_capacity(raw.len());
    for c in raw.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_reach_the_streams_of_their_resource_only() {
        let live = Live::new("hf:");
        let mut watching = live.subscribe("room-1");
        let payload = br#"{"resource_id":"room-1","version":7,"capacity":null,"slots":[]}"#;
        live.dispatch("hf:avail-updates:{room-1}", payload);
        live.dispatch("hf:avail-updates:{room-2}", payload);
        live.dispatch("other:avail-updates:{room-1}", payload);
        assert_eq!(watching.updates.try_recv().expect("one update").version, 7);
        assert!(watching.updates.try_recv().is_err(), "nothing else");
        drop(watching);
        assert!(live.lock().is_empty(), "the last stream unsubscribes");
        assert_eq!(glob_escape("t:a*b?[c]"), r"t:a\*b\?\[c\]");
    }
}
