//! The reservations this run had accepted, what became of them, and which ones are free to be
//! confirmed or cancelled next.
//!
//! A reservation with a request in flight is in neither pool, so two requests never act on
//! the same reservation at once and every settled status follows from this run's own answers.
//! Reads change no status, so any accepted reservation can be read at any time.

use std::sync::Arc;

use rand::Rng;
use serde::Serialize;

use super::HoldPlan;
use super::mix::Op;

/// What this run knows of a reservation's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Held (201), not confirmed or cancelled by this run.
    Held,
    /// Confirmed (200).
    Confirmed,
    /// Cancelled (200, or 409 `already-cancelled`).
    Cancelled,
    /// The hold lapsed before a confirm or cancel (409 `hold-expired`).
    Expired,
}

/// One accepted hold.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// The reservation id the service answered with.
    pub id: Arc<str>,
    /// What was held.
    pub hold: HoldPlan,
    /// When the hold lapses unless confirmed (RFC 3339), as answered.
    pub expires_at: Option<Box<str>>,
    /// The hold answer's read-your-writes `position`, as answered.
    pub position: Option<Arc<str>>,
    /// Last status this run knows.
    pub status: Status,
    /// A later request's outcome is unknown (transport error, 5xx, 202): the status may have
    /// moved on since.
    pub uncertain: bool,
}

/// How a confirm or cancel ended, as far as the reservation's status is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// 200: the request took effect.
    Applied,
    /// 409 `hold-expired`.
    Expired,
    /// 409 `already-cancelled`.
    AlreadyCancelled,
    /// 429: refused before being decided; the reservation is unchanged.
    NotAdmitted,
    /// Anything else: the effect is unknown.
    Unknown,
}

/// Why a hold was answered without a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Undecided {
    /// 202: durably queued on the commands topic, decided later by the partition's owner.
    Pending,
    /// 503: the decision's append failed or was fenced (or the service was not ready); the
    /// hold may still have become valid in the log. The caller retries with its key.
    Unavailable,
}

/// A hold answered 202 or 503: findable through its idempotency key.
#[derive(Debug, Clone)]
pub struct PendingHold {
    /// The idempotency key it was sent with.
    pub key: Box<str>,
    /// What was asked for.
    pub hold: HoldPlan,
    /// Where its outcome can be polled (a 202's).
    pub location: Option<Box<str>>,
    /// How it was answered.
    pub why: Undecided,
}

/// Every accepted reservation of the run.
#[derive(Debug, Default)]
pub struct Reservations {
    /// All of them, in the order they were accepted.
    all: Vec<Accepted>,
    /// Holds answered 202 or 503.
    pending: Vec<PendingHold>,
    /// Indices of held ones with no request in flight.
    held: Vec<u32>,
    /// Indices of confirmed ones with no request in flight.
    confirmed: Vec<u32>,
}

impl Reservations {
    /// Adds a newly accepted hold; it can be confirmed, cancelled or read from now on.
    pub fn add(
        &mut self,
        id: Arc<str>,
        hold: HoldPlan,
        expires_at: Option<Box<str>>,
        position: Option<Arc<str>>,
    ) {
        let index = u32::try_from(self.all.len()).unwrap_or(u32::MAX);
        self.all.push(Accepted { id, hold, expires_at, position, status: Status::Held, uncertain: false });
        self.held.push(index);
    }

    /// Notes a hold answered 202 or 503 (it cannot be confirmed or cancelled by id yet).
    pub fn add_pending(&mut self, pending: PendingHold) {
        self.pending.push(pending);
    }

    /// The holds answered 202 or 503, in the order they were answered.
    #[must_use]
    pub fn pending(&self) -> &[PendingHold] {
        &self.pending
    }

    /// How many holds were answered `why`.
    #[must_use]
    pub fn undecided(&self, why: Undecided) -> u64 {
        self.pending.iter().filter(|p| p.why == why).count() as u64
    }

    /// Takes a random held reservation to confirm, or `None` when none is free.
    pub fn take_to_confirm(&mut self, rng: &mut impl Rng) -> Option<(u32, Arc<str>)> {
        let index = take_random(&mut self.held, rng)?;
        Some((index, Arc::clone(&self.all[index as usize].id)))
    }

    /// Takes a random held or confirmed reservation to cancel, or `None` when none is free.
    pub fn take_to_cancel(&mut self, rng: &mut impl Rng) -> Option<(u32, Arc<str>)> {
        let free = self.held.len() + self.confirmed.len();
        if free == 0 {
            return None;
        }
        let pool =
            if rng.random_range(0..free) < self.held.len() { &mut self.held } else { &mut self.confirmed };
        let index = take_random(pool, rng)?;
        Some((index, Arc::clone(&self.all[index as usize].id)))
    }

    /// A random accepted reservation to read, whatever its status or requests in flight, with
    /// its hold's position; `None` before any was accepted. Nothing is taken.
    pub fn pick_to_read(&self, rng: &mut impl Rng) -> Option<(Arc<str>, Option<Arc<str>>)> {
        if self.all.is_empty() {
            return None;
        }
        let picked = &self.all[rng.random_range(0..self.all.len())];
        Some((Arc::clone(&picked.id), picked.position.clone()))
    }

