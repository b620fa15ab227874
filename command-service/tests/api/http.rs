//! The HTTP command API in-process (`tower::ServiceExt::oneshot` on the real router), with a
//! dispatcher whose producer points at an unreachable broker: every invalid request must be
//! refused with problem+json before anything is sent. Decisions are tested end to end elsewhere.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode};
use holdfast_command_service::dispatch::{Dispatcher, Route};
use holdfast_command_service::envelope::{FORMAT_VERSION, Outcome, Position, ReservationView, Verdict};
use holdfast_command_service::http::body::BODY_TIME;
use holdfast_command_service::http::dto::PlaceHoldRequest;
use holdfast_command_service::http::intake::HORIZON_DAYS;
use holdfast_command_service::http::{AppState, idempotency, router};
use holdfast_command_service::metrics::Metrics;
use holdfast_domain::ReservationStatus;
use holdfast_platform::auth::{Scope, mint_local};
use holdfast_platform::kafka::producer_config;
use holdfast_platform::producer::Producer;
use holdfast_platform::testing;
use serde_json::{Value, json};
use time::macros::datetime;
use tower::ServiceExt;

/// Where a reservation id of the tests points.
const RESERVATION: &str = "r1_0192f0c1a2b37c3d8e4f5a6b7c8d9e0f_hotel:room-1";

/// The router under test with what the tests look into.
struct TestApp {
    router: Router,
    registry: prometheus::Registry,
    dispatcher: Arc<Dispatcher>,
}

/// A router whose Kafka is unreachable; `message.timeout.ms` bounds how long a send fails.
fn app_with(max_in_flight: usize, timeout: Duration, message_timeout_ms: &str) -> TestApp {
    app_with_auth(max_in_flight, timeout, message_timeout_ms, testing::authenticator())
}

/// [`app_with`] checking tokens with `auth`.
fn app_with_auth(
    max_in_flight: usize,
    timeout: Duration,
    message_timeout_ms: &str,
    auth: holdfast_platform::auth::Authenticator,
) -> TestApp {
    let registry = prometheus::Registry::new();
    let metrics = Metrics::register(&registry).expect("metrics register once");
    let mut kafka = holdfast_platform::testing::kafka();
    kafka.brokers = "127.0.0.1:1".to_owned();
    kafka.properties = vec![("message.timeout.ms".to_owned(), message_timeout_ms.to_owned())];
    let producer = Producer::new(&producer_config(&kafka, "http-test")).expect("producer");
    let route = Route { commands_topic: "commands".to_owned(), partitions: 4, reply_partition: 0 };
    let owners = Arc::new(holdfast_command_service::owners::Owners::default());
    let dispatcher =
        Arc::new(Dispatcher::new(producer, route, owners, Duration::from_secs(5), 100, metrics.clone()));
    let state = AppState::new(Arc::clone(&dispatcher), metrics, auth)
        .with_max_in_flight(max_in_flight)
        .with_request_timeout(timeout);
    TestApp { router: router(state), registry, dispatcher }
}

/// A router that refuses every valid command with 429: anything else proves validation.
fn app() -> Router {
    app_with(0, Duration::from_secs(10), "300000").router
}

/// The answer to one request.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

/// Sends a request; with an administrator's token unless `headers` bring an `authorization`
/// of their own (`""` for none).
async fn call(app: &Router, method: &str, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Answer {
    let mut request = Request::builder().method(method).uri(path);
    let admin = format!("Bearer {}", holdfast_platform::testing::admin_token());
    if !headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("authorization")) {
        request = request.header("authorization", &admin);
    }
    let no_token =
        |(name, value): &&(&str, &str)| name.eq_ignore_ascii_case("authorization") && value.is_empty();
    for (name, value) in headers.iter().filter(|header| !no_token(header)) {
        request = request.header(*name, *value);
    }
    let response =
        app.clone().oneshot(request.body(Body::from(body)).expect("request")).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = to_bytes(response.into_body(), usize::MAX).await.expect("body");
    Answer { status, headers, body: serde_json::from_slice(&bytes).unwrap_or(Value::Null) }
}

