//! Proxy identity and hostile connections: under mutual TLS a real Envoy started from
//! `coalmine bootstrap --xds-ca/--xds-cert/--xds-key` gets its configuration and
//! serves traffic, while a client whose certificate names someone else is refused
//! (ADS and stats) with PERMISSION_DENIED, logged and counted, and one without a
//! certificate never gets a stream. Two streams of one node id are one proxy with two
//! connections. Plain xDS off loopback needs `--insecure-xds`. Connections that never
//! talk (no HTTP/2 preface, half a request) are closed after the handshake timeout,
//! and connections over the cap are closed as they arrive, while `/healthz` answers.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::certs::Pki;
use support::grpc::{self, TlsClient};
use support::{free_port, poll_until, process, unique, Backend, Coalmine, Envoy};

const WAIT: Duration = Duration::from_secs(20);

fn proxies(coalmine: &Coalmine) -> Vec<Value> {
    let body: Value = serde_json::from_str(&coalmine.admin_get("/api/v1/proxies").body).unwrap();
    body["proxies"].as_array().cloned().unwrap_or_default()
}

fn connections_of(coalmine: &Coalmine, node: &str) -> Option<u64> {
    proxies(coalmine)
        .iter()
        .find(|p| p["node"] == node)
        .and_then(|p| p["connections"].as_u64())
}

#[test]
fn under_mutual_tls_only_the_certificate_holder_is_its_proxy() {
    let pki = Pki::new();
    let server = pki.server("server", &["localhost", "127.0.0.1"]);
    let edge = pki.client("edge", &["edge-1"], &[]);
    let intruder = pki.client("intruder", &[], &["spiffe://example.org/gw/intruder"]);
    let coalmine = Coalmine::start_bare(&[
        "--xds-tls-cert",
        server.cert.to_str().unwrap(),
        "--xds-tls-key",
        server.key.to_str().unwrap(),
        "--xds-client-ca",
        pki.ca().to_str().unwrap(),
    ]);
    let backend = Backend::start("v1");
    let (name, port) = (unique("mtls"), free_port());
    let docs = format!(
        r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: {name}}}
spec:
  hosts: [{name}.example]
  ports: [{{number: 80, name: http, protocol: HTTP}}]
  resolution: STATIC
  endpoints: [{{address: 127.0.0.1, ports: {{http: {backend}}}}}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: {name}}}
spec:
  selector: {{app: {name}}}
  servers: [{{port: {{number: {port}, name: http, protocol: HTTP}}, hosts: ["*"]}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: {name}}}
spec:
  hosts: ["*"]
  gateways: [{name}]
  http: [{{route: [{{destination: {{host: {name}.example}}}}]}}]
"#,
        backend = backend.port()
    );
    let out = coalmine.cli_stdin(&["apply", "-f", "-"], &docs);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The real Envoy, from what the real CLI prints.
    let xds = coalmine.xds_addr();
    let label = format!("app={name}");
    let out = process::cli(&[
        "bootstrap",
        "--node-id",
        "edge-1",
        "--admin-port",
        "0",
        "--xds-addr",
        &xds,
        "--label",
        &label,
        "--xds-ca",
        pki.ca().to_str().unwrap(),
        "--xds-cert",
        edge.cert.to_str().unwrap(),
        "--xds-key",
        edge.key.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let envoy = Envoy::start(&String::from_utf8(out.stdout).unwrap());
    let r = envoy.listener_ready(port, WAIT);
    assert_eq!(r.status, 200, "{}", envoy.log_tail(40));
    assert!(r.body.contains("v1"), "{}", r.body);
    assert_eq!(connections_of(&coalmine, "edge-1"), Some(1));

    // Someone else's certificate claiming edge-1: refused on ADS and on stats.
    let with_intruder = TlsClient {
        ca: &pki.ca(),
        cert: Some((&intruder.cert, &intruder.key)),
    };
    let answer = grpc::tls_ads(&xds, &with_intruder, "edge-1", "ads");
    assert!(answer.starts_with("PERMISSION_DENIED"), "{answer}");
    assert!(
        answer.contains("uri:spiffe://example.org/gw/intruder"),
        "{answer}"
    );
    let answer = grpc::tls_ads(&xds, &with_intruder, "edge-1", "stats");
    assert!(answer.starts_with("PERMISSION_DENIED"), "{answer}");
    // No certificate at all: no stream.
    let anonymous = TlsClient {
        ca: &pki.ca(),
        cert: None,
    };
    let answer = grpc::tls_ads(&xds, &anonymous, "edge-1", "ads");
    assert!(!answer.starts_with("OK"), "{answer}");

    // The intruder's own name (the SPIFFE ID's last segment) is its to claim, and two
    // streams of it are one proxy with two connections.
    let first = grpc::hold_ads(&xds, &with_intruder, "intruder");
    let second = grpc::hold_ads(&xds, &with_intruder, "intruder");
    assert!(
        poll_until(WAIT, || connections_of(&coalmine, "intruder") == Some(2)),
        "{:?}",
        proxies(&coalmine)
    );
    drop((first, second));
    assert!(poll_until(WAIT, || connections_of(&coalmine, "intruder").is_none()));

    // The real proxy was never disturbed: a change waited for is ACKed by it alone.
    assert_eq!(connections_of(&coalmine, "edge-1"), Some(1));
    let changed = docs.replace("http: [{route:", "http: [{name: changed, route:");
    let r = coalmine.admin_request(
        "POST",
        "/api/v1/apply?wait=20s",
        "application/yaml",
        &changed,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(envoy.listener_ready(port, WAIT).status, 200);
    let metrics = coalmine.admin_get("/metrics").body;
    assert!(
        metrics.contains("coalmine_xds_identity_refused_total 2"),
        "{metrics}"
    );
    let tls_refused = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix("coalmine_connections_refused_total{port=\"xds\",reason=\"tls\"} ")
        })
        .and_then(|v| v.trim().parse::<u64>().ok());
    assert!(
        tls_refused.is_some_and(|n| n >= 1),
        "the certificate-less handshake is counted: {metrics}"
    );
    assert!(
        coalmine.log_contains("ADS stream refused"),
        "{}",
        coalmine.logs()
    );
    assert!(
        coalmine.log_contains("stats stream refused"),
        "{}",
        coalmine.logs()
    );
}

