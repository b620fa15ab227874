//! What every service binary shares: serving HTTP with graceful shutdown, the start-up error
//! type, and the thin `main` that parses configuration, initialises telemetry and runs the
//! service until SIGTERM.

use std::future::Future;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
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

/// Longest a client may take to send a request's headers. A connection that trickles them
/// (slowloris) is closed after this, whatever its rate.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Most bytes of request headers read before a request is refused. HTTP/1 requests past it
/// get hyper's bare 431; the services answer smaller floods with a problem+json 431 of their
/// own (this is the buffer; [`MAX_REQUEST_HEADER_BYTES`] is the policy).
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// Things in progress at once (commands in flight, requests, streams), counted so that a
/// bound can refuse the next one instead of queueing it. Clones share the count.
#[derive(Debug, Clone, Default)]
pub struct InFlight(Arc<AtomicUsize>);

/// One admitted thing; it leaves the count when dropped.
#[derive(Debug)]
pub struct Admitted(Arc<AtomicUsize>);

impl InFlight {
    /// Admits one more if fewer than `max` are in progress.
    #[must_use]
    pub fn try_admit(&self, max: usize) -> Option<Admitted> {
        let previous = self.0.fetch_add(1, Ordering::AcqRel);
        if previous >= max {
            self.0.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Admitted(Arc::clone(&self.0)))
    }

    /// How many are in progress now.
    #[must_use]
    pub fn current(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Most bytes of request headers (names and values) a service takes; more is answered 431.
pub const MAX_REQUEST_HEADER_BYTES: usize = 16 * 1024;

/// Why a request's `headers` are refused (431): more than [`MAX_REQUEST_HEADER_BYTES`] of
/// names and values together. `None` when they fit.
#[must_use]
pub fn headers_too_large(headers: &axum::http::HeaderMap) -> Option<String> {
    let bytes: usize = headers.iter().map(|(name, value)| name.as_str().len() + value.len()).sum();
    (bytes > MAX_REQUEST_HEADER_BYTES)
        .then(|| format!("the headers take {bytes} bytes; at most {MAX_REQUEST_HEADER_BYTES} are read"))
}

/// Serves `router` on `listener` (HTTP/1.1 and HTTP/2) until `shutdown` is cancelled, then
/// stops accepting and lets in-flight requests finish. Headers must arrive within
/// [`HEADER_READ_TIMEOUT`] and fit in [`MAX_HEADER_BYTES`].
///
/// # Errors
/// When the listener's address cannot be read.
pub async fn serve(listener: TcpListener, router: Router, shutdown: Shutdown) -> std::io::Result<()> {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use hyper_util::server::conn::auto;
    use hyper_util::server::graceful::GracefulShutdown;
    use hyper_util::service::TowerToHyperService;

    let addr = listener.local_addr()?;
    tracing::info!(%addr, "listening");
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_HEADER_BYTES);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(MAX_HEADER_BYTES).unwrap_or(u32::MAX));
    let graceful = GracefulShutdown::new();
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        // Answers are small and written at once: never hold one back for the peer's ACK (Nagle).
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        let service = TowerToHyperService::new(router.clone());
        let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service).into_owned();
        let connection = graceful.watch(connection);
        // One task per connection, as any server has; `graceful` waits for them on shutdown.
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
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

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use super::*;

    #[test]
    fn in_flight_admits_up_to_its_bound_and_dropping_makes_room() {
        let in_flight = InFlight::default();
        let (a, b) = (in_flight.try_admit(2), in_flight.try_admit(2));
        assert!(a.is_some() && b.is_some());
        assert!(in_flight.try_admit(2).is_none(), "the bound");
        assert_eq!(in_flight.current(), 2, "a refusal leaves the count as it was");
        drop(a);
        assert!(in_flight.clone().try_admit(2).is_some(), "room again, through a clone");
        assert_eq!(in_flight.current(), 1, "the admitted guard of the clone was dropped at once");
    }

    async fn server() -> (SocketAddr, Shutdown, tokio::task::JoinHandle<std::io::Result<()>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bound");
        let addr = listener.local_addr().expect("address");
        let shutdown = Shutdown::new();
        let router = Router::new().route("/", get(|| async { "ok" }));
        let handle = tokio::spawn(serve(listener, router, shutdown.clone()));
        (addr, shutdown, handle)
    }

    /// Reads until the peer closes (or `within` passes); returns what was read.
    async fn read_to_close(stream: &mut TcpStream, within: Duration) -> Option<Vec<u8>> {
        let mut answer = Vec::new();
        tokio::time::timeout(within, stream.read_to_end(&mut answer)).await.ok()?.ok()?;
        Some(answer)
    }

    #[tokio::test]
    async fn a_client_trickling_its_headers_is_cut_off() {
        let (addr, shutdown, handle) = server().await;
        let mut stream = TcpStream::connect(addr).await.expect("connected");
        stream.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.expect("sent");
        let started = Instant::now();
        // One header byte a second, for longer than the timeout allows.
        let trickle = async {
            for _ in 0..(HEADER_READ_TIMEOUT.as_secs() + 5) {
                tokio::time::sleep(Duration::from_secs(1)).await;
                if stream.write_all(b"x").await.is_err() {
                    return;
                }
            }
        };
        trickle.await;
        let closed = read_to_close(&mut stream, Duration::from_secs(5)).await;
        assert!(closed.is_some(), "the connection is closed");
        assert!(started.elapsed() < HEADER_READ_TIMEOUT + Duration::from_secs(6));
        shutdown.cancel();
        handle.await.expect("joined").expect("served");
    }

    #[tokio::test]
    async fn headers_past_the_buffer_are_refused_with_431() {
        let (addr, shutdown, handle) = server().await;
        let mut stream = TcpStream::connect(addr).await.expect("connected");
        let flood =
            format!("GET / HTTP/1.1\r\nHost: x\r\nX-Flood: {}\r\n\r\n", "a".repeat(MAX_HEADER_BYTES * 2));
        // The server may stop reading (and close) before all of it is written.
        let _ = stream.write_all(flood.as_bytes()).await;
        let answer = read_to_close(&mut stream, Duration::from_secs(10)).await.unwrap_or_default();
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
        // A normal request on a new connection is still served.
        let mut stream = TcpStream::connect(addr).await.expect("connected");
        stream.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.expect("sent");
        let answer = read_to_close(&mut stream, Duration::from_secs(10)).await.expect("answered");
        assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"));
        shutdown.cancel();
        handle.await.expect("joined").expect("served");
    }
}