async fn json_call(app: &Router, method: &str, path: &str, body: &Value) -> Answer {
    call(app, method, path, &[("content-type", "application/json")], body.to_string().into_bytes()).await
}

/// Asserts a problem+json answer of `status` and `code`; returns the invalid fields listed.
fn assert_problem(answer: &Answer, status: u16, code: &str, path: &str, case: &str) -> Vec<String> {
    assert_eq!(answer.status.as_u16(), status, "{case}: {}", answer.body);
    assert_eq!(answer.headers["content-type"], "application/problem+json", "{case}");
    assert_eq!(answer.body["type"], format!("https://holdfast.dev/problems/{code}"), "{case}");
    assert_eq!(answer.body["status"], status, "{case}");
    assert!(answer.body["title"].is_string() && answer.body["detail"].is_string(), "{case}");
    assert_eq!(answer.body["instance"], path.split('?').next().unwrap_or(path), "{case}");
    let errors = answer.body["errors"].as_array().cloned().unwrap_or_default();
    errors.iter().map(|e| e["field"].as_str().expect("field").to_owned()).collect()
}

/// `YYYY-MM-DD` of the day `n` days after a month from now: inside the booking window.
fn day(n: i64) -> String {
    testing::days_from_today(30 + n)
}

/// One endpoint with a valid body.
struct Endpoint {
    method: &'static str,
    path: String,
    valid: Value,
}

fn endpoints() -> Vec<Endpoint> {
    let hold = json!({"resource_id": "hotel:room-1", "from": day(0), "to": day(2),
                      "quantity": 1, "customer_id": "c-1", "hold_seconds": 60});
    vec![
        Endpoint {
            method: "POST",
            path: "/v1/resources".into(),
            valid: json!({"resource_id": "hotel:room-1", "name": "Room 1", "capacity": 2}),
        },
        Endpoint {
            method: "PUT",
            path: "/v1/resources/hotel:room-1/capacity".into(),
            valid: json!({"from": day(0), "to": day(7), "capacity": 3}),
        },
        Endpoint { method: "POST", path: "/v1/reservations".into(), valid: hold },
        Endpoint {
            method: "POST",
            path: format!("/v1/reservations/{RESERVATION}/confirm"),
            valid: json!({"payment_ref": "pay-1"}),
        },
        Endpoint {
            method: "POST",
            path: format!("/v1/reservations/{RESERVATION}/cancel"),
            valid: json!({"reason": "plans changed"}),
        },
    ]
}

/// `valid` with the fields of `patch` replaced (`null` means "absent" to the API).
fn patched(valid: &Value, patch: &Value) -> Value {
    let mut body = valid.clone();
    if let (Some(body), Some(patch)) = (body.as_object_mut(), patch.as_object()) {
        for (key, value) in patch {
            body.insert(key.clone(), value.clone());
        }
    }
    body
}

#[tokio::test]
async fn valid_requests_pass_validation_and_are_refused_only_by_the_in_flight_limit() {
    let app = app();
    for endpoint in endpoints() {
        let answer = json_call(&app, endpoint.method, &endpoint.path, &endpoint.valid).await;
        assert_problem(&answer, 429, "rate-limited", &endpoint.path, &endpoint.path);
        assert_eq!(answer.headers["retry-after"], "1");
    }
    for path in
        [format!("/v1/reservations/{RESERVATION}/confirm"), format!("/v1/reservations/{RESERVATION}/cancel")]
    {
        let answer = call(&app, "POST", &path, &[], Vec::new()).await;
        assert_problem(&answer, 429, "rate-limited", &path, "an empty body means {}");
    }
}

#[tokio::test]
async fn a_command_kafka_does_not_take_is_503_with_retry_after() {
    let app = app_with(10, Duration::from_secs(10), "200").router;
    let endpoint = &endpoints()[0];
    let answer = json_call(&app, endpoint.method, &endpoint.path, &endpoint.valid).await;
    assert_problem(&answer, 503, "unavailable", &endpoint.path, "unreachable broker");
    assert_eq!(answer.headers["retry-after"], "1");
}

