//! The Avro event codec: Holdfast events in the Confluent wire format, schemas in the
//! registry under `TopicRecordNameStrategy` (subject `<topic>-<record full name>`).
//!
//! [`EventCodec::register_all`] runs once at start-up: it pins every event subject to
//! `BACKWARD_TRANSITIVE`, registers the current schemas and caches their ids, so
//! [`EventCodec::encode`] and the decoding of known schema ids make no HTTP call. A schema id
//! the codec has not seen (a record written by an older or newer build) is fetched once and
//! cached; its records are decoded with their writer schema, upcast if they carry an older
//! event version ([`upcast`]), resolved against the current schema by Avro schema resolution
//! when the shapes differ, and validated into domain events ([`mapping`]).
//!
//! Why not `schema_registry_converter`'s `AvroEncoder`/`AvroDecoder` on the hot path: the
//! encoder wants a subject strategy holding the schema string per call (cloned and looked up
//! by subject every time), and the decoder returns the writer's shape without resolving it
//! against a reader schema. That crate registers and fetches schemas here; framing and datum
//! coding are done in [`wire`] with schemas parsed once.

mod error;
mod fields;
pub mod mapping;
mod registry;
#[cfg(any(test, feature = "testing"))]
pub mod samples;
pub mod schemas;
pub mod upcast;
pub mod wire;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use apache_avro::Schema;
use apache_avro::schema::ResolvedSchema;
use apache_avro::types::Value;
use holdfast_domain::{Event, EventType};

pub use error::CodecError;
pub use mapping::{from_avro, to_avro};
pub use registry::COMPATIBILITY;

use crate::config::RegistryArgs;
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
    /// Writer schemas by id: ours after registration, others as records name them.
    writers: RwLock<HashMap<u32, Arc<Writer>>>,
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
    /// Whether it differs in shape from the current schema (then values are resolved).
    needs_resolution: bool,
}

/// One subject [`EventCodec::register_all`] registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// The event type.
    pub event_type: EventType,
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
        Ok(Self {
            topic: events_topic.to_owned(),
            registry: registry::Registry::new(args)?,
            catalogue: Arc::new(schemas::catalogue()?.clone()),
            ids: std::array::from_fn(|_| AtomicU64::new(NO_ID)),
            writers: RwLock::new(HashMap::new()),
            fetching: tokio::sync::Mutex::new(()),
        })
    }

    /// This codec with the candidate schema `source` in place of `event_type`'s embedded one:
    /// it registers, writes and reads with the candidate. For trying a schema change before it
    /// ships (compatibility tests, schema checks); a field only the candidate has is written
    /// with its default.
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

    /// Start-up: for every event type, pins the subject's compatibility to
    /// `BACKWARD_TRANSITIVE` (checked by reading it back), registers the current schema
    /// (the registry refuses an incompatible one) and caches its id. Idempotent.
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
            registered.push(Registration { event_type, subject, schema_id });
        }
        Ok(registered)
    }

    /// `event` in the Confluent wire format under its current schema. No I/O.
    ///
    /// # Errors
    /// [`CodecError::NotRegistered`] before [`Self::register_all`];
    /// [`CodecError::InvalidField`] when the envelope contradicts the payload or carries a
    /// version other than the current one; [`CodecError::Encode`] on a mapping defect.
    pub fn encode(&self, event: &Event) -> Result<Vec<u8>, CodecError> {
        let event_type = event.payload.event_type();
        if event.envelope.event_type != event_type {
            return Err(CodecError::invalid(
                "event_type",
                format!("envelope says {}, payload is {event_type}", event.envelope.event_type),
            ));
        }
        if event.envelope.event_version != event_type.current_version() {
            return Err(CodecError::invalid(
                "event_version",
                format!(
                    "{} is not the current version {}",
                    event.envelope.event_version,
                    event_type.current_version()
                ),
            ));
        }
        let schema_id = self.schema_id(event_type).ok_or(CodecError::NotRegistered { event_type })?;
        let mut value = to_avro(event);
        if self.catalogue.is_candidate(event_type) {
            value = self.resolve(event_type, value)?;
        }
        wire::encode(schema_id, self.catalogue.schema(event_type), &value)
            .map_err(|detail| CodecError::Encode { event_type, detail })
    }

    /// The event in a Confluent-framed record. Makes no HTTP call for a schema id seen
    /// before; fetches an unseen one from the registry once.
    ///
    /// # Errors
    /// Every [`CodecError`] decoding variant; only [`CodecError::RegistryUnreachable`] is
    /// worth retrying.
    pub async fn decode(&self, bytes: &[u8]) -> Result<Event, CodecError> {
        let (schema_id, body) = wire::split(bytes)?;
        let writer = match self.cached(schema_id) {
            Some(writer) => writer,
            None => self.fetch(schema_id).await?,
        };
        let event_type = writer.event_type.clone().map_err(|name| CodecError::UnknownRecordName { name })?;
        let value = wire::decode(schema_id, &writer.schema, body)?;
        let version = fields::Fields::of(&value)?.count("event_version")?;
        let value = upcast::to_current(event_type, version, value)?;
        let value = if writer.needs_resolution || version != event_type.current_version() {
            self.resolve(event_type, value)?
        } else {
            value
        };
        mapping::build(event_type, &value)
    }

    /// Resolves a writer-shaped (or upcast) record against the current schema: fills
    /// defaults, drops unknown fields, promotes types.
    fn resolve(&self, event_type: EventType, value: Value) -> Result<Value, CodecError> {
        let reader = self.catalogue.schema(event_type);
        let invalid = |detail: String| {
            CodecError::invalid(
                "(record)",
                format!("does not resolve to the current {event_type} schema: {detail}"),
            )
        };
        let names = ResolvedSchema::try_from(reader).map_err(|e| invalid(e.to_string()))?;
        value.resolve_with_names(reader, names.get_names()).map_err(|e| invalid(e.to_string()))
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
        let needs_resolution = match &event_type {
            Ok(t) => schema.canonical_form() != self.catalogue.canonical(*t),
            Err(_) => false,
        };
        let writer = Arc::new(Writer { schema, event_type, needs_resolution });
        self.writers.write().unwrap_or_else(PoisonError::into_inner).insert(id, Arc::clone(&writer));
        writer
    }
}
