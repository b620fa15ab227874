//! Sending one request to the command API (holds, confirms, cancels) or the query API
//! (availability and read-your-writes reads) and classifying what came back.
//!
//! One shared [`reqwest::Client`] (HTTP/1.1, keep-alive, a pool as large as the in-flight
//! limit per host) serves the whole run. A response body is parsed only where the report
//! needs something from it: the reservation of an accepted hold, the `type` of a problem.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, HeaderValue};
use reqwest::{Client, StatusCode, Url};

use crate::LoadError;
use serde::Deserialize;

use crate::workload::{Planned, ReadPlan, Verdict};

/// Name of the idempotency header.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// Query parameter carrying a read-your-writes position to the query API.
pub const MIN_POSITION: &str = "min_position";

/// Problem type recorded for a non-2xx answer without a problem+json `type`.
pub const NO_PROBLEM_TYPE: &str = "(no problem type)";

/// An empty JSON object, the body of confirm and cancel.
const EMPTY_OBJECT: &[u8] = b"{}";

/// The shared client: HTTP/1.1 with keep-alive, up to `pool` idle connections, `timeout` per
/// request (connect included), `token` as the bearer of every request.
///
/// # Errors
/// When the token is not a header value, or the TLS backend cannot be initialised.
pub fn build(pool: usize, timeout: Duration, token: &str) -> Result<Client, LoadError> {
    let mut bearer = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| LoadError::Settings("the token must be visible ASCII".into()))?;
    bearer.set_sensitive(true);
    let headers = reqwest::header::HeaderMap::from_iter([(reqwest::header::AUTHORIZATION, bearer)]);
    Client::builder()
        .default_headers(headers)
        .pool_max_idle_per_host(pool)
        .pool_idle_timeout(Duration::from_secs(90))
        .tcp_nodelay(true)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .timeout(timeout)
        .no_proxy()
        .build()
        .map_err(LoadError::Client)
}