#[tokio::test]
async fn a_request_over_the_timeout_is_503_timeout() {
    let app = app_with(10, Duration::from_millis(100), "300000").router;
    let endpoint = &endpoints()[2];
    let answer = json_call(&app, endpoint.method, &endpoint.path, &endpoint.valid).await;
    assert_problem(&answer, 503, "timeout", &endpoint.path, "request timeout");
    assert_eq!(answer.headers["retry-after"], "1");
}

/// A refused request: case name, headers, body, then the expected status, problem code and
/// invalid fields.
type Refused<'a> = (&'a str, Vec<(&'a str, &'a str)>, Vec<u8>, u16, &'a str, Vec<&'a str>);

#[tokio::test]
async fn every_endpoint_refuses_bad_bodies_media_types_sizes_and_keys() {
    let app = app();
    let json = ("content-type", "application/json");
    for endpoint in endpoints() {
        let valid = endpoint.valid.to_string().into_bytes();
        let long_key = "k".repeat(256);
        let cases: Vec<Refused<'_>> = vec![
            ("syntax error", vec![json], b"{\"a\":".to_vec(), 400, "malformed-json", vec![]),
            ("trailing garbage", vec![json], b"{} x".to_vec(), 400, "malformed-json", vec![]),
            ("array body", vec![json], b"[]".to_vec(), 422, "invalid-input", vec!["body"]),
            ("string body", vec![json], b"\"x\"".to_vec(), 422, "invalid-input", vec!["body"]),
            (
                "text/plain",
                vec![("content-type", "text/plain")],
                valid.clone(),
                415,
                "unsupported-media-type",
                vec![],
            ),
            ("no content type", vec![], valid.clone(), 415, "unsupported-media-type", vec![]),
            (
                "latin1",
                vec![("content-type", "application/json; charset=latin1")],
                valid.clone(),
                415,
                "unsupported-media-type",
                vec![],
            ),
            ("65 KiB", vec![json], vec![b' '; 65 * 1024 + 1], 413, "body-too-large", vec![]),
            (
                "256-char key",
                vec![json, ("idempotency-key", &long_key)],
                valid.clone(),
                422,
                "invalid-input",
                vec!["Idempotency-Key"],
            ),
            (
                "empty key",
                vec![json, ("idempotency-key", "")],
                valid.clone(),
                422,
                "invalid-input",
                vec!["Idempotency-Key"],
            ),
            (
                "key with a space",
                vec![json, ("idempotency-key", "a b")],
                valid.clone(),
                422,
                "invalid-input",
                vec!["Idempotency-Key"],
            ),
            (
                "bad correlation id",
                vec![json, ("x-correlation-id", "x")],
                valid.clone(),
                422,
                "invalid-input",
                vec!["X-Correlation-Id"],
            ),
        ];
        for (case, headers, body, status, code, fields) in cases {
            let answer = call(&app, endpoint.method, &endpoint.path, &headers, body).await;
            let case = format!("{} {}: {case}", endpoint.method, endpoint.path);
            assert_eq!(assert_problem(&answer, status, code, &endpoint.path, &case), fields, "{case}");
        }
        let key = "k".repeat(255);
        let answer =
            call(&app, endpoint.method, &endpoint.path, &[json, ("idempotency-key", &key)], valid).await;
        assert_problem(&answer, 429, "rate-limited", &endpoint.path, "a 255-char key is valid");
    }
}

