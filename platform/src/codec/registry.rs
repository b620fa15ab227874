//! The codec's schema registry calls: register a schema under a subject, pin the subject's
//! compatibility level, and fetch a writer schema by id.
//!
//! Registration and lookup go through `schema_registry_converter`; the compatibility
//! setting, which that crate does not cover, is a plain HTTP PUT checked by a GET. These run
//! at start-up and on the first sight of an unknown schema id, never per record.

use std::time::Duration;

use schema_registry_converter::async_impl::schema_registry::{
    SrSettings, get_schema_by_id, get_schema_by_subject,
};
use schema_registry_converter::error::SRCError;
use schema_registry_converter::schema_registry_common::{
    RawError, SchemaType, SubjectNameStrategy, SuppliedSchema,
};

use super::CodecError;
use crate::config::RegistryArgs;

/// Compatibility level pinned on every event subject: a new schema must read every older one.
pub const COMPATIBILITY: &str = "BACKWARD_TRANSITIVE";

/// Media type of the Confluent-compatible API.
const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// How long one registry call may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// A client of the Confluent-compatible registry API.
#[derive(Debug, Clone)]
pub(crate) struct Registry {
    /// Base URL without a trailing slash.
    url: String,
    /// `schema_registry_converter`'s settings (its HTTP client included).
    settings: SrSettings,
    /// For the calls that crate does not offer.
    http: reqwest::Client,
}

impl Registry {
    /// A client of the registry at `args.url`.
    pub(crate) fn new(args: &RegistryArgs) -> Result<Self, CodecError> {
        let url = args.url.trim_end_matches('/').to_owned();
        let settings = SrSettings::new_builder(url.clone())
            .set_timeout(TIMEOUT)
            .build()
            .map_err(|e| refused("a client configuration", &e))?;
        let http = reqwest::Client::builder().timeout(TIMEOUT).build().map_err(|e| unreachable(&e))?;
        Ok(Self { url, settings, http })
    }

    /// Registers `schema` (Avro JSON of the record `full_name`) under `topic` with
    /// `TopicRecordNameStrategy`, returning its schema id. Registering the same schema again
    /// returns the same id.
    pub(crate) async fn register(
        &self,
        topic: &str,
        full_name: &str,
        schema: &str,
    ) -> Result<u32, CodecError> {
        let supplied = SuppliedSchema::new(Some(full_name.to_owned()), SchemaType::Avro, schema.to_owned());
        let strategy = SubjectNameStrategy::TopicRecordNameStrategyWithSchema(topic.to_owned(), supplied);
        let registered = get_schema_by_subject(&self.settings, &strategy)
            .await
            .map_err(|e| classify(&format!("schema {full_name} for topic {topic}"), &e))?;
        Ok(registered.id)
    }

    /// Pins `subject`'s compatibility to [`COMPATIBILITY`] and reads it back, failing unless
    /// the registry reports that level.
    pub(crate) async fn pin_compatibility(&self, subject: &str) -> Result<(), CodecError> {
        let url = format!("{}/config/{}", self.url, subject.replace('/', "%2F"));
        let what = format!("compatibility {COMPATIBILITY} for {subject}");
        let body = serde_json::json!({ "compatibility": COMPATIBILITY }).to_string();
        let put = self.http.put(&url).header("content-type", CONTENT_TYPE).body(body).send().await;
        match expect_success(&what, put.map_err(|e| unreachable(&e))?).await {
            // Instances starting together race to create the subject's rule: the registry
            // refuses all but the first with 409 "rule already exists". The read-back below
            // decides whether the level the winner set is ours.
            Ok(_) | Err(CodecError::Registry { status: Some(409), .. }) => {}
            Err(error) => return Err(error),
        }
        let get = self.http.get(&url).header("accept", CONTENT_TYPE).send().await;
        let answer = expect_success(&what, get.map_err(|e| unreachable(&e))?).await?;
        let level = serde_json::from_str::<serde_json::Value>(&answer)
            .ok()
            .and_then(|v| v.get("compatibilityLevel").or_else(|| v.get("compatibility")).cloned());
        if level.as_ref().and_then(serde_json::Value::as_str) == Some(COMPATIBILITY) {
            Ok(())
        } else {
            Err(CodecError::Registry { what, status: None, detail: format!("the registry kept {answer}") })
        }
    }

    /// The Avro JSON of schema `id`.
    pub(crate) async fn schema(&self, id: u32) -> Result<String, CodecError> {
        match get_schema_by_id(id, &self.settings).await {
            Ok(registered) if registered.schema_type == SchemaType::Avro => Ok(registered.schema),
            Ok(registered) => Err(CodecError::InvalidSchema {
                name: format!("schema id {id}"),
                detail: format!("a {:?} schema, not Avro", registered.schema_type),
            }),
            Err(e) if status_of(&e) == Some(404) => Err(CodecError::UnknownSchemaId { schema_id: id }),
            Err(e) => Err(classify(&format!("schema id {id}"), &e)),
        }
    }
}

/// The body of a 2xx answer, or the error the status stands for.
async fn expect_success(what: &str, response: reqwest::Response) -> Result<String, CodecError> {
    let status = response.status();
    let body = response.text().await.map_err(|e| unreachable(&e))?;
    if status.is_success() {
        Ok(body)
    } else if matches!(status.as_u16(), 502..=504) {
        Err(CodecError::RegistryUnreachable { detail: format!("{status}: {body}") })
    } else {
        Err(CodecError::Registry { what: what.to_owned(), status: Some(status.as_u16()), detail: body })
    }
}

/// The HTTP status a registry error stands for: Confluent error codes are the status with
/// two more digits (40403 → 404); plain statuses pass through.
fn status_of(error: &SRCError) -> Option<u16> {
    let raw = std::error::Error::source(error)?.downcast_ref::<RawError>()?;
    let code = if raw.error_code >= 10_000 { raw.error_code / 100 } else { raw.error_code };
    u16::try_from(code).ok().filter(|c| (100..600).contains(c))
}

/// A `schema_registry_converter` error as a codec error: retriable ones mean unreachable.
fn classify(what: &str, error: &SRCError) -> CodecError {
    if error.retriable {
        CodecError::RegistryUnreachable { detail: error.to_string() }
    } else {
        CodecError::Registry { what: what.to_owned(), status: status_of(error), detail: error.to_string() }
    }
}

fn refused(what: &str, error: &SRCError) -> CodecError {
    CodecError::Registry { what: what.to_owned(), status: None, detail: error.to_string() }
}

fn unreachable(error: &reqwest::Error) -> CodecError {
    CodecError::RegistryUnreachable { detail: error.to_string() }
}
