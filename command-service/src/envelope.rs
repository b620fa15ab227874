//! What travels between the HTTP edge and the partition processors: the command record on the
//! commands topic and the outcome record on the replies topic.
//!
//! Both are internal to the command service (every instance runs the same code), so they are
//! JSON with an explicit format version rather than registry-managed Avro; the public,
//! long-lived contract is the events topic.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use holdfast_domain::{Command, CommandMeta, Rejection, ReservationId, ReservationStatus, ResourceId};

/// Version of the command and outcome record formats.
pub const FORMAT_VERSION: u16 = 1;

/// A command on its way to the partition that owns its resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandEnvelope {
    /// Record format version ([`FORMAT_VERSION`]).
    pub v: u16,
    /// The validated command.
    pub command: Command,
    /// Command id, correlation, causation and trace context.
    pub meta: CommandMeta,
    /// Hash of the request that produced the command: the same idempotency key with another
    /// request is refused instead of answered with the first request's outcome.
    pub fingerprint: u64,
    /// When the edge accepted the request.
    #[serde(with = "time::serde::rfc3339")]
    pub submitted_at: OffsetDateTime,
    /// The replies partition the submitting instance follows, when the command travels
    /// through the commands topic; the owner publishes the outcome there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<i32>,
    /// The customer the caller acts as (a customer token's `sub`); `None` for an
    /// administrator, who acts for anyone. The owner answers a confirm or cancel of another
    /// customer's reservation `unknown-reservation`, as if it did not exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acting_for: Option<String>,
}

/// How far the events partition of a resource had come when an outcome was decided: the next
/// offset after the last event the answer reflects. A read model that has applied its
/// partition up to `next_offset` shows the effect of the command (read-your-writes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Position {
    /// Partition of the events topic.
    pub partition: i32,
    /// Next offset after the last event the answer reflects.
    pub next_offset: i64,
}

impl Position {
    /// The opaque token handed to clients: `<partition>.<next_offset>`.
    #[must_use]
    pub fn token(self) -> String {
        format!("{}.{}", self.partition, self.next_offset)
    }

    /// Parses a token made by [`Position::token`].
    #[must_use]
    pub fn parse(token: &str) -> Option<Self> {
        let (partition, offset) = token.split_once('.')?;
        let partition = partition.parse().ok().filter(|p: &i32| *p >= 0)?;
        let next_offset = offset.parse().ok().filter(|o: &i64| *o >= 0)?;
        Some(Self { partition, next_offset })
    }
}

/// The reservation a command touched, as it stands after the decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservationView {
    /// The reservation.
    pub reservation_id: ReservationId,
    /// Its status after the decision.
    pub status: ReservationStatus,
}

/// What the decider made of a command, as committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum Verdict {
    /// Accepted; `events` were appended (0 for an idempotent repeat of an earlier decision).
    Accepted {
        /// Events appended by this decision.
        events: u32,
        /// The reservation the command concerns, if any.
        reservation: Option<ReservationView>,
    },
    /// Refused by a business rule.
    Rejected {
        /// Why.
        rejection: Rejection,
    },
    /// The idempotency key was used before for a different request; nothing was decided.
    KeyReused,
}

/// The committed outcome of one command: the answer the HTTP caller gets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// Record format version ([`FORMAT_VERSION`]).
    pub v: u16,
    /// The command this answers.
    pub command_id: Uuid,
    /// The resource the command addressed.
    pub resource_id: ResourceId,
    /// The command's kind ([`holdfast_domain::Command::kind`]), to render the answer.
    pub command: String,
    /// The decision.
    pub verdict: Verdict,
    /// Read-your-writes token source.
    pub position: Position,
    /// When the decision was made.
    #[serde(with = "time::serde::rfc3339")]
    pub decided_at: OffsetDateTime,
    /// Fingerprint of the request decided ([`CommandEnvelope::fingerprint`]), so a restored
    /// processor still recognises a reused idempotency key.
    pub fingerprint: u64,
    /// Who issued the command ([`CommandMeta::principal`]): only they, or an administrator,
    /// may poll its outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn position_tokens_round_trip_and_reject_garbage() {
        let position = Position { partition: 479, next_offset: 1_234_567 };
        assert_eq!(Position::parse(&position.token()), Some(position));
        for bad in ["", "1", "a.b", "-1.5", "3.-2", "1.2.3", "99999999999.1"] {
            assert_eq!(Position::parse(bad), None, "{bad:?}");
        }
    }
}