#[tokio::test]
async fn every_invalid_field_is_listed() {
    let app = app();
    let [resources, capacity, hold, confirm, cancel]: [Endpoint; 5] =
        endpoints().try_into().unwrap_or_else(|_| panic!("five endpoints"));
    let long = |n: usize| "x".repeat(n);
    let cases: Vec<(&Endpoint, Value, Vec<&str>)> = vec![
        (
            &resources,
            json!({"resource_id": null, "name": null, "capacity": null}),
            vec!["resource_id", "name", "capacity"],
        ),
        (
            &resources,
            json!({"resource_id": 1, "name": [], "capacity": "2"}),
            vec!["resource_id", "name", "capacity"],
        ),
        (
            &resources,
            json!({"resource_id": "room_1", "name": " Room", "capacity": -1}),
            vec!["resource_id", "name", "capacity"],
        ),
        (&resources, json!({"resource_id": "", "capacity": 1_000_001}), vec!["resource_id", "capacity"]),
        (&resources, json!({"resource_id": long(129), "capacity": 1.5}), vec!["resource_id", "capacity"]),
        (&resources, json!({"name": long(201), "capacity": 1e10}), vec!["name", "capacity"]),
        (&capacity, json!({"from": day(7), "to": day(0)}), vec!["to"]),
        (&capacity, json!({"from": day(0), "to": day(0)}), vec!["to"]),
        (&capacity, json!({"from": day(0), "to": day(367)}), vec!["to"]),
        (
            &capacity,
            json!({"from": "2026-02-30", "to": "2026-3-1", "capacity": 2_000_000}),
            vec!["from", "to", "capacity"],
        ),
        (&capacity, json!({"from": null, "to": 5, "capacity": true}), vec!["from", "to", "capacity"]),
        (&hold, json!({"quantity": 0}), vec!["quantity"]),
        (&hold, json!({"quantity": -3}), vec!["quantity"]),
        (&hold, json!({"quantity": 1_000_001}), vec!["quantity"]),
        (&hold, json!({"quantity": 99_999_999_999_u64}), vec!["quantity"]),
        (&hold, json!({"quantity": "1"}), vec!["quantity"]),
        (&hold, json!({"from": day(2), "to": day(0)}), vec!["to"]),
        (&hold, json!({"from": day(0), "to": day(32)}), vec!["to"]),
        (&hold, json!({"from": "2026-02-30"}), vec!["from"]),
        (&hold, json!({"customer_id": "", "resource_id": "a b"}), vec!["resource_id", "customer_id"]),
        (&hold, json!({"customer_id": "bob\n"}), vec!["customer_id"]),
        // Control (Cc) and format (Cf) characters: bell, zero-width space, right-to-left
        // override, byte order mark.
        (&hold, json!({"customer_id": "bo\u{7}b"}), vec!["customer_id"]),
        (&hold, json!({"customer_id": "bo\u{200B}b"}), vec!["customer_id"]),
        (&hold, json!({"customer_id": "\u{202E}bob"}), vec!["customer_id"]),
        (&hold, json!({"customer_id": "bob\u{FEFF}"}), vec!["customer_id"]),
        // The booking window: from yesterday (UTC) to HORIZON_DAYS after today.
        (&hold, json!({"from": day(-32), "to": day(-29)}), vec!["from"]),
        (&hold, json!({"from": day(1060), "to": day(HORIZON_DAYS - 29)}), vec!["to"]),
        (&capacity, json!({"from": day(-400), "to": day(-100)}), vec!["from"]),
        (&capacity, json!({"from": day(1000), "to": day(HORIZON_DAYS - 29)}), vec!["to"]),
        (&hold, json!({"customer_id": long(129)}), vec!["customer_id"]),
        (&hold, json!({"hold_seconds": 0}), vec!["hold_seconds"]),
        (&hold, json!({"hold_seconds": 3601}), vec!["hold_seconds"]),
        (&hold, json!({"hold_seconds": "60"}), vec!["hold_seconds"]),
        (
            &hold,
            json!({"resource_id": null, "from": null, "to": null, "quantity": null, "customer_id": null}),
            vec!["resource_id", "from", "to", "quantity", "customer_id"],
        ),
        (&confirm, json!({"payment_ref": long(257)}), vec!["payment_ref"]),
        (&confirm, json!({"payment_ref": ""}), vec!["payment_ref"]),
        (&confirm, json!({"payment_ref": 12}), vec!["payment_ref"]),
        (&cancel, json!({"reason": long(257)}), vec!["reason"]),
        (&cancel, json!({"reason": {"why": 1}}), vec!["reason"]),
    ];
    for (endpoint, patch, fields) in cases {
        let body = patched(&endpoint.valid, &patch);
        let answer = json_call(&app, endpoint.method, &endpoint.path, &body).await;
        let case = format!("{} {} {patch}", endpoint.method, endpoint.path);
        assert_eq!(assert_problem(&answer, 422, "invalid-input", &endpoint.path, &case), fields, "{case}");
        assert!(!answer.status.is_server_error(), "{case}");
    }
    // Header and body errors come together.
    let headers = [("content-type", "application/json"), ("idempotency-key", "")];
    let answer = call(&app, "POST", "/v1/resources", &headers, b"{}".to_vec()).await;
    let fields = assert_problem(&answer, 422, "invalid-input", "/v1/resources", "headers and body");
    assert_eq!(fields, ["Idempotency-Key", "resource_id", "name", "capacity"]);
}

