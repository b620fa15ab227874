//! Per-client caps on long-held things (live-update streams, parked read-your-writes waits):
//! a client holds at most `cap` at once on an instance, so one client cannot take what all
//! share. A [`ClientSlot`] gives its place back when dropped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// How many slots each client holds, up to a cap.
#[derive(Debug)]
pub struct ClientSlots {
    cap: usize,
    held: Mutex<HashMap<String, usize>>,
}

/// One held slot; released on drop.
#[derive(Debug)]
pub struct ClientSlot {
    slots: Arc<ClientSlots>,
    client: String,
}

impl ClientSlots {
    /// Slots capped at `cap` per client.
    #[must_use]
    pub fn new(cap: usize) -> Arc<Self> {
        Arc::new(Self { cap, held: Mutex::new(HashMap::new()) })
    }

    /// A slot for `client`, or `None` when it holds `cap` already.
    #[must_use]
    pub fn take(self: &Arc<Self>, client: &str) -> Option<ClientSlot> {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let count = held.entry(client.to_owned()).or_default();
        if *count >= self.cap {
            return None;
        }
        *count += 1;
        Some(ClientSlot { slots: Arc::clone(self), client: client.to_owned() })
    }

    /// Slots `client` holds now.
    #[must_use]
    pub fn held(&self, client: &str) -> usize {
        self.held.lock().unwrap_or_else(PoisonError::into_inner).get(client).copied().unwrap_or(0)
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut held = self.slots.held.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = held.get_mut(&self.client) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                held.remove(&self.client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_client_holds_at_most_the_cap_and_dropping_gives_it_back() {
        let slots = ClientSlots::new(2);
        let (a1, a2) = (slots.take("ada"), slots.take("ada"));
        assert!(a1.is_some() && a2.is_some());
        assert!(slots.take("ada").is_none(), "the cap");
        assert!(slots.take("bob").is_some(), "per client");
        drop(a1);
        assert_eq!(slots.held("ada"), 1);
        assert!(slots.take("ada").is_some(), "given back on drop");
        drop(a2);
        assert!(slots.held.lock().expect("lock").get("bob").is_none(), "bob's dropped slot leaves no entry");
    }
}
