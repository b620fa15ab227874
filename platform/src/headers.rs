//! The Kafka headers of records on the events topic: the tenure mark of the single-writer
//! protocol (`holdfast_tenure::Mark`: `holdfast-claim`, or `holdfast-writer` with
//! `holdfast-seq`) and the fingerprint of the request a decision answered
//! (`holdfast-fingerprint`, 16 hex digits), which lets a restored owner tell a retry from a
//! different request reusing an idempotency key. Written by the command service, read by every
//! reader; this module is the one place both sides take them from.

use holdfast_tenure::Mark;
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};

/// Header with the fingerprint of the request a record's decision answered.
pub const FINGERPRINT_HEADER: &str = "holdfast-fingerprint";

/// What the headers of an events record say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeaders {
    /// Its place in the protocol.
    pub mark: Mark,
    /// The request fingerprint of the decision it records, if any.
    pub fingerprint: Option<u64>,
}

impl RecordHeaders {
    /// Reads them from a consumed message.
    #[must_use]
    pub fn read<M: Message>(message: &M) -> Self {
        let Some(headers) = message.headers() else {
            return Self { mark: Mark::Unmarked, fingerprint: None };
        };
        // One pass over the headers (each access goes through librdkafka): the first
        // fingerprint header is taken aside, everything else is the mark's.
        let mut fingerprint = None;
        let mut seen = false;
        let mark = Mark::from_headers(headers.iter().map(|h| (h.key, h.value.unwrap_or_default())).filter(
            |&(name, value)| {
                if name != FINGERPRINT_HEADER {
                    return true;
                }
                if !std::mem::replace(&mut seen, true) {
                    fingerprint =
                        std::str::from_utf8(value).ok().and_then(|value| u64::from_str_radix(value, 16).ok());
                }
                false
            },
        ));
        Self { mark, fingerprint }
    }

    /// The headers to produce a record with.
    #[must_use]
    pub fn to_kafka(&self) -> OwnedHeaders {
        let mut headers = OwnedHeaders::new_with_capacity(3);
        for (key, value) in self.mark.headers() {
            headers = headers.insert(Header { key, value: Some(value.as_bytes()) });
        }
        if let Some(fingerprint) = self.fingerprint {
            let value = format!("{fingerprint:016x}");
            headers = headers.insert(Header { key: FINGERPRINT_HEADER, value: Some(value.as_bytes()) });
        }
        headers
    }
}

#[cfg(test)]
mod tests {
    use holdfast_tenure::Token;
    use rdkafka::Timestamp;
    use rdkafka::message::OwnedMessage;

    use super::*;

    #[test]
    fn headers_round_trip_through_a_message() {
        let token = Token(uuid::Uuid::from_u128(42));
        for written in [
            RecordHeaders { mark: Mark::Data { token, seq: 7 }, fingerprint: Some(0x00ab_cdef_0123_4567) },
            RecordHeaders { mark: Mark::Claim { token }, fingerprint: None },
            RecordHeaders { mark: Mark::Unmarked, fingerprint: None },
        ] {
            let message = OwnedMessage::new(
                None,
                None,
                "t".into(),
                Timestamp::NotAvailable,
                0,
                0,
                Some(written.to_kafka()),
            );
            assert_eq!(RecordHeaders::read(&message), written);
        }
        let bare = OwnedMessage::new(None, None, "t".into(), Timestamp::NotAvailable, 0, 0, None);
        assert_eq!(RecordHeaders::read(&bare), RecordHeaders { mark: Mark::Unmarked, fingerprint: None });
    }
}