#[tokio::test]
async fn ids_in_paths_that_cannot_exist_are_404() {
    let app = app();
    let bad_reservation = "r1_nothex_hotel:room-1";
    for (method, path, code) in [
        ("PUT", "/v1/resources/room_1/capacity".to_owned(), "unknown-resource"),
        ("PUT", "/v1/resources/%FF/capacity".to_owned(), "unknown-resource"),
        ("POST", format!("/v1/reservations/{bad_reservation}/confirm"), "unknown-reservation"),
        ("POST", format!("/v1/reservations/{bad_reservation}/cancel"), "unknown-reservation"),
        ("GET", "/v1/commands/not-a-uuid".to_owned(), "unknown-command"),
        ("GET", "/v1/commands/0192f0c1-a2b3-7c3d-8e4f-5a6b7c8d9e0f".to_owned(), "unknown-command"),
    ] {
        let body = json!({"from": day(0), "to": day(1), "capacity": 1});
        let answer = json_call(&app, method, &path, &body).await;
        assert_problem(&answer, 404, code, &path, &path);
    }
}

#[tokio::test]
async fn unknown_routes_and_methods_are_problems() {
    let app = app();
    let answer = call(&app, "GET", "/v2/nothing", &[], Vec::new()).await;
    assert_problem(&answer, 404, "not-found", "/v2/nothing", "unknown route");
    for (method, path, allow) in [
        ("GET", "/v1/resources".to_owned(), "POST"),
        ("DELETE", format!("/v1/reservations/{RESERVATION}/cancel"), "POST"),
        ("POST", "/v1/resources/r/capacity".to_owned(), "PUT"),
        ("POST", "/openapi.json".to_owned(), "GET,HEAD"),
    ] {
        let answer = call(&app, method, &path, &[], Vec::new()).await;
        assert_problem(&answer, 405, "method-not-allowed", &path, &path);
        assert_eq!(answer.headers["allow"], allow, "{path}");
    }
}

#[tokio::test]
async fn request_ids_are_generated_or_echoed() {
    let app = app();
    let answer = call(&app, "GET", "/v2/nothing", &[], Vec::new()).await;
    let generated = answer.headers["x-request-id"].to_str().expect("ascii");
    assert!(uuid::Uuid::try_parse(generated).is_ok(), "{generated}");
    let answer = call(&app, "GET", "/v2/nothing", &[("x-request-id", "req-7")], Vec::new()).await;
    assert_eq!(answer.headers["x-request-id"], "req-7");
}

#[tokio::test]
async fn latency_is_labelled_by_route_template() {
    let TestApp { router: app, registry, .. } = app_with(0, Duration::from_secs(10), "300000");
    let path = format!("/v1/reservations/{RESERVATION}/confirm");
    call(&app, "POST", &path, &[], Vec::new()).await;
    call(&app, "GET", "/v2/nothing", &[], Vec::new()).await;
    let families = registry.gather();
    let requests = families.iter().find(|f| f.name() == "http_request_duration_seconds").expect("family");
    let labels: Vec<Vec<(String, String)>> = requests
        .get_metric()
        .iter()
        .map(|m| m.get_label().iter().map(|l| (l.name().to_owned(), l.value().to_owned())).collect())
        .collect();
    let routes: Vec<&str> = labels
        .iter()
        .flatten()
        .filter(|(name, _)| name == "route")
        .map(|(_, value)| value.as_str())
        .collect();
    assert!(routes.contains(&"/v1/reservations/{id}/confirm"), "{labels:?}");
    assert!(routes.contains(&"unmatched"), "{labels:?}");
    assert!(!routes.iter().any(|r| r.contains(RESERVATION)), "never the raw path: {labels:?}");
}

