//! Per-client rate limits: a token bucket for each principal that is not an administrator
//! (`resources:admin` marks trusted back-office callers, such as the load generator).
//!
//! A bucket holds up to `burst` requests and refills at `per_second`. A request that finds it
//! empty is refused with how long until the next token. Buckets live in memory, per instance;
//! full and idle ones are dropped when the map grows past [`MAX_TRACKED`], so the memory is
//! bounded by the clients active within a refill period.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::Principal;

/// Buckets kept before the full ones are dropped.
pub const MAX_TRACKED: usize = 100_000;

/// What the limiter says about one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision {
    /// Whether it may go on.
    pub allowed: bool,
    /// The bucket's size (the `limit` of the `RateLimit` header).
    pub limit: u32,
    /// Requests left right now.
    pub remaining: u32,
    /// Seconds until a token is back (at least 1 when refused).
    pub reset_seconds: u32,
}

/// Token buckets by principal.
#[derive(Debug)]
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimiter {
    /// A limiter refilling `per_second` requests a second into buckets of `burst`; `None`
    /// when `per_second` is 0 (no limit).
    #[must_use]
    pub fn new(per_second: u32, burst: u32) -> Option<Self> {
        (per_second > 0).then(|| Self {
            per_second: f64::from(per_second),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        })
    }

    /// Takes a token for `principal` at `now`; administrators are never limited.
    pub fn check(&self, principal: &Principal, now: Instant) -> Decision {
        let limit = whole(self.burst);
        if principal.is_admin() {
            return Decision { allowed: true, limit, remaining: limit, reset_seconds: 0 };
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets.len() >= MAX_TRACKED && !buckets.contains_key(&principal.subject) {
            let (per_second, burst) = (self.per_second, self.burst);
            buckets.retain(|_, bucket| bucket.refilled(now, per_second, burst) < burst);
        }
        // Looked up before inserting: `entry` would copy the subject on every request.
        if !buckets.contains_key(&principal.subject) {
            buckets.insert(principal.subject.clone(), Bucket { tokens: self.burst, at: now });
        }
        let Some(bucket) = buckets.get_mut(&principal.subject) else {
            return Decision { allowed: true, limit, remaining: limit, reset_seconds: 0 };
        };
        bucket.tokens = bucket.refilled(now, self.per_second, self.burst);
        bucket.at = now;
        let allowed = bucket.tokens >= 1.0;
        if allowed {
            bucket.tokens -= 1.0;
        }
        let missing = (1.0 - bucket.tokens).max(0.0);
        let reset = Duration::from_secs_f64(missing / self.per_second);
        Decision {
            allowed,
            limit,
            remaining: whole(bucket.tokens),
            reset_seconds: whole(reset.as_secs_f64().ceil()).max(u32::from(!allowed)),
        }
    }
}

impl Bucket {
    fn refilled(&self, now: Instant, per_second: f64, burst: f64) -> f64 {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        (self.tokens + elapsed * per_second).min(burst)
    }
}

/// `value` rounded down into a `u32` (negative and NaN become 0, huge values `u32::MAX`).
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "`as` saturates, as wanted")]
fn whole(value: f64) -> u32 {
    value.floor() as u32
}

#[cfg(test)]
mod tests {
    use super::super::Scope;
    use super::*;

    #[test]
    fn a_client_gets_its_burst_then_the_refill_rate_and_others_are_not_affected() {
        let limiter = RateLimiter::new(10, 3).expect("limited");
        let (ada, bob) = (Principal::new("ada", &[Scope::ReservationsWrite]), Principal::new("bob", &[]));
        let start = Instant::now();
        let decisions: Vec<bool> = (0..4).map(|_| limiter.check(&ada, start).allowed).collect();
        assert_eq!(decisions, [true, true, true, false], "a burst of 3");
        let refused = limiter.check(&ada, start);
        assert_eq!((refused.limit, refused.remaining, refused.reset_seconds), (3, 0, 1));
        assert!(limiter.check(&bob, start).allowed, "buckets are per client");
        // 10 a second: one token back after 100 ms, not before.
        assert!(!limiter.check(&ada, start + Duration::from_millis(50)).allowed);
        assert!(limiter.check(&ada, start + Duration::from_millis(160)).allowed);
        assert!(!limiter.check(&ada, start + Duration::from_millis(170)).allowed);
        // Never more than the burst, however long the pause.
        let later = start + Duration::from_secs(60);
        let allowed = (0..10).filter(|_| limiter.check(&ada, later).allowed).count();
        assert_eq!(allowed, 3);
    }

    #[test]
    fn administrators_are_not_limited_and_zero_means_no_limit() {
        let limiter = RateLimiter::new(1, 1).expect("limited");
        let ops = Principal::new("ops", &[Scope::ResourcesAdmin]);
        let now = Instant::now();
        assert!((0..100).all(|_| limiter.check(&ops, now).allowed));
        assert!(RateLimiter::new(0, 10).is_none());
    }
}
