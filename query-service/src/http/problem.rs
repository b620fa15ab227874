//! RFC 9457 problem details: the one shape every error of the read API takes. The `type` URIs
//! share the base and the codes of the command API where the meaning is the same
//! (`invalid-input`, `unknown-resource`, ...), so clients handle both APIs alike.
//!
//! This module owns the catalogue ([`ProblemType`]) and the rendering; handlers decide when a
//! problem applies.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use holdfast_platform::auth::AuthError;
use serde::Serialize;
use utoipa::ToSchema;

/// Media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Prefix of every problem `type` URI; the problem code follows it.
pub const TYPE_BASE: &str = "https://holdfast.dev/problems/";

/// Every kind of problem the read API can answer with; the code is stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemType {
    /// 422: a query parameter, header or path segment is invalid; `errors` lists all of them.
    InvalidInput,
    /// 401: no valid bearer token; get one (see `WWW-Authenticate`).
    Unauthorized,
    /// 403: the token does not grant the scope the route needs.
    Forbidden,
    /// 404: no such resource.
    UnknownResource,
    /// 404: no such reservation.
    UnknownReservation,
    /// 404: no such route.
    NotFound,
    /// 405: the route exists, the method does not.
    MethodNotAllowed,
    /// 431: the request headers exceed 16 KiB together.
    HeadersTooLarge,
    /// 429: the client made more requests than its rate allows; retry after `Retry-After`.
    RateLimited,
    /// 503: the read model did not reach `min_position` in time; retry after `Retry-After`.
    PositionNotReached,
    /// 503: the read model cannot be read right now; retry after `Retry-After`.
    Unavailable,
    /// 503: too many live-update streams on this instance; retry (another instance) later.
    TooManyStreams,
    /// 503: the request took too long; retry after `Retry-After`.
    Timeout,
    /// 500: a bug or a corrupt read model on our side; the cause is logged, never shown.
    Internal,
}

impl ProblemType {
    /// Every problem type, for documentation and tests.
    pub const ALL: [Self; 14] = [
        Self::InvalidInput,
        Self::Unauthorized,
        Self::Forbidden,
        Self::UnknownResource,
        Self::UnknownReservation,
        Self::NotFound,
        Self::MethodNotAllowed,
        Self::HeadersTooLarge,
        Self::RateLimited,
        Self::PositionNotReached,
        Self::Unavailable,
        Self::TooManyStreams,
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

    fn describe(self) -> (&'static str, StatusCode, &'static str) {
        use StatusCode as S;
        match self {
            Self::InvalidInput => ("invalid-input", S::UNPROCESSABLE_ENTITY, "Invalid input"),
            Self::Unauthorized => ("unauthorized", S::UNAUTHORIZED, "Unauthorized"),
            Self::Forbidden => ("forbidden", S::FORBIDDEN, "Forbidden"),
            Self::UnknownResource => ("unknown-resource", S::NOT_FOUND, "Unknown resource"),
            Self::UnknownReservation => ("unknown-reservation", S::NOT_FOUND, "Unknown reservation"),
            Self::NotFound => ("not-found", S::NOT_FOUND, "Not found"),
            Self::MethodNotAllowed => ("method-not-allowed", S::METHOD_NOT_ALLOWED, "Method not allowed"),
            Self::HeadersTooLarge => {
                ("headers-too-large", S::REQUEST_HEADER_FIELDS_TOO_LARGE, "Request headers too large")
            }
            Self::RateLimited => ("rate-limited", S::TOO_MANY_REQUESTS, "Too many requests"),
            Self::PositionNotReached => {
                ("position-not-reached", S::SERVICE_UNAVAILABLE, "Position not reached yet")
            }
            Self::Unavailable => ("unavailable", S::SERVICE_UNAVAILABLE, "Service unavailable"),
            Self::TooManyStreams => ("too-many-streams", S::SERVICE_UNAVAILABLE, "Too many streams"),
            Self::Timeout => ("timeout", S::SERVICE_UNAVAILABLE, "Request timed out"),
            Self::Internal => ("internal", S::INTERNAL_SERVER_ERROR, "Internal error"),
        }
    }
}

/// One invalid parameter of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// The query parameter, header or path segment.
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

/// An RFC 9457 problem document.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "type": "https://holdfast.dev/problems/invalid-input", "title": "Invalid input", "status": 422,
    "detail": "invalid: to", "instance": "/v1/resources/room-1/availability",
    "errors": [{"field": "to", "reason": "range 2026-01-01..2027-01-03 spans 367 days; at most 366 are allowed"}]
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
    /// `invalid-input`: every invalid parameter.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// `position-not-reached`: the position waited for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_position: Option<String>,
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
            problem_type: format!("{TYPE_BASE}{}", kind.code()),
            title: kind.title().to_owned(),
            status: kind.status().as_u16(),
            detail: detail.into(),
            instance: instance.to_owned(),
            errors: Vec::new(),
            min_position: None,
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

    /// `internal`: logs `cause` at ERROR (an operator must look) and shows the client nothing.
    #[must_use]
    pub fn internal(cause: &dyn std::fmt::Display, instance: &str) -> Self {
        tracing::error!(%cause, instance, "read failed on a bug or a corrupt read model");
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
        let body = serde_json::to_vec(&self).unwrap_or_else(|_| {
            format!(r#"{{"type":"{TYPE_BASE}internal","status":{}}}"#, status.as_u16()).into_bytes()
        });
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if let Some(challenge) = self.challenge.as_deref().and_then(|c| HeaderValue::from_str(c).ok()) {
            headers.insert(header::WWW_AUTHENTICATE, challenge);
        }
        if let Some(limit) = self.rate_limit.as_deref().and_then(|c| HeaderValue::from_str(c).ok()) {
            headers.insert("ratelimit", limit);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_server_errors_are_only_unavailability_or_bugs() {
        let mut codes: Vec<&str> = ProblemType::ALL.iter().map(|t| t.code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), ProblemType::ALL.len());
        for kind in ProblemType::ALL {
            let server_error = kind.status().is_server_error();
            let allowed = kind.status() == StatusCode::SERVICE_UNAVAILABLE || kind == ProblemType::Internal;
            assert!(!server_error || allowed, "{kind:?}");
        }
    }

    #[test]
    fn renders_problem_json_with_retry_after() {
        let response =
            Problem::new(ProblemType::PositionNotReached, "later", "/v1/x").retry_after(1).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    }
}
