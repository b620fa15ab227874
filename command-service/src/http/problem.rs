//! RFC 9457 problem details: the one shape every error of the command API takes.
//!
//! This module owns the catalogue of problem types ([`ProblemType`]: code, status, title) and
//! the [`Problem`] document that is rendered as `application/problem+json`. It decides nothing
//! about *when* a problem applies; handlers, extractors and the outcome renderer do that.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use holdfast_platform::auth::AuthError;
use serde::Serialize;
use utoipa::ToSchema;

/// Media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Prefix of every problem `type` URI; the problem code follows it.
pub const TYPE_BASE: &str = "https://holdfast.dev/problems/";

/// Every kind of problem the API can answer with. The code is stable (clients and `type`
/// URIs depend on it); business rejections reuse [`holdfast_domain::Rejection::code`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemType {
    /// 400: the body is not syntactically valid JSON. Fix the client's serializer.
    MalformedJson,
    /// 422: one or more fields (or headers) are invalid; `errors` lists all of them.
    InvalidInput,
    /// 422: the `Idempotency-Key` was used before for a different request.
    IdempotencyKeyReused,
    /// 401: no valid bearer token; get one (see `WWW-Authenticate`).
    Unauthorized,
    /// 403: the token does not grant what the request needs, or a customer acts for another.
    Forbidden,
    /// 404: no such resource.
    UnknownResource,
    /// 404: no such reservation.
    UnknownReservation,
    /// 404: no outcome is known for that command id.
    UnknownCommand,
    /// 404: no such route.
    NotFound,
    /// 405: the route exists, the method does not (see `Allow`).
    MethodNotAllowed,
    /// 409: not enough free units on `slot`.
    InsufficientCapacity,
    /// 409: the new capacity is below the units in use on `slot`.
    CapacityBelowUsage,
    /// 409: the hold expired.
    HoldExpired,
    /// 409: the reservation was cancelled.
    AlreadyCancelled,
    /// 409: the resource exists with another definition.
    ResourceConflict,
    /// 409: the reservation id is taken by a different hold.
    ReservationConflict,
    /// 413: the body exceeds the limit.
    BodyTooLarge,
    /// 415: the body is not `application/json`.
    UnsupportedMediaType,
    /// 408: the body did not arrive in time; the connection is closed.
    RequestTimeout,
    /// 431: the request headers exceed 16 KiB together.
    HeadersTooLarge,
    /// 429: too many commands in flight on this instance; retry after `Retry-After`.
    RateLimited,
    /// 503: commands cannot be handed to Kafka right now; retry after `Retry-After`.
    Unavailable,
    /// 503: the request took too long; retry with the same `Idempotency-Key`.
    Timeout,
    /// 500: a bug on our side; the cause is logged, never shown.
    Internal,
}

impl ProblemType {
    /// Every problem type, for documentation and tests.
    pub const ALL: [Self; 24] = [
        Self::MalformedJson,
        Self::InvalidInput,
        Self::IdempotencyKeyReused,
        Self::Unauthorized,
        Self::Forbidden,
        Self::UnknownResource,
        Self::UnknownReservation,
        Self::UnknownCommand,
        Self::NotFound,
        Self::MethodNotAllowed,
        Self::InsufficientCapacity,
        Self::CapacityBelowUsage,
        Self::HoldExpired,
        Self::AlreadyCancelled,
        Self::ResourceConflict,
        Self::ReservationConflict,
        Self::BodyTooLarge,
        Self::UnsupportedMediaType,
        Self::RequestTimeout,
        Self::HeadersTooLarge,
        Self::RateLimited,
        Self::Unavailable,
        Self::Timeout,
        Self::Internal,
    ];

