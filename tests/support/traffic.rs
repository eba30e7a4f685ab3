//! Test traffic: a blocking keep-alive HTTP/1.1 client to 127.0.0.1, `send` that
//! counts which backend version answered, readiness polling, and a background `Load`.

use std::collections::BTreeMap;
use std::io::{self, BufReader, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::http::{read_body, read_head, wants_close, Headers};

/// One HTTP response, headers with lowercase names.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Headers,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// The counting key of `send`: the body (a backend's version) for 2xx,
    /// else `error:<status>`.
    pub fn outcome(&self) -> String {
        if (200..300).contains(&self.status) {
            self.body.trim().to_string()
        } else {
            format!("error:{}", self.status)
        }
    }
}

/// A keep-alive connection to 127.0.0.1:`port`, reopened when the server closes it.
pub struct Client {
    port: u16,
    conn: Option<BufReader<TcpStream>>,
    pub timeout: Duration,
}

impl Client {
    pub fn new(port: u16) -> Self {
        Self {
            port,
            conn: None,
            timeout: Duration::from_secs(10),
        }
    }

    pub fn get(
        &mut self,
        host: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> io::Result<Response> {
        self.request("GET", host, path, headers, b"")
    }

    /// Sends one request. A reused connection that the server had already closed
    /// (no byte of answer) is retried once on a fresh one, as browsers do.
    pub fn request(
        &mut self,
        method: &str,
        host: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<Response> {
        let mut head = format!("{method} {path} HTTP/1.1\r\nhost: {host}\r\n");
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if !body.is_empty() || !matches!(method, "GET" | "HEAD" | "DELETE") {
            head.push_str(&format!("content-length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        let mut msg = head.into_bytes();
        msg.extend_from_slice(body);

        let reused = self.conn.is_some();
        match self.try_once(&msg) {
            Err(RequestError::Stale(_)) if reused => match self.try_once(&msg) {
                Ok(r) => Ok(r),
                Err(RequestError::Stale(e) | RequestError::Io(e)) => Err(e),
            },
            Ok(r) => Ok(r),
            Err(RequestError::Stale(e) | RequestError::Io(e)) => Err(e),
        }
    }

    fn try_once(&mut self, msg: &[u8]) -> Result<Response, RequestError> {
        if self.conn.is_none() {
            let stream = TcpStream::connect(("127.0.0.1", self.port)).map_err(RequestError::Io)?;
            stream.set_read_timeout(Some(self.timeout)).ok();
            stream.set_write_timeout(Some(self.timeout)).ok();
            stream.set_nodelay(true).ok();
            self.conn = Some(BufReader::new(stream));
        }
        let conn = self.conn.as_mut().expect("connected above");
        let result = (|| {
            conn.get_mut().write_all(msg).map_err(RequestError::Stale)?;
            let (status_line, headers) = match read_head(conn) {
                Ok(Some(h)) => h,
                Ok(None) => {
                    return Err(RequestError::Stale(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "connection closed before a response",
                    )))
                }
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                    return Err(RequestError::Stale(e))
                }
                Err(e) => return Err(RequestError::Io(e)),
            };
            let status = status_line
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| {
                    RequestError::Io(super::http::bad(format!("bad status line {status_line:?}")))
                })?;
            let body = read_body(conn, &headers, true).map_err(RequestError::Io)?;
            let close = wants_close(&status_line, &headers);
            Ok((
                Response {
                    status,
                    headers,
                    body: String::from_utf8_lossy(&body).into_owned(),
                },
                close,
            ))
        })();
        match result {
            Ok((resp, close)) => {
                if close {
                    self.close();
                }
                Ok(resp)
            }
            Err(e) => {
                self.close();
                Err(e)
            }
        }
    }

    pub fn close(&mut self) {
        if let Some(c) = self.conn.take() {
            c.get_ref().shutdown(Shutdown::Both).ok();
        }
    }
}

enum RequestError {
    /// Failed before any byte of a response: safe to retry on a new connection.
    Stale(io::Error),
    Io(io::Error),
}

/// One GET on a fresh connection.
pub fn get(port: u16, host: &str, path: &str, headers: &[(&str, &str)]) -> io::Result<Response> {
    Client::new(port).get(host, path, headers)
}

/// One request of any method on a fresh connection.
pub fn request(
    port: u16,
    method: &str,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<Response> {
    Client::new(port).request(method, host, path, headers, body)
}

/// Sends `n` GET / requests and counts outcomes: the answering version for 2xx,
/// `error:<status>` otherwise, `error:io` when no response came.
pub fn send(n: usize, port: u16, host: &str, headers: &[(&str, &str)]) -> BTreeMap<String, usize> {
    send_path(n, port, host, "/", headers)
}

/// `send` to a given path.
pub fn send_path(
    n: usize,
    port: u16,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> BTreeMap<String, usize> {
    let mut client = Client::new(port);
    let mut counts = BTreeMap::new();
    for _ in 0..n {
        let key = match client.get(host, path, headers) {
            Ok(r) => r.outcome(),
            Err(_) => "error:io".to_string(),
        };
        *counts.entry(key).or_insert(0) += 1;
    }
    counts
}

/// Polls until a GET to `path` on 127.0.0.1:`port` answers with a status that is
/// neither 404 nor 503 (the answers of a listener without routes or endpoints yet).
/// Panics after `timeout`, naming the last answer.
pub fn wait_ready(port: u16, host: &str, path: &str, timeout: Duration) -> Response {
    wait_response(port, host, path, &[], timeout, |r| {
        r.status != 404 && r.status != 503
    })
}

/// Polls a GET until `accept` holds for its response; panics after `timeout`.
pub fn wait_response(
    port: u16,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
    timeout: Duration,
    mut accept: impl FnMut(&Response) -> bool,
) -> Response {
    let deadline = Instant::now() + timeout;
    let mut last;
    loop {
        match get(port, host, path, headers) {
            Ok(r) if accept(&r) => return r,
            Ok(r) => last = format!("status {} body {:?}", r.status, r.body),
            Err(e) => last = format!("error {e}"),
        }
        if Instant::now() >= deadline {
            panic!(
                "127.0.0.1:{port}{path} (host {host}) not ready after {timeout:?}; last: {last}"
            );
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// Polls `send(batch)` until the set of outcomes equals `expected` (e.g. only `v2`);
/// returns the last counts, panics after `timeout`.
pub fn wait_for_outcomes(
    port: u16,
    host: &str,
    headers: &[(&str, &str)],
    expected: &[&str],
    timeout: Duration,
) -> BTreeMap<String, usize> {
    let deadline = Instant::now() + timeout;
    loop {
        let counts = send(20, port, host, headers);
        let keys: Vec<&str> = counts.keys().map(String::as_str).collect();
        let mut want: Vec<&str> = expected.to_vec();
        want.sort_unstable();
        if keys == want {
            return counts;
        }
        if Instant::now() >= deadline {
            panic!(
                "outcomes on port {port} never became {expected:?} in {timeout:?}; last {counts:?}"
            );
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// What a `Load` saw so far.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    pub total: usize,
    pub ok: usize,
    /// Outcomes of 2xx answers: the backend's version.
    pub versions: BTreeMap<String, usize>,
    /// `error:<status>` or `error:io`, counted.
    pub errors: BTreeMap<String, usize>,
    /// The first few failures in detail, for assertion messages.
    pub first_errors: Vec<String>,
}

impl LoadReport {
    pub fn failures(&self) -> usize {
        self.total - self.ok
    }
}

/// Requests sent continuously from a background thread until stopped (or dropped,
/// or `max_duration` passed), one at a time on a keep-alive connection.
pub struct Load {
    stop: Arc<AtomicBool>,
    report: Arc<Mutex<LoadReport>>,
    handle: Option<JoinHandle<()>>,
}

impl Load {
    /// GET / with `headers`, a pause of `interval` between requests, at most 10 minutes.
    pub fn start(
        port: u16,
        host: &str,
        path: &str,
        headers: &[(&str, &str)],
        interval: Duration,
    ) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let report = Arc::new(Mutex::new(LoadReport::default()));
        let (host, path) = (host.to_string(), path.to_string());
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let (s, rep) = (stop.clone(), report.clone());
        let handle = thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(600);
            let hdrs: Vec<(&str, &str)> = headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let mut client = Client::new(port);
            while !s.load(Ordering::Relaxed) && Instant::now() < deadline {
                let result = client.get(&host, &path, &hdrs);
                let mut r = rep.lock().unwrap();
                r.total += 1;
                let (key, detail) = match result {
                    Ok(resp) if (200..300).contains(&resp.status) => {
                        r.ok += 1;
                        *r.versions.entry(resp.outcome()).or_insert(0) += 1;
                        (None, String::new())
                    }
                    Ok(resp) => (
                        Some(resp.outcome()),
                        format!("status {} body {:?}", resp.status, resp.body),
                    ),
                    Err(e) => (Some("error:io".to_string()), format!("io: {e}")),
                };
                if let Some(key) = key {
                    *r.errors.entry(key).or_insert(0) += 1;
                    if r.first_errors.len() < 10 {
                        r.first_errors.push(detail);
                    }
                }
                drop(r);
                if !interval.is_zero() {
                    thread::sleep(interval);
                }
            }
        });
        Load {
            stop,
            report,
            handle: Some(handle),
        }
    }

    /// The counts so far, the load going on.
    pub fn report(&self) -> LoadReport {
        self.report.lock().unwrap().clone()
    }

    /// Stops the load and returns everything it saw.
    pub fn stop(mut self) -> LoadReport {
        self.halt();
        self.report()
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            h.join().ok();
        }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.halt();
    }
}
