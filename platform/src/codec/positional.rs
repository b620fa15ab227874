//! The replay path: a datum of an event's embedded schema read by hand, field by field in
//! the schema's order, straight off the bytes. Strings are borrowed from the record and
//! copied once, by the domain constructor that validates them.
//!
//! Used only when the writer schema has the embedded schema's canonical form and its exact
//! field order ([`Shape::Current`]), or is that schema as it was before the envelope gained
//! `principal` ([`Shape::BeforePrincipal`]: every record written until then, which a restore
//! reads again and again); every other writer goes through apache-avro. The binary encoding read here is the Avro specification's: `int` and `long`
//! as zig-zag varints, `string` as a length and UTF-8 bytes, a `["null","string"]` union as
//! a branch index and then the value, an enum as its symbol's index. Every read is
//! bounds-checked: a cut record is [`CodecError::Truncated`], anything malformed (an
//! overlong varint, a negative length, bad UTF-8, an unknown branch or symbol, bytes left
//! over) is [`CodecError::Corrupt`]. The unit tests check it against apache-avro's reader.

use std::borrow::Cow;

use holdfast_domain::{EventType, ReleasedFrom};

use super::CodecError;
use super::record::WireRecord;

/// The writer schemas read by position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// The embedded schema.
    Current,
    /// The embedded schema without the envelope's `principal` (an optional field added later,
    /// so these records decode with none).
    BeforePrincipal,
}

/// Reads the record of `event_type` in `body` (the datum after the Confluent header of
/// schema `schema_id`, of `shape`).
///
/// # Errors
/// [`CodecError::Truncated`] or [`CodecError::Corrupt`], as the module says.
pub(crate) fn read(
    schema_id: u32,
    body: &[u8],
    event_type: EventType,
    shape: Shape,
) -> Result<WireRecord<'_>, CodecError> {
    let mut input = Cursor { rest: body, len: body.len() };
    let record = fields(&mut input, event_type, shape).map_err(|error| match error {
        Malformed::Ended => CodecError::Truncated {
            detail: format!("the Avro body ({} bytes) ends inside the record", body.len()),
        },
        Malformed::Invalid(detail) => CodecError::Corrupt { schema_id, detail },
    })?;
    if !input.rest.is_empty() {
        let detail = format!("{} bytes left after the record", input.rest.len());
        return Err(CodecError::Corrupt { schema_id, detail });
    }
    Ok(record)
}

/// Every field of `event_type`'s embedded record, in its order.
fn fields<'a>(
    input: &mut Cursor<'a>,
    event_type: EventType,
    shape: Shape,
) -> Result<WireRecord<'a>, Malformed> {
    let mut r = WireRecord {
        event_id: Some(input.uuid()?),
        event_type: Some(input.string()?),
        event_version: Some(input.int()?),
        resource_id: Some(input.string()?),
        occurred_at: Some(input.long()?),
        command_id: Some(input.uuid()?),
        causation_id: Some(input.uuid()?),
        correlation_id: Some(input.uuid()?),
        traceparent: input.nullable_string()?,
        tracestate: input.nullable_string()?,
        principal: match shape {
            Shape::Current => input.nullable_string()?,
            Shape::BeforePrincipal => None,
        },
        ..WireRecord::default()
    };
    match event_type {
        EventType::ResourceDefined => {
            r.name = Some(input.string()?);
            r.capacity = Some(input.int()?);
        }
        EventType::CapacityChanged => {
            r.from = Some(input.int()?);
            r.to = Some(input.int()?);
            r.capacity = Some(input.int()?);
        }
        EventType::ReservationHeld => {
            r.reservation_id = Some(input.string()?);
            r.from = Some(input.int()?);
            r.to = Some(input.int()?);
            r.quantity = Some(input.int()?);
            r.customer_id = Some(input.string()?);
            r.expires_at = Some(input.long()?);
        }
        EventType::ReservationConfirmed => {
            r.reservation_id = Some(input.string()?);
            r.payment_ref = input.nullable_string()?;
        }
        EventType::ReservationCancelled => {
            r.reservation_id = Some(input.string()?);
            r.reason = input.nullable_string()?;
            r.released = Some(match input.int()? {
                0 => ReleasedFrom::Held,
                1 => ReleasedFrom::Confirmed,
                other => return Err(Malformed::Invalid(format!("ReleasedFrom has no symbol {other}"))),
            });
        }
        EventType::HoldExpired => r.reservation_id = Some(input.string()?),
    }
    Ok(r)
}

/// Why a datum could not be read.
enum Malformed {
    /// The bytes ended inside it.
    Ended,
    /// It is not a datum of the schema.
    Invalid(String),
}

/// The bytes not read yet.
struct Cursor<'a> {
    rest: &'a [u8],
    /// The whole body's length, for offsets in error details.
    len: usize,
}

impl<'a> Cursor<'a> {
    /// A zig-zag varint of at most ten bytes.
    fn long(&mut self) -> Result<i64, Malformed> {
        let mut value: u64 = 0;
        for (i, &byte) in self.rest.iter().enumerate().take(10) {
            if i == 9 && byte > 1 {
                return Err(self.invalid("a varint past 64 bits"));
            }
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                self.rest = &self.rest[i + 1..];
                // Zig-zag: the low bit is the sign.
                return Ok(i64::from_ne_bytes((value >> 1).to_ne_bytes()) ^ -i64::from(value & 1 == 1));
            }
        }
        if self.rest.len() < 10 {
            return Err(Malformed::Ended);
        }
        Err(self.invalid("a varint longer than ten bytes"))
    }

    fn int(&mut self) -> Result<i32, Malformed> {
        let at = self.at();
        let n = self.long()?;
        i32::try_from(n).map_err(|_| Malformed::Invalid(format!("{n} at byte {at} is not an int")))
    }

    fn string(&mut self) -> Result<Cow<'a, str>, Malformed> {
        let at = self.at();
        let len = self.long()?;
        let len = usize::try_from(len)
            .map_err(|_| Malformed::Invalid(format!("negative string length {len} at byte {at}")))?;
        if len > self.rest.len() {
            return Err(Malformed::Ended);
        }
        let (bytes, rest) = self.rest.split_at(len);
        let text = std::str::from_utf8(bytes)
            .map_err(|e| Malformed::Invalid(format!("the string at byte {at} is not UTF-8: {e}")))?;
        self.rest = rest;
        Ok(Cow::Borrowed(text))
    }

    fn nullable_string(&mut self) -> Result<Option<Cow<'a, str>>, Malformed> {
        match self.long()? {
            0 => Ok(None),
            1 => self.string().map(Some),
            branch => Err(self.invalid(&format!("the union [null, string] has no branch {branch}"))),
        }
    }

    fn uuid(&mut self) -> Result<apache_avro::Uuid, Malformed> {
        let at = self.at();
        let text = self.string()?;
        apache_avro::Uuid::parse_str(&text)
            .map_err(|e| Malformed::Invalid(format!("the uuid at byte {at} does not parse: {e}")))
    }

    /// How far into the body the cursor is.
    fn at(&self) -> usize {
        self.len - self.rest.len()
    }

    fn invalid(&self, what: &str) -> Malformed {
        Malformed::Invalid(format!("{what} at byte {}", self.at()))
    }
}