/// `coalmine serve` with these args on fresh ports; its exit status and output once
/// it exits, or `None` if it is still up (and its xDS port accepts) after a while.
fn serve_briefly(xds_addr: &str, extra: &[&str]) -> Option<(bool, String)> {
    let data = tempfile::TempDir::new().unwrap();
    let mut child = Command::new(process::coalmine_bin())
        .args(["serve", "--xds-addr", xds_addr])
        .args(["--admin-addr", &format!("127.0.0.1:{}", free_port())])
        .arg("--data-dir")
        .arg(data.path())
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn coalmine serve");
    let port: u16 = xds_addr.rsplit(':').next().unwrap().parse().unwrap();
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            let _ = child.wait();
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            return Some((status.success(), err));
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("coalmine serve neither exited nor listened");
}

#[test]
fn plain_xds_off_loopback_needs_insecure_xds() {
    let addr = format!("0.0.0.0:{}", free_port());
    let (ok, err) = serve_briefly(&addr, &[]).expect("refused at start-up");
    assert!(!ok);
    assert!(
        err.contains("--xds-client-ca") && err.contains("--insecure-xds"),
        "{err}"
    );
    let addr = format!("0.0.0.0:{}", free_port());
    assert!(
        serve_briefly(&addr, &["--insecure-xds"]).is_none(),
        "starts with the flag"
    );
}

/// True once the server has closed `stream` (EOF or reset), false if it stays open
/// for `within`.
fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    stream.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0; 256];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue, // an HTTP/2 SETTINGS frame, a 408: keep reading
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return false,
            Err(_) => return true,
        }
    }
}

#[test]
fn silent_and_half_sent_connections_are_closed_and_healthz_keeps_answering() {
    let coalmine = Coalmine::start_bare(&["--handshake-timeout", "1s"]);
    let mut silent: Vec<TcpStream> = (0..200)
        .map(|_| TcpStream::connect(coalmine.xds_addr()).unwrap())
        .collect();
    let mut half: Vec<TcpStream> = (0..100)
        .map(|_| {
            let mut s = TcpStream::connect(coalmine.admin_addr()).unwrap();
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
                .unwrap();
            s
        })
        .collect();
    assert_eq!(
        coalmine.admin_get("/healthz").status,
        200,
        "while they hang"
    );
    let started = Instant::now();
    for s in silent.iter_mut().chain(half.iter_mut()) {
        assert!(
            closed_within(s, Duration::from_secs(10)),
            "still open after {:?}",
            started.elapsed()
        );
    }
    eprintln!(
        "300 silent connections closed {:?} after opening",
        started.elapsed()
    );
    assert_eq!(coalmine.admin_get("/healthz").status, 200);
}

#[test]
fn connections_over_the_cap_are_closed_as_they_arrive() {
    let coalmine = Coalmine::start_bare(&["--max-connections", "3", "--handshake-timeout", "30s"]);
    // The harness's own probe of the port has let go of its slot.
    std::thread::sleep(Duration::from_millis(500));
    let _held: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect(coalmine.xds_addr()).unwrap())
        .collect();
    let mut over = TcpStream::connect(coalmine.xds_addr()).unwrap();
    assert!(
        closed_within(&mut over, Duration::from_secs(5)),
        "over the cap"
    );
    assert_eq!(
        coalmine.admin_get("/healthz").status,
        200,
        "the admin port has its own cap"
    );
    let metrics = coalmine.admin_get("/metrics").body;
    assert!(
        metrics.contains("coalmine_connections_refused_total{port=\"xds\",reason=\"limit\"} 1"),
        "{metrics}"
    );
    assert!(
        coalmine.log_contains("connection limit reached"),
        "{}",
        coalmine.logs()
    );
}

#[test]
fn the_admin_api_over_tls_is_reached_by_the_cli_with_its_ca() {
    let pki = Pki::new();
    let server = pki.server("admin", &["localhost", "127.0.0.1"]);
    let coalmine = Coalmine::start_bare(&[
        "--admin-tls-cert",
        server.cert.to_str().unwrap(),
        "--admin-tls-key",
        server.key.to_str().unwrap(),
    ]);
    let url = format!("https://localhost:{}", coalmine.admin_port());
    let ca = pki.ca();
    let out = process::cli(&["history", "--server", &url, "--ca", ca.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Without the CA the server is not trusted; plain HTTP gets no answer.
    let out = process::cli(&["history", "--server", &url]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let plain = format!("http://localhost:{}", coalmine.admin_port());
    let out = process::cli(&["history", "--server", &plain]);
    assert!(!out.status.success());
    let out = process::cli(&["history", "--server", &url, "--ca", "/nonexistent.pem"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a CA file that cannot be read is bad usage"
    );
}
