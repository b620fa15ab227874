//! Several instances behind one address, as a load balancer spreads callers over them: every
//! instance answers commands for every partition, deciding its own and handing the others to
//! their owners over the signed peer channel, which nobody else may use; a rolling restart under load
//! hands every partition over without losing a decision or answering a 5xx. Judged on the
//! events log by the reader rule, as the failure tests are.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use holdfast_platform::partitioner::partition_for;
use holdfast_platform::testing::{self, TopicsGuard};
use serde_json::{Value, json};

use holdfast_command_service::envelope::{CommandEnvelope, FORMAT_VERSION};
use holdfast_command_service::forward::{Batch, Handed, PEER_PATH, PEER_VERSION, PeerKey, SIGNATURE};
use holdfast_command_service::http::idempotency;
use holdfast_domain::{
    Command, CommandMeta, CustomerId, HoldTtl, Quantity, ReservationId, ResourceId, Slot, SlotRange,
};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::load::{self, HttpLoad, Tally};
use crate::support::Process;

const PARTITIONS: i32 = 8;

/// `GET /v1/admin/partitions` of `process`.
async fn partitions(process: &Process) -> Option<Value> {
    let response =
        testing::http().get(format!("http://{}/v1/admin/partitions", process.addr)).send().await.ok()?;
    response.status().is_success().then_some(())?;
    response.json().await.ok()
}

/// Which instance owns each partition, once every instance's lanes are ready, no two own the
/// same partition, together they own all, and every instance's directory says the same.
async fn settled_owners(processes: &[&Process]) -> Option<BTreeMap<i64, String>> {
    let mut owners = BTreeMap::new();
    let mut views = Vec::new();
    for process in processes {
        let view = partitions(process).await?;
        let instance = view["instance"].as_str()?.to_owned();
        for lane in view["owned"].as_array()? {
            if lane["state"] != "ready" {
                return None;
            }
            let partition = lane["partition"].as_i64()?;
            if owners.insert(partition, instance.clone()).is_some() {
                return None;
            }
        }
        views.push(view);
    }
    if owners.len() != usize::try_from(PARTITIONS).ok()? {
        return None;
    }
    for view in &views {
        let directory: BTreeMap<i64, String> = view["directory"]
            .as_array()?
            .iter()
            .filter(|a| a["tenure"] == "ready")
            .filter_map(|a| Some((a["partition"].as_i64()?, a["owner"].as_str()?.to_owned())))
            .collect();
        if directory != owners {
            return None;
        }
    }
    Some(owners)
}

/// One resource id per partition.
fn one_per_partition(prefix: &str) -> Vec<String> {
    let mut by_partition = BTreeMap::new();
    for n in 0.. {
        let id = format!("{prefix}-{n}");
        by_partition.entry(partition_for(id.as_bytes(), PARTITIONS)).or_insert(id);
        if by_partition.len() == usize::try_from(PARTITIONS).unwrap_or(0) {
            break;
        }
    }
    by_partition.into_values().collect()
}

async fn define(process: &Process, resources: &[String]) {
    for id in resources {
        let body = json!({"resource_id": id, "name": "Room", "capacity": 10});
        let response = testing::http()
            .post(format!("http://{}/v1/resources", process.addr))
            .json(&body)
            .send()
            .await
            .expect("answered");
        assert_eq!(response.status().as_u16(), 201, "{id} defined");
    }
}

/// A hold on `resource` sent to `process`: (status, the instance that decided it if another
/// one did, body).
async fn hold(process: &Process, resource: &str, key: Option<&str>) -> (u16, Option<String>, Value) {
    let from = testing::days_from_today(30);
    let to = testing::days_from_today(32);
    let mut request = testing::http()
        .post(format!("http://{}/v1/reservations", process.addr))
        .json(&json!({"resource_id": resource, "from": from, "to": to, "quantity": 1, "customer_id": "ada"}));
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    let response = request.send().await.expect("answered");
    let status = response.status().as_u16();
    let decided_by =
        response.headers().get("holdfast-decided-by").and_then(|v| v.to_str().ok()).map(str::to_owned);
    (status, decided_by, response.json().await.unwrap_or(Value::Null))
}

/// A valid hold on `resource` for customer ada, as an edge instance builds it.
fn hold_envelope(resource: &str) -> CommandEnvelope {
    let resource = ResourceId::parse(resource).expect("valid id");
    let command_id = Uuid::now_v7();
    let slot =
        |days| Slot::from_date(OffsetDateTime::now_utc().date() + time::Duration::days(days)).expect("slot");
    let command = Command::PlaceHold {
        reservation_id: ReservationId::new(&resource, command_id),
        range: SlotRange::new(slot(40), slot(41)).expect("range"),
        quantity: Quantity::new(1).expect("quantity"),
        customer_id: CustomerId::parse("ada").expect("customer"),
        ttl: HoldTtl::DEFAULT,
    };
    let mut meta = CommandMeta::new(command_id);
    meta.principal = Some("ada".to_owned());
    CommandEnvelope {
        v: FORMAT_VERSION,
        fingerprint: idempotency::fingerprint(&command).expect("serializable"),
        command,
        meta,
        submitted_at: OffsetDateTime::now_utc(),
        reply_to: None,
        acting_for: Some("ada".to_owned()),
    }
}

