//! The driver against a tiny fake command API that answers every request after a fixed delay:
//! the open model must keep its schedule, count drops, and measure from intended starts.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::{StatusCode, Uri};
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

fn args(addr: SocketAddr, extra: &[&str]) -> (RunArgs, std::path::PathBuf) {
    let out = std::env::temp_dir().join(format!("holdfast-load-driver-{:08x}", rand::random::<u32>()));
    let target = format!("http://{addr}");
    let mut flags = vec![
        "--target",
        &target,
        "--warmup",
        "0s",
        "--resources",
        "2",
        "--mix",
        "hold=1",
        "--quiet",
        "--out",
    ];
    let out_text = out.to_str().expect("utf-8 temp dir").to_owned();
    flags.push(&out_text);
    flags.extend_from_slice(extra);
    (RunArgs::from_flags(flags).expect("valid flags"), out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_beyond_the_in_flight_limit_are_dropped_not_delayed() {
    let addr = slow_api(Duration::from_millis(300)).await;
    let (args, out) = args(addr, &["--rate", "100", "--duration", "1s", "--max-in-flight", "10"]);
    let report = run(&args, std::future::pending()).await.expect("run");
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
    let report = run(&args, std::future::pending()).await.expect("run");
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
    let report = run(&args, tokio::time::sleep(Duration::from_millis(500))).await.expect("run");
    let accepted = std::fs::read_to_string(out.join(output::ACCEPTED_JSONL)).expect("accepted.jsonl");
    let _ = std::fs::remove_dir_all(&out);
    assert!(report.summary.stopped_early);
    let step = &report.summary.steps[0];
    assert!((30..=70).contains(&step.scheduled), "about half a second of requests: {step:?}");
    assert_eq!(step.responses, step.started, "those in flight were awaited");
    assert_eq!(accepted.lines().count() as u64, step.started);
}
