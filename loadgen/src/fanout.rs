//! The raw fan-out baseline: the same bytes written to N plain loopback TCP
//! connections (a sink that only reads), timed from the first write until every byte
//! has been read. coalmine's push throughput is reported as a ratio of this, which
//! holds on a noisy machine where absolute numbers do not.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore};

const CHUNK: usize = 64 * 1024;

/// Where the reading ends live: in this process, or (when the open-files limit cannot
/// hold both ends of every connection) in a child process running [`run_sink`].
#[derive(Debug)]
pub enum Sink {
    InProcess,
    /// A command whose stdout prints `port P`, then `done` once it has read everything.
    Process(std::process::Command),
}

/// Writes `total_bytes`, split evenly, to `conns` connections; returns how long it took
/// until the sink had read them all (connection set-up not included).
pub async fn measure(conns: usize, total_bytes: u64, sink: Sink) -> anyhow::Result<Duration> {
    let conns = conns.max(1);
    let per_conn = (total_bytes / conns as u64).max(1);
    let expected = per_conn * conns as u64;
    let read = Arc::new(AtomicU64::new(0));
    let done = Arc::new(Notify::new());
    let (addr, mut child) = match sink {
        Sink::InProcess => {
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            let addr = listener.local_addr()?;
            let (read, done) = (read.clone(), done.clone());
            tokio::spawn(accept_all(listener, conns, read, done, expected));
            (addr, None)
        }
        Sink::Process(mut command) => {
            command.arg(format!("{conns}:{expected}"));
            let mut child = tokio::process::Command::from(command)
                .stdout(std::process::Stdio::piped())
                .kill_on_drop(true)
                .spawn()?;
            let stdout = child.stdout.take().context("sink stdout")?;
            let mut lines = BufReader::new(stdout).lines();
            let line = lines.next_line().await?.unwrap_or_default();
            let port: u16 = line
                .strip_prefix("port ")
                .and_then(|p| p.parse().ok())
                .with_context(|| format!("sink said {line:?}"))?;
            let (read, done) = (read.clone(), done.clone());
            tokio::spawn(async move {
                if let Ok(Some(_)) = lines.next_line().await {
                    read.store(expected, Ordering::Release);
                    done.notify_one();
                }
            });
            (
                std::net::SocketAddr::from(([127, 0, 0, 1], port)),
                Some(child),
            )
        }
    };

    let limit = Arc::new(Semaphore::new(256));
    let mut connecting = tokio::task::JoinSet::new();
    for _ in 0..conns {
        let permit = limit.clone().acquire_owned().await?;
        connecting.spawn(async move {
            let stream = TcpStream::connect(addr).await;
            drop(permit);
            stream
        });
    }
    let mut streams = Vec::with_capacity(conns);
    while let Some(stream) = connecting.join_next().await {
        streams.push(stream??);
    }

    let buf: Arc<[u8]> = vec![0x5a; CHUNK].into();
    let waiting = done.notified();
    tokio::pin!(waiting);
    waiting.as_mut().enable();
    let start = Instant::now();
    let mut writers = tokio::task::JoinSet::new();
    for mut stream in streams {
        let buf = buf.clone();
        writers.spawn(async move {
            let mut left = per_conn;
            while left > 0 {
                let n = left.min(CHUNK as u64) as usize;
                stream.write_all(&buf[..n]).await?;
                left -= n as u64;
            }
            stream.flush().await?;
            std::io::Result::Ok(stream)
        });
    }
    let mut open = Vec::with_capacity(conns);
    while let Some(written) = writers.join_next().await {
        open.push(written??);
    }
    if read.load(Ordering::Acquire) < expected {
        waiting.await;
    }
    let elapsed = start.elapsed();
    drop(open);
    if let Some(child) = child.as_mut() {
        let _ = child.kill().await;
    }
    Ok(elapsed)
}

/// The sink as its own process: `conns:expected` from the command line; prints
/// `port P`, then `done` once `expected` bytes have been read.
pub async fn run_sink(spec: &str) -> anyhow::Result<()> {
    let (conns, expected) = spec.split_once(':').context("CONNS:BYTES")?;
    let (conns, expected): (usize, u64) = (conns.parse()?, expected.parse()?);
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    println!("port {}", listener.local_addr()?.port());
    let read = Arc::new(AtomicU64::new(0));
    let done = Arc::new(Notify::new());
    let waiting = done.notified();
    tokio::pin!(waiting);
    waiting.as_mut().enable();
    tokio::spawn(accept_all(
        listener,
        conns,
        read.clone(),
        done.clone(),
        expected,
    ));
    if read.load(Ordering::Acquire) < expected {
        waiting.await;
    }
    println!("done");
    Ok(())
}

async fn accept_all(
    listener: TcpListener,
    conns: usize,
    read: Arc<AtomicU64>,
    done: Arc<Notify>,
    expected: u64,
) {
    let mut readers = tokio::task::JoinSet::new();
    for _ in 0..conns {
        let Ok((mut stream, _)) = listener.accept().await else {
            return;
        };
        let (read, done) = (read.clone(), done.clone());
        readers.spawn(async move {
            let mut buf = vec![0u8; 8 * 1024];
            while let Ok(n) = stream.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                let total = read.fetch_add(n as u64, Ordering::AcqRel) + n as u64;
                if total >= expected {
                    done.notify_one();
                }
            }
        });
    }
    while readers.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn every_byte_reaches_the_sink() {
        let elapsed = super::measure(8, 1 << 20, super::Sink::InProcess)
            .await
            .expect("fan-out");
        assert!(elapsed.as_nanos() > 0);
    }
}
