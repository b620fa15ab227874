//! The contract of every endpoint: field names, values, caching headers, 404s, and bad input
//! answered 422 (never a 5xx).

use std::time::Duration;

use holdfast_platform::auth::Scope;
use holdfast_platform::testing;
use serde_json::{Value, json};

use crate::support::{Stack, get, get_json, header};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_answers_its_contract() {
    let stack = Stack::new("q-contract", 4, 1).await;
    let worker = stack.start_worker().await;
    let query = stack.start_query(stack.config()).await;

    let mut events = stack.define("room-a", 5);
    let (alice, held) = stack.hold("room-a", "2031-03-02", "2031-03-04", 2, "alice");
    events.extend(held);
    let (_, held) = stack.hold("room-a", "2031-03-03", "2031-03-04", 1, "bob");
    events.extend(held);
    let token = stack.produce_one_resource(&events).await;

    // Availability, with read-your-writes through the query parameter.
    let path =
        format!("/v1/resources/room-a/availability?from=2031-03-01&to=2031-03-05&min_position={token}");
    let (status, headers, body) = get_json(&query, &path, &[]).await;
    assert_eq!(status, 200, "{body}");
    let slot = |day: &str, held: u32| json!({"slot": day, "capacity": 5, "held": held, "confirmed": 0, "available": 5 - held});
    assert_eq!(body["resource_id"], "room-a");
    assert_eq!(
        body["slots"],
        json!([slot("2031-03-01", 0), slot("2031-03-02", 2), slot("2031-03-03", 3), slot("2031-03-04", 0)])
    );
    let (partition, offset) = token.split_once('.').expect("token");
    let position = body["position"].as_str().expect("position is a string");
    let (p, o) = position.split_once('.').expect("position token");
    assert_eq!(p, partition);
    assert!(o.parse::<i64>().expect("offset") >= offset.parse::<i64>().expect("offset"));
    assert_eq!(header(&headers, "cache-control"), "public, max-age=1");
    let etag = header(&headers, "etag").to_owned();
    assert!(etag.starts_with("W/\""), "{etag}");

    // Redis serves it once the projection wrote it there; the answer is the same.
    // Generous bound: the wait ends as soon as Redis answers; on two cores shared with the
    // rest of the suite the projection can take well over 10 s to get there.
    let from_redis = testing::eventually(Duration::from_secs(60), || async {
        let (_, headers, again) = get_json(&query, &path, &[]).await;
        (header(&headers, "holdfast-source") == "redis").then_some(again)
    })
    .await
    .expect("answered from redis");
    assert_eq!(from_redis["slots"], body["slots"]);

    // Conditional requests.
    let unchanged = get(&query, &path, &[("if-none-match", &etag)]).await;
    assert_eq!(unchanged.status(), 304);
    assert_eq!(header(unchanged.headers(), "etag"), etag);
    let changed = get(&query, &path, &[("if-none-match", "W/\"1\"")]).await;
    assert_eq!(changed.status(), 200);

    // One reservation, and the customer's list.
    let (status, headers, body) =
        get_json(&query, &format!("/v1/reservations/{alice}?min_position={token}"), &[]).await;
    assert_eq!(status, 200, "{body}");
    for (field, value) in [
        ("reservation_id", json!(alice.to_string())),
        ("resource_id", json!("room-a")),
        ("from", json!("2031-03-02")),
        ("to", json!("2031-03-04")),
        ("quantity", json!(2)),
        ("customer_id", json!("alice")),
        ("status", json!("held")),
    ] {
        assert_eq!(body[field], value, "{field}");
    }
    assert!(body["expires_at"].as_str().is_some_and(|t| t.ends_with('Z')), "{body}");
    assert_eq!(header(&headers, "cache-control"), "private, no-cache");
    let etag = header(&headers, "etag").to_owned();
    let unchanged = get(&query, &format!("/v1/reservations/{alice}"), &[("if-none-match", &etag)]).await;
    assert_eq!(unchanged.status(), 304);

    let (status, _, page) = get_json(&query, "/v1/customers/alice/reservations", &[]).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(page["items"][0]["reservation_id"], json!(alice.to_string()));
    assert_eq!(page["next_cursor"], Value::Null);
    let (status, _, page) = get_json(&query, "/v1/customers/nobody/reservations", &[]).await;
    assert_eq!((status, page), (200, json!({"items": [], "next_cursor": null})));

    // Tokens: a customer reads its own reservations; another customer's answer 404, as if
    // they did not exist; no token is 401, a token without the route's scope 403.
    let bearer = |sub: &str, scopes: &[Scope]| format!("Bearer {}", testing::token(sub, scopes));
    let (alice_token, bob_token) =
        (bearer("alice", &[Scope::ReservationsRead]), bearer("bob", &[Scope::ReservationsRead]));
    let own = format!("/v1/reservations/{alice}");
    for (path, token, status, kind) in [
        (own.as_str(), alice_token.as_str(), 200, None),
        (own.as_str(), bob_token.as_str(), 404, Some("unknown-reservation")),
        ("/v1/customers/alice/reservations", alice_token.as_str(), 200, None),
        ("/v1/customers/alice/reservations", bob_token.as_str(), 404, Some("not-found")),
        (
            "/v1/resources/room-a/availability?from=2031-03-01&to=2031-03-02",
            alice_token.as_str(),
            403,
            Some("forbidden"),
        ),
        (own.as_str(), "", 401, Some("unauthorized")),
        (own.as_str(), "Bearer not.a.token", 401, Some("unauthorized")),
    ] {
        // A client of its own: no administrator's token by default.
        let response = reqwest::Client::new().get(query.url(path));
        let response = if token.is_empty() { response } else { response.header("authorization", token) };
        let response = response.send().await.expect("answers");
        assert_eq!(response.status().as_u16(), status, "{path} with {token:.20}");
        if let Some(kind) = kind {
            let body: Value = response.json().await.expect("problem+json");
            assert_eq!(body["type"], format!("https://holdfast.dev/problems/{kind}"), "{path}");
        }
    }

    // 404s.
    let unknown_reservation = format!("/v1/reservations/r1_{}_room-a", "0".repeat(32));
    for (path, kind) in [
        ("/v1/resources/room-z/availability?from=2031-03-01&to=2031-03-02", "unknown-resource"),
        ("/v1/resources/bad%20id!/availability?from=2031-03-01&to=2031-03-02", "unknown-resource"),
        (unknown_reservation.as_str(), "unknown-reservation"),
        ("/v1/reservations/not-an-id", "unknown-reservation"),
        ("/v1/nowhere", "not-found"),
    ] {
        let (status, headers, body) = get_json(&query, path, &[]).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert_eq!(header(&headers, "content-type"), "application/problem+json", "{path}");
        assert_eq!(body["type"], format!("https://holdfast.dev/problems/{kind}"), "{path}");
    }
    let post = testing::http().post(query.url("/v1/reservations/x")).send().await.expect("answers");
    assert_eq!(post.status(), 405);

    // Bad input: 422 naming the parameter.
    let availability = "/v1/resources/room-a/availability";
    for (query_string, fields) in [
        ("", vec!["from", "to"]),
        ("?from=2031-02-30&to=2031-03-02", vec!["from"]),
        ("?from=2031-03-01&to=31-03-02", vec!["to"]),
        ("?from=2031-03-02&to=2031-03-02", vec!["to"]),
        ("?from=2031-03-05&to=2031-03-02", vec!["to"]),
        ("?from=2031-01-01&to=2032-01-03", vec!["to"]),
        ("?from=2031-03-01&to=2031-03-02&min_position=x", vec!["min_position"]),
        ("?from=2031-03-01&to=2031-03-02&min_position=4.1", vec!["min_position"]),
        ("?from=2031-03-01&to=2031-03-02&min_position=-1.5", vec!["min_position"]),
    ] {
        let path = format!("{availability}{query_string}");
        let (status, headers, body) = get_json(&query, &path, &[]).await;
        assert_eq!(status, 422, "{path}: {body}");
        assert_eq!(header(&headers, "content-type"), "application/problem+json");
        assert_eq!(body["type"], "https://holdfast.dev/problems/invalid-input");
        let named: Vec<&str> =
            body["errors"].as_array().expect("errors").iter().filter_map(|e| e["field"].as_str()).collect();
        assert_eq!(named, fields, "{path}");
    }
    let (status, _, body) = get_json(
        &query,
        &format!("{availability}?from=2031-03-01&to=2031-03-02"),
        &[("min-position", "nope")],
    )
    .await;
    assert_eq!((status, body["errors"][0]["field"].as_str()), (422, Some("Min-Position")));
    for path in [
        "/v1/customers/alice/reservations?limit=0",
        "/v1/customers/alice/reservations?limit=10000",
        "/v1/customers/alice/reservations?limit=ten",
        "/v1/customers/alice/reservations?cursor=garbage",
        "/v1/customers/alice/reservations?cursor=c1.zz",
        "/v1/reservations/x?min_position=1",
    ] {
        let (status, _, body) = get_json(&query, path, &[]).await;
        assert!(
            status == 422 || (status == 404 && path.starts_with("/v1/reservations/x")),
            "{path}: {status} {body}"
        );
    }

    // Never a 5xx, whatever the input.
    let long = "a".repeat(5000);
    for path in [
        "/v1/resources/room-a/availability?from=0000-01-01&to=0000-12-31".to_owned(),
        "/v1/resources/room-a/availability?from=9999-12-30&to=9999-12-31".to_owned(),
        "/v1/resources/room-a/availability?from=%FF&to=%00".to_owned(),
        "/v1/resources/room-a/availability?from=2031-03-01&to=2031-03-02&min_position=0.99999999999999999999"
            .to_owned(),
        "/v1/resources/room-a/availability/stream?from=2031-03-02&to=2031-03-01".to_owned(),
        format!("/v1/resources/{long}/availability?from=2031-03-01&to=2031-03-02"),
        format!("/v1/customers/{long}/reservations"),
        "/v1/customers/%20/reservations".to_owned(),
        "/v1/reservations/r1_ZZ_room-a".to_owned(),
    ] {
        let status = get(&query, &path, &[]).await.status();
        assert!(!status.is_server_error(), "{path}: {status}");
    }

    // The OpenAPI document.
    let (status, _, document) = get_json(&query, "/openapi.json", &[]).await;
    assert_eq!(status, 200);
    assert!(document["paths"]["/v1/customers/{id}/reservations"]["get"].is_object());

    query.stop().await.expect("clean stop");
    worker.stop().await.expect("clean stop");
    stack.tear_down().await;
}

