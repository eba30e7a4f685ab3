//! Proxyless gRPC for tests: the pinned `grpcio` wheel from PyPI (installed once per
//! machine into the target dir), gRPC servers that answer with their version
//! (`grpc/server.py`), and a long-lived client that calls an `xds:///` target through
//! gRPC's own xDS support (`grpc/client.py`), and a plain client of any method
//! through an Envoy (`grpc/call.py`). Never skips: no grpcio is a panic that
//! says why.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tempfile::TempDir;

pub const GRPCIO_VERSION: &str = "1.85.1";

/// The folder to put on `PYTHONPATH` for `import grpc`: the pinned grpcio, installed
/// on first use into `<target>/test-cache/grpcio-1.85.1` under a file lock.
pub fn grpcio_path() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let path = install_grpcio();
        let out = Command::new("python3")
            .args(["-c", "import grpc; print(grpc.__version__)"])
            .env("PYTHONPATH", &path)
            .output()
            .unwrap_or_else(|e| panic!("cannot run python3: {e}"));
        let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(
            out.status.success() && version == GRPCIO_VERSION,
            "grpcio in {} does not import as {GRPCIO_VERSION}: {version:?} {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        path
    })
}

fn install_grpcio() -> PathBuf {
    super::pip::install(&super::pip::Package {
        name: "grpcio",
        version: GRPCIO_VERSION,
        marker: "grpc/__init__.py",
        needed_by: "the proxyless gRPC tests",
        alternative: "",
    })
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/support/grpc")
        .join(name)
}

/// A Python process whose stdout lines arrive on a channel, and whose stderr goes to a
/// file (shown when a test fails); killed on drop.
struct Python {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    dir: TempDir,
    what: String,
}

impl Python {
    fn spawn(what: &str, args: &[&str], env: &[(&str, &Path)]) -> Python {
        let dir = TempDir::new().expect("tempdir");
        let stderr = File::create(dir.path().join("stderr")).expect("stderr file");
        let mut child = Command::new("python3")
            .args(args)
            .env("PYTHONPATH", grpcio_path())
            .envs(env.iter().map(|(k, v)| (*k, *v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn python3 for {what}: {e}"));
        let stdout = child.stdout.take().expect("piped");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Python {
            stdin: child.stdin.take(),
            child,
            lines,
            dir,
            what: what.to_string(),
        }
    }

    /// The next stdout line, or a panic with the process's stderr after `timeout`.
    fn line(&mut self, timeout: Duration) -> String {
        match self.lines.recv_timeout(timeout) {
            Ok(line) => line,
            Err(e) => panic!(
                "{}: no output within {timeout:?} ({e}); stderr:\n{}",
                self.what,
                self.stderr()
            ),
        }
    }

    fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        let sent = writeln!(stdin, "{line}").and_then(|_| stdin.flush());
        if let Err(e) = sent {
            panic!("{}: write: {e}; stderr:\n{}", self.what, self.stderr());
        }
    }

    fn stderr(&self) -> String {
        fs::read_to_string(self.dir.path().join("stderr")).unwrap_or_default()
    }
}

impl Drop for Python {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            eprintln!("---- {} stderr ----\n{}", self.what, self.stderr());
        }
    }
}

/// A gRPC server on 127.0.0.1 answering `/coalmine.test.Echo/Call` with its version.
pub struct GrpcServer {
    process: Python,
    port: u16,
}

