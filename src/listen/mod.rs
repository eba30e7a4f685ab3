//! Accepting connections on the xDS and admin ports: TLS (and the client certificate's
//! [`Identity`] under mutual TLS), a cap on open connections, and deadlines for a
//! connection to start talking and to keep talking (see [`guard`]).
//!
//! The accept loop never waits on a client: a connection over the cap is closed at
//! once (and counted), and TLS handshakes run in their own tasks under the handshake
//! timeout, so a thousand silent sockets cost a thousand small tasks, then nothing.

pub mod bearer;
pub mod guard;
pub mod http;
pub mod identity;
pub mod tls;

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;
use tracing::{debug, warn};

pub use guard::Deadlines;
pub use identity::Identity;

use crate::metrics::{Metrics, Port, Refusal};

/// Everything `coalmine serve` was told about its two ports.
#[derive(Debug, Clone)]
pub struct ListenOptions {
    pub xds_tls: Option<tls::TlsFiles>,
    pub admin_tls: Option<tls::TlsFiles>,
    /// Serve xDS on a non-loopback address without client certificates.
    pub insecure_xds: bool,
    pub xds: Limits,
    pub admin: Limits,
    /// HTTP/2 streams at once on one connection.
    pub max_streams: u32,
    pub keepalive_interval: Duration,
    pub keepalive_timeout: Duration,
}

impl ListenOptions {
    /// Whether proxies must present certificates (and claim only their node ids).
    pub fn mutual_tls(&self) -> bool {
        self.xds_tls.as_ref().is_some_and(|t| t.client_ca.is_some())
    }
}

/// What one port allows.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    /// For the TLS handshake and the first bytes (an HTTP/2 preface, a request line).
    pub handshake_timeout: Duration,
    /// Longest silence of an open connection.
    pub idle_timeout: Duration,
}

/// Who is on the other end of a connection; a request extension on every call.
#[derive(Debug, Clone)]
pub struct Peer {
    pub addr: SocketAddr,
    /// The client certificate's names, under mutual TLS.
    pub identity: Option<Arc<Identity>>,
}

/// How a port is served.
pub struct Serving {
    pub port: Port,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub limits: Limits,
    /// Bytes that end the handshake phase (24, HTTP/2's preface, on xDS).
    pub first_bytes: usize,
}

/// One accepted connection: plain or TLS, guarded, holding its slot under the cap.
pub struct Conn {
    io: guard::Guarded<Io>,
    peer: Peer,
    _slot: OwnedSemaphorePermit,
}

enum Io {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// The connections accepted on `listener`, ready for tonic or hyper. The loop ends
/// when the stream is dropped.
pub fn incoming(
    listener: TcpListener,
    serving: Serving,
    metrics: Arc<Metrics>,
) -> ReceiverStream<io::Result<Conn>> {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(accept_loop(listener, serving, metrics, tx));
    ReceiverStream::new(rx)
}

async fn accept_loop(
    listener: TcpListener,
    serving: Serving,
    metrics: Arc<Metrics>,
    tx: mpsc::Sender<io::Result<Conn>>,
) {
    let slots = Arc::new(Semaphore::new(serving.limits.max_connections));
    let serving = Arc::new(serving);
    let mut last_warning: Option<tokio::time::Instant> = None;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = tx.closed() => return,
        };
        let (tcp, addr) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors, most likely: back off instead of spinning.
                warn!(port = serving.port.name(), error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            metrics.refused(serving.port, Refusal::Limit);
            if last_warning.is_none_or(|at| at.elapsed() > Duration::from_secs(10)) {
                last_warning = Some(tokio::time::Instant::now());
                warn!(
                    port = serving.port.name(),
                    limit = serving.limits.max_connections,
                    "connection limit reached: closing new connections (see --max-connections)"
                );
            }
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let (serving, metrics, tx) = (serving.clone(), metrics.clone(), tx.clone());
        tokio::spawn(async move {
            if let Some(conn) = handshake(tcp, addr, slot, &serving, &metrics).await {
                let _ = tx.send(Ok(conn)).await;
            }
        });
    }
}

async fn handshake(
    tcp: TcpStream,
    addr: SocketAddr,
    slot: OwnedSemaphorePermit,
    serving: &Serving,
    metrics: &Metrics,
) -> Option<Conn> {
    let deadlines = Deadlines {
        handshake: serving.limits.handshake_timeout,
        first_bytes: serving.first_bytes,
        idle: serving.limits.idle_timeout,
    };
    let (io, identity) = match &serving.tls {
        None => (Io::Plain(tcp), None),
        Some(config) => {
            let acceptor = tokio_rustls::TlsAcceptor::from(config.clone());
            let accepted =
                tokio::time::timeout(serving.limits.handshake_timeout, acceptor.accept(tcp)).await;
            let tls = match accepted {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    metrics.refused(serving.port, Refusal::Tls);
                    debug!(port = serving.port.name(), %addr, error = %e, "TLS handshake failed");
                    return None;
                }
                Err(_) => {
                    metrics.refused(serving.port, Refusal::Tls);
                    debug!(port = serving.port.name(), %addr, "TLS handshake timed out");
                    return None;
                }
            };
            let identity = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .and_then(|cert| Identity::of_certificate(cert))
                .map(Arc::new);
            (Io::Tls(Box::new(tls)), identity)
        }
    };
    Some(Conn {
        io: guard::Guarded::new(io, deadlines),
        peer: Peer { addr, identity },
        _slot: slot,
    })
}

impl tonic::transport::server::Connected for Conn {
    type ConnectInfo = Peer;

    fn connect_info(&self) -> Peer {
        self.peer.clone()
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.get_ref().is_write_vectored()
    }
}

impl AsyncRead for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
            Io::Tls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Io::Plain(tcp) => Pin::new(tcp).poll_write(cx, buf),
            Io::Tls(tls) => Pin::new(tls.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
            Io::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(tcp) => Pin::new(tcp).poll_shutdown(cx),
            Io::Tls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Io::Plain(tcp) => Pin::new(tcp).poll_write_vectored(cx, bufs),
            Io::Tls(tls) => Pin::new(tls.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Io::Plain(tcp) => tcp.is_write_vectored(),
            Io::Tls(tls) => tls.is_write_vectored(),
        }
    }
}