/// An accepted hold's reservation, as the command API answered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    /// `reservation_id`.
    pub id: Arc<str>,
    /// `expires_at` (RFC 3339), if answered.
    pub expires_at: Option<Box<str>>,
    /// `position`, the read-your-writes token, if answered.
    pub position: Option<Arc<str>>,
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
        /// An accepted hold's reservation.
        reservation: Option<Reservation>,
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

    /// Whether the service answered with a decision: any 2xx but 202, or a 4xx other than
    /// 401, 403 and 429. A 202 (decided later), 401 or 403 (the token was refused: nothing
    /// was decided), 429 (not admitted), 5xx or no response is not one.
    #[must_use]
    pub fn decided(&self) -> bool {
        self.status().is_some_and(is_decision)
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

/// Whether an answer with `status` is a decision: any 2xx but 202, or a 4xx other than 401,
/// 403 and 429.
#[must_use]
pub fn is_decision(status: u16) -> bool {
    status < 500 && !matches!(status, 202 | 401 | 403 | 429)
}

/// The last path segment of a problem `type` URI (`insufficient-capacity`).
#[must_use]
pub fn problem_code(uri: &str) -> &str {
    uri.rsplit('/').next().unwrap_or(uri)
}

/// The services under test: the command API and, for reads, the query API.
#[derive(Debug, Clone)]
pub struct Target {
    client: Client,
    /// Base URLs of the command API's instances without a trailing slash; commands go to
    /// them in turn.
    bases: Arc<[Arc<str>]>,
    /// Whose turn it is.
    turn: Arc<AtomicUsize>,
    /// Base URL of the query API; reads fail as `request` errors without a valid one.
    query: Option<Arc<Url>>,
}

impl Target {
    /// The command API at `base` (e.g. `http://127.0.0.1:8080`) reached through `client`.
    #[must_use]
    pub fn new(client: Client, base: &str) -> Self {
        Self {
            client,
            bases: Arc::new([base.trim_end_matches('/').into()]),
            turn: Arc::default(),
            query: None,
        }
    }

    /// The same, with commands sent in turn to every instance of `bases` (none: unchanged).
    #[must_use]
    pub fn with_commands(self, bases: &[String]) -> Self {
        if bases.is_empty() {
            return self;
        }
        Self { bases: bases.iter().map(|b| b.trim_end_matches('/').into()).collect(), ..self }
    }

    /// The command API instance whose turn it is.
    fn next_base(&self) -> &str {
        let turn = self.turn.fetch_add(1, Ordering::Relaxed);
        &self.bases[turn % self.bases.len()]
    }

    /// The same, with reads sent to the query API at `base` (e.g. `http://127.0.0.1:8081`).
    /// A `base` that is not an http(s) URL with a host (`--query-target` refuses those)
    /// leaves reads without a query API.
    #[must_use]
    pub fn with_query(self, base: &str) -> Self {
        let url = Url::parse(base.trim()).ok().filter(|url| url.has_host() && !url.cannot_be_a_base());
        Self { query: url.map(Arc::new), ..self }
    }

    /// The base URL of the (first) command API instance.
    #[must_use]
    pub fn base(&self) -> &str {
        &self.bases[0]
    }

    /// The base URL of the query API, if reads have one.
    #[must_use]
    pub fn query_base(&self) -> Option<&Url> {
        self.query.as_deref()
    }

    /// Sends `planned`. Commands are POSTed with idempotency key `key` (`body` is the hold
    /// body; confirm and cancel send `{}`); reads are GETs that use neither.
    pub async fn send(&self, planned: &Planned, key: String, body: Vec<u8>) -> Answer {
        let base = self.next_base();
        let (url, body, hold) = match planned {
            Planned::Hold(_) => (format!("{base}/v1/reservations"), body, true),
            Planned::Confirm(_, id) => {
                (format!("{base}/v1/reservations/{id}/confirm"), EMPTY_OBJECT.to_vec(), false)
            }
            Planned::Cancel(_, id) => {
                (format!("{base}/v1/reservations/{id}/cancel"), EMPTY_OBJECT.to_vec(), false)
            }
            Planned::Read(read) => return self.get(self.availability_url(read)).await,
            Planned::Ryw(id, position) => {
                return self.get(self.reservation_url(id, position.as_deref())).await;
            }
        };
        self.post(url, key, body, hold).await
    }

    /// `GET <query>/v1/resources/{resource}/availability?from=&to=` of `read`; `None` without
    /// a query API.
    #[must_use]
    pub fn availability_url(&self, read: &ReadPlan) -> Option<Url> {
        self.query_url(
            ["v1", "resources", &read.resource, "availability"],
            &[("from", &*read.from), ("to", &*read.to)],
        )
    }

    /// `GET <query>/v1/reservations/{id}`, with `?min_position=` when a position is given;
    /// `None` without a query API.
    #[must_use]
    pub fn reservation_url(&self, id: &str, position: Option<&str>) -> Option<Url> {
        let params = position.map(|position| (MIN_POSITION, position));
        self.query_url(["v1", "reservations", id], params.as_slice())
    }

    /// The query API's base with `segments` appended (each percent-encoded as one segment)
    /// and `params` as the query string.
    fn query_url<'a>(
        &self,
        segments: impl IntoIterator<Item = &'a str>,
        params: &[(&str, &str)],
    ) -> Option<Url> {
        let mut url = Url::clone(self.query.as_deref()?);
        url.path_segments_mut().ok()?.pop_if_empty().extend(segments);
        if !params.is_empty() {
            url.query_pairs_mut().extend_pairs(params);
        }
        Some(url)
    }

    /// `POST /v1/resources` with `body`.
    pub async fn define(&self, key: String, body: Vec<u8>) -> Answer {
        self.post(format!("{}/v1/resources", self.next_base()), key, body, false).await
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
        answer(sent, hold).await
    }

    /// GETs `url` (a read of the query API); `None` is a request that cannot be built.
    async fn get(&self, url: Option<Url>) -> Answer {
        let Some(url) = url else { return Answer::Transport("request") };
        answer(self.client.get(url).send().await, false).await
    }
}

/// The [`Answer`] to a sent request, reading its body; `hold` as for [`classify`].
async fn answer(sent: reqwest::Result<reqwest::Response>, hold: bool) -> Answer {
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

/// Fields of answers the report needs; everything else is ignored.
#[derive(Debug, Default, Deserialize)]
struct Fields<'a> {
    #[serde(borrow, default)]
    reservation_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    expires_at: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    position: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "type")]
    problem_type: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    location: Option<Cow<'a, str>>,
}

