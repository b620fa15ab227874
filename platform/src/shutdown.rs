//! Graceful shutdown: a token the services watch, and the `main` helper that cancels it on
//! SIGTERM or Ctrl-C and bounds how long draining may take.

use std::future::Future;
use std::time::Duration;

pub use tokio_util::sync::CancellationToken as Shutdown;

/// Why the process stopped before it could finish draining.
#[derive(Debug, thiserror::Error)]
#[error("shutdown did not finish within {0:?}; in-flight work was abandoned")]
pub struct GraceExceeded(pub Duration);

/// Resolves on SIGTERM or Ctrl-C. The handlers are installed when this is called, not when
/// the future is first polled, so a signal that arrives while the service starts is not lost.
#[must_use = "the returned future resolves on the signal"]
pub fn signal() -> impl Future<Output = ()> {
    #[cfg(unix)]
    let terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
    let ctrl_c = tokio::signal::ctrl_c();
    async move {
        #[cfg(unix)]
        let terminate = async move {
            match terminate {
                Ok(mut stream) => {
                    stream.recv().await;
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for SIGTERM");
                    std::future::pending::<()>().await;
                }
            }
        };
        #[cfg(not(unix))]
        let terminate = std::future::pending::<()>();
        tokio::select! {
            result = ctrl_c => match result {
                Ok(()) => tracing::info!("ctrl-c received, shutting down"),
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for ctrl-c");
                    std::future::pending::<()>().await;
                }
            },
            () = terminate => tracing::info!("SIGTERM received, shutting down"),
        }
    }
}

/// Runs a service until it ends by itself or a signal arrives; after a signal the service
/// gets `grace` to drain (its token is cancelled) before the process gives up on it.
///
/// # Errors
/// The service's own error, or [`GraceExceeded`] wrapped in `E` when draining took too long.
pub async fn run_until_signal<F, Fut, E>(grace: Duration, service: F) -> Result<(), E>
where
    F: FnOnce(Shutdown) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: From<GraceExceeded>,
{
    let signalled = signal();
    let token = Shutdown::new();
    let run = service(token.clone());
    tokio::pin!(run);
    tokio::select! {
        result = &mut run => return result,
        () = signalled => token.cancel(),
    }
    match tokio::time::timeout(grace, run).await {
        Ok(result) => result,
        Err(_) => Err(GraceExceeded(grace).into()),
    }
}
