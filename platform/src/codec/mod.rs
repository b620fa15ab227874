//! The Avro event codec: Holdfast events in the Confluent wire format, schemas in the
//! registry under `TopicRecordNameStrategy` (subject `<topic>-<record full name>`).
//!
//! [`EventCodec::register_all`] runs once at start-up: it pins every event subject to
//! `BACKWARD_TRANSITIVE`, registers the current schemas and caches their ids, so
//! [`EventCodec::encode`] and the decoding of known schema ids make no HTTP call. A schema id
//! the codec has not seen (a record written by an older or newer build) is fetched once and
//! cached. Records whose writer schema has the current shape are read straight into their
//! fields (`direct`); others are decoded with their writer schema as generic values, upcast
//! if they carry an older event version ([`upcast`]), resolved against the current schema by
//! Avro schema resolution, and validated like the rest (`record`).
//!
//! Why not `schema_registry_converter`'s `AvroEncoder`/`AvroDecoder` on the hot path: the
//! encoder wants a subject strategy holding the schema string per call (cloned, and the
//! subject name rebuilt and looked up every time), it goes through the generic `Value` tree
//! (whose per-field name strings and lookup maps cost more than everything else), and the
//! decoder returns the writer's shape without resolving it against a reader schema. That
//! crate registers and fetches schemas here; the framing ([`wire`]) and the datum coding
//! (apache-avro's schema-aware serde, schemas parsed once) are this module's own.

mod direct;
mod error;
mod fields;
pub mod log;
pub mod mapping;
mod positional;
mod record;
mod registry;
#[cfg(any(test, feature = "testing"))]
pub mod samples;
pub mod schemas;
pub mod upcast;
mod visit;
pub mod wire;

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use apache_avro::Schema;
use holdfast_domain::{Event, EventType};

pub use error::CodecError;
pub use log::{ClaimRecord, LogRecord, Protocol, RejectedRecord};
pub use mapping::{from_avro, to_avro};
pub use registry::COMPATIBILITY;

use crate::config::RegistryArgs;
use record::WireRecord;
use schemas::Catalogue;

/// Marks an event type whose schema id is not known yet.
const NO_ID: u64 = u64::MAX;

/// Encodes and decodes Holdfast events for one events topic. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct EventCodec {
    /// The events topic: the first half of every subject name.
    topic: String,
    /// Registry calls (start-up and cache misses only).
    registry: registry::Registry,
    /// The schemas this codec reads and writes (the embedded ones unless a candidate).
    catalogue: Arc<Catalogue>,
    /// Schema id of each event type's current schema, in [`EventType::ALL`] order.
    ids: [AtomicU64; EventType::ALL.len()],
    /// The protocol records' schemas and ids, in [`Protocol::ALL`] order.
    protocol: [(Schema, AtomicU64); 2],
    /// Writer schemas by id: ours after registration, others as records name them.
    writers: RwLock<HashMap<u32, Arc<Writer>, BuildHasherDefault<IdHasher>>>,
    /// Serialises fetches of unknown ids so each is fetched once.
    fetching: tokio::sync::Mutex<()>,
}

/// A writer schema the codec has seen, with what decoding its records needs.
#[derive(Debug)]
struct Writer {
    /// The parsed writer schema.
    schema: Schema,
    /// Its event type, or the full record name it has when it is not a Holdfast event.
    event_type: Result<EventType, String>,
    /// The protocol record it describes, if it is one.
    protocol: Option<Protocol>,
    /// Whether it differs in shape from the current schema (then values are resolved).
    needs_resolution: bool,
    /// How its records can be read directly (when they need no resolution).
    layout: direct::Layout,
    /// Read by position, when it has one of the shapes the hand reader knows.
    positional: Option<positional::Shape>,
}

/// Hashes schema ids (small integers the registry assigns) by Fibonacci multiplication:
/// SipHash's protection against chosen keys buys nothing here and costs the hot path.
#[derive(Debug, Default, Clone, Copy)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// One subject [`EventCodec::register_all`] registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// The record's full Avro name.
    pub record: String,
    /// `<topic>-<record full name>`.
    pub subject: String,
    /// The id the registry gave the current schema.
    pub schema_id: u32,
}