impl GrpcServer {
    pub fn start(version: &str) -> GrpcServer {
        let server = script("server.py");
        let what = format!("gRPC server {version}");
        let mut process = Python::spawn(&what, &[server.to_str().expect("utf-8"), version], &[]);
        let line = process.line(Duration::from_secs(30));
        let port = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{what} printed {line:?}, not a port"));
        GrpcServer { process, port }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn is_running(&mut self) -> bool {
        self.process.child.try_wait().ok().flatten().is_none()
    }
}

/// Outcomes of calls: the version that answered, or `error CODE: details`, counted.
pub type Outcomes = BTreeMap<String, u64>;

/// One channel to an `xds:///` target, through gRPC's xDS support with `bootstrap`
/// (the JSON `GRPC_XDS_BOOTSTRAP` names).
pub struct GrpcClient {
    process: Python,
    target: String,
    _bootstrap: TempDir,
}

impl GrpcClient {
    pub fn start(bootstrap_json: &str, target: &str) -> GrpcClient {
        let bootstrap = TempDir::new().expect("tempdir");
        let path = bootstrap.path().join("bootstrap.json");
        fs::write(&path, bootstrap_json).expect("write bootstrap");
        let client = script("client.py");
        let what = format!("gRPC client of {target}");
        let mut process = Python::spawn(
            &what,
            &[client.to_str().expect("utf-8"), target],
            &[("GRPC_XDS_BOOTSTRAP", &path)],
        );
        let ready: Value = serde_json::from_str(&process.line(Duration::from_secs(30)))
            .expect("client ready line");
        assert_eq!(ready["ready"], GRPCIO_VERSION, "{ready}");
        GrpcClient {
            process,
            target: target.to_string(),
            _bootstrap: bootstrap,
        }
    }

    /// Starts `calls` calls with this metadata, each with `timeout`; collect the
    /// outcomes with [`GrpcClient::outcomes`].
    pub fn send(&mut self, calls: u32, metadata: &[(&str, &str)], timeout: Duration) {
        let request = json!({
            "calls": calls,
            "metadata": metadata,
            "timeout": timeout.as_secs_f64(),
        });
        self.process.send(&request.to_string());
    }

    /// The outcomes of the calls [`GrpcClient::send`] started.
    pub fn outcomes(&mut self, wait: Duration) -> Outcomes {
        let line = self.process.line(wait);
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("client answered {line:?}: {e}"))
    }

    /// `calls` calls, each with a 5 s timeout.
    pub fn call(&mut self, calls: u32, metadata: &[(&str, &str)]) -> Outcomes {
        let timeout = Duration::from_secs(5);
        self.send(calls, metadata, timeout);
        self.outcomes(timeout * calls + Duration::from_secs(10))
    }

    /// Calls in rounds of ten until every call of a round is answered by `version`;
    /// panics with the last outcomes after `timeout`.
    pub fn wait_for(&mut self, version: &str, metadata: &[(&str, &str)], timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let want = Outcomes::from([(version.to_string(), 10)]);
        loop {
            let got = self.call(10, metadata);
            if got == want {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "{} with metadata {metadata:?}: still {got:?} after {timeout:?}, want all {version}",
                    self.target
                );
            }
            thread::sleep(Duration::from_millis(200));
        }
    }
}

/// One plain gRPC channel to `host:port` (an Envoy listener) with a given authority,
/// calling any method (`grpc/call.py`).
pub struct GrpcCaller {
    process: Python,
}

impl GrpcCaller {
    pub fn start(port: u16, authority: &str) -> GrpcCaller {
        let caller = script("call.py");
        let what = format!("gRPC caller of {authority} on port {port}");
        let target = format!("127.0.0.1:{port}");
        let args = [caller.to_str().expect("utf-8"), &target, authority];
        let mut process = Python::spawn(&what, &args, &[]);
        let ready: Value = serde_json::from_str(&process.line(Duration::from_secs(30)))
            .expect("caller ready line");
        assert_eq!(ready["ready"], GRPCIO_VERSION, "{ready}");
        GrpcCaller { process }
    }

    /// `calls` calls of `method` (`/pkg.Service/Method`), each with a 5 s timeout:
    /// the versions that answered, or `error CODE`, counted.
    pub fn call(&mut self, calls: u32, method: &str, metadata: &[(&str, &str)]) -> Outcomes {
        let request = json!({"calls": calls, "method": method, "metadata": metadata});
        self.process.send(&request.to_string());
        let line = self
            .process
            .line(Duration::from_secs(5) * calls + Duration::from_secs(10));
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("caller answered {line:?}: {e}"))
    }
}

