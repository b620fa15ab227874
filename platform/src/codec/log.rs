//! The two records of the events topic that are not domain events: [`ClaimRecord`]
//! (`dev.holdfast.log.v1.PartitionClaimed`, a writer's claim that starts a tenure) and
//! [`RejectedRecord`] (`dev.holdfast.reservations.v1.CommandRejected`, a command refused by a
//! business rule), and [`LogRecord`], anything an events partition holds.
//!
//! Both are rare next to events (a claim per ownership change; a rejection per refused
//! command), so they go through generic Avro values rather than the direct path of
//! [`super::direct`]. Readers never need their bodies to apply the reader rule: the headers
//! (`holdfast_tenure::Mark`) say which records are claims and which count.

use apache_avro::Schema;
use apache_avro::types::Value;
use holdfast_domain::{Event, Rejection, ResourceId};
use holdfast_tenure::Token;
use time::OffsetDateTime;
use uuid::Uuid;

use super::CodecError;
use super::fields::{self, instant_to_micros, micros_to_instant};

/// Anything an events partition holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogRecord {
    /// A domain event.
    Event(Event),
    /// A refused command.
    Rejected(RejectedRecord),
    /// A claim.
    Claim(ClaimRecord),
}

/// A writer's claim of an events partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRecord {
    /// The new tenure's token (also in the `holdfast-claim` header).
    pub token: Token,
    /// The partition claimed.
    pub partition: i32,
    /// The claiming instance.
    pub owner: String,
    /// Its command API's address, if it serves one.
    pub address: Option<String>,
    /// When it claimed.
    pub claimed_at: OffsetDateTime,
}

/// A command refused by a business rule, recorded like a decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedRecord {
    /// The resource the command addressed (the record's key).
    pub resource_id: ResourceId,
    /// When the decision was made.
    pub occurred_at: OffsetDateTime,
    /// The refused command.
    pub command_id: Uuid,
    /// Its workflow.
    pub correlation_id: Uuid,
    /// W3C trace context of the command, if traced.
    pub traceparent: Option<String>,
    /// Who issued the command (the subject of the caller's token), if a caller did.
    pub principal: Option<String>,
    /// The command's kind (`holdfast_domain::Command::kind`).
    pub command: String,
    /// Why it was refused.
    pub rejection: Rejection,
}

/// Which protocol record a schema describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// `PartitionClaimed`.
    Claim,
    /// `CommandRejected`.
    Rejected,
}

impl Protocol {
    /// Both, in registration order.
    pub const ALL: [Self; 2] = [Self::Claim, Self::Rejected];

    /// The record's full Avro name.
    #[must_use]
    pub fn full_name(self) -> &'static str {
        match self {
            Self::Claim => "dev.holdfast.log.v1.PartitionClaimed",
            Self::Rejected => "dev.holdfast.reservations.v1.CommandRejected",
        }
    }

    /// The schema's JSON, as in `schemas/`.
    #[must_use]
    pub fn source(self) -> &'static str {
        match self {
            Self::Claim => include_str!("../../../schemas/PartitionClaimed.avsc"),
            Self::Rejected => include_str!("../../../schemas/CommandRejected.avsc"),
        }
    }

    /// The protocol record called `full_name`, if any.
    #[must_use]
    pub fn of(full_name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.full_name() == full_name)
    }

    pub(crate) fn index(self) -> usize {
        match self {
            Self::Claim => 0,
            Self::Rejected => 1,
        }
    }
}

/// The parsed schemas of both records.
pub(crate) fn schemas() -> Result<[Schema; 2], CodecError> {
    let parse = |p: Protocol| {
        Schema::parse_str(p.source())
            .map_err(|e| CodecError::InvalidSchema { name: p.full_name().to_owned(), detail: e.to_string() })
    };
    Ok([parse(Protocol::Claim)?, parse(Protocol::Rejected)?])
}

fn nullable(value: Option<&str>) -> Value {
    match value {
        None => Value::Union(0, Box::new(Value::Null)),
        Some(s) => Value::Union(1, Box::new(Value::String(s.to_owned()))),
    }
}

