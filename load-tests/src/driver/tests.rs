//! The driver against a tiny fake command API that answers every request after a fixed delay:
//! the open model must keep its schedule, count drops, and measure from intended starts. A
//! fake query API checks what the reads ask for.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::{Method, StatusCode, Uri};
use axum::response::IntoResponse;

use super::*;

/// Serves 201 (holds get a fresh reservation id) after `delay`, on a port of its own.
async fn slow_api(delay: Duration) -> SocketAddr {
    let counter = Arc::new(AtomicU64::new(0));
    let answer = move |uri: Uri| {
        let counter = Arc::clone(&counter);
        async move {
            if uri.path() == "/v1/reservations" {
                tokio::time::sleep(delay).await;
            }
            let n = counter.fetch_add(1, Ordering::Relaxed);
            let body =
                format!(r#"{{"reservation_id":"r1_{n:032x}_fake","status":"held","resource_id":"x"}}"#);
            (StatusCode::CREATED, [("content-type", "application/json")], body).into_response()
        }
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, Router::new().fallback(answer)).await });
    addr
}

/// Flags of a quick run against `addr` plus `extra` (holds only unless `extra` has a `--mix`).
fn args(addr: SocketAddr, extra: &[&str]) -> (RunArgs, std::path::PathBuf) {
    let out = std::env::temp_dir().join(format!("holdfast-load-driver-{:08x}", rand::random::<u32>()));
    let target = format!("http://{addr}");
    let mut flags = vec!["--target", &target, "--warmup", "0s", "--resources", "2", "--quiet", "--out"];
    let out_text = out.to_str().expect("utf-8 temp dir").to_owned();
    flags.push(&out_text);
    flags.extend_from_slice(extra);
    if !extra.contains(&"--mix") {
        flags.extend_from_slice(&["--mix", "hold=1"]);
    }
    let mut args = RunArgs::from_flags(flags).expect("valid flags");
    args.token = Some("a-token".to_owned().into());
    (args, out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_beyond_the_in_flight_limit_are_dropped_not_delayed() {
    let addr = slow_api(Duration::from_millis(300)).await;
    let (args, out) = args(addr, &["--rate", "100", "--duration", "1s", "--max-in-flight", "10"]);
    let report = run_load(&args, std::future::pending()).await.expect("run");
    let _ = std::fs::remove_dir_all(&out);
    let step = &report.summary.steps[0];
    assert_eq!(step.scheduled, 100);
    assert_eq!(step.started + step.dropped, 100);
    // 10 slots held 300 ms each serve about 33 of the 100 requests a second.
    assert!((20..=50).contains(&step.started), "{step:?}");
    assert_eq!(step.responses, step.started);
    let hold = &step.ops["hold"];
    assert!(hold.latency_ms.p50 >= 300.0, "latency includes the server's delay: {hold:?}");
    assert!(hold.latency_ms.max < 1000.0, "started requests were not delayed: {hold:?}");
    assert_eq!(report.summary.accepted_reservations.accepted, step.started);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_service_does_not_slow_the_arrivals() {
    let addr = slow_api(Duration::from_millis(400)).await;
    let (args, out) = args(addr, &["--rate", "50", "--duration", "2s"]);
    let report = run_load(&args, std::future::pending()).await.expect("run");
    let _ = std::fs::remove_dir_all(&out);
    let step = &report.summary.steps[0];
    assert_eq!((step.scheduled, step.started, step.dropped, step.responses), (100, 100, 0, 100));
    // Arrivals kept to 50/s: the last answers finish about 400 ms after the 2 s window.
    assert!((35.0..=50.0).contains(&step.achieved_rps), "{step:?}");
    let hold = &step.ops["hold"];
    assert!(hold.latency_ms.p50 >= 400.0 && hold.latency_ms.p99 < 900.0, "{hold:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_ends_the_schedule_and_waits_for_answers() {
    let addr = slow_api(Duration::from_millis(100)).await;
    let (args, out) = args(addr, &["--rate", "100", "--duration", "10s"]);
    let report = run_load(&args, tokio::time::sleep(Duration::from_millis(500))).await.expect("run");
    let accepted = std::fs::read_to_string(out.join(output::ACCEPTED_JSONL)).expect("accepted.jsonl");
    let _ = std::fs::remove_dir_all(&out);
    assert!(report.summary.stopped_early);
    let step = &report.summary.steps[0];
    assert!((30..=70).contains(&step.scheduled), "about half a second of requests: {step:?}");
    assert_eq!(step.responses, step.started, "those in flight were awaited");
    assert_eq!(accepted.lines().count() as u64, step.started);
}

/// A fake of both APIs on one port: holds get `r1_<n>_fake` with position `0.<n>`, reads get
/// 200; the path and query of every GET is kept.
async fn api_with_reads() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let counter = Arc::new(AtomicU64::new(0));
    let reads = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&reads);
    let answer = move |method: Method, uri: Uri| {
        let n = counter.fetch_add(1, Ordering::Relaxed);
        let body = if method == Method::GET {
            seen.lock().expect("not poisoned").push(uri.to_string());
            (StatusCode::OK, r#"{"status":"held","position":"0.1"}"#.to_owned())
        } else {
            (StatusCode::CREATED, format!(r#"{{"reservation_id":"r1_{n}_fake","position":"0.{n}"}}"#))
        };
        async move { (body.0, [("content-type", "application/json")], body.1).into_response() }
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, Router::new().fallback(answer)).await });
    (addr, reads)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_go_to_the_query_target_and_ryw_waits_for_the_hold_position() {
    let (addr, reads) = api_with_reads().await;
    let query = format!("http://{addr}/");
    let mix = ["--mix", "hold=2,read=1,ryw=1", "--query-target", &query, "--prefix", "lt-drv"];
    let (args, out) = args(addr, &[&["--rate", "100", "--duration", "1s"][..], &mix].concat());
    let report = run_load(&args, std::future::pending()).await.expect("run");
    let accepted = std::fs::read_to_string(out.join(output::ACCEPTED_JSONL)).expect("accepted.jsonl");
    let _ = std::fs::remove_dir_all(&out);
    let step = &report.summary.steps[0];
    assert_eq!((step.started, step.responses), (100, 100), "{step:?}");
    let count = |op: &str| step.ops.get(op).map_or(0, |s| s.status.get("200").copied().unwrap_or(0));
    let (read, ryw) = (count("read"), count("ryw"));
    assert!(read > 5 && ryw > 5, "both reads were sent: {step:?}");
    assert_eq!(report.summary.settings.mix, "hold=2,confirm=0,cancel=0,read=1,ryw=1");

    let reads = reads.lock().expect("not poisoned").clone();
    assert_eq!(reads.len() as u64, read + ryw);
    let mut availability = 0;
    for uri in &reads {
        if let Some(rest) = uri.strip_prefix("/v1/reservations/r1_") {
            let (n, position) = rest.split_once("_fake?min_position=0.").expect("a position to wait for");
            assert_eq!(n, position, "the position of that reservation's hold answer: {uri}");
        } else {
            let rest = uri.strip_prefix("/v1/resources/lt-drv-r").expect("an availability read");
            let (resource, range) = rest.split_once("/availability?from=").expect("availability");
            let (from, to) = range.split_once("&to=").expect("a range");
            assert!(resource == "0" || resource == "1", "{uri}");
            assert!(from.len() == 10 && to.len() == 10 && from < to, "{uri}");
            availability += 1;
        }
    }
    assert_eq!(availability, read);
    let first: serde_json::Value =
        serde_json::from_str(accepted.lines().next().expect("a hold accepted")).expect("json");
    let id = first["reservation_id"].as_str().expect("an id");
    let n = id.strip_prefix("r1_").and_then(|r| r.strip_suffix("_fake")).expect("a fake id");
    assert_eq!(first["position"].as_str(), Some(format!("0.{n}").as_str()), "{first}");
}

/// Answers a hold `first` (202 or 503) the first time its idempotency key is seen and, when
/// the key's number is even, 201 with the same reservation every time after; odd keys are
/// answered `first` forever. Anything else (defining resources) is answered 201.
async fn deciding_later_api(first: StatusCode) -> SocketAddr {
    let seen: Arc<Mutex<std::collections::HashMap<String, u32>>> = Arc::default();
    let answer = move |uri: Uri, headers: axum::http::HeaderMap| {
        let seen = Arc::clone(&seen);
        async move {
            if uri.path() != "/v1/reservations" {
                return (StatusCode::CREATED, [("content-type", "application/json")], "{}".to_owned())
                    .into_response();
            }
            let key = headers.get("idempotency-key").and_then(|k| k.to_str().ok()).unwrap_or("").to_owned();
            let times = {
                let mut seen = seen.lock().expect("lock");
                let times = seen.entry(key.clone()).or_default();
                *times += 1;
                *times
            };
            let number: u64 = key.rsplit('-').next().and_then(|n| n.parse().ok()).unwrap_or(1);
            if times == 1 || number % 2 == 1 {
                let body = if first == StatusCode::ACCEPTED {
                    r#"{"command_id":"x","status":"pending","location":"/v1/commands/x"}"#
                } else {
                    r#"{"type":"https://holdfast.dev/problems/unavailable","status":503}"#
                };
                return (first, [("content-type", "application/json")], body.to_owned()).into_response();
            }
            let body = format!(
                r#"{{"reservation_id":"r1_{number:032x}_fake","status":"held","position":"0.{number}"}}"#
            );
            (StatusCode::CREATED, [("content-type", "application/json")], body).into_response()
        }
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, Router::new().fallback(answer)).await });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holds_answered_202_are_asked_again_until_decided() {
    let addr = deciding_later_api(StatusCode::ACCEPTED).await;
    let (args, out) = args(addr, &["--rate", "20", "--duration", "1s", "--audit-wait", "2s"]);
    let report = run_load(&args, std::future::pending()).await.expect("run");
    let _ = std::fs::remove_dir_all(&out);
    assert_eq!(report.summary.steps[0].ops["hold"].status.get("202"), Some(&20), "{:?}", report.summary);
    assert_eq!(
        report.settled.pending,
        PendingSettled { pending: 20, accepted: 10, rejected: 0, undecided: 10 }
    );
    assert_eq!(report.settled.unavailable, PendingSettled::default());
    let mut ids: Vec<&str> = report.accepted.iter().map(|a| a.reservation_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 10, "each even key's hold is accepted once: {ids:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holds_answered_503_are_asked_again_and_audited_like_202s() {
    let addr = deciding_later_api(StatusCode::SERVICE_UNAVAILABLE).await;
    let (args, out) = args(addr, &["--rate", "20", "--duration", "1s", "--audit-wait", "2s"]);
    let report = run_load(&args, std::future::pending()).await.expect("run");
    let pending = std::fs::read_to_string(out.join(crate::output::PENDING_JSONL)).expect("pending.jsonl");
    let _ = std::fs::remove_dir_all(&out);
    assert_eq!(report.summary.steps[0].ops["hold"].status.get("503"), Some(&20), "{:?}", report.summary);
    assert_eq!(
        report.settled.unavailable,
        PendingSettled { pending: 20, accepted: 10, rejected: 0, undecided: 10 }
    );
    assert_eq!(report.settled.pending, PendingSettled::default(), "no 202s");
    assert_eq!(report.summary.accepted_reservations.unavailable_holds, 20);
    assert_eq!(report.accepted.len(), 10, "the even keys' holds join the audit: {:?}", report.accepted);
    assert_eq!(pending.lines().count(), 20);
    assert!(pending.lines().all(|line| line.contains(r#""answered":"unavailable""#)), "{pending}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_answers_carry_their_partition_when_a_fault_moves_partitions() {
    let (addr, _) = api_with_reads().await;
    let flags =
        ["--rate", "50", "--duration", "1s", "--mix", "hold=2,confirm=1,read=1", "--prefix", "lt-hov"];
    let query = format!("http://{addr}/");
    let (mut args, out) = args(addr, &[&flags[..], &["--query-target", &query]].concat());
    let quiet = run_load(&args, std::future::pending()).await.expect("run");
    assert!(quiet.answers.is_empty(), "recorded only for the handover of a command fault");

    args.harness.faults = vec![crate::fault::FaultSpec::parse("kill-command@10s").expect("valid")];
    let report = run_load(&args, std::future::pending()).await.expect("run");
    let _ = std::fs::remove_dir_all(&out);
    let step = &report.summary.steps[0];
    let reads = step.ops.get("read").map_or(0, |r| r.count);
    assert_eq!(report.answers.len() as u64, step.responses - reads, "every command, no read: {step:?}");
    let partitions = args.harness.services.topics.partitions;
    let ours: Vec<i32> =
        ["lt-hov-r0", "lt-hov-r1"].iter().map(|r| partition_for(r.as_bytes(), partitions)).collect();
    for answer in &report.answers {
        assert!(ours.contains(&answer.partition), "{answer:?} not on {ours:?}");
        assert!(answer.sent_s < 1.0 && answer.sent_s <= answer.answered_s, "{answer:?}");
        assert_eq!(answer.status, Some(201));
    }
}