    /// Records how a confirm or cancel of reservation `index` ended and frees it again where
    /// it can still be acted on.
    pub fn settle(&mut self, index: u32, op: Op, verdict: Verdict) {
        let Some(reservation) = self.all.get_mut(index as usize) else { return };
        match (verdict, op) {
            (Verdict::Applied, Op::Confirm) => reservation.status = Status::Confirmed,
            (Verdict::Applied | Verdict::AlreadyCancelled, _) => reservation.status = Status::Cancelled,
            (Verdict::Expired, _) => reservation.status = Status::Expired,
            (Verdict::Unknown, _) => reservation.uncertain = true,
            (Verdict::NotAdmitted, _) => {}
        }
        if reservation.uncertain {
            return;
        }
        match reservation.status {
            Status::Held => self.held.push(index),
            Status::Confirmed => self.confirmed.push(index),
            Status::Cancelled | Status::Expired => {}
        }
    }

    /// Every accepted reservation, in acceptance order.
    #[must_use]
    pub fn all(&self) -> &[Accepted] {
        &self.all
    }

    /// How many are in `status`.
    #[must_use]
    pub fn count(&self, status: Status) -> u64 {
        self.all.iter().filter(|r| r.status == status).count() as u64
    }

    /// How many have an unknown later outcome.
    #[must_use]
    pub fn uncertain(&self) -> u64 {
        self.all.iter().filter(|r| r.uncertain).count() as u64
    }
}

/// Removes and returns a random element.
fn take_random(pool: &mut Vec<u32>, rng: &mut impl Rng) -> Option<u32> {
    if pool.is_empty() {
        return None;
    }
    let at = rng.random_range(0..pool.len());
    Some(pool.swap_remove(at))
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    use super::*;

    fn hold() -> HoldPlan {
        HoldPlan { resource: 0, from: 0, days: 1, quantity: 1, customer: 0 }
    }

    #[test]
    fn reservations_in_flight_cannot_be_taken_twice() {
        let mut rng = SmallRng::seed_from_u64(7);
        let mut pool = Reservations::default();
        assert!(pool.take_to_confirm(&mut rng).is_none());
        assert!(pool.take_to_cancel(&mut rng).is_none());
        pool.add("r1".into(), hold(), None, None);
        let (index, id) = pool.take_to_confirm(&mut rng).expect("one held");
        assert_eq!(&*id, "r1");
        assert!(pool.take_to_confirm(&mut rng).is_none());
        assert!(pool.take_to_cancel(&mut rng).is_none());
        pool.settle(index, Op::Confirm, Verdict::Applied);
        assert!(pool.take_to_confirm(&mut rng).is_none(), "confirmed ones are not confirmed again");
        let (index, _) = pool.take_to_cancel(&mut rng).expect("confirmed ones can be cancelled");
        pool.settle(index, Op::Cancel, Verdict::Applied);
        assert_eq!(pool.count(Status::Cancelled), 1);
        assert!(pool.take_to_cancel(&mut rng).is_none());
    }

    #[test]
    fn refusals_return_and_unknown_outcomes_retire() {
        let mut rng = SmallRng::seed_from_u64(7);
        let mut pool = Reservations::default();
        for id in ["a", "b", "c"] {
            pool.add(id.into(), hold(), None, None);
        }
        let (first, _) = pool.take_to_confirm(&mut rng).expect("held");
        pool.settle(first, Op::Confirm, Verdict::NotAdmitted);
        let (second, _) = pool.take_to_confirm(&mut rng).expect("held");
        pool.settle(second, Op::Confirm, Verdict::Unknown);
        let (third, _) = pool.take_to_cancel(&mut rng).expect("held");
        pool.settle(third, Op::Cancel, Verdict::Expired);
        assert_eq!(pool.uncertain(), 1);
        assert_eq!(pool.count(Status::Expired), 1);
        let free: u32 = std::iter::from_fn(|| pool.take_to_cancel(&mut rng)).map(|_| 1).sum();
        assert_eq!(free, 1, "only the not-admitted one is free again");
    }

    #[test]
    fn reads_pick_any_accepted_reservation_and_take_nothing() {
        let mut rng = SmallRng::seed_from_u64(7);
        let mut pool = Reservations::default();
        assert!(pool.pick_to_read(&mut rng).is_none(), "nothing accepted yet");
        pool.add("a".into(), hold(), None, Some("3.17".into()));
        pool.add("b".into(), hold(), None, None);
        let (index, _) = pool.take_to_confirm(&mut rng).expect("held");
        pool.settle(index, Op::Confirm, Verdict::Unknown);
        let mut seen = std::collections::BTreeMap::new();
        for _ in 0..200 {
            let (id, position) = pool.pick_to_read(&mut rng).expect("two accepted");
            seen.insert(id.to_string(), position.map(|p| p.to_string()));
        }
        let expected = [("a".to_owned(), Some("3.17".to_owned())), ("b".to_owned(), None)];
        assert_eq!(seen, expected.into_iter().collect(), "uncertain or not, both are read");
        let free: u32 = std::iter::from_fn(|| pool.take_to_cancel(&mut rng)).map(|_| 1).sum();
        assert_eq!(free, 1, "reads took nothing from the pools");
    }
}
