//! Set-up before the open-model run: defining the workload's resources.
//!
//! This is a closed loop (a fixed number of requests at once, latency from the actual send):
//! it is not part of the benchmark, only reported next to it.

use std::time::Duration;

use futures::StreamExt as _;
use tokio::time::Instant;

use crate::LoadError;
use crate::client::{Answer, Target, problem_code};
use crate::record::OpStats;
use crate::workload::Workload;

/// Resources defined at once.
const DEFINE_CONCURRENCY: usize = 32;
/// How long a definition answered 503 (its append failed or was fenced, or the partition is
/// not restored yet: instances that just started still trade partitions) or not answered is
/// asked again with its idempotency key.
const DEFINE_PATIENCE: Duration = Duration::from_secs(60);
/// Pause between two such attempts.
const DEFINE_RETRY_AFTER: Duration = Duration::from_millis(250);

/// Defines every resource of the workload with `capacity`, [`DEFINE_CONCURRENCY`] at once. A
/// repeated definition (200) or one still being decided (202) is fine; one answered 503 or not
/// at all is asked again with the same idempotency key for up to [`DEFINE_PATIENCE`].
///
/// # Errors
/// The first resource the service refused or did not answer for.
pub async fn define_resources(
    target: &Target,
    workload: &Workload,
    capacity: u32,
    run_id: &str,
    quiet: bool,
) -> Result<OpStats, LoadError> {
    let started = Instant::now();
    let mut stats = OpStats::default();
    let mut answers = futures::stream::iter(0..workload.shape().resources)
        .map(|index| {
            let (key, body) = (format!("{run_id}-d{index}"), workload.define_body(index, capacity));
            async move {
                let patience = Instant::now() + DEFINE_PATIENCE;
                loop {
                    let sent = Instant::now();
                    let answer = target.define(key.clone(), body.clone()).await;
                    let undecided =
                        matches!(answer, Answer::Response { status: 503, .. } | Answer::Transport(_));
                    if !undecided || Instant::now() >= patience {
                        return (index, sent.elapsed(), answer);
                    }
                    tokio::time::sleep(DEFINE_RETRY_AFTER).await;
                }
            }
        })
        .buffer_unordered(DEFINE_CONCURRENCY);
    while let Some((index, latency, answer)) = answers.next().await {
        stats.record(latency, &answer);
        let reason = match &answer {
            Answer::Response { status: 200..=202, .. } => continue,
            Answer::Response { status, problem, .. } => {
                format!("status {status} {}", problem.as_deref().map_or("", problem_code))
            }
            Answer::Transport(kind) => format!("no answer ({kind})"),
        };
        return Err(LoadError::Define { resource: workload.resource_id(index).to_owned(), reason });
    }
    if !quiet {
        eprintln!("defined {} resources in {:.1} s", stats.responses(), started.elapsed().as_secs_f64());
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse as _;
    use rand::SeedableRng as _;
    use rand::rngs::SmallRng;

    use super::*;
    use crate::workload::{Mix, Shape};

    /// Answers each definition 503 the first `failures` times its idempotency key is seen,
    /// then 201.
    async fn flaky_api(failures: u32) -> (String, Arc<Mutex<HashMap<String, u32>>>) {
        let seen: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
        let counts = Arc::clone(&seen);
        let answer = move |headers: HeaderMap| {
            let seen = Arc::clone(&seen);
            async move {
                let key =
                    headers.get("idempotency-key").and_then(|k| k.to_str().ok()).unwrap_or("").to_owned();
                let times = {
                    let mut seen = seen.lock().expect("lock");
                    let times = seen.entry(key).or_default();
                    *times += 1;
                    *times
                };
                let status =
                    if times <= failures { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::CREATED };
                (status, [("content-type", "application/json")], "{}").into_response()
            }
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(async move { axum::serve(listener, axum::Router::new().fallback(answer)).await });
        (format!("http://{addr}"), counts)
    }

    fn workload(resources: u32) -> Workload {
        let shape = Shape {
            prefix: "lt-setup".to_owned(),
            resources,
            zipf: 0.0,
            mix: Mix { hold: 1, confirm: 0, cancel: 0, read: 0, ryw: 0 },
            days_max: 1,
            date_window: 1,
            first_day: time::macros::date!(2031 - 01 - 01),
            quantity_max: 1,
            hold_seconds: None,
        };
        Workload::new(shape, SmallRng::seed_from_u64(1)).expect("a workload")
    }

    #[tokio::test]
    async fn definitions_answered_503_are_asked_again_with_their_key() {
        let (base, seen) = flaky_api(2).await;
        let target =
            Target::new(crate::client::build(8, Duration::from_secs(5), "t").expect("client"), &base);
        let stats =
            define_resources(&target, &workload(3), 5, "run", true).await.expect("defined in the end");
        assert_eq!(stats.status.get(&201), Some(&3), "the final answers are recorded: {:?}", stats.status);
        let seen = seen.lock().expect("lock");
        assert_eq!(seen.len(), 3, "one key per resource: {seen:?}");
        assert!(seen.values().all(|times| *times == 3), "two 503s, then 201, same key: {seen:?}");
    }
}
