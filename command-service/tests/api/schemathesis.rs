//! The command API against its own OpenAPI document, by schemathesis: requests generated from
//! the served `/openapi.json` (schema examples, boundary values, random valid and invalid
//! data) are sent to a real service, and every answer is checked: no 5xx but the documented
//! 503s, only documented status codes, content types and bodies that match the document, 401
//! without a token, 405 for methods the document does not list.
//!
//! The runner, its tooling and its variables: `holdfast_platform::testing::schemathesis`.

use holdfast_platform::testing::{self, RunningService, TopicsGuard, schemathesis};
use serde_json::{Value, json};

use crate::support;

/// The resource the document's examples name; the test defines it so examples hit a real one.
const RESOURCE: &str = "hotel.berlin:room-101";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_api_keeps_to_its_openapi_document() {
    testing::init_logs();
    let topics = testing::topics("c-schemathesis", 2);
    let _cleanup = TopicsGuard::new(&topics);
    let service = support::start(support::config(&topics)).await;
    let http = testing::http();

    // The examples' resource exists with room to spare, and one hold on it is live, so the
    // examples of every operation reach a decision instead of a 404.
    let (status, body) = post(
        &http,
        &service,
        "/v1/resources",
        json!({
            "resource_id": RESOURCE, "name": "Room 101", "capacity": 1_000_000
        }),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let day = testing::days_from_today;
    let (status, hold) = post(
        &http,
        &service,
        "/v1/reservations",
        json!({
            "resource_id": RESOURCE, "from": day(30), "to": day(32), "quantity": 1,
            "customer_id": "customer-42"
        }),
    )
    .await;
    assert_eq!(status, 201, "{hold}");
    let reservation = hold["reservation_id"].as_str().expect("a reservation id").to_owned();

    // The served document, with the live hold as the example of confirm's and cancel's `id`:
    // no fixed example can name a reservation (their ids are minted per request).
    let (status, mut document) = service.get_json("/openapi.json").await;
    assert_eq!(status, 200, "{document}");
    for action in ["confirm", "cancel"] {
        let parameters =
            &mut document["paths"][format!("/v1/reservations/{{id}}/{action}")]["post"]["parameters"];
        let id = parameters
            .as_array_mut()
            .and_then(|all| all.iter_mut().find(|p| p["name"] == "id"))
            .expect("an id parameter");
        id["example"] = json!(reservation);
    }

    let passed = schemathesis::run(&document, &service.url(""), OPTIONS).await;
    assert!(
        passed,
        "schemathesis found failures (its report is above; replay with HOLDFAST_FUZZ_SEED=<its seed>)"
    );

    service.stop().await.expect("clean stop");
}

/// POSTs `body` as the administrator; status and JSON body.
async fn post(http: &reqwest::Client, service: &RunningService, path: &str, body: Value) -> (u16, Value) {
    let response = http.post(service.url(path)).json(&body).send().await.expect("answered");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Rules the document states in words only (answered 422): an `Idempotency-Key` reused for
/// another request, and (holds, capacity changes) `to` after `from`, at most 31 or 366 days
/// later, inside the booking window.
///
/// The stateful phase is off: on some seeds schemathesis 4.32.5's state machine stops with its
/// own `InvalidDefinition` ("no available rule had a True precondition") after a minute or
/// more, a fault of the tool, not an answer of the API.
/// `HOLDFAST_FUZZ_ARGS="--phases examples,coverage,fuzzing,stateful"` runs it.
const OPTIONS: schemathesis::Options = schemathesis::Options { stateful: false, stream_events: None };