impl EventCodec {
    /// A codec for `events_topic` on the registry at `args`. Makes no call yet.
    ///
    /// # Errors
    /// [`CodecError::InvalidSchema`] when an embedded schema does not parse (a build defect),
    /// or a registry error when the HTTP client cannot be built.
    pub fn new(args: &RegistryArgs, events_topic: &str) -> Result<Self, CodecError> {
        let [claim, rejected] = log::schemas()?;
        Ok(Self {
            topic: events_topic.to_owned(),
            registry: registry::Registry::new(args)?,
            catalogue: Arc::new(schemas::catalogue()?.clone()),
            ids: std::array::from_fn(|_| AtomicU64::new(NO_ID)),
            protocol: [(claim, AtomicU64::new(NO_ID)), (rejected, AtomicU64::new(NO_ID))],
            writers: RwLock::new(HashMap::default()),
            fetching: tokio::sync::Mutex::new(()),
        })
    }

    /// This codec with the candidate schema `source` in place of `event_type`'s embedded one:
    /// it registers, writes and reads with the candidate. For trying a schema change before it
    /// ships (compatibility tests, schema checks); a field only the candidate has is written
    /// with its default and ignored on reading.
    ///
    /// # Errors
    /// [`CodecError::InvalidSchema`] when `source` does not parse or names another record.
    pub fn with_schema(mut self, event_type: EventType, source: &str) -> Result<Self, CodecError> {
        Arc::make_mut(&mut self.catalogue).replace(event_type, source.to_owned())?;
        Ok(self)
    }

    /// The events topic this codec serves.
    #[must_use]
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The subject of `event_type`'s current schema: `<topic>-<record full name>`.
    #[must_use]
    pub fn subject(&self, event_type: EventType) -> String {
        format!("{}-{}", self.topic, schemas::full_name(event_type))
    }

    /// The schema id of `event_type`'s current schema, once registered.
    #[must_use]
    pub fn schema_id(&self, event_type: EventType) -> Option<u32> {
        u32::try_from(self.ids[schemas::index(event_type)].load(Ordering::Acquire)).ok()
    }

    /// Start-up: for every event type and both protocol records ([`Protocol`]), pins the
    /// subject's compatibility to `BACKWARD_TRANSITIVE` (checked by reading it back), registers
    /// the current schema (the registry refuses an incompatible one) and caches its id.
    /// Idempotent.
    ///
    /// # Errors
    /// [`CodecError::RegistryUnreachable`] (retry), or [`CodecError::Registry`] when the
    /// registry refuses a schema or does not keep the compatibility level (do not start).
    #[tracing::instrument(skip_all, fields(topic = %self.topic), err)]
    pub async fn register_all(&self) -> Result<Vec<Registration>, CodecError> {
        let mut registered = Vec::with_capacity(EventType::ALL.len());
        for event_type in EventType::ALL {
            let subject = self.subject(event_type);
            // Pinned before registering, so the registration itself is checked at that level.
            self.registry.pin_compatibility(&subject).await?;
            let full_name = schemas::full_name(event_type);
            let source = self.catalogue.source(event_type);
            let schema_id = self.registry.register(&self.topic, &full_name, source).await?;
            let current = self.catalogue.schema(event_type).clone();
            self.remember(schema_id, current);
            self.ids[schemas::index(event_type)].store(u64::from(schema_id), Ordering::Release);
            tracing::info!(%subject, schema_id, "registered event schema");
            registered.push(Registration { record: full_name, subject, schema_id });
        }
        for protocol in Protocol::ALL {
            let full_name = protocol.full_name();
            let subject = format!("{}-{full_name}", self.topic);
            self.registry.pin_compatibility(&subject).await?;
            let schema_id = self.registry.register(&self.topic, full_name, protocol.source()).await?;
            let (schema, id) = &self.protocol[protocol.index()];
            self.remember(schema_id, schema.clone());
            id.store(u64::from(schema_id), Ordering::Release);
            tracing::info!(%subject, schema_id, "registered log record schema");
            registered.push(Registration { record: full_name.to_owned(), subject, schema_id });
        }
        Ok(registered)
    }

    /// A claim in the Confluent wire format. No I/O.
    ///
    /// # Errors
    /// [`CodecError::NotRegistered`] before [`Self::register_all`]; [`CodecError::Encode`] when
    /// the record does not fit its schema (a defect).
    pub fn encode_claim(&self, claim: &ClaimRecord) -> Result<Vec<u8>, CodecError> {
        self.encode_protocol(Protocol::Claim, &log::claim_value(claim))
    }

    /// A refused command in the Confluent wire format. No I/O.
    ///
    /// # Errors
    /// As [`Self::encode_claim`].
    pub fn encode_rejected(&self, record: &RejectedRecord) -> Result<Vec<u8>, CodecError> {
        self.encode_protocol(Protocol::Rejected, &log::rejected_value(record)?)
    }

