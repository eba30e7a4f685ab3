//! A real Prometheus for tests: the binary (PROMETHEUS_BIN, else Debian's `prometheus`
//! package, installed once per machine with apt-get under a file lock), and a running
//! server scraping one target every second. Never skips: no Prometheus is a panic.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;

use super::http::url_encode;
use super::traffic;

const DEBIAN_BIN: &str = "/usr/bin/prometheus";

/// The Prometheus binary: `PROMETHEUS_BIN`, else /usr/bin/prometheus, installed with
/// `apt-get install -y prometheus` on first use.
pub fn prometheus_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| match std::env::var_os("PROMETHEUS_BIN") {
        Some(b) if !b.is_empty() => PathBuf::from(b),
        _ => install_prometheus(),
    })
}

fn install_prometheus() -> PathBuf {
    let bin = PathBuf::from(DEBIAN_BIN);
    if bin.exists() {
        return bin;
    }
    let cache_root = super::target_dir().join("test-cache");
    fs::create_dir_all(&cache_root)
        .unwrap_or_else(|e| panic!("create {}: {e}", cache_root.display()));
    let lock_path = cache_root.join("prometheus-install.lock");
    let lock =
        File::create(&lock_path).unwrap_or_else(|e| panic!("create {}: {e}", lock_path.display()));
    lock.lock()
        .unwrap_or_else(|e| panic!("lock {}: {e}", lock_path.display()));
    if bin.exists() {
        return bin; // another test process installed it while we waited
    }
    let apt = |args: &[&str]| -> Result<(), String> {
        let out = Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run apt-get: {e}"))?;
        if out.status.success() {
            return Ok(());
        }
        Err(format!(
            "apt-get {} exited {}:\n{}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    };
    let install = ["install", "-y", "--no-install-recommends", "prometheus"];
    let result = apt(&install).or_else(|_| apt(&["update"]).and_then(|()| apt(&install)));
    if let Err(why) = result {
        panic!(
            "Prometheus is needed by the Prometheus provider tests and could not be \
             installed: {why}\nInstall it with `apt-get install -y prometheus` (as root), or \
             point PROMETHEUS_BIN at a prometheus binary."
        );
    }
    assert!(
        bin.exists(),
        "apt-get installed prometheus but {DEBIAN_BIN} does not exist"
    );
    drop(lock);
    bin
}

/// A running Prometheus on 127.0.0.1, scraping `/metrics` of one target every second
/// with its TSDB in a temp dir; killed on drop (its log printed if the test fails).
pub struct Prometheus {
    child: Child,
    dir: TempDir,
    port: u16,
}

impl Prometheus {
    /// Starts Prometheus scraping `http://{target}/metrics` (`target` is `host:port`)
    /// and waits until it is ready.
    pub fn start(target: &str) -> Prometheus {
        let dir = TempDir::new().expect("tempdir");
        let config = dir.path().join("prometheus.yml");
        fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  \
                 evaluation_interval: 1s\nscrape_configs:\n- job_name: coalmine\n  \
                 metrics_path: /metrics\n  static_configs:\n  - targets: ['{target}']\n"
            ),
        )
        .expect("write prometheus.yml");
        let port = super::free_port();
        let log = File::create(dir.path().join("prometheus.log")).expect("log file");
        let child = Command::new(prometheus_bin())
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", prometheus_bin().display()));
        let mut p = Prometheus { child, dir, port };
        let ready = super::poll_until(Duration::from_secs(60), || {
            if let Ok(Some(status)) = p.child.try_wait() {
                panic!("prometheus exited {status}:\n{}", p.log());
            }
            traffic::get(port, "127.0.0.1", "/-/ready", &[]).is_ok_and(|r| r.status == 200)
        });
        assert!(ready, "prometheus not ready in 60s:\n{}", p.log());
        p
    }

    /// `http://127.0.0.1:PORT`, the provider address.
    pub fn address(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The `data` of `/api/v1/query?query=PROMQL`; panics unless it succeeded.
    pub fn query(&self, promql: &str) -> Value {
        let path = format!("/api/v1/query?query={}", url_encode(promql));
        let r = traffic::get(self.port, "127.0.0.1", &path, &[])
            .unwrap_or_else(|e| panic!("prometheus GET {path}: {e}"));
        let v: Value = serde_json::from_str(&r.body)
            .unwrap_or_else(|e| panic!("prometheus answer {:?}: {e}", r.body));
        assert_eq!(v["status"], "success", "query {promql}: {}", r.body);
        v["data"].clone()
    }

    /// The value of an instant vector query's first sample, `None` while it is empty.
    pub fn value(&self, promql: &str) -> Option<f64> {
        let data = self.query(promql);
        let text = data["result"][0]["value"][1].as_str()?;
        text.parse().ok()
    }

    /// Every value of every series of a range vector query (`metric[5m]`).
    pub fn range_values(&self, promql: &str) -> Vec<f64> {
        let data = self.query(promql);
        data["result"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|series| series["values"].as_array().cloned().unwrap_or_default())
            .filter_map(|pair| pair[1].as_str().and_then(|t| t.parse().ok()))
            .collect()
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!(
                "--- prometheus log (last 40 lines) ---\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
    }
}