/// The Redis layout this service reads is the one the projection writes.
#[test]
fn the_redis_layout_matches_the_writer() {
    use holdfast_projection_workers::cache::format as writer;
    use holdfast_query_service::read::layout as reader;
    let resource = holdfast_domain::ResourceId::parse("hotel.berlin:room-1").expect("valid");
    assert_eq!(reader::availability_key("p:", resource.as_str()), writer::availability_key("p:", &resource));
    assert_eq!(reader::channel("p:", resource.as_str()), writer::channel("p:", &resource));
    assert_eq!(reader::positions_key("p:"), writer::positions_key("p:"));
    assert_eq!(reader::DEFINITION_FIELD, writer::DEFINITION_FIELD);
    let update = writer::Update {
        resource_id: resource.to_string(),
        version: 9,
        capacity: Some(3),
        slots: vec![writer::UpdatedSlot {
            slot: "2031-03-01".to_owned(),
            capacity: 3,
            held: 1,
            confirmed: 1,
            available: 1,
        }],
    };
    let read: reader::Update =
        serde_json::from_str(&serde_json::to_string(&update).expect("json")).expect("decodes");
    assert_eq!((read.version, read.capacity, read.slots[0].available), (9, Some(3), 1));
    assert_eq!(
        reader::parse_slot("7|3|1|1").map(|s| s.version),
        writer::parse_slot("7|3|1|1").map(|s| s.version)
    );
}