/// The [`Answer`] for a response with `status` and `body`; `hold` says whether a 2xx answer
/// carries a new reservation (a hold's does; confirms, cancels and reads do not).
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
            *reservation = fields.reservation_id.map(|id| Reservation {
                id: id.into(),
                expires_at: fields.expires_at.map(|e| e.into()),
                position: fields.position.map(|p| p.into()),
            });
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
                reservation: Some(Reservation {
                    id: "r1_ab_x".into(),
                    expires_at: Some("2030-01-01T00:00:00Z".into()),
                    position: Some("1.2".into()),
                }),
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

    fn target(query: Option<&str>) -> Target {
        let client =
            build(4, Duration::from_secs(5), &holdfast_platform::testing::admin_token()).expect("a client");
        let target = Target::new(client, "http://127.0.0.1:8080/");
        match query {
            Some(query) => target.with_query(query),
            None => target,
        }
    }

    fn read() -> ReadPlan {
        ReadPlan { resource: "lt-1:a.b-r3".into(), from: "2030-12-30".into(), to: "2031-01-01".into() }
    }

    #[test]
    fn reads_go_to_the_query_api() {
        let target = target(Some("http://127.0.0.1:8081"));
        let url = |url: Option<Url>| url.map(String::from);
        assert_eq!(
            url(target.availability_url(&read())).as_deref(),
            Some("http://127.0.0.1:8081/v1/resources/lt-1:a.b-r3/availability?from=2030-12-30&to=2031-01-01")
        );
        assert_eq!(
            url(target.reservation_url("r1_ab_x", Some("3.17"))).as_deref(),
            Some("http://127.0.0.1:8081/v1/reservations/r1_ab_x?min_position=3.17")
        );
        assert_eq!(
            url(target.reservation_url("r1_ab_x", None)).as_deref(),
            Some("http://127.0.0.1:8081/v1/reservations/r1_ab_x"),
            "no position, no wait"
        );
        let behind_a_gateway = self::target(Some("https://gw.example/query/"));
        assert_eq!(
            url(behind_a_gateway.reservation_url("r1/x", Some("a b&c"))).as_deref(),
            Some("https://gw.example/query/v1/reservations/r1%2Fx?min_position=a+b%26c"),
            "segments and parameters are encoded"
        );
        assert_eq!(target.base(), "http://127.0.0.1:8080");
        assert!(self::target(None).availability_url(&read()).is_none());
        assert!(self::target(Some("127.0.0.1:8081")).availability_url(&read()).is_none(), "not a base URL");
    }

    #[test]
    fn read_answers_carry_no_new_reservation() {
        let body =
            br#"{"reservation_id":"r1_ab_x","resource_id":"x","status":"confirmed","position":"3.17"}"#;
        let found = classify(StatusCode::OK, body, false);
        assert_eq!(found, Answer::Response { status: 200, problem: None, reservation: None, location: None });
        assert!(found.decided());
        let not_reached = classify(
            StatusCode::SERVICE_UNAVAILABLE,
            br#"{"type":"https://holdfast.dev/problems/position-not-reached","min_position":"3.17"}"#,
            false,
        );
        assert!(
            matches!(&not_reached, Answer::Response { status: 503, problem: Some(p), .. }
                if problem_code(p) == "position-not-reached"),
            "{not_reached:?}"
        );
        assert!(!not_reached.decided(), "the read model lagged past the wait: no answer yet");
        let unknown = classify(
            StatusCode::NOT_FOUND,
            br#"{"type":"https://holdfast.dev/problems/unknown-reservation"}"#,
            false,
        );
        assert!(unknown.decided());
    }

    /// A fake query API that answers every GET with 200 and reports what it was asked.
    async fn fake_query_api() -> (String, tokio::sync::mpsc::UnboundedReceiver<(String, String, bool)>) {
        use axum::http::{HeaderMap, Method, Uri};
        let (seen, asked) = tokio::sync::mpsc::unbounded_channel();
        let answer = move |method: Method, uri: Uri, headers: HeaderMap| {
            let _ = seen.send((method.to_string(), uri.to_string(), headers.contains_key(IDEMPOTENCY_KEY)));
            async { (axum::http::StatusCode::OK, [("content-type", "application/json")], "{}") }
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(async move { axum::serve(listener, axum::Router::new().fallback(answer)).await });
        (format!("http://{addr}"), asked)
    }

    #[tokio::test]
    async fn reads_are_plain_gets_of_the_exact_path_and_query() {
        let (query, mut asked) = fake_query_api().await;
        let target = target(None).with_query(&query);
        let ryw = Planned::Ryw("r1_ab_x".into(), Some("3.17".into()));
        for planned in [Planned::Read(read()), ryw, Planned::Ryw("r1_cd_y".into(), None)] {
            let answer = target.send(&planned, "key-1".to_owned(), Vec::new()).await;
            assert_eq!(answer.status(), Some(200), "{planned:?}");
        }
        let mut seen = Vec::new();
        while let Ok(request) = asked.try_recv() {
            seen.push(request);
        }
        let get = |path: &str| ("GET".to_owned(), path.to_owned(), false);
        assert_eq!(
            seen,
            [
                get("/v1/resources/lt-1:a.b-r3/availability?from=2030-12-30&to=2031-01-01"),
                get("/v1/reservations/r1_ab_x?min_position=3.17"),
                get("/v1/reservations/r1_cd_y"),
            ]
        );
        let nowhere = self::target(None).send(&Planned::Read(read()), String::new(), Vec::new()).await;
        assert_eq!(nowhere, Answer::Transport("request"), "no query API, no read");
    }
}
