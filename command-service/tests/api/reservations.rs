//! The command API end to end: HTTP in, decisions by the partition processors, answers after
//! commit; the race and idempotency checks also read the event log itself.

use std::sync::Arc;
use std::time::Duration;

use holdfast_platform::TopicArgs;
use holdfast_platform::audit::audit_log;
use holdfast_platform::auth::Scope;
use holdfast_platform::codec::EventCodec;
use holdfast_platform::testing::{self, RunningService};
use holdfast_platform::topics::TopicLayout;
use serde_json::{Value, json};

use crate::support;

/// A command service of its own plus an HTTP client.
struct Api {
    service: RunningService,
    topics: TopicArgs,
    http: reqwest::Client,
}

impl Api {
    async fn start(test: &str) -> Self {
        testing::init_logs();
        let topics = testing::topics(test, 4);
        let service = support::start(support::config(&topics)).await;
        Self { service, topics, http: testing::http() }
    }

    async fn post(&self, path: &str, body: Value, key: Option<&str>) -> (u16, Value) {
        let mut request = self.http.post(self.service.url(path)).json(&body);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        let response = request.send().await.expect("answered");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// POSTs `body` as the customer `subject` (a token with `reservations:write` only).
    async fn post_as(&self, subject: &str, path: &str, body: Value, key: &str) -> (u16, Value) {
        let token = testing::token(subject, &[Scope::ReservationsWrite]);
        let response = self
            .http
            .post(self.service.url(path))
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
            .await
            .expect("answered");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        let response = self.http.put(self.service.url(path)).json(&body).send().await.expect("answered");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn define(&self, resource: &str, capacity: u32) {
        let (status, body) = self
            .post(
                "/v1/resources",
                json!({"resource_id": resource, "name": resource, "capacity": capacity}),
                None,
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }

    async fn hold(&self, resource: &str, from: &str, to: &str, quantity: u32) -> (u16, Value) {
        let body = json!({"resource_id": resource, "from": from, "to": to, "quantity": quantity, "customer_id": "c-1"});
        self.post("/v1/reservations", body, None).await
    }

    async fn audit(&self) -> holdfast_platform::audit::AuditReport {
        let layout = TopicLayout::from_args(&self.topics);
        let codec = Arc::new(EventCodec::new(&testing::registry(), &layout.events).expect("codec"));
        codec.register_all().await.expect("schemas");
        audit_log(&testing::kafka(), &layout.events, self.topics.partitions, codec, Duration::from_secs(60))
            .await
            .expect("audited")
    }

    async fn stop(self) {
        self.service.stop().await.expect("clean stop");
        TopicLayout::from_args(&self.topics).delete(&testing::kafka()).await.expect("topics deleted");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_holds_race_for_the_last_ten_units() {
    let api = Arc::new(Api::start("race").await);
    api.define("stage", 10).await;

    let mut racers = tokio::task::JoinSet::new();
    for _ in 0..200 {
        let api = Arc::clone(&api);
        racers.spawn(async move { api.hold("stage", "2027-02-01", "2027-02-02", 1).await });
    }
    let (mut held, mut refused) = (Vec::new(), 0);
    while let Some(result) = racers.join_next().await {
        match result.expect("racer") {
            (201, body) => held.push(body["reservation_id"].as_str().expect("id").to_owned()),
            (409, body) => {
                assert_eq!(body["type"], "https://holdfast.dev/problems/insufficient-capacity");
                assert_eq!(body["available"], 0);
                refused += 1;
            }
            (status, body) => panic!("unexpected {status}: {body}"),
        }
    }
    assert_eq!((held.len(), refused), (10, 190));

    let report = api.audit().await;
    assert!(report.overbookings.is_empty(), "{:?}", report.overbookings);
    assert_eq!(report.holds.len(), 10, "exactly the ten acknowledged holds are in the log");
    for id in &held {
        assert!(report.holds.keys().any(|k| k.to_string() == *id), "{id} in the log");
    }
    Arc::into_inner(api).expect("racers done").stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_day_holds_are_all_or_nothing_and_capacity_changes_respect_them() {
    let api = Api::start("allornothing").await;
    api.define("suite", 2).await;

    assert_eq!(api.hold("suite", "2027-03-02", "2027-03-04", 2).await.0, 201);
    let (status, refused) = api.hold("suite", "2027-03-01", "2027-03-05", 1).await;
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["slot"], "2027-03-02", "the first short slot is named");
    assert_eq!(refused["available"], 0);
    // Nothing of the refused hold was taken: the day before is still free.
    assert_eq!(api.hold("suite", "2027-03-01", "2027-03-02", 2).await.0, 201);

    let lower = json!({"from": "2027-03-01", "to": "2027-03-10", "capacity": 1});
    let (status, body) = api.put("/v1/resources/suite/capacity", lower).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["type"], "https://holdfast.dev/problems/capacity-below-usage");
    let (status, body) = api
        .put("/v1/resources/suite/capacity", json!({"from": "2027-03-05", "to": "2027-03-10", "capacity": 1}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["position"].is_string());
    assert_eq!(api.hold("suite", "2027-03-05", "2027-03-06", 2).await.0, 409, "the new capacity applies");
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holds_expire_and_free_their_capacity() {
    let api = Api::start("expiry").await;
    api.define("desk", 1).await;
    let body = json!({"resource_id": "desk", "from": "2027-04-01", "to": "2027-04-02", "quantity": 1,
                      "customer_id": "c-1", "hold_seconds": 1});
    let (status, first) = api.post("/v1/reservations", body, None).await;
    assert_eq!(status, 201, "{first}");
    let id = first["reservation_id"].as_str().expect("id").to_owned();

    let freed = testing::eventually(Duration::from_secs(15), || async {
        (api.hold("desk", "2027-04-01", "2027-04-02", 1).await.0 == 201).then_some(())
    })
    .await;
    assert!(freed.is_some(), "the expired hold released its unit");
    let (status, body) = api.post(&format!("/v1/reservations/{id}/confirm"), json!({}), None).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["type"], "https://holdfast.dev/problems/hold-expired");
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_with_the_same_idempotency_key_decide_once() {
    let api = Api::start("idempotency").await;
    api.define("boat", 5).await;
    let body = json!({"resource_id": "boat", "from": "2027-05-01", "to": "2027-05-03", "quantity": 2, "customer_id": "c-9"});

    let first = api.post("/v1/reservations", body.clone(), Some("order-42")).await;
    let again = api.post("/v1/reservations", body.clone(), Some("order-42")).await;
    assert_eq!(first.0, 201, "{}", first.1);
    assert_eq!(first, again, "the same outcome, not a second decision");
    let mut other = body.clone();
    other["quantity"] = json!(1);
    let (status, reused) = api.post("/v1/reservations", other, Some("order-42")).await;
    assert_eq!(status, 422, "{reused}");

    let id = first.1["reservation_id"].as_str().expect("id").to_owned();
    let confirmed =
        api.post(&format!("/v1/reservations/{id}/confirm"), json!({"payment_ref": "pay-1"}), None).await;
    assert_eq!(confirmed.0, 200, "{}", confirmed.1);
    assert_eq!(confirmed.1["status"], "confirmed");
    let cancel_path = format!("/v1/reservations/{id}/cancel");
    let once = api.post(&cancel_path, json!({}), Some("c-1")).await;
    let twice = api.post(&cancel_path, json!({}), Some("c-2")).await;
    assert_eq!((once.0, twice.0), (200, 200));
    assert_eq!((&once.1["status"], &twice.1["status"]), (&json!("cancelled"), &json!("cancelled")));

    let report = api.audit().await;
    assert_eq!(
        report.holds.values().copied().collect::<Vec<_>>(),
        vec![1],
        "one hold event for three requests"
    );
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customers_confirm_and_cancel_only_their_own_reservations_and_keys_are_theirs() {
    let api = Api::start("cmd_owner").await;
    api.define("owner-room", 5).await;
    let hold = |customer: &str| json!({"resource_id": "owner-room", "from": "2027-04-01", "to": "2027-04-02", "quantity": 1, "customer_id": customer});
    let (status, ada) = api.post_as("ada", "/v1/reservations", hold("ada"), "order-1").await;
    assert_eq!(status, 201, "{ada}");
    let id = ada["reservation_id"].as_str().expect("reservation id").to_owned();
    // The same key used by bob names another command: a hold of his own, not ada's answer.
    let (status, bob) = api.post_as("bob", "/v1/reservations", hold("bob"), "order-1").await;
    assert_eq!(status, 201, "{bob}");
    assert_ne!(bob["reservation_id"], ada["reservation_id"], "keys are scoped by caller");

    for action in ["confirm", "cancel"] {
        let path = format!("/v1/reservations/{id}/{action}");
        let (status, body) = api.post_as("bob", &path, json!({}), &format!("bob-{action}")).await;
        assert_eq!(status, 404, "bob {action}s ada's reservation: {body}");
        assert_eq!(body["type"], "https://holdfast.dev/problems/unknown-reservation", "{body}");
    }
    let (status, body) =
        api.post_as("ada", &format!("/v1/reservations/{id}/confirm"), json!({}), "ada-c").await;
    assert_eq!((status, body["status"].as_str()), (200, Some("confirmed")), "{body}");
    // An administrator acts for anyone.
    let (status, body) = api.post(&format!("/v1/reservations/{id}/cancel"), json!({}), Some("ops-x")).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("cancelled")), "{body}");

    let report = api.audit().await;
    assert!(report.overbookings.is_empty(), "{:?}", report.overbookings);
    assert_eq!(report.holds.len(), 2, "ada's and bob's holds, once each: {:?}", report.holds);
    // The log tells who did what: the definition and the last cancel are the administrator's,
    // a hold and a confirm ada's, a hold and two refusals bob's.
    let by = |who: &str| report.by_principal.get(&Some(who.to_owned())).copied();
    assert_eq!(
        (by(testing::ADMIN), by("ada"), by("bob"), report.by_principal.len()),
        (Some(2), Some(2), Some(3), 3),
        "{:?}",
        report.by_principal
    );
    api.stop().await;
}
