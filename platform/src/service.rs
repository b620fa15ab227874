//! What every service binary shares: serving HTTP with graceful shutdown, the start-up error
//! type, and the thin `main` that parses configuration, initialises telemetry and runs the
//! service until SIGTERM.

use std::future::Future;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;

use crate::shutdown::{self, GraceExceeded, Shutdown};

/// Why a service stopped with an error. Each variant says what an operator should do.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The listener could not be bound or served; check the port and the address.
    #[error("http server failed: {0}")]
    Io(#[from] std::io::Error),
    /// A Kafka client could not be created; check the Kafka settings.
    #[error("kafka client error: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// A PostgreSQL pool could not be set up; check the URLs.
    #[error("postgres error: {0}")]
    Postgres(#[from] sqlx::Error),
    /// A Redis client could not be set up; check the URLs and cluster mode.
    #[error("redis error: {0}")]
    Redis(#[from] redis::RedisError),
    /// The token keys could not be read; fix the `HOLDFAST_AUTH_*` settings.
    #[error("token keys: {0}")]
    Auth(#[from] crate::auth::KeyError),
    /// Draining after SIGTERM took longer than the grace period; in-flight work was abandoned.
    #[error(transparent)]
    Grace(#[from] GraceExceeded),
    /// Something unexpected; the context says where.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Serves `router` on `listener` until `shutdown` is cancelled, then stops accepting and lets
/// in-flight requests finish.
///
/// # Errors
/// When the server fails.
pub async fn serve(listener: TcpListener, router: Router, shutdown: Shutdown) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "listening");
    // Answers are small and written at once: never hold one back for the peer's ACK (Nagle).
    let listener = listener.tap_io(|stream| {
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
    });
    axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

/// The body of every service's `main`: bind `listen`, run `service` until it ends or a signal
/// arrives, and turn the outcome into an exit code (logging the error that ended it).
pub async fn main<F, Fut>(name: &'static str, listen: SocketAddr, grace: Duration, service: F) -> ExitCode
where
    F: FnOnce(TcpListener, Shutdown) -> Fut,
    Fut: Future<Output = Result<(), ServiceError>>,
{
    let listener = match TcpListener::bind(listen).await {
        Ok(listener) => listener,
        Err(error) => {
            tracing::error!(service = name, %listen, %error, "cannot bind the listen address");
            return ExitCode::FAILURE;
        }
    };
    match shutdown::run_until_signal(grace, |token| service(listener, token)).await {
        Ok(()) => {
            tracing::info!(service = name, "stopped");
            ExitCode::SUCCESS
        }
        Err(error) => {
            tracing::error!(service = name, %error, "stopped with an error");
            ExitCode::FAILURE
        }
    }
}
