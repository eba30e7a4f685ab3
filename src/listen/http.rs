//! Serving the admin router over [`super::incoming`] connections with hyper: HTTP/1.1
//! with a header timeout (a client that sends half a request is closed) and HTTP/2
//! with a stream limit and keepalive, draining open calls on shutdown.

use std::future::Future;
use std::io;
use std::time::Duration;

use futures::{Stream, StreamExt};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tower::ServiceExt;

use super::Conn;

/// How calls on one connection are bounded.
#[derive(Debug, Clone, Copy)]
pub struct CallLimits {
    /// For the whole of a request's headers.
    pub header_timeout: Duration,
    /// HTTP/2 streams open at once on one connection.
    pub max_streams: u32,
    pub keepalive_interval: Duration,
    pub keepalive_timeout: Duration,
}

/// Serves `router` on every connection until `shutdown`, then waits for open calls.
pub async fn serve(
    mut incoming: impl Stream<Item = io::Result<Conn>> + Unpin,
    router: axum::Router,
    limits: CallLimits,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_streams)
        .keep_alive_interval(limits.keepalive_interval)
        .keep_alive_timeout(limits.keepalive_timeout);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let conn = tokio::select! {
            conn = incoming.next() => conn,
            _ = &mut shutdown => break,
        };
        let Some(Ok(conn)) = conn else {
            break;
        };
        let service = router
            .clone()
            .map_request(|req: http::Request<hyper::body::Incoming>| {
                req.map(axum::body::Body::new)
            });
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(conn), TowerToHyperService::new(service))
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "admin connection ended");
            }
        });
    }
    graceful.shutdown().await;
}
