//! A test backend: an HTTP/1.1 keep-alive server on 127.0.0.1 that answers every
//! request 200 with its version as the body, echoing what it received in headers
//! (`x-backend-version`, `x-request-path`, `x-request-host`, `x-request-method`),
//! and recording requests so tests can check rewrites, header edits and mirrors.
//! It can be told to fail a fraction of requests or to answer slowly.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{IpAddr, Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use super::http::{read_body, read_head, wants_close, Headers};

/// How many received requests a backend keeps.
const KEEP: usize = 10_000;

/// One request as the backend received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub headers: Headers,
    pub body: Vec<u8>,
}

struct State {
    version: String,
    stop: AtomicBool,
    /// Requests failed per thousand, spread evenly.
    fail_permille: AtomicU32,
    fail_status: AtomicU32,
    delay_ms: AtomicU64,
    hits: AtomicU64,
    received: Mutex<Vec<Received>>,
}

/// A running backend; stops (closing every connection) on drop.
pub struct Backend {
    ip: IpAddr,
    port: u16,
    state: Arc<State>,
    accept: Mutex<Option<thread::JoinHandle<()>>>,
}

impl Backend {
    /// Starts on a free port of 127.0.0.1.
    pub fn start(version: &str) -> Backend {
        Self::start_on(0, version)
    }

    /// Starts on 127.0.0.1:`port` (0 for any), e.g. to come back on the same port.
    pub fn start_on(port: u16, version: &str) -> Backend {
        Self::start_on_addr(IpAddr::from([127, 0, 0, 1]), port, version)
    }

    /// Starts on `ip`:`port` (any loopback address 127.x.y.z works on Linux), e.g. to
    /// give pods distinct addresses on one port.
    pub fn start_on_addr(ip: IpAddr, port: u16, version: &str) -> Backend {
        let listener = TcpListener::bind((ip, port))
            .unwrap_or_else(|e| panic!("backend {version}: bind {ip}:{port}: {e}"));
        let port = listener.local_addr().expect("bound").port();
        let state = Arc::new(State {
            version: version.to_string(),
            stop: AtomicBool::new(false),
            fail_permille: AtomicU32::new(0),
            fail_status: AtomicU32::new(500),
            delay_ms: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            received: Mutex::new(Vec::new()),
        });
        let st = state.clone();
        let accept = thread::spawn(move || {
            for conn in listener.incoming() {
                if st.stop.load(Ordering::Relaxed) {
                    break;
                }
                if let Ok(conn) = conn {
                    let st = st.clone();
                    thread::spawn(move || serve_conn(conn, &st));
                }
            }
        });
        Backend {
            ip,
            port,
            state,
            accept: Mutex::new(Some(accept)),
        }
    }

    pub fn ip(&self) -> IpAddr {
        self.ip
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn version(&self) -> &str {
        &self.state.version
    }

    /// Requests answered so far (failed ones included).
    pub fn hits(&self) -> u64 {
        self.state.hits.load(Ordering::Relaxed)
    }

    /// The requests received so far (the last 10,000).
    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    /// Fails this fraction (0.0..=1.0) of the following requests, spread evenly.
    pub fn set_failure_rate(&self, rate: f64) {
        let permille = (rate.clamp(0.0, 1.0) * 1000.0).round() as u32;
        self.state.fail_permille.store(permille, Ordering::Relaxed);
    }

    /// The status of failed requests (500 unless changed).
    pub fn set_failure_status(&self, status: u16) {
        self.state
            .fail_status
            .store(status.into(), Ordering::Relaxed);
    }

    /// Waits this long before every answer.
    pub fn set_delay(&self, delay: Duration) {
        self.state
            .delay_ms
            .store(delay.as_millis() as u64, Ordering::Relaxed);
    }

    /// Stops accepting (the port is free on return) and closes every connection
    /// within a quarter second.
    pub fn stop(&self) {
        if !self.state.stop.swap(true, Ordering::Relaxed) {
            // Wake the accept loop.
            TcpStream::connect((self.ip, self.port)).ok();
        }
        if let Some(h) = self.accept.lock().unwrap().take() {
            h.join().ok();
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop();
    }
}

fn serve_conn(conn: TcpStream, st: &State) {
    conn.set_nodelay(true).ok();
    let mut writer = match conn.try_clone() {
        Ok(w) => w,
        Err(_) => return,
    };
    let mut reader = BufReader::new(conn);
    while !st.stop.load(Ordering::Relaxed) {
        // Wait for the next request in short slices, so a stop is seen quickly.
        reader
            .get_ref()
            .set_read_timeout(Some(Duration::from_millis(250)))
            .ok();
        match reader.fill_buf() {
            Ok([]) => break,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(_) => break,
        }
        reader
            .get_ref()
            .set_read_timeout(Some(Duration::from_secs(10)))
            .ok();
        match answer_one(&mut reader, &mut writer, st) {
            Ok(true) => {}
            Ok(false) | Err(_) => break,
        }
    }
    writer.shutdown(Shutdown::Both).ok();
}

/// Reads one request and answers it; `Ok(false)` when the connection should close.
fn answer_one(
    reader: &mut BufReader<TcpStream>,
    writer: &mut TcpStream,
    st: &State,
) -> io::Result<bool> {
    let Some((start, headers)) = read_head(reader)? else {
        return Ok(false);
    };
    let body = read_body(reader, &headers, false)?;
    let mut parts = start.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let host = headers.get("host").cloned().unwrap_or_default();
    let close = wants_close(&start, &headers);
    {
        let mut rec = st.received.lock().unwrap();
        if rec.len() >= KEEP {
            rec.remove(0);
        }
        rec.push(Received {
            method: method.clone(),
            path: path.clone(),
            headers,
            body,
        });
    }
    let n = st.hits.fetch_add(1, Ordering::Relaxed);
    let permille = u64::from(st.fail_permille.load(Ordering::Relaxed));
    let fail = (n + 1) * permille / 1000 != n * permille / 1000;
    let status = if fail {
        st.fail_status.load(Ordering::Relaxed)
    } else {
        200
    };
    let delay = st.delay_ms.load(Ordering::Relaxed);
    if delay > 0 {
        thread::sleep(Duration::from_millis(delay));
    }
    let body = if fail {
        format!("{} failed", st.version)
    } else {
        st.version.clone()
    };
    let reason = if fail { "Error" } else { "OK" };
    let resp = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\
         x-backend-version: {}\r\nx-request-path: {path}\r\nx-request-host: {host}\r\n\
         x-request-method: {method}\r\n{}\r\n{body}",
        body.len(),
        st.version,
        if close { "connection: close\r\n" } else { "" },
    );
    writer.write_all(resp.as_bytes())?;
    Ok(!close)
}