/// The generic Avro value of a claim.
pub(crate) fn claim_value(claim: &ClaimRecord) -> Value {
    Value::Record(vec![
        ("token".into(), Value::Uuid(claim.token.0)),
        ("partition".into(), Value::Int(claim.partition)),
        ("owner".into(), Value::String(claim.owner.clone())),
        ("address".into(), nullable(claim.address.as_deref())),
        ("claimed_at".into(), Value::TimestampMicros(instant_to_micros(claim.claimed_at))),
    ])
}

/// The generic Avro value of a rejection.
pub(crate) fn rejected_value(record: &RejectedRecord) -> Result<Value, CodecError> {
    let json = serde_json::to_string(&record.rejection)
        .map_err(|e| CodecError::invalid("rejection", format!("cannot be written as JSON: {e}")))?;
    Ok(Value::Record(vec![
        ("resource_id".into(), Value::String(record.resource_id.to_string())),
        ("occurred_at".into(), Value::TimestampMicros(instant_to_micros(record.occurred_at))),
        ("command_id".into(), Value::Uuid(record.command_id)),
        ("correlation_id".into(), Value::Uuid(record.correlation_id)),
        ("traceparent".into(), nullable(record.traceparent.as_deref())),
        ("principal".into(), nullable(record.principal.as_deref())),
        ("command".into(), Value::String(record.command.clone())),
        ("code".into(), Value::String(record.rejection.code().to_owned())),
        ("detail".into(), Value::String(record.rejection.to_string())),
        ("rejection".into(), Value::String(json)),
    ]))
}

/// The fields of a decoded record by name; a field the writer did not have is absent.
fn fields_of(value: Value) -> Result<std::collections::HashMap<String, Value>, CodecError> {
    match value {
        Value::Record(fields) => Ok(fields.into_iter().collect()),
        _ => Err(CodecError::invalid("(record)", "not a record")),
    }
}

fn take(fields: &mut std::collections::HashMap<String, Value>, name: &str) -> Result<Value, CodecError> {
    fields.remove(name).ok_or_else(|| CodecError::invalid(name, "missing"))
}

fn instant(field: &str, value: Value) -> Result<OffsetDateTime, CodecError> {
    let micros = fields::micros(field, value)?;
    micros_to_instant(micros)
        .ok_or_else(|| CodecError::invalid(field, format!("{micros} µs is out of range")))
}

/// A claim from its decoded value.
pub(crate) fn claim_from(value: Value) -> Result<ClaimRecord, CodecError> {
    let mut f = fields_of(value)?;
    Ok(ClaimRecord {
        token: Token(fields::uuid("token", take(&mut f, "token")?)?),
        partition: fields::int("partition", take(&mut f, "partition")?)?,
        owner: fields::string("owner", take(&mut f, "owner")?)?,
        address: match f.remove("address") {
            Some(value) => fields::nullable_string("address", value)?,
            None => None,
        },
        claimed_at: instant("claimed_at", take(&mut f, "claimed_at")?)?,
    })
}

/// A rejection from its decoded value.
pub(crate) fn rejected_from(value: Value) -> Result<RejectedRecord, CodecError> {
    let mut f = fields_of(value)?;
    let resource = fields::string("resource_id", take(&mut f, "resource_id")?)?;
    let json = fields::string("rejection", take(&mut f, "rejection")?)?;
    Ok(RejectedRecord {
        resource_id: ResourceId::parse(&resource)
            .map_err(|e| CodecError::invalid("resource_id", e.reason))?,
        occurred_at: instant("occurred_at", take(&mut f, "occurred_at")?)?,
        command_id: fields::uuid("command_id", take(&mut f, "command_id")?)?,
        correlation_id: fields::uuid("correlation_id", take(&mut f, "correlation_id")?)?,
        traceparent: match f.remove("traceparent") {
            Some(value) => fields::nullable_string("traceparent", value)?,
            None => None,
        },
        principal: match f.remove("principal") {
            Some(value) => fields::nullable_string("principal", value)?,
            None => None,
        },
        command: fields::string("command", take(&mut f, "command")?)?,
        rejection: serde_json::from_str(&json)
            .map_err(|e| CodecError::invalid("rejection", e.to_string()))?,
    })
}
