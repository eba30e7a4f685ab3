//! A connection that must keep talking: it fails with `TimedOut` when its first bytes
//! (an HTTP/2 preface, a request's start) do not come within the handshake timeout, or
//! when it then stays silent longer than the idle timeout.
//!
//! Silence is measured on reads: a live HTTP/2 peer answers the server's keepalive
//! PINGs, so an ADS stream with nothing to say is never idle. (An admin call waiting
//! for ACKs reads nothing either: the idle timeout must be longer than such a wait.)

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// What a connection must do, and by when.
#[derive(Debug, Clone, Copy)]
pub struct Deadlines {
    /// Until `first_bytes` have been read.
    pub handshake: Duration,
    /// Bytes that end the handshake phase (24 for HTTP/2's preface).
    pub first_bytes: usize,
    /// Longest silence after that.
    pub idle: Duration,
}

pub struct Guarded<IO> {
    io: IO,
    deadlines: Deadlines,
    read: usize,
    timer: Pin<Box<Sleep>>,
}

impl<IO> Guarded<IO> {
    pub fn new(io: IO, deadlines: Deadlines) -> Self {
        let timer = Box::pin(tokio::time::sleep(deadlines.handshake));
        Guarded {
            io,
            deadlines,
            read: 0,
            timer,
        }
    }

    pub fn get_ref(&self) -> &IO {
        &self.io
    }

    /// `read` bytes came in. The handshake deadline stands
    /// however the first bytes trickle in; after them, each activity pushes the idle
    /// deadline out.
    fn progress(&mut self, read: usize) {
        self.read = self.read.saturating_add(read);
        if self.read >= self.deadlines.first_bytes {
            let idle = self.deadlines.idle;
            self.timer.as_mut().reset(Instant::now() + idle);
        }
    }

    fn expired(&mut self, cx: &mut Context<'_>) -> Option<io::Error> {
        self.timer.as_mut().poll(cx).is_ready().then(|| {
            let what = match self.read >= self.deadlines.first_bytes {
                true => "idle timeout",
                false => "handshake timeout",
            };
            io::Error::new(io::ErrorKind::TimedOut, what)
        })
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Guarded<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let read = buf.filled().len() - before;
                if read > 0 {
                    self.progress(read);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => match self.expired(cx) {
                Some(error) => Poll::Ready(Err(error)),
                None => Poll::Pending,
            },
            other => other,
        }
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Guarded<IO> {
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
        self.io.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const QUICK: Deadlines = Deadlines {
        handshake: Duration::from_millis(200),
        first_bytes: 4,
        idle: Duration::from_millis(400),
    };

    #[tokio::test(start_paused = true)]
    async fn a_silent_peer_times_out_in_the_handshake() {
        let (near, _far) = tokio::io::duplex(64);
        let mut guarded = Guarded::new(near, QUICK);
        let started = Instant::now();
        let e = guarded.read(&mut [0; 8]).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert_eq!(e.to_string(), "handshake timeout");
        assert!(started.elapsed() >= QUICK.handshake);
    }

    #[tokio::test(start_paused = true)]
    async fn a_peer_that_talks_then_stops_times_out_as_idle() {
        let (near, mut far) = tokio::io::duplex(64);
        let mut guarded = Guarded::new(near, QUICK);
        far.write_all(b"PRI * HTTP/2").await.unwrap();
        let mut buf = [0; 16];
        assert!(guarded.read(&mut buf).await.unwrap() > 0);
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_millis(150)).await;
            far.write_all(b"ping").await.unwrap();
            assert_eq!(
                guarded.read(&mut buf).await.unwrap(),
                4,
                "talking keeps it open"
            );
        }
        let e = guarded.read(&mut buf).await.unwrap_err();
        assert_eq!(e.to_string(), "idle timeout");
    }
}
