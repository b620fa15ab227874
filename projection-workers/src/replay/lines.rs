//! The JSON lines `dump` and `tail` print for records of the events topic, one shape for
//! both: where the record is, what the reader rule made of it, and its content.
//!
//! ```text
//! {"partition":3,"offset":41,"verdict":"valid","event":{…}}
//! {"partition":3,"offset":42,"verdict":"valid","rejected":{"resource_id":…,"rejection":{"code":…},…}}
//! {"partition":3,"offset":40,"verdict":"claim","claim":"<writer token>"}
//! {"partition":3,"offset":43,"verdict":"void","void":"other-writer"}
//! {"partition":3,"offset":44,"verdict":"unjudged","event":{…}}          (tail before a claim)
//! {"partition":3,"offset":45,"verdict":"valid","undecodable":{"error":…,"headers":{…}}}
//! ```
//!
//! Void records are never decoded: their line says only why they do not count.

use std::collections::BTreeMap;

use holdfast_domain::{Event, Rejection};
use holdfast_platform::codec::RejectedRecord;
use holdfast_tenure::{Token, Void};
use serde::Serialize;
use uuid::Uuid;

/// What the reader rule made of a record, as printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// It counts.
    Valid,
    /// A claim: a tenure starts.
    Claim,
    /// It does not count.
    Void,
    /// Not judged: `tail` started after the partition's last claim and has not seen one yet.
    Unjudged,
}

/// One printed record.
#[derive(Debug, Clone, Serialize)]
pub struct RecordLine {
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// What the reader rule made of it.
    pub verdict: Verdict,
    /// Its content, under a key naming what it is.
    #[serde(flatten)]
    pub body: Body,
}

/// What a record holds.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Body {
    /// A domain event.
    Event(Box<Event>),
    /// A refused command.
    Rejected(Box<RejectedLine>),
    /// A claim's writer token.
    Claim(String),
    /// Why a void record does not count (`holdfast_tenure::Void::label`).
    Void(&'static str),
    /// A record that does not decode, with its headers (a dead letter's say why).
    Undecodable(Undecodable),
}

/// A refused command as printed.
#[derive(Debug, Clone, Serialize)]
pub struct RejectedLine {
    /// The resource the command addressed.
    pub resource_id: String,
    /// The command's kind.
    pub command: String,
    /// The command's id.
    pub command_id: Uuid,
    /// Who issued it, if a caller did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// Why it was refused (with its stable `code`).
    pub rejection: Rejection,
    /// The refusal as text.
    pub detail: String,
}

impl From<&RejectedRecord> for RejectedLine {
    fn from(record: &RejectedRecord) -> Self {
        Self {
            resource_id: record.resource_id.to_string(),
            command: record.command.clone(),
            command_id: record.command_id,
            principal: record.principal.clone(),
            rejection: record.rejection.clone(),
            detail: record.rejection.to_string(),
        }
    }
}

/// A record that could not be decoded.
#[derive(Debug, Clone, Serialize)]
pub struct Undecodable {
    /// Why.
    pub error: String,
    /// Its headers as text.
    pub headers: BTreeMap<String, String>,
}

impl RecordLine {
    /// A claim's line.
    #[must_use]
    pub fn claim(partition: i32, offset: i64, token: Token) -> Self {
        Self { partition, offset, verdict: Verdict::Claim, body: Body::Claim(token.to_string()) }
    }

    /// A void record's line.
    #[must_use]
    pub fn void(partition: i32, offset: i64, why: Void) -> Self {
        Self { partition, offset, verdict: Verdict::Void, body: Body::Void(why.label()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_name_their_content() {
        let line = RecordLine::void(2, 7, Void::OtherWriter);
        let json = serde_json::to_value(&line).expect("serialises");
        assert_eq!(
            json,
            serde_json::json!({"partition": 2, "offset": 7, "verdict": "void", "void": "other-writer"})
        );
        let token = Token(Uuid::from_u128(5));
        let json = serde_json::to_value(RecordLine::claim(2, 6, token)).expect("serialises");
        assert_eq!(json["verdict"], "claim");
        assert_eq!(json["claim"], token.to_string());
    }
}