#[tokio::test]
async fn the_openapi_document_lists_every_route() {
    let app = app();
    let answer = call(&app, "GET", "/openapi.json", &[], Vec::new()).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(
        answer.body["openapi"].as_str().is_some_and(|v| v.starts_with("3.1")),
        "{}",
        answer.body["openapi"]
    );
    for (path, method) in [
        ("/v1/resources", "post"),
        ("/v1/resources/{id}/capacity", "put"),
        ("/v1/reservations", "post"),
        ("/v1/reservations/{id}/confirm", "post"),
        ("/v1/reservations/{id}/cancel", "post"),
        ("/v1/commands/{command_id}", "get"),
    ] {
        assert!(answer.body["paths"][path][method].is_object(), "{method} {path}");
    }
    for schema in ["Problem", "FieldError", "PlaceHoldRequest", "ReservationResponse", "PendingResponse"] {
        assert!(answer.body["components"]["schemas"][schema].is_object(), "{schema}");
    }
}

#[tokio::test]
async fn a_retry_is_answered_from_the_known_outcome_even_when_saturated() {
    let TestApp { router: app, dispatcher, .. } = app_with(0, Duration::from_secs(10), "300000");
    let endpoint = &endpoints()[2];
    let command_id =
        idempotency::command_id(testing::ADMIN, &Method::POST, "/v1/reservations", Some("retry-1"));
    let request: PlaceHoldRequest = serde_json::from_value(endpoint.valid.clone()).expect("body");
    let command = request.into_command(command_id).expect("valid");
    let reservation_id = command.reservation_id().expect("a hold names its reservation").clone();
    dispatcher.resolve(Outcome {
        v: FORMAT_VERSION,
        command_id,
        resource_id: command.resource_id().clone(),
        command: command.kind().to_owned(),
        verdict: Verdict::Accepted {
            events: 1,
            reservation: Some(ReservationView {
                reservation_id: reservation_id.clone(),
                status: ReservationStatus::Held { expires_at: datetime!(2026-03-01 12:15 UTC) },
            }),
        },
        position: Position { partition: 5, next_offset: 9 },
        decided_at: datetime!(2026-03-01 12:00 UTC),
        fingerprint: idempotency::fingerprint(&command).expect("fingerprint"),
        principal: Some(testing::ADMIN.to_owned()),
    });
    let expected = json!({"reservation_id": reservation_id.to_string(), "status": "held",
                          "expires_at": "2026-03-01T12:15:00Z", "position": "5.9"});

    let headers = [("content-type", "application/json"), ("idempotency-key", "retry-1")];
    let body = endpoint.valid.to_string().into_bytes();
    let answer = call(&app, "POST", "/v1/reservations", &headers, body).await;
    assert_eq!((answer.status.as_u16(), &answer.body), (201, &expected), "the retry gets the first answer");

    let other = patched(&endpoint.valid, &json!({"quantity": 2})).to_string().into_bytes();
    let answer = call(&app, "POST", "/v1/reservations", &headers, other).await;
    assert_problem(&answer, 422, "idempotency-key-reused", "/v1/reservations", "same key, other body");

    let path = format!("/v1/commands/{command_id}");
    let answer = call(&app, "GET", &path, &[], Vec::new()).await;
    assert_eq!((answer.status.as_u16(), &answer.body), (201, &expected), "polling renders the same answer");

    // A customer polling a command it did not issue learns nothing about it.
    let other = format!("Bearer {}", testing::token("c-2", &[Scope::ReservationsWrite]));
    let answer = call(&app, "GET", &path, &[("authorization", other.as_str())], Vec::new()).await;
    assert_problem(&answer, 404, "unknown-command", &path, "another caller's command");
}

