//! Read-your-writes positions: `<partition>.<next_offset>` of the events topic, the token the
//! command service hands out and this service returns with every availability answer.
//!
//! The token is opaque to clients; the format is shared with the command service by contract
//! (its `envelope::Position`), not by code, so neither service depends on the other.

use std::fmt;

/// How far a projection had come in one partition of the events topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Partition of the events topic.
    pub partition: i32,
    /// Next offset after the last event reflected.
    pub next_offset: i64,
}

impl Position {
    /// Parses a token of a topic with `partitions` partitions; `Err` says why it is refused.
    ///
    /// # Errors
    /// When the token is malformed or names a partition the topic does not have.
    pub fn parse(token: &str, partitions: i32) -> Result<Self, String> {
        let malformed =
            || format!("{token:?} is not a position token (`<partition>.<offset>` from a command answer)");
        let (partition, offset) = token.split_once('.').ok_or_else(malformed)?;
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(partition) || !digits(offset) {
            return Err(malformed());
        }
        let partition: i32 = partition.parse().map_err(|_| malformed())?;
        let next_offset: i64 = offset.parse().map_err(|_| malformed())?;
        if partition >= partitions {
            return Err(format!("partition {partition} does not exist (the events topic has {partitions})"));
        }
        Ok(Self { partition, next_offset })
    }

    /// Whether this position is at least `wanted` (same partition, offset as far or further).
    #[must_use]
    pub fn reaches(self, wanted: Self) -> bool {
        self.partition == wanted.partition && self.next_offset >= wanted.next_offset
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.partition, self.next_offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_garbage_is_refused() {
        let position = Position { partition: 479, next_offset: 1_234_567 };
        assert_eq!(Position::parse(&position.to_string(), 480), Ok(position));
        for bad in ["", "1", "a.b", "-1.5", "3.-2", "1.2.3", "99999999999.1", "+1.2", "1.", ".1", " 1.2"] {
            assert!(Position::parse(bad, 480).is_err(), "{bad:?}");
        }
        assert!(Position::parse("480.1", 480).expect_err("out of range").contains("does not exist"));
        assert!(position.reaches(Position { partition: 479, next_offset: 5 }));
        assert!(!position.reaches(Position { partition: 478, next_offset: 5 }));
    }
}
