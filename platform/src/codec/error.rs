//! [`CodecError`]: everything that can go wrong turning events into bytes and back.
//!
//! Each variant says what the caller should do. Only [`CodecError::RegistryUnreachable`] is
//! worth retrying; every decoding variant describes a record that will never decode, which a
//! consumer should put on its dead-letter topic (with [`CodecError::reason_code`] in a header)
//! instead of stopping the partition.

use holdfast_domain::EventType;

/// An event could not be encoded or decoded, or the schema registry refused or did not answer.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The payload is shorter than the 5-byte Confluent header, or its Avro body ends before
    /// the record does. The record was cut short (a broken producer or tool): dead-letter it.
    #[error("truncated payload: {detail}")]
    Truncated {
        /// What was missing.
        detail: String,
    },
    /// The first byte is not the Confluent magic byte 0, so this is not Confluent-framed Avro
    /// (JSON, a bare datum, another serializer). Dead-letter it and find the foreign producer.
    #[error("wrong magic byte {found:#04x}: not the Confluent wire format")]
    WrongMagicByte {
        /// The byte found instead of 0.
        found: u8,
    },
    /// The body does not decode with the writer schema its header names (bit rot, bytes
    /// spliced from another record, a producer lying about the schema id). Dead-letter it.
    #[error("corrupt payload for schema id {schema_id}: {detail}")]
    Corrupt {
        /// The schema id in the header.
        schema_id: u32,
        /// What the Avro decoder reported.
        detail: String,
    },
    /// The registry does not know the schema id in the header (a record from another
    /// registry or environment, or a schema hard-deleted). Dead-letter it and check which
    /// registry the producer used.
    #[error("unknown schema id {schema_id}: the schema registry does not know it")]
    UnknownSchemaId {
        /// The schema id in the header.
        schema_id: u32,
    },
    /// The writer schema's record is not a Holdfast event this build knows (a foreign record
    /// on the topic, or an event type added by newer code). Dead-letter it; deploy newer code
    /// if the type is real.
    #[error("unknown record name {name:?}: not a Holdfast event type this build knows")]
    UnknownRecordName {
        /// Full name of the writer schema's record.
        name: String,
    },
    /// The event's version is newer than this build's, or no upcaster bridges it to the
    /// current version. Deploy newer code, then replay the dead-lettered records.
    #[error("{event_type} version {version} is not supported (this build reads up to {current})")]
    UnsupportedVersion {
        /// The event type.
        event_type: EventType,
        /// The version the record carries.
        version: u32,
        /// The newest version this build knows.
        current: u32,
    },
    /// A field decoded as Avro but breaks the domain's rule for it (an empty resource id, a
    /// reversed range, a negative quantity) or has an unexpected Avro type. When decoding:
    /// dead-letter the record. When encoding: the event was built wrongly; fix the caller.
    #[error("invalid field {field}: {reason}")]
    InvalidField {
        /// Name of the Avro field.
        field: String,
        /// Why the value was refused.
        reason: String,
    },
    /// The schema registry could not be reached (connection refused, timeout, 502/503).
    /// Transient: retry with backoff, and do not dead-letter the record meanwhile.
    #[error("schema registry unreachable: {detail}")]
    RegistryUnreachable {
        /// What the HTTP client reported.
        detail: String,
    },
    /// The schema registry answered but refused the request: an incompatible schema (409),
    /// an invalid one (422), or a setting it did not keep. Not transient: fix the schema or
    /// the registry configuration before deploying; page someone if it happens at start-up.
    #[error("schema registry refused {what}: {detail}")]
    Registry {
        /// The request that was refused.
        what: String,
        /// HTTP status, if the registry answered with one.
        status: Option<u16>,
        /// The registry's message.
        detail: String,
    },
    /// A schema (embedded in this build, or fetched from the registry for a writer) is not
    /// valid Avro. For an embedded one this is a build defect caught by the unit tests; for a
    /// fetched one, dead-letter the records written with it.
    #[error("schema {name} is not valid Avro: {detail}")]
    InvalidSchema {
        /// The schema's record name or registry id.
        name: String,
        /// What the parser reported.
        detail: String,
    },
    /// [`super::EventCodec::encode`] was called before
    /// [`super::EventCodec::register_all`] succeeded: a start-up ordering bug. Register first.
    #[error("no schema id for {record}: call register_all at start-up")]
    NotRegistered {
        /// The record (event type or protocol record) that has no id yet.
        record: String,
    },
    /// The Avro writer refused a value built by the mapping: a defect in this module (the
    /// unit tests check every event type). Report it; the event cannot be written.
    #[error("cannot encode {record}: {detail}")]
    Encode {
        /// The record (event type or protocol record).
        record: String,
        /// What the Avro writer reported.
        detail: String,
    },
}

impl CodecError {
    /// Whether trying again later may succeed (only when the registry was unreachable).
    #[must_use]
    pub fn is_retriable(&self) -> bool {
        matches!(self, Self::RegistryUnreachable { .. })
    }

    /// A short, stable, low-cardinality code for metrics labels and dead-letter headers.
    #[must_use]
    pub fn reason_code(&self) -> &'static str {
        match self {
            Self::Truncated { .. } => "truncated",
            Self::WrongMagicByte { .. } => "wrong_magic_byte",
            Self::Corrupt { .. } => "corrupt",
            Self::UnknownSchemaId { .. } => "unknown_schema_id",
            Self::UnknownRecordName { .. } => "unknown_record_name",
            Self::UnsupportedVersion { .. } => "unsupported_version",
            Self::InvalidField { .. } => "invalid_field",
            Self::RegistryUnreachable { .. } => "registry_unreachable",
            Self::Registry { .. } => "registry_refused",
            Self::InvalidSchema { .. } => "invalid_schema",
            Self::NotRegistered { .. } => "not_registered",
            Self::Encode { .. } => "encode",
        }
    }

    /// An [`CodecError::InvalidField`] for `field`.
    pub(crate) fn invalid(field: &str, reason: impl Into<String>) -> Self {
        Self::InvalidField { field: field.to_owned(), reason: reason.into() }
    }
}
