//! The Confluent wire format — magic byte `0`, a 4-byte big-endian schema id, the Avro
//! binary datum — plus the generic datum coding and the reading discipline every decoder
//! follows: a datum must fill its body exactly, and running out of bytes is truncation,
//! not corruption.
//!
//! Framing lives here rather than in `schema_registry_converter` so the hot path neither
//! builds a subject name nor looks a schema up per record. This module never talks to the
//! registry.

use std::io::Read;

use apache_avro::Schema;
use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::types::Value;
use apache_avro::writer::datum::GenericDatumWriter;

use super::CodecError;

/// First byte of every Confluent-framed record.
pub const MAGIC_BYTE: u8 = 0;

/// Length of the header: magic byte and schema id.
pub const HEADER_LEN: usize = 5;

/// Splits a framed record into its schema id and Avro body.
///
/// # Errors
/// [`CodecError::Truncated`] when shorter than the header, [`CodecError::WrongMagicByte`].
pub fn split(bytes: &[u8]) -> Result<(u32, &[u8]), CodecError> {
    let Some((&magic, rest)) = bytes.split_first() else {
        return Err(truncated(bytes.len()));
    };
    if magic != MAGIC_BYTE {
        return Err(CodecError::WrongMagicByte { found: magic });
    }
    let Some((id, body)) = rest.split_first_chunk::<4>() else {
        return Err(truncated(bytes.len()));
    };
    Ok((u32::from_be_bytes(*id), body))
}

fn truncated(len: usize) -> CodecError {
    CodecError::Truncated { detail: format!("{len} bytes, shorter than the {HEADER_LEN}-byte header") }
}

/// A buffer holding the header for `schema_id`, with room for a typical body.
#[must_use]
pub fn start(schema_id: u32) -> Vec<u8> {
    let mut buf = Vec::with_capacity(512);
    buf.push(MAGIC_BYTE);
    buf.extend_from_slice(&schema_id.to_be_bytes());
    buf
}

/// Frames the generic `value` under `schema_id`, validating it against `schema` first.
///
/// # Errors
/// The Avro writer's message, when `value` does not fit `schema`.
pub fn encode(schema_id: u32, schema: &Schema, value: &Value) -> Result<Vec<u8>, String> {
    let mut buf = start(schema_id);
    let writer = GenericDatumWriter::builder(schema).build().map_err(|e| e.to_string())?;
    writer.write_value_ref(&mut buf, value).map_err(|e| e.to_string())?;
    Ok(buf)
}

/// Decodes one generic datum written with `writer` from `body`, which must hold exactly that
/// datum.
///
/// # Errors
/// [`CodecError::Truncated`] when the body ends inside the datum, [`CodecError::Corrupt`]
/// when it does not decode or has bytes left over.
pub fn decode(schema_id: u32, writer: &Schema, body: &[u8]) -> Result<Value, CodecError> {
    read_datum(schema_id, body, |input| GenericDatumReader::builder(writer).build()?.read_value(input))
}

/// Runs `read` over `body` and classifies the outcome: it must consume the whole body.
///
/// # Errors
/// [`CodecError::Truncated`] when the body ends inside the datum, [`CodecError::Corrupt`]
/// when it does not decode or has bytes left over.
pub(crate) fn read_datum<T>(
    schema_id: u32,
    body: &[u8],
    read: impl FnOnce(&mut Input<'_>) -> apache_avro::AvroResult<T>,
) -> Result<T, CodecError> {
    let mut input = Input { rest: body, ran_out: false };
    let result = read(&mut input);
    // apache-avro reports a string cut short as a null value rather than an error, so the
    // input itself tells whether the datum ran past the end.
    if input.ran_out {
        return Err(CodecError::Truncated {
            detail: format!("the Avro body ({} bytes) ends inside the record", body.len()),
        });
    }
    let corrupt = |detail: String| CodecError::Corrupt { schema_id, detail };
    let value = result.map_err(|e| corrupt(e.to_string()))?;
    if !input.rest.is_empty() {
        return Err(corrupt(format!("{} bytes left after the record", input.rest.len())));
    }
    Ok(value)
}

/// A byte slice that remembers whether a read asked for more than it had.
pub(crate) struct Input<'a> {
    /// Bytes not read yet.
    rest: &'a [u8],
    /// Whether a read came up short.
    ran_out: bool,
}

impl Read for Input<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.len() > self.rest.len() {
            self.ran_out = true;
        }
        let n = buf.len().min(self.rest.len());
        let (head, tail) = self.rest.split_at(n);
        buf[..n].copy_from_slice(head);
        self.rest = tail;
        Ok(n)
    }

    // Avro reads varints a byte at a time: keep that path free of `memcpy` calls and loops.
    fn read_exact(&mut self, buf: &mut [u8]) -> std::io::Result<()> {
        match (buf, self.rest) {
            ([out], [first, rest @ ..]) => {
                *out = *first;
                self.rest = rest;
                Ok(())
            }
            (buf, rest) if buf.len() <= rest.len() => {
                let (head, tail) = rest.split_at(buf.len());
                buf.copy_from_slice(head);
                self.rest = tail;
                Ok(())
            }
            (_, _) => {
                self.ran_out = true;
                self.rest = &[];
                Err(std::io::ErrorKind::UnexpectedEof.into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Schema {
        Schema::parse_str(r#"{"type":"record","name":"R","fields":[{"name":"s","type":"string"},{"name":"n","type":"int"}]}"#)
            .expect("schema")
    }

    fn record() -> Value {
        Value::Record(vec![("s".into(), Value::String("hello".into())), ("n".into(), Value::Int(7))])
    }

    #[test]
    fn frames_and_splits() {
        let bytes = encode(0x0102_0304, &schema(), &record()).expect("encoded");
        assert_eq!(&bytes[..5], [0, 1, 2, 3, 4]);
        let (id, body) = split(&bytes).expect("framed");
        assert_eq!(id, 0x0102_0304);
        assert_eq!(decode(id, &schema(), body).expect("decoded"), record());
    }

    #[test]
    fn short_or_foreign_frames_are_refused() {
        assert!(matches!(split(&[]), Err(CodecError::Truncated { .. })));
        assert!(matches!(split(&[0, 0, 1]), Err(CodecError::Truncated { .. })));
        assert!(matches!(split(b"{\"json\":1}"), Err(CodecError::WrongMagicByte { found: b'{' })));
    }

    #[test]
    fn bodies_cut_short_padded_or_garbled_are_typed_errors() {
        let bytes = encode(1, &schema(), &record()).expect("encoded");
        let body = &bytes[HEADER_LEN..];
        for cut in 0..body.len() {
            let err = decode(1, &schema(), &body[..cut]).expect_err("cut");
            assert!(matches!(err, CodecError::Truncated { .. }), "cut at {cut}: {err}");
        }
        let mut padded = body.to_vec();
        padded.push(0);
        assert!(matches!(decode(1, &schema(), &padded), Err(CodecError::Corrupt { .. })));
        // A string whose bytes are not UTF-8.
        let garbled = [0x02, 0xff, 0x02];
        assert!(matches!(decode(1, &schema(), &garbled), Err(CodecError::Corrupt { .. })));
    }
}