    fn encode_protocol(
        &self,
        protocol: Protocol,
        value: &apache_avro::types::Value,
    ) -> Result<Vec<u8>, CodecError> {
        let (schema, id) = &self.protocol[protocol.index()];
        let record = || protocol.full_name().to_owned();
        let schema_id = u32::try_from(id.load(Ordering::Acquire))
            .map_err(|_| CodecError::NotRegistered { record: record() })?;
        wire::encode(schema_id, schema, value)
            .map_err(|detail| CodecError::Encode { record: record(), detail })
    }

    /// Any record of the events topic: an event, a refused command or a claim. Fetches an
    /// unseen writer schema once, like [`Self::decode`].
    ///
    /// # Errors
    /// As [`Self::decode`].
    pub async fn decode_record(&self, bytes: &[u8]) -> Result<LogRecord, CodecError> {
        self.read(bytes, |writer, id, body| self.decode_record_with(writer, id, body)).await
    }

    /// [`Self::decode_record`] without waiting; `None` when the writer schema must be fetched.
    pub fn decode_record_cached(&self, bytes: &[u8]) -> Option<Result<LogRecord, CodecError>> {
        self.read_cached(bytes, |writer, id, body| self.decode_record_with(writer, id, body))
    }

    /// Splits the framing off `bytes` and reads the body with its writer schema, fetching an
    /// unseen schema once.
    async fn read<T>(
        &self,
        bytes: &[u8],
        read: impl FnOnce(&Writer, u32, &[u8]) -> Result<T, CodecError>,
    ) -> Result<T, CodecError> {
        let (schema_id, body) = wire::split(bytes)?;
        let writer = match self.cached(schema_id) {
            Some(writer) => writer,
            None => self.fetch(schema_id).await?,
        };
        read(&writer, schema_id, body)
    }

    /// [`Self::read`] without waiting: `None` when the writer schema is not known yet.
    fn read_cached<T>(
        &self,
        bytes: &[u8],
        read: impl FnOnce(&Writer, u32, &[u8]) -> Result<T, CodecError>,
    ) -> Option<Result<T, CodecError>> {
        let (schema_id, body) = match wire::split(bytes) {
            Ok(split) => split,
            Err(error) => return Some(Err(error)),
        };
        let writer = self.cached(schema_id)?;
        Some(read(&writer, schema_id, body))
    }

    fn decode_record_with(
        &self,
        writer: &Writer,
        schema_id: u32,
        body: &[u8],
    ) -> Result<LogRecord, CodecError> {
        match writer.protocol {
            None => self.decode_with(writer, schema_id, body).map(LogRecord::Event),
            Some(protocol) => {
                let value = wire::decode(schema_id, &writer.schema, body)?;
                match protocol {
                    Protocol::Claim => log::claim_from(value).map(LogRecord::Claim),
                    Protocol::Rejected => log::rejected_from(value).map(LogRecord::Rejected),
                }
            }
        }
    }

    /// `event` in the Confluent wire format under its current schema. No I/O.
    ///
    /// # Errors
    /// [`CodecError::NotRegistered`] before [`Self::register_all`];
    /// [`CodecError::InvalidField`] when the envelope contradicts the payload or carries a
    /// version other than the current one; [`CodecError::Encode`] on a mapping defect.
    pub fn encode(&self, event: &Event) -> Result<Vec<u8>, CodecError> {
        let event_type = mapping::writable_type(event)?;
        let schema_id = self
            .schema_id(event_type)
            .ok_or_else(|| CodecError::NotRegistered { record: event_type.to_string() })?;
        let mut buf = wire::start(schema_id);
        let schema = self.catalogue.schema(event_type);
        // A candidate's fields the event does not carry are written with their defaults.
        direct::write(&mut buf, schema, self.catalogue.layout(event_type), event)
            .map_err(|e| CodecError::Encode { record: event_type.to_string(), detail: e.to_string() })?;
        Ok(buf)
    }

    /// The event in a Confluent-framed record. Makes no HTTP call for a schema id seen
    /// before; fetches an unseen one from the registry once.
    ///
    /// # Errors
    /// Every [`CodecError`] decoding variant; only [`CodecError::RegistryUnreachable`] is
    /// worth retrying.
    pub async fn decode(&self, bytes: &[u8]) -> Result<Event, CodecError> {
        self.read(bytes, |writer, id, body| self.decode_with(writer, id, body)).await
    }

    /// Decodes `bytes` without waiting, when their writer schema is already known (every
    /// schema this build registers, and every one fetched before); `None` when the schema
    /// must first be fetched with [`EventCodec::decode`]. For replays that decode on threads
    /// of their own.
    pub fn decode_cached(&self, bytes: &[u8]) -> Option<Result<Event, CodecError>> {
        self.read_cached(bytes, |writer, id, body| self.decode_with(writer, id, body))
    }