/// A batch body of `envelope` sent at `sent_at`.
fn batch(envelope: &CommandEnvelope, sent_at: OffsetDateTime) -> Vec<u8> {
    let handed = Handed { envelope: envelope.clone(), wait_ms: 10_000 };
    let batch = Batch { v: PEER_VERSION, from: "a-test".to_owned(), sent_at, commands: vec![handed] };
    serde_json::to_vec(&batch).expect("encodes")
}

/// Posts a batch `body` with `signature` to `process`'s peer route: (status, body).
async fn hand_over(process: &Process, body: &[u8], signature: &str) -> (u16, Value) {
    let response = testing::http()
        .post(format!("http://{}{PEER_PATH}", process.addr))
        .header(SIGNATURE, signature)
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .await
        .expect("answered");
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_instance_answers_for_every_partition_through_its_owner() {
    testing::init_logs();
    let topics = testing::topics("cmd-forward", PARTITIONS);
    let _cleanup = TopicsGuard::new(&topics);
    let (a_id, b_id) = (testing::unique("forward-a"), testing::unique("forward-b"));
    let a = Process::spawn(&topics, &a_id);
    assert!(a.wait_ready(Duration::from_secs(90)).await);
    let b = Process::spawn(&topics, &b_id);
    assert!(b.wait_ready(Duration::from_secs(90)).await);
    let both = [&a, &b];
    let owners = testing::eventually(Duration::from_secs(60), || settled_owners(&both)).await;
    let owners = owners.expect("the two instances split the partitions and both directories know it");
    let names: BTreeSet<&String> = owners.values().collect();
    assert_eq!(names.len(), 2, "both instances own partitions: {owners:?}");
    let owner_of =
        |resource: &str| owners[&i64::from(partition_for(resource.as_bytes(), PARTITIONS))].clone();

    let resources = one_per_partition("room");
    define(&a, &resources).await;
    let mut tally = Tally::default();
    for resource in &resources {
        let owner = owner_of(resource);
        // With a key and without one (the command id is made at the edge and travels with it).
        for (process, instance, keyed) in
            [(&a, &a_id, true), (&b, &b_id, true), (&a, &a_id, false), (&b, &b_id, false)]
        {
            let key = keyed.then(|| testing::unique("hold"));
            let (status, decided_by, body) = hold(process, resource, key.as_deref()).await;
            assert_eq!(status, 201, "{resource} held through {instance}: {body}");
            if *instance == owner {
                assert_eq!(decided_by, None, "the owner decides its own partition's commands");
            } else {
                assert_eq!(decided_by.as_ref(), Some(&owner), "forwarded to the owner of {resource}");
            }
            tally.accepted.push(body["reservation_id"].as_str().unwrap_or_default().to_owned());
        }
    }
    let decided = r#"holdfast_forwards_total{result="decided"}"#;
    for process in [&a, &b] {
        assert!(process.metric::<u64>(decided).await.unwrap_or(0) >= 1, "both handed commands over");
    }

    // The peer channel takes only fresh batches signed with the deployment's peer key, and an
    // instance handed a command of a partition it does not own decides nothing.
    let resource = &resources[0];
    let (owner, not_owner) = if owner_of(resource) == a_id { (&a, &b) } else { (&b, &a) };
    let key = PeerKey::derived(testing::TEST_SECRET.as_bytes()).expect("the test secret is long enough");
    let envelope = hold_envelope(resource);
    let fresh = batch(&envelope, OffsetDateTime::now_utc());
    let stale = batch(&envelope, OffsetDateTime::now_utc() - time::Duration::minutes(5));
    let forged = PeerKey::new(b"not the deployment's peer secret, but long").expect("long enough");
    for (what, body, signature) in [
        ("unsigned", &fresh, String::new()),
        ("signed with another key", &fresh, forged.sign(&fresh)),
        ("stale", &stale, key.sign(&stale)),
    ] {
        let (status, answer) = hand_over(owner, body, &signature).await;
        assert_eq!(status, 401, "a batch {what} is refused: {answer}");
        assert_eq!(answer["type"], "https://holdfast.dev/problems/unauthorized", "{what}");
    }
    let (status, answer) = hand_over(not_owner, &fresh, &key.sign(&fresh)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["answers"], json!([{"answer": "not-owner"}]), "not its partition: nothing decided");
    let (status, answer) = hand_over(owner, &fresh, &key.sign(&fresh)).await;
    assert_eq!(status, 200, "{answer}");
    let outcome = &answer["answers"][0];
    assert_eq!(outcome["answer"], "decided", "{answer}");
    assert_eq!(outcome["outcome"]["command_id"], json!(envelope.meta.command_id));
    assert_eq!(outcome["outcome"]["verdict"]["result"], "accepted", "{answer}");
    let reservation = outcome["outcome"]["verdict"]["reservation"]["reservation_id"].as_str();
    tally.accepted.push(reservation.unwrap_or_default().to_owned());
    let (_, again) = hand_over(owner, &fresh, &key.sign(&fresh)).await;
    assert_eq!(again["answers"][0]["outcome"], outcome["outcome"], "a replay decides nothing new");

    let report = load::assert_log_is_sound(&topics, &tally).await;
    assert_eq!(report.holds.len(), tally.accepted.len(), "no hold beyond those answered 201");
    drop((a, b));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_under_load_loses_nothing_and_answers_no_5xx() {
    testing::init_logs();
    let topics = testing::topics("cmd-rolling", PARTITIONS);
    let _cleanup = TopicsGuard::new(&topics);
    let mut processes = Vec::new();
    for n in 0..3 {
        let process = Process::spawn(&topics, &testing::unique(&format!("rolling-{n}")));
        assert!(process.wait_ready(Duration::from_secs(90)).await);
        processes.push(process);
    }
    let resources = load::define(processes[0].addr, "hall", 24, 20).await;
    let load = HttpLoad::start(processes.iter().map(|p| p.addr).collect(), &resources, 6, 900);
    load.advance(40).await;
    for n in 0..processes.len() {
        // The load balancer takes the instance out first (its readiness turns red as it stops).
        load.retarget(processes.iter().enumerate().filter(|(i, _)| *i != n).map(|(_, p)| p.addr).collect());
        let leaving = processes.remove(n);
        leaving.signal("TERM");
        assert!(leaving.wait(), "the stopping instance hands over and exits cleanly");
        load.advance(20).await;
        let back = Process::spawn(&topics, &testing::unique(&format!("rolling-{n}-again")));
        assert!(back.wait_ready(Duration::from_secs(90)).await);
        processes.insert(n, back);
        load.retarget(processes.iter().map(|p| p.addr).collect());
        load.advance(20).await;
    }
    let tally = load.finish().await;
    assert_eq!(tally.server_errors, 0, "no 5xx during the rolling restart");
    let report = load::assert_log_is_sound(&topics, &tally).await;
    assert!(report.claims >= u64::try_from(PARTITIONS).unwrap_or(0) * 2, "partitions changed hands");
    drop(processes);
}

/// Whether `standby` stands by for every partition `owner` owns, caught up.
async fn stands_by_for(standby: &Process, owner: &Process) -> Option<()> {
    let owned: BTreeSet<i64> = partitions(owner).await?["owned"]
        .as_array()?
        .iter()
        .filter_map(|lane| lane["partition"].as_i64())
        .collect();
    let view = partitions(standby).await?;
    let following: BTreeSet<i64> = view["standby"]
        .as_array()?
        .iter()
        .filter(|s| s["lag"].as_i64() == Some(0))
        .filter_map(|s| s["partition"].as_i64())
        .collect();
    (!owned.is_empty() && owned == following).then_some(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_partitions_of_a_killed_owner_are_taken_from_the_standby() {
    testing::init_logs();
    let topics = testing::topics("cmd-standby", PARTITIONS);
    let _cleanup = TopicsGuard::new(&topics);
    let victim = Process::spawn(&topics, &testing::unique("standby-a"));
    assert!(victim.wait_ready(Duration::from_secs(90)).await);
    let survivor = Process::spawn(&topics, &testing::unique("standby-b"));
    assert!(survivor.wait_ready(Duration::from_secs(90)).await);
    let both = [&victim, &survivor];
    assert!(testing::eventually(Duration::from_secs(60), || settled_owners(&both)).await.is_some());
    let resources = load::define(survivor.addr, "hall", 24, 20).await;
    let load = HttpLoad::start(vec![victim.addr, survivor.addr], &resources, 4, 900);
    load.advance(60).await;
    let caught_up = testing::eventually(Duration::from_secs(30), || stands_by_for(&survivor, &victim)).await;
    assert!(caught_up.is_some(), "the survivor stands by for every partition of the victim, caught up");
    let victim_partitions = partitions(&victim).await.expect("view")["owned"].as_array().map_or(0, Vec::len);
    // The partitions the victim gave up when the survivor joined were taken from the standby
    // already (a released partition stays followed): count only what the kill moves.
    let from_standby = r#"holdfast_partition_restores_total{source="standby"}"#;
    let before: u64 = survivor.metric(from_standby).await.unwrap_or(0);

    victim.signal("KILL");
    drop(victim);
    load.retarget(vec![survivor.addr]);
    let all = testing::eventually(Duration::from_secs(60), || async {
        (survivor.owned_partitions().await == Some(i64::from(PARTITIONS))).then_some(())
    })
    .await;
    assert!(all.is_some(), "the survivor took every partition");
    let taken = survivor.metric::<u64>(from_standby).await.unwrap_or(0).saturating_sub(before);
    assert_eq!(taken, u64::try_from(victim_partitions).unwrap_or(0), "every one taken from the standby");
    load.advance(40).await;
    let tally = load.finish().await;
    load::assert_log_is_sound(&topics, &tally).await;
    drop(survivor);
}
