//! JSON body extractors that answer in problem+json instead of axum's plain-text rejections.
//!
//! Order of checks: media type (415), size (413) and time (408, [`BODY_TIME`]), JSON syntax
//! (400 `malformed-json`), shape (422 `invalid-input` with field `body` when the body is not a
//! JSON object; an optional body may also be empty or `null`, both meaning `{}`). Field-level
//! errors are not found here but by the request types' conversions, so that all of them are
//! reported together.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, header};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::problem::{FieldError, Problem, ProblemType};

/// Largest accepted request body.
pub const BODY_LIMIT: usize = 64 * 1024;

/// A required JSON object body.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

/// A JSON object body that may be empty or `null` (then it means `{}`), for confirm and cancel.
#[derive(Debug)]
pub struct OptionalJsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = Problem;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Problem> {
        let path = request.uri().path().to_owned();
        check_media_type(request.headers(), &path)?;
        let bytes = read(request, &path).await?;
        object(json(&bytes, &path)?, &path).map(Self)
    }
}

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for OptionalJsonBody<T> {
    type Rejection = Problem;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Problem> {
        let path = request.uri().path().to_owned();
        let headers = request.headers().clone();
        let bytes = read(request, &path).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(T::default()));
        }
        check_media_type(&headers, &path)?;
        match json(&bytes, &path)? {
            // JSON's "nothing", like an empty body.
            Value::Null => Ok(Self(T::default())),
            value => object(value, &path).map(Self),
        }
    }
}

/// Refuses anything but `application/json` (optionally with `charset=utf-8`).
#[allow(
    clippy::result_large_err,
    reason = "built once per refused request; boxing would only add an allocation"
)]
fn check_media_type(headers: &HeaderMap, path: &str) -> Result<(), Problem> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    if content_type.is_some_and(is_json) {
        return Ok(());
    }
    let detail = match content_type {
        Some(other) => format!("bodies must be application/json, got {other:?}"),
        None => "bodies must be application/json; the Content-Type header is missing".to_owned(),
    };
    Err(Problem::new(ProblemType::UnsupportedMediaType, detail, path))
}

/// Whether a `Content-Type` value is JSON in UTF-8.
fn is_json(value: &str) -> bool {
    let mut parts = value.split(';').map(str::trim);
    let essence = parts.next().unwrap_or_default();
    essence.eq_ignore_ascii_case("application/json")
        && parts.filter(|p| !p.is_empty()).all(|param| {
            let (name, value) = param.split_once('=').unwrap_or((param, ""));
            name.trim().eq_ignore_ascii_case("charset")
                && value.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
        })
}

/// Bodies over the limit up to this size are read to their end before the 413 is sent, so a
/// client still sending gets the answer rather than a broken pipe; larger ones are refused at
/// once.
pub const DRAIN_LIMIT: u64 = 8 * 1024 * 1024;
/// Longest a refused body is read for.
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(5);
/// Longest a client may take to send a whole body (at most [`BODY_LIMIT`]): one that trickles
/// it is answered 408 and its connection closed, well before the request timeout.
pub const BODY_TIME: std::time::Duration = std::time::Duration::from_secs(5);

/// The whole body, or 413 above [`BODY_LIMIT`] (the router disables axum's own limit: this
/// one drains what it refuses).
async fn read(request: Request, path: &str) -> Result<Bytes, Problem> {
    use futures::StreamExt as _;

    let too_large =
        || Problem::new(ProblemType::BodyTooLarge, format!("bodies are limited to {BODY_LIMIT} bytes"), path);
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > DRAIN_LIMIT) {
        return Err(too_large());
    }
    let mut body = request.into_body().into_data_stream();
    let mut collected = Vec::new();
    let deadline = tokio::time::Instant::now() + BODY_TIME;
    loop {
        let Ok(next) = tokio::time::timeout_at(deadline, body.next()).await else {
            let detail = format!(
                "the body did not arrive within {} s ({} bytes came)",
                BODY_TIME.as_secs(),
                collected.len()
            );
            return Err(Problem::new(ProblemType::RequestTimeout, detail, path));
        };
        let Some(chunk) = next else { break };
        let chunk = chunk.map_err(|error| {
            Problem::new(ProblemType::MalformedJson, format!("the body could not be read: {error}"), path)
        })?;
        if collected.len() + chunk.len() > BODY_LIMIT {
            let mut drained = collected.len() + chunk.len();
            let drain = async {
                while let Some(Ok(chunk)) = body.next().await {
                    drained += chunk.len();
                    if u64::try_from(drained).unwrap_or(u64::MAX) > DRAIN_LIMIT {
                        break;
                    }
                }
            };
            let _ = tokio::time::timeout(DRAIN_TIME, drain).await;
            return Err(too_large());
        }
        collected.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(collected))
}

/// The body as JSON, or 400 for broken JSON.
#[allow(
    clippy::result_large_err,
    reason = "built once per refused request; boxing would only add an allocation"
)]
fn json(bytes: &[u8], path: &str) -> Result<Value, Problem> {
    serde_json::from_slice(bytes).map_err(|error| {
        Problem::new(ProblemType::MalformedJson, format!("the body is not valid JSON: {error}"), path)
    })
}

/// The body's object as `T`, or 422 (field `body`) for anything but an object.
///
/// The body goes through a [`Value`] first because serde's derived structs would also accept
/// a JSON array as positional fields.
#[allow(
    clippy::result_large_err,
    reason = "built once per refused request; boxing would only add an allocation"
)]
fn object<T: DeserializeOwned>(value: Value, path: &str) -> Result<T, Problem> {
    let not_an_object = |reason: String| Problem::invalid_input(vec![FieldError::new("body", reason)], path);
    if !value.is_object() {
        return Err(not_an_object("must be a JSON object".to_owned()));
    }
    serde_json::from_value(value).map_err(|error| not_an_object(error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_media_types() {
        for good in [
            "application/json",
            "Application/JSON",
            "application/json; charset=utf-8",
            "application/json;charset=\"UTF-8\"",
        ] {
            assert!(is_json(good), "{good}");
        }
        for bad in [
            "text/plain",
            "application/jsonx",
            "application/json; charset=latin1",
            "application/json; v=1",
            "",
        ] {
            assert!(!is_json(bad), "{bad}");
        }
    }

    #[derive(Debug, Default, serde::Deserialize)]
    struct Empty {}

    #[test]
    fn syntax_errors_are_400_and_non_objects_are_422() {
        let status = |body: &str| match json(body.as_bytes(), "/") {
            Ok(value) => object::<Empty>(value, "/").map_or_else(|p| p.status, |_| 200),
            Err(problem) => problem.status,
        };
        assert_eq!(status("{}"), 200);
        assert_eq!(status("{\"a\":"), 400);
        assert_eq!(status("nope"), 400);
        assert_eq!(status("{} {}"), 400);
        assert_eq!(status("[]"), 422);
        assert_eq!(status("3"), 422);
        assert_eq!(status("null"), 422);
    }
}
