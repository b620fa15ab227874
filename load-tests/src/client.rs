//! Sending one request to the command API and classifying what came back.
//!
//! One shared [`reqwest::Client`] (HTTP/1.1, keep-alive, a pool as large as the in-flight
//! limit) serves the whole run. A response body is parsed only where the report needs
//! something from it: the reservation of an accepted hold, the `type` of a problem.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, HeaderValue};
use reqwest::{Client, StatusCode};
use serde::Deserialize;
use tokio::time::Instant;

use crate::workload::{Planned, Verdict};

/// Name of the idempotency header.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// Problem type recorded for a non-2xx answer without a problem+json `type`.
pub const NO_PROBLEM_TYPE: &str = "(no problem type)";

/// An empty JSON object, the body of confirm and cancel.
const EMPTY_OBJECT: &[u8] = b"{}";

/// The shared client: HTTP/1.1 with keep-alive, up to `pool` idle connections, `timeout` per
/// request (connect included).
///
/// # Errors
/// When the TLS backend cannot be initialised.
pub fn build(pool: usize, timeout: Duration) -> reqwest::Result<Client> {
    Client::builder()
        .pool_max_idle_per_host(pool)
        .pool_idle_timeout(Duration::from_secs(90))
        .tcp_nodelay(true)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .timeout(timeout)
        .no_proxy()
        .build()
}

/// What a request got back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// An HTTP response.
    Response {
        /// Its status code.
        status: u16,
        /// `type` of a non-2xx answer ([`NO_PROBLEM_TYPE`] when it has none).
        problem: Option<Box<str>>,
        /// An accepted hold's reservation id and `expires_at`.
        reservation: Option<(Arc<str>, Option<Box<str>>)>,
        /// Where a 202 answer's command can be polled.
        location: Option<Box<str>>,
    },
    /// No response: refused or reset connection, timeout, broken body. The kind is a fixed
    /// label (`timeout`, `connect`, `body`, `request`, `other`).
    Transport(&'static str),
}

impl Answer {
    /// The HTTP status, if there was a response.
    #[must_use]
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Response { status, .. } => Some(*status),
            Self::Transport(_) => None,
        }
    }

    /// What a confirm or cancel with this answer did to its reservation.
    #[must_use]
    pub fn verdict(&self) -> Verdict {
        let Self::Response { status, problem, .. } = self else { return Verdict::Unknown };
        match (*status, problem.as_deref().map(problem_code)) {
            (200, _) => Verdict::Applied,
            (409, Some("hold-expired")) => Verdict::Expired,
            (409, Some("already-cancelled")) => Verdict::AlreadyCancelled,
            (429, _) => Verdict::NotAdmitted,
            _ => Verdict::Unknown,
        }
    }
}

/// The last path segment of a problem `type` URI (`insufficient-capacity`).
#[must_use]
pub fn problem_code(uri: &str) -> &str {
    uri.rsplit('/').next().unwrap_or(uri)
}

/// The command API under test.
#[derive(Debug, Clone)]
pub struct Target {
    client: Client,
    /// Base URL without a trailing slash.
    base: Arc<str>,
}

impl Target {
    /// `base` (e.g. `http://127.0.0.1:8080`) reached through `client`.
    #[must_use]
    pub fn new(client: Client, base: &str) -> Self {
        Self { client, base: base.trim_end_matches('/').into() }
    }

    /// The base URL.
    #[must_use]
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends `planned` with idempotency key `key` (`body` is the hold body; confirm and
    /// cancel send `{}`).
    pub async fn send(&self, planned: &Planned, key: String, body: Vec<u8>) -> Answer {
        let (url, body, hold) = match planned {
            Planned::Hold(_) => (format!("{}/v1/reservations", self.base), body, true),
            Planned::Confirm(_, id) => {
                (format!("{}/v1/reservations/{id}/confirm", self.base), EMPTY_OBJECT.to_vec(), false)
            }
            Planned::Cancel(_, id) => {
                (format!("{}/v1/reservations/{id}/cancel", self.base), EMPTY_OBJECT.to_vec(), false)
            }
        };
        self.post(url, key, body, hold).await
    }

    /// `POST /v1/resources` with `body`.
    pub async fn define(&self, key: String, body: Vec<u8>) -> Answer {
        self.post(format!("{}/v1/resources", self.base), key, body, false).await
    }

    /// POSTs `body` as JSON; `hold` says whether a 2xx answer carries a reservation.
    async fn post(&self, url: String, key: String, body: Vec<u8>, hold: bool) -> Answer {
        let sent = self
            .client
            .post(url)
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header(IDEMPOTENCY_KEY, key)
            .body(body)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(error) => return Answer::Transport(transport_kind(&error)),
        };
        let status = response.status();
        let bytes = match response.bytes().await {
            Ok(bytes) => bytes,
            Err(error) => return Answer::Transport(transport_kind(&error)),
        };
        classify(status, &bytes, hold)
    }
}