    /// Stable code: the last segment of the `type` URI.
    #[must_use]
    pub fn code(self) -> &'static str {
        self.describe().0
    }

    /// HTTP status of this problem.
    #[must_use]
    pub fn status(self) -> StatusCode {
        self.describe().1
    }

    /// Short, fixed summary (the `title` member).
    #[must_use]
    pub fn title(self) -> &'static str {
        self.describe().2
    }

    /// The `type` URI.
    #[must_use]
    pub fn uri(self) -> String {
        format!("{TYPE_BASE}{}", self.code())
    }

    fn describe(self) -> (&'static str, StatusCode, &'static str) {
        use StatusCode as S;
        match self {
            Self::MalformedJson => ("malformed-json", S::BAD_REQUEST, "Malformed JSON"),
            Self::InvalidInput => ("invalid-input", S::UNPROCESSABLE_ENTITY, "Invalid input"),
            Self::IdempotencyKeyReused => ("idempotency-key-reused", S::UNPROCESSABLE_ENTITY, "Key reused"),
            Self::Unauthorized => ("unauthorized", S::UNAUTHORIZED, "Unauthorized"),
            Self::Forbidden => ("forbidden", S::FORBIDDEN, "Forbidden"),
            Self::UnknownResource => ("unknown-resource", S::NOT_FOUND, "Unknown resource"),
            Self::UnknownReservation => ("unknown-reservation", S::NOT_FOUND, "Unknown reservation"),
            Self::UnknownCommand => ("unknown-command", S::NOT_FOUND, "Unknown command"),
            Self::NotFound => ("not-found", S::NOT_FOUND, "Not found"),
            Self::MethodNotAllowed => ("method-not-allowed", S::METHOD_NOT_ALLOWED, "Method not allowed"),
            Self::InsufficientCapacity => ("insufficient-capacity", S::CONFLICT, "Insufficient capacity"),
            Self::CapacityBelowUsage => ("capacity-below-usage", S::CONFLICT, "Capacity below usage"),
            Self::HoldExpired => ("hold-expired", S::CONFLICT, "Hold expired"),
            Self::AlreadyCancelled => ("already-cancelled", S::CONFLICT, "Reservation already cancelled"),
            Self::ResourceConflict => ("resource-conflict", S::CONFLICT, "Resource defined differently"),
            Self::ReservationConflict => ("reservation-conflict", S::CONFLICT, "Reservation id conflict"),
            Self::BodyTooLarge => ("body-too-large", S::PAYLOAD_TOO_LARGE, "Body too large"),
            Self::UnsupportedMediaType => {
                ("unsupported-media-type", S::UNSUPPORTED_MEDIA_TYPE, "Unsupported media type")
            }
            Self::RequestTimeout => ("request-timeout", S::REQUEST_TIMEOUT, "Request timeout"),
            Self::HeadersTooLarge => {
                ("headers-too-large", S::REQUEST_HEADER_FIELDS_TOO_LARGE, "Request headers too large")
            }
            Self::RateLimited => ("rate-limited", S::TOO_MANY_REQUESTS, "Too many requests"),
            Self::Unavailable => ("unavailable", S::SERVICE_UNAVAILABLE, "Service unavailable"),
            Self::Timeout => ("timeout", S::SERVICE_UNAVAILABLE, "Request timed out"),
            Self::Internal => ("internal", S::INTERNAL_SERVER_ERROR, "Internal error"),
        }
    }
}

/// One invalid field (or header) of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// JSON field name as in the contract (`body` for the body as a whole, the header name
    /// for headers).
    pub field: String,
    /// Why it was refused, phrased so a client can fix it.
    pub reason: String,
}

impl FieldError {
    /// An error for `field`.
    #[must_use]
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { field: field.into(), reason: reason.into() }
    }
}

/// An RFC 9457 problem document. Extension members are typed and only present for the
/// problem types that define them.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "type": "https://holdfast.dev/problems/insufficient-capacity",
    "title": "Insufficient capacity", "status": 409,
    "detail": "only 1 of the 2 requested units are available on 2026-03-01",
    "instance": "/v1/reservations", "slot": "2026-03-01", "requested": 2, "available": 1
}))]
pub struct Problem {
    /// `https://holdfast.dev/problems/<code>`.
    #[serde(rename = "type")]
    pub problem_type: String,
    /// Fixed summary of the problem type.
    pub title: String,
    /// HTTP status.
    pub status: u16,
    /// What went wrong with this request.
    pub detail: String,
    /// The request path.
    pub instance: String,
    /// `invalid-input`: every invalid field.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// Rejections: the first slot that is short or over-used (`YYYY-MM-DD`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slot: Option<String>,
    /// `insufficient-capacity`: units asked for; `capacity-below-usage`: capacity asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested: Option<u32>,
    /// `insufficient-capacity`: units still free on `slot`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub available: Option<u32>,
    /// `capacity-below-usage`: units held or confirmed on `slot`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_use: Option<u32>,
    /// The resource concerned, where known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<String>,
    /// The reservation concerned, where known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reservation_id: Option<String>,
    /// `hold-expired`: when the hold expired (RFC 3339, UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expired_at: Option<String>,
    /// Seconds to wait before retrying (also sent as `Retry-After`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u32>,
    /// `unauthorized`, `forbidden`: the `WWW-Authenticate` challenge (RFC 6750), sent as a
    /// header only.
    #[serde(skip)]
    #[schema(ignore)]
    pub challenge: Option<String>,
    /// `rate-limited` by a client's rate: the `RateLimit` header (IETF draft), header only.
    #[serde(skip)]
    #[schema(ignore)]
    pub rate_limit: Option<String>,
}