/// Sends `payload` (hex-encoded message bytes, or `big` for 17 MiB) as the one request
/// of an ADS stream (`sotw` or `delta`) and returns how the server ended it: `CODE
/// message`, e.g. `INVALID_ARGUMENT cannot decode a request: ...`.
pub fn raw_ads(xds_addr: &str, protocol: &str, payload: &str) -> String {
    let mut cmd = std::process::Command::new("python3");
    cmd.arg(script("raw_ads.py"))
        .args([xds_addr, protocol, payload]);
    run_script(cmd, "raw_ads.py")
}

/// Calls CSDS on `xds_addr` (`fetch`: FetchClientStatus with the first request;
/// `stream`: StreamClientStatus with all of them) with `token` as bearer (`None`: no
/// metadata); the encoded responses, or the gRPC code and details of the failure.
pub fn csds(
    xds_addr: &str,
    mode: &str,
    token: Option<&str>,
    requests: &[Vec<u8>],
) -> Result<Vec<Vec<u8>>, String> {
    let payloads: Vec<String> = requests.iter().map(hex::encode).collect();
    let mut cmd = std::process::Command::new("python3");
    cmd.arg(script("csds.py"))
        .args([xds_addr, mode, token.unwrap_or("-"), &payloads.join(",")]);
    let out = run_script(cmd, "csds.py");
    let mut answers = Vec::new();
    for line in out.lines() {
        // An empty answer (no proxy selected) is `OK` alone.
        match line
            .strip_prefix("OK")
            .filter(|b| b.is_empty() || b.starts_with(' '))
        {
            Some(body) => answers.push(hex::decode(body.trim()).expect("hex from csds.py")),
            None => return Err(line.to_string()),
        }
    }
    Ok(answers)
}

/// Runs a one-shot gRPC script with `grpcio` on its path; its stdout, trimmed. It is
/// killed (and the test fails, saying so) if it has not finished within 60 s.
fn run_script(mut cmd: Command, what: &str) -> String {
    let mut child = cmd
        .env("PYTHONPATH", grpcio_path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run python3: {e}"));
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within 60 s");
        }
        thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("output");
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Client credentials for [`tls_ads`]: the CA that signed coalmine's certificate, and
/// the client's own certificate and key (`None`: no client certificate).
pub struct TlsClient<'a> {
    pub ca: &'a Path,
    pub cert: Option<(&'a Path, &'a Path)>,
}

impl TlsClient<'_> {
    fn args(&self) -> Vec<String> {
        let (cert, key) = match self.cert {
            Some((cert, key)) => (cert.display().to_string(), key.display().to_string()),
            None => ("-".into(), "-".into()),
        };
        vec![self.ca.display().to_string(), cert, key]
    }
}

/// One ADS (`ads`) or stats (`stats`) stream over TLS claiming `node_id`; what
/// `tls_ads.py` printed (`OK ...`, or the gRPC code and details).
pub fn tls_ads(xds_addr: &str, client: &TlsClient, node_id: &str, mode: &str) -> String {
    let mut cmd = std::process::Command::new("python3");
    cmd.arg(script("tls_ads.py"))
        .arg(xds_addr)
        .args(client.args())
        .args([node_id, mode]);
    run_script(cmd, "tls_ads.py")
}

/// An ADS stream over TLS held open (until dropped), once its first response came.
pub struct HeldStream(#[allow(dead_code)] Python);

pub fn hold_ads(xds_addr: &str, client: &TlsClient, node_id: &str) -> HeldStream {
    let mut args = vec![script("tls_ads.py").display().to_string(), xds_addr.into()];
    args.extend(client.args());
    args.extend([node_id.to_string(), "hold".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut python = Python::spawn("tls_ads.py hold", &args, &[]);
    let line = python.line(Duration::from_secs(20));
    assert_eq!(line, "OK response", "{}", python.stderr());
    HeldStream(python)
}