#[tokio::test]
async fn every_command_route_needs_a_token_granting_its_scope() {
    let app = app();
    let bearer = |sub: &str, scopes: &[Scope]| format!("Bearer {}", testing::token(sub, scopes));
    let reader = bearer("c-1", &[Scope::ReservationsRead, Scope::AvailabilityRead]);
    let foreign = {
        let other = b"a-secret-the-services-do-not-know-at-all";
        let token = mint_local(other, "c-1", &Scope::ALL, Duration::from_secs(60)).expect("token");
        format!("Bearer {token}")
    };
    for endpoint in endpoints() {
        let body = endpoint.valid.to_string().into_bytes();
        let path = endpoint.path.as_str();
        let send = |authorization: String| {
            let (app, body) = (app.clone(), body.clone());
            async move {
                let headers =
                    [("content-type", "application/json"), ("authorization", authorization.as_str())];
                call(&app, endpoint.method, path, &headers, body).await
            }
        };
        let none = send(String::new()).await;
        assert_problem(&none, 401, "unauthorized", path, "no token");
        assert_eq!(none.headers["www-authenticate"], r#"Bearer realm="holdfast""#, "{path}");
        let invalid = send(foreign.clone()).await;
        assert_problem(&invalid, 401, "unauthorized", path, "signed with another secret");
        assert!(invalid.headers["www-authenticate"].to_str().expect("ascii").contains("invalid_token"));
        let scoped = send(reader.clone()).await;
        assert_problem(&scoped, 403, "forbidden", path, "no write scope");
        assert!(scoped.headers["www-authenticate"].to_str().expect("ascii").contains("insufficient_scope"));
    }
    // A customer may write reservations but not resources, and holds only for itself.
    let customer = bearer("c-1", &[Scope::ReservationsWrite]);
    let define = &endpoints()[0];
    let headers = [("content-type", "application/json"), ("authorization", customer.as_str())];
    let answer = call(&app, "POST", &define.path, &headers, define.valid.to_string().into_bytes()).await;
    assert_problem(&answer, 403, "forbidden", &define.path, "a customer defines a resource");
    let hold = &endpoints()[2];
    let answer = call(&app, "POST", &hold.path, &headers, hold.valid.to_string().into_bytes()).await;
    assert_problem(&answer, 429, "rate-limited", &hold.path, "its own hold passes the token check");
    let ada = bearer("ada", &[Scope::ReservationsWrite]);
    let headers = [("content-type", "application/json"), ("authorization", ada.as_str())];
    let answer = call(&app, "POST", &hold.path, &headers, hold.valid.to_string().into_bytes()).await;
    assert_problem(&answer, 403, "forbidden", &hold.path, "a hold in another customer's name");
    // Polling an outcome needs a token too; the OpenAPI document does not.
    let poll = format!("/v1/commands/{}", uuid::Uuid::nil());
    let answer = call(&app, "GET", &poll, &[("authorization", "")], Vec::new()).await;
    assert_problem(&answer, 401, "unauthorized", &poll, "poll without a token");
    let answer = call(&app, "GET", "/openapi.json", &[("authorization", "")], Vec::new()).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(answer.body["components"]["securitySchemes"]["bearer"].is_object());
}

#[tokio::test]
async fn a_header_flood_is_431_problem_json() {
    let app = app();
    let flood = "a".repeat(holdfast_platform::service::MAX_REQUEST_HEADER_BYTES);
    let answer = call(&app, "POST", "/v1/reservations", &[("x-flood", flood.as_str())], b"{}".to_vec()).await;
    assert_problem(&answer, 431, "headers-too-large", "/v1/reservations", "16 KiB of headers and more");
    let answer = call(&app, "GET", "/openapi.json", &[("x-small", "a")], Vec::new()).await;
    assert_eq!(answer.status, StatusCode::OK, "normal headers pass");
}

/// A client still sending a body far over the limit gets the 413, not a broken pipe: the
/// body is read to its end (up to `DRAIN_LIMIT`) before the answer (over a real socket, four
/// times).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_body_is_answered_413_while_it_is_still_being_sent() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bound");
    let addr = listener.local_addr().expect("address");
    let shutdown = holdfast_platform::Shutdown::new();
    let server = tokio::spawn(holdfast_platform::service::serve(listener, app(), shutdown.clone()));
    let token = testing::admin_token();
    // Larger than the socket buffers on both sides together (the server's receive buffer
    // grows to 6 MiB by default), so the client is still sending when the server answers.
    let body = vec![b' '; 7 * 1024 * 1024 + 512 * 1024];
    for attempt in 1..=4 {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_send_buffer_size(64 * 1024).expect("small send buffer");
        let mut stream = socket.connect(addr).await.expect("connected");
        let head = format!(
            "POST /v1/reservations HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await.expect("headers sent");
        for chunk in body.chunks(64 * 1024) {
            stream
                .write_all(chunk)
                .await
                .unwrap_or_else(|e| panic!("attempt {attempt}: the body is read: {e}"));
        }
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
            .await
            .expect("answered in time")
            .expect("read");
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 413"), "attempt {attempt}: {answer}");
        assert!(answer.contains("application/problem+json") && answer.contains("body-too-large"), "{answer}");
    }
    shutdown.cancel();
    server.await.expect("joined").expect("served");
}

#[tokio::test]
async fn a_body_trickled_slower_than_its_deadline_is_answered_408_and_the_connection_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bound");
    let addr = listener.local_addr().expect("address");
    let shutdown = holdfast_platform::Shutdown::new();
    let server = tokio::spawn(holdfast_platform::service::serve(listener, app(), shutdown.clone()));
    let token = testing::admin_token();
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connected");
    let head = format!(
        "POST /v1/resources HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: 64\r\n\r\n{{\"resource_id\""
    );
    stream.write_all(head.as_bytes()).await.expect("headers and a first byte sent");
    // The rest never comes. The answer must, within the body deadline and well before the
    // bound here (which only keeps a broken server from hanging the test).
    let started = std::time::Instant::now();
    let mut answer = Vec::new();
    tokio::time::timeout(BODY_TIME * 6, stream.read_to_end(&mut answer))
        .await
        .expect("answered and closed")
        .expect("read");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("application/problem+json") && answer.contains("request-timeout"), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("connection: close"), "{answer}");
    assert!(started.elapsed() >= BODY_TIME, "not before the deadline: {:?}", started.elapsed());
    shutdown.cancel();
    server.await.expect("joined").expect("served");
}