impl Problem {
    /// A problem of `kind` about the request at `instance`.
    #[must_use]
    pub fn new(kind: ProblemType, detail: impl Into<String>, instance: &str) -> Self {
        Self {
            problem_type: kind.uri(),
            title: kind.title().to_owned(),
            status: kind.status().as_u16(),
            detail: detail.into(),
            instance: instance.to_owned(),
            errors: Vec::new(),
            slot: None,
            requested: None,
            available: None,
            in_use: None,
            resource_id: None,
            reservation_id: None,
            expired_at: None,
            retry_after: None,
            challenge: None,
            rate_limit: None,
        }
    }

    /// The answer to a request the token check refused: 401 or 403 with a challenge, 429 with
    /// `RateLimit`, or 503 when the keys cannot be read (headers and waits as
    /// [`AuthError`] says).
    #[must_use]
    pub fn from_auth(error: &AuthError, instance: &str) -> Self {
        let kind = match error {
            AuthError::Missing | AuthError::Invalid(_) => ProblemType::Unauthorized,
            AuthError::Forbidden { .. } => ProblemType::Forbidden,
            AuthError::RateLimited { .. } => ProblemType::RateLimited,
            AuthError::KeysUnavailable => ProblemType::Unavailable,
        };
        Self {
            challenge: error.challenge(),
            rate_limit: error.rate_limit(),
            retry_after: error.retry_after(),
            ..Self::new(kind, error.to_string(), instance)
        }
    }

    /// `invalid-input` listing `errors`.
    #[must_use]
    pub fn invalid_input(errors: Vec<FieldError>, instance: &str) -> Self {
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        let detail = format!("invalid: {}", fields.join(", "));
        Self { errors, ..Self::new(ProblemType::InvalidInput, detail, instance) }
    }

    /// `internal`: logs `cause` at ERROR (an operator must look) and shows the client nothing
    /// of it.
    #[must_use]
    pub fn internal(cause: &dyn std::fmt::Display, instance: &str) -> Self {
        tracing::error!(%cause, instance, "request failed on a bug");
        Self::new(ProblemType::Internal, "an internal error occurred; it has been logged", instance)
    }

    /// Adds a `Retry-After` of `seconds`.
    #[must_use]
    pub fn retry_after(mut self, seconds: u32) -> Self {
        self.retry_after = Some(seconds);
        self
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        // Serializing strings and integers cannot fail; the fallback only keeps this total.
        let body = serde_json::to_vec(&self).unwrap_or_else(|_| {
            format!(r#"{{"type":"{TYPE_BASE}internal","status":{}}}"#, status.as_u16()).into_bytes()
        });
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if let Some(challenge) = self.challenge.as_deref().and_then(|c| HeaderValue::from_str(c).ok()) {
            headers.insert(header::WWW_AUTHENTICATE, challenge);
        }
        if let Some(limit) = self.rate_limit.as_deref().and_then(|c| HeaderValue::from_str(c).ok()) {
            headers.insert("ratelimit", limit);
        }
        if status == StatusCode::REQUEST_TIMEOUT {
            // What is left of the request cannot be told from the next one (RFC 9110, 408).
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_only_internal_is_a_server_error() {
        let mut codes: Vec<&str> = ProblemType::ALL.iter().map(|t| t.code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), ProblemType::ALL.len());
        for kind in ProblemType::ALL {
            let server_error = kind.status().is_server_error();
            let allowed =
                matches!(kind, ProblemType::Internal | ProblemType::Unavailable | ProblemType::Timeout);
            assert!(!server_error || allowed, "{kind:?}");
        }
    }

    #[test]
    fn renders_problem_json_with_retry_after() {
        let response =
            Problem::new(ProblemType::RateLimited, "slow down", "/v1/x").retry_after(1).into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    }
}
