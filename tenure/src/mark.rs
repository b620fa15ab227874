//! [`Mark`]: what a record's Kafka headers say about its place in the protocol, and the three
//! header names. Values are ASCII so that `kcat -f '%h'` and any Kafka client can read them:
//! tokens as hyphenated UUIDs, sequence numbers in decimal.

use uuid::Uuid;

/// Header of a claim record; its value is the new tenure's token.
pub const CLAIM_HEADER: &str = "holdfast-claim";
/// Header of every other record a writer appends: its tenure's token.
pub const WRITER_HEADER: &str = "holdfast-writer";
/// Header beside [`WRITER_HEADER`]: the record's sequence number in its tenure (0, 1, 2, …).
pub const SEQ_HEADER: &str = "holdfast-seq";

/// A writer's token: fresh for every claim, so two tenures never share one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Token(pub Uuid);

impl Token {
    /// A fresh random token.
    #[must_use]
    pub fn fresh() -> Self {
        Self(Uuid::new_v4())
    }

    /// The header value: the hyphenated UUID.
    #[must_use]
    pub fn header_value(self) -> String {
        self.0.hyphenated().to_string()
    }

    /// Parses a header value made by [`Token::header_value`] (any UUID form is accepted).
    #[must_use]
    pub fn parse(value: &[u8]) -> Option<Self> {
        Uuid::try_parse_ascii(value).ok().map(Self)
    }
}

impl std::fmt::Display for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// What a record's headers say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mark {
    /// A claim: a new tenure starts with `token`.
    Claim {
        /// The new tenure's token.
        token: Token,
    },
    /// A record of the tenure `token`, the `seq`-th since its claim.
    Data {
        /// The writer's token.
        token: Token,
        /// Its sequence number in the tenure.
        seq: u64,
    },
    /// No tenure headers, or malformed ones: a record no writer of this protocol appended.
    /// Always void.
    Unmarked,
}

impl Mark {
    /// Reads the mark from a record's headers, given as (name, value) pairs. A claim header
    /// wins over writer headers; a header repeated with another value, an unparsable value or
    /// a writer header without a sequence number make the record [`Mark::Unmarked`].
    #[must_use]
    pub fn from_headers<'a>(headers: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Self {
        let (mut claim, mut writer, mut seq) = (Field::Absent, Field::Absent, Field::Absent);
        for (name, value) in headers {
            match name {
                CLAIM_HEADER => claim.set(Token::parse(value)),
                WRITER_HEADER => writer.set(Token::parse(value)),
                SEQ_HEADER => seq.set(parse_seq(value)),
                _ => {}
            }
        }
        match (claim, writer, seq) {
            (Field::Absent, Field::Present(token), Field::Present(seq)) => Self::Data { token, seq },
            (Field::Present(token), Field::Absent, Field::Absent) => Self::Claim { token },
            _ => Self::Unmarked,
        }
    }

    /// The headers that carry this mark, as (name, value) pairs; none for [`Mark::Unmarked`].
    #[must_use]
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        match *self {
            Self::Claim { token } => vec![(CLAIM_HEADER, token.header_value())],
            Self::Data { token, seq } => {
                vec![(WRITER_HEADER, token.header_value()), (SEQ_HEADER, seq.to_string())]
            }
            Self::Unmarked => Vec::new(),
        }
    }
}

/// A header seen zero times, once with a value, or in a way that makes the record unmarked.
#[derive(Debug, Clone, Copy)]
enum Field<T> {
    Absent,
    Present(T),
    Invalid,
}

impl<T: PartialEq> Field<T> {
    fn set(&mut self, parsed: Option<T>) {
        *self = match (std::mem::replace(self, Self::Invalid), parsed) {
            (Self::Absent, Some(value)) => Self::Present(value),
            (Self::Present(old), Some(value)) if old == value => Self::Present(old),
            _ => Self::Invalid,
        };
    }
}

/// A decimal sequence number without sign, spaces or leading zeros.
fn parse_seq(value: &[u8]) -> Option<u64> {
    let canonical =
        !value.is_empty() && value.iter().all(u8::is_ascii_digit) && (value == b"0" || value[0] != b'0');
    if !canonical {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(headers: &[(&str, &str)]) -> Mark {
        Mark::from_headers(headers.iter().map(|(n, v)| (*n, v.as_bytes())))
    }

    #[test]
    fn marks_round_trip_through_their_headers() {
        let token = Token(Uuid::from_u128(7));
        for original in
            [Mark::Claim { token }, Mark::Data { token, seq: 0 }, Mark::Data { token, seq: u64::MAX }]
        {
            let headers = original.headers();
            let back = Mark::from_headers(headers.iter().map(|(n, v)| (*n, v.as_bytes())));
            assert_eq!(back, original);
        }
        assert!(Mark::Unmarked.headers().is_empty());
    }

    #[test]
    fn malformed_or_contradictory_headers_leave_a_record_unmarked() {
        let t = "00000000-0000-0000-0000-000000000007";
        let u = "00000000-0000-0000-0000-000000000008";
        assert_eq!(mark(&[]), Mark::Unmarked);
        assert_eq!(mark(&[("other", "x")]), Mark::Unmarked);
        assert_eq!(mark(&[(WRITER_HEADER, t)]), Mark::Unmarked, "no sequence number");
        assert_eq!(mark(&[(SEQ_HEADER, "1")]), Mark::Unmarked, "no token");
        for bad in ["", "-1", "+1", "01", " 1", "1.0", "18446744073709551616"] {
            assert_eq!(mark(&[(WRITER_HEADER, t), (SEQ_HEADER, bad)]), Mark::Unmarked, "{bad:?}");
        }
        assert_eq!(mark(&[(WRITER_HEADER, "nope"), (SEQ_HEADER, "1")]), Mark::Unmarked);
        assert_eq!(mark(&[(WRITER_HEADER, t), (WRITER_HEADER, u), (SEQ_HEADER, "1")]), Mark::Unmarked);
        assert_eq!(mark(&[(CLAIM_HEADER, t), (WRITER_HEADER, t), (SEQ_HEADER, "1")]), Mark::Unmarked);
        assert_eq!(mark(&[(CLAIM_HEADER, t), (CLAIM_HEADER, u)]), Mark::Unmarked);
        // The same header twice with the same value is still one mark.
        let token = Token::parse(t.as_bytes()).expect("uuid");
        assert_eq!(
            mark(&[(WRITER_HEADER, t), (SEQ_HEADER, "3"), (SEQ_HEADER, "3")]),
            Mark::Data { token, seq: 3 }
        );
        assert_eq!(mark(&[(CLAIM_HEADER, t), ("traceparent", "x")]), Mark::Claim { token });
    }
}