    fn decode_with(&self, writer: &Writer, schema_id: u32, body: &[u8]) -> Result<Event, CodecError> {
        let event_type = writer.event_type.clone().map_err(|name| CodecError::UnknownRecordName { name })?;
        let current = event_type.current_version();
        // A writer of a shape the direct readers know: straight into the fields, no generic tree.
        let record = match writer.positional {
            Some(shape) => Some(positional::read(schema_id, body, event_type, shape)?),
            None if !writer.needs_resolution => Some(*wire::read_datum(schema_id, body, |input| {
                direct::read(input, &writer.schema, writer.layout, event_type)
            })?),
            None => None,
        };
        if let Some(record) = record
            && record.event_version.and_then(|v| u32::try_from(v).ok()) == Some(current)
        {
            return record.into_event(event_type);
        }
        let value = wire::decode(schema_id, &writer.schema, body)?;
        let version = upcast::version_of(&value)?;
        let value = upcast::to_current(event_type, version, value)?;
        let value = if writer.needs_resolution || version != current {
            upcast::resolve(self.catalogue.schema(event_type), event_type, value)?
        } else {
            value
        };
        WireRecord::from_value(value)?.into_event(event_type)
    }

    /// Takes `source` as schema `id` without a registry, as [`Self::register_all`] does for
    /// its own schemas (then [`Self::encode`] uses `id`) or a fetch for others'. For fuzz
    /// targets, which have no registry; never compiled into the services.
    ///
    /// # Errors
    /// [`CodecError::InvalidSchema`] when `source` does not parse.
    #[cfg(feature = "fuzzing")]
    #[doc(hidden)]
    pub fn learn_schema(&self, id: u32, source: &str) -> Result<(), CodecError> {
        let schema = Schema::parse_str(source).map_err(|e| CodecError::InvalidSchema {
            name: format!("schema id {id}"),
            detail: e.to_string(),
        })?;
        let writer = self.remember(id, schema);
        match (&writer.event_type, writer.protocol) {
            (Ok(t), _) if !writer.needs_resolution => {
                self.ids[schemas::index(*t)].store(u64::from(id), Ordering::Release);
            }
            (_, Some(protocol)) => {
                let (own, own_id) = &self.protocol[protocol.index()];
                if own.canonical_form() == writer.schema.canonical_form() {
                    own_id.store(u64::from(id), Ordering::Release);
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The cached writer schema `id`, if any.
    fn cached(&self, id: u32) -> Option<Arc<Writer>> {
        self.writers.read().unwrap_or_else(PoisonError::into_inner).get(&id).cloned()
    }

    /// Fetches writer schema `id` from the registry (once, however many callers ask).
    #[tracing::instrument(skip(self), err)]
    async fn fetch(&self, id: u32) -> Result<Arc<Writer>, CodecError> {
        let _one_at_a_time = self.fetching.lock().await;
        if let Some(writer) = self.cached(id) {
            return Ok(writer);
        }
        let source = self.registry.schema(id).await?;
        let schema = Schema::parse_str(&source).map_err(|e| CodecError::InvalidSchema {
            name: format!("schema id {id}"),
            detail: e.to_string(),
        })?;
        tracing::info!(schema_id = id, name = ?schema.name().map(|n| n.fullname(None)), "fetched a writer schema");
        Ok(self.remember(id, schema))
    }

    /// Caches `schema` as writer schema `id`, with its event type (or why it has none).
    fn remember(&self, id: u32, schema: Schema) -> Arc<Writer> {
        let event_type = match schema.name() {
            Some(name) => schemas::event_type_of(name).ok_or_else(|| name.fullname(None)),
            None => Err(format!("(an unnamed schema, id {id})")),
        };
        let protocol = event_type.as_ref().err().and_then(|name| Protocol::of(name));
        let canonical = schema.canonical_form();
        let (needs_resolution, positional) = match &event_type {
            Ok(t) => (canonical != self.catalogue.canonical(*t), schemas::positional_shape(*t, &canonical)),
            Err(_) => (false, None),
        };
        let layout = direct::Layout {
            self_contained: schemas::is_self_contained(&schema),
            positional: positional == Some(positional::Shape::Current),
        };
        let writer = Arc::new(Writer { schema, event_type, protocol, needs_resolution, layout, positional });
        self.writers.write().unwrap_or_else(PoisonError::into_inner).insert(id, Arc::clone(&writer));
        writer
    }
}
