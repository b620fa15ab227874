//! Deterministic event ids.
//!
//! Event ids are UUIDv7 (so they sort by time), but their "random" bits are derived from the
//! command id and the event's index within the decision instead of a random source. The same
//! command decided at the same instant therefore yields the same ids, which keeps
//! [`crate::decide()`] pure and lets a retried decision be recognised downstream.

use time::OffsetDateTime;
use uuid::{Builder, Uuid};

/// Largest millisecond timestamp a UUIDv7 can carry (48 bits).
const MAX_MILLIS: i128 = (1 << 48) - 1;

/// The id of event number `index` produced by command `command_id` decided at `now`.
pub(crate) fn derive(now: OffsetDateTime, command_id: Uuid, index: u32) -> Uuid {
    let millis = (now.unix_timestamp_nanos() / 1_000_000).clamp(0, MAX_MILLIS);
    let millis = u64::try_from(millis).unwrap_or(0);
    let seed = fnv1a(command_id.as_bytes()) ^ u64::from(index).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let first = splitmix64(seed);
    let second = splitmix64(first ^ u64::from(index));
    let mut bits = [0_u8; 10];
    bits[..8].copy_from_slice(&first.to_be_bytes());
    bits[8..].copy_from_slice(&second.to_be_bytes()[..2]);
    Builder::from_unix_timestamp_millis(millis, &bits).into_uuid()
}

/// 64-bit FNV-1a over `bytes`: small, stable across platforms and releases.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(0xcbf2_9ce4_8422_2325, |hash, &b| (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
}

/// One round of SplitMix64, to spread FNV's weakly mixed low bits over the whole word.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn is_a_v7_carrying_the_millisecond_timestamp() {
        let now = datetime!(2026-03-01 12:00:00.123 UTC);
        let id = derive(now, Uuid::from_u128(1), 0);
        assert_eq!(id.get_version_num(), 7);
        let (secs, nanos) = id.get_timestamp().expect("v7 has a timestamp").to_unix();
        assert_eq!(
            i128::from(secs) * 1000 + i128::from(nanos / 1_000_000),
            now.unix_timestamp_nanos() / 1_000_000
        );
    }

    #[test]
    fn is_deterministic_and_distinct_per_command_and_index() {
        let now = datetime!(2026-03-01 12:00 UTC);
        let a = Uuid::from_u128(1);
        let b = Uuid::from_u128(2);
        assert_eq!(derive(now, a, 0), derive(now, a, 0));
        assert_ne!(derive(now, a, 0), derive(now, a, 1));
        assert_ne!(derive(now, a, 0), derive(now, b, 0));
    }

    #[test]
    fn clamps_times_before_the_epoch() {
        let id = derive(datetime!(1960-01-01 0:00 UTC), Uuid::nil(), 0);
        assert_eq!(id.get_version_num(), 7);
    }
}
