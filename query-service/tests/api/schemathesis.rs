//! The read API against its own OpenAPI document, by schemathesis: requests generated from the
//! served `/openapi.json` (schema examples, boundary values, random valid and invalid data) are
//! sent to a real service over a projected read model, and every answer is checked: no 5xx but
//! the documented 503s, only documented status codes, content types and bodies (live-update
//! events included) that match the document, 401 without a token, 405 for methods the
//! document does not list.
//!
//! The runner, its tooling and its variables: `holdfast_platform::testing::schemathesis`.

use std::time::Duration;

use holdfast_domain::{Command, CustomerId, HoldTtl, Quantity, ReservationId, SlotRange};
use holdfast_platform::testing::{self, schemathesis};

use crate::support::{Stack, get_json};

/// The resource, reservation and customer the document's examples name; the test projects
/// them so examples read real rows.
const RESOURCE: &str = "hotel.berlin:room-101";
const RESERVATION: &str = "r1_0192f0c1a2b37c3d8e4f5a6b7c8d9e0f_hotel.berlin:room-101";
const CUSTOMER: &str = "customer-42";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_read_api_keeps_to_its_openapi_document() {
    let stack = Stack::new("q-schemathesis", 2, 1).await;
    let worker = stack.start_worker().await;
    let mut config = stack.config();
    // Streams of clients that went away end at their next heartbeat: keep the client's stream
    // slots free for the next generated request.
    config.heartbeat = Duration::from_millis(200);
    // Generated positions far ahead of the log wait this long before their 503.
    config.max_wait = Duration::from_millis(200);
    let query = stack.start_query(config).await;

    let mut events = stack.define(RESOURCE, 5);
    events.extend(stack.decide(&Command::PlaceHold {
        reservation_id: ReservationId::parse(RESERVATION).expect("valid id"),
        range: SlotRange::parse("2031-03-02", "2031-03-04").expect("valid range"),
        quantity: Quantity::new(2).expect("valid quantity"),
        customer_id: CustomerId::parse(CUSTOMER).expect("valid customer"),
        ttl: HoldTtl::from_seconds(3600).expect("valid ttl"),
    }));
    let (_, held) = stack.hold(RESOURCE, "2031-03-03", "2031-03-05", 1, CUSTOMER);
    events.extend(held);
    let token = stack.produce_one_resource(&events).await;
    let projected = testing::eventually(Duration::from_secs(60), || async {
        let path = format!("/v1/reservations/{RESERVATION}?min_position={token}");
        let (status, _, _) = get_json(&query, &path, &[]).await;
        (status == 200).then_some(())
    })
    .await;
    assert!(projected.is_some(), "the example reservation is projected");

    let (status, document) = query.get_json("/openapi.json").await;
    assert_eq!(status, 200, "{document}");
    let passed = schemathesis::run(&document, &query.url(""), OPTIONS).await;
    assert!(
        passed,
        "schemathesis found failures (its report is above; replay with HOLDFAST_FUZZ_SEED=<its seed>)"
    );

    query.stop().await.expect("clean stop");
    worker.stop().await.expect("clean stop");
    stack.tear_down().await;
}

/// Rules the document states in words only (answered 422): `to` after `from` and at most 366
/// days later, a position on a partition the events topic has, a cursor from an earlier page.
/// A live stream is read up to its first event (the snapshot), checked against the document
/// like any body.
const OPTIONS: schemathesis::Options = schemathesis::Options { stateful: true, stream_events: Some(1) };
