//! The partitioner every Holdfast component agrees on: Kafka's murmur2, as used by the Java
//! client's default partitioner and by librdkafka's `murmur2_random` for keyed records.
//!
//! Producers are configured with `partitioner=murmur2_random` (see [`crate::kafka`]); code that
//! needs to know where a key lives without producing (query routing, read-model sharding,
//! routing a command to the processor that owns it) calls [`partition_for`].

/// Kafka's murmur2 hash of `data` (seed `0x9747b28c`), as a signed 32-bit value like Java's.
#[must_use]
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;

    let length = data.len();
    // Truncation to 32 bits is what the reference implementation does.
    #[allow(clippy::cast_possible_truncation)]
    let mut h: u32 = SEED ^ (length as u32);

    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }

    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if let Some(&first) = tail.first() {
        h ^= u32::from(first);
        h = h.wrapping_mul(M);
    }

    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    i32::from_ne_bytes(h.to_ne_bytes())
}

/// The partition a keyed record lands on among `partitions` (> 0), exactly as Kafka's Java
/// client and librdkafka's `murmur2_random` compute it.
#[must_use]
pub fn partition_for(key: &[u8], partitions: i32) -> i32 {
    debug_assert!(partitions > 0, "a topic has at least one partition");
    (murmur2(key) & 0x7fff_ffff) % partitions.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference values from the Java client's own murmur2 tests.
    #[test]
    fn matches_the_java_client() {
        let cases: [(&str, i32); 6] = [
            ("21", -973_932_308),
            ("foobar", -790_332_482),
            ("a-little-bit-long-string", -985_981_536),
            ("a-little-bit-longer-string", -1_486_304_829),
            ("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58_897_971),
            ("abc", 479_470_107),
        ];
        for (input, expected) in cases {
            assert_eq!(murmur2(input.as_bytes()), expected, "murmur2({input:?})");
        }
    }

    #[test]
    fn partitions_are_in_range() {
        for i in 0..10_000 {
            let key = format!("room-{i}");
            let p = partition_for(key.as_bytes(), 480);
            assert!((0..480).contains(&p));
        }
    }
}