/// Fields of answers the report needs; everything else is ignored.
#[derive(Debug, Default, Deserialize)]
struct Fields<'a> {
    #[serde(borrow, default)]
    reservation_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    expires_at: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "type")]
    problem_type: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    location: Option<Cow<'a, str>>,
}

/// The [`Answer`] for a response with `status` and `body`.
#[must_use]
pub fn classify(status: StatusCode, body: &[u8], hold: bool) -> Answer {
    let parse = || serde_json::from_slice::<Fields<'_>>(body).unwrap_or_default();
    let code = status.as_u16();
    let mut answer = Answer::Response { status: code, problem: None, reservation: None, location: None };
    let Answer::Response { problem, reservation, location, .. } = &mut answer else { return answer };
    if status == StatusCode::ACCEPTED {
        *location = parse().location.map(|l| l.into());
    } else if status.is_success() {
        if hold {
            let fields = parse();
            *reservation = fields.reservation_id.map(|id| (id.into(), fields.expires_at.map(|e| e.into())));
        }
    } else {
        *problem = Some(parse().problem_type.map_or_else(|| NO_PROBLEM_TYPE.into(), |t| t.into()));
    }
    answer
}

/// A fixed label for a request that got no response.
fn transport_kind(error: &reqwest::Error) -> &'static str {
    if error.is_timeout() {
        "timeout"
    } else if error.is_connect() {
        "connect"
    } else if error.is_body() || error.is_decode() {
        "body"
    } else if error.is_request() {
        "request"
    } else {
        "other"
    }
}

/// When a request finished and how long it took from its *intended* start.
#[must_use]
pub fn elapsed_since(intended: Instant) -> (Instant, Duration) {
    let now = Instant::now();
    (now, now.saturating_duration_since(intended))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_holds_carry_their_reservation() {
        let body = br#"{"reservation_id":"r1_ab_x","status":"held","expires_at":"2030-01-01T00:00:00Z","position":"1.2"}"#;
        let answer = classify(StatusCode::CREATED, body, true);
        assert_eq!(
            answer,
            Answer::Response {
                status: 201,
                problem: None,
                reservation: Some(("r1_ab_x".into(), Some("2030-01-01T00:00:00Z".into()))),
                location: None
            }
        );
        assert_eq!(answer.verdict(), Verdict::Unknown, "a 201 is not an answer to a confirm");
        let confirmed = classify(StatusCode::OK, br#"{"reservation_id":"r1_ab_x"}"#, false);
        assert!(matches!(confirmed, Answer::Response { reservation: None, .. }));
        assert_eq!(confirmed.verdict(), Verdict::Applied);
    }

    #[test]
    fn problems_are_recorded_by_type() {
        let body =
            br#"{"type":"https://holdfast.dev/problems/insufficient-capacity","status":409,"title":"x"}"#;
        let answer = classify(StatusCode::CONFLICT, body, true);
        let Answer::Response { problem: Some(problem), .. } = &answer else {
            panic!("a problem: {answer:?}")
        };
        assert_eq!(&**problem, "https://holdfast.dev/problems/insufficient-capacity");
        assert_eq!(problem_code(problem), "insufficient-capacity");
        let expired = classify(
            StatusCode::CONFLICT,
            br#"{"type":"https://holdfast.dev/problems/hold-expired"}"#,
            false,
        );
        assert_eq!(expired.verdict(), Verdict::Expired);
        let plain = classify(StatusCode::BAD_GATEWAY, b"<html>", false);
        assert!(
            matches!(&plain, Answer::Response { status: 502, problem: Some(p), .. } if &**p == NO_PROBLEM_TYPE)
        );
        assert_eq!(plain.verdict(), Verdict::Unknown);
        assert_eq!(classify(StatusCode::TOO_MANY_REQUESTS, b"{}", false).verdict(), Verdict::NotAdmitted);
    }

    #[test]
    fn pending_answers_keep_their_location() {
        let body = br#"{"command_id":"x","status":"pending","location":"/v1/commands/x"}"#;
        let answer = classify(StatusCode::ACCEPTED, body, true);
        assert!(
            matches!(answer, Answer::Response { status: 202, location: Some(l), .. } if &*l == "/v1/commands/x")
        );
    }
}
