//! Start-up work that must eventually succeed (topic provisioning, migrations): retried
//! with capped exponential backoff until it does or the service shuts down.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use crate::shutdown::Shutdown;

/// Calls `attempt` until it succeeds, waiting 200 ms, 400 ms, … up to 5 s between tries and
/// logging each failure under `what`. Returns `None` as soon as `shutdown` is cancelled, even
/// in the middle of an attempt (which is dropped).
pub async fn until_ok<T, E, F, Fut>(what: &str, shutdown: &Shutdown, mut attempt: F) -> Option<T>
where
    E: Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut backoff = Duration::from_millis(200);
    loop {
        let outcome = tokio::select! {
            () = shutdown.cancelled() => return None,
            outcome = attempt() => outcome,
        };
        match outcome {
            Ok(value) => return Some(value),
            Err(error) => tracing::warn!(%error, retry_in = ?backoff, "{what} failed"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return None,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}