#[tokio::test]
async fn a_client_past_its_rate_is_429_with_retry_after_and_ratelimit_but_administrators_are_not() {
    let auth = testing::authenticator().with_rate_limit(1, 2);
    let app = app_with_auth(0, Duration::from_secs(10), "300000", auth).router;
    let hold = &endpoints()[2];
    let customer = format!("Bearer {}", testing::token("c-1", &[Scope::ReservationsWrite]));
    let headers = [("content-type", "application/json"), ("authorization", customer.as_str())];
    let mut answers = Vec::new();
    for _ in 0..3 {
        answers.push(call(&app, "POST", &hold.path, &headers, hold.valid.to_string().into_bytes()).await);
    }
    // The burst of two passes the token check (and meets the in-flight bound of 0); the third
    // is refused by the client's rate.
    assert!(answers[..2].iter().all(|a| !a.headers.contains_key("ratelimit")), "within the burst");
    let limited = &answers[2];
    assert_problem(limited, 429, "rate-limited", &hold.path, "third request of a burst of two");
    assert_eq!(limited.headers["retry-after"], "1");
    assert_eq!(limited.headers["ratelimit"], "limit=2, remaining=0, reset=1");
    let admin_headers = [("content-type", "application/json")];
    for _ in 0..5 {
        let answer =
            call(&app, "POST", &hold.path, &admin_headers, hold.valid.to_string().into_bytes()).await;
        assert!(!answer.headers.contains_key("ratelimit"), "administrators are not rate-limited");
    }
}
