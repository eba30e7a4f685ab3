//! The coalmine binary under test: a `serve` process on free loopback ports with its
//! output captured line by line, and the one-shot CLI (`bootstrap`, `apply`, ...).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::traffic;

/// The coalmine binary cargo built for these tests.
pub fn coalmine_bin() -> &'static str {
    env!("CARGO_BIN_EXE_coalmine")
}

/// Runs `coalmine ARGS...` to completion.
pub fn cli(args: &[&str]) -> Output {
    cli_with(args, &[], None)
}

/// Runs `coalmine ARGS...` with extra environment and, if given, `stdin` as its input.
pub fn cli_with(args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(coalmine_bin());
    cmd.args(args)
        .env("NO_COLOR", "1")
        .envs(env.iter().copied())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("run coalmine {args:?}: {e}"));
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("piped");
        let input = input.to_string();
        // Written from a thread so a large input cannot deadlock against the output.
        thread::spawn(move || {
            let _ = pipe.write_all(input.as_bytes());
        });
    }
    child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("run coalmine {args:?}: {e}"))
}

/// An Envoy bootstrap from the real CLI: `coalmine bootstrap --node-id ID
/// [--label k=v]... --xds-addr ADDR --admin-port 0 [--delta]`. Panics on failure.
pub fn bootstrap_yaml(
    node_id: &str,
    labels: &[(&str, &str)],
    xds_addr: &str,
    delta: bool,
) -> String {
    let mut args = vec![
        "bootstrap".to_string(),
        "--node-id".into(),
        node_id.into(),
        "--xds-addr".into(),
        xds_addr.into(),
        "--admin-port".into(),
        "0".into(),
    ];
    for (k, v) in labels {
        args.push("--label".into());
        args.push(format!("{k}={v}"));
    }
    if delta {
        args.push("--delta".into());
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = cli(&argv);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && !stdout.trim().is_empty(),
        "`coalmine {}` failed ({}), stdout {stdout:?}, stderr:\n{}",
        argv.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// A running `coalmine serve`, killed on drop (its output printed if the test fails).
pub struct Coalmine {
    child: Option<Child>,
    args: Vec<String>,
    /// Extra environment of the serve process (e.g. `KUBECONFIG`).
    env: Vec<(String, String)>,
    xds_port: u16,
    admin_port: u16,
    data_dir: TempDir,
    lines: Arc<Mutex<Vec<String>>>,
    /// Index in `lines` where the current run's output starts.
    run_start: usize,
}

impl Coalmine {
    /// `coalmine serve --config CONFIG` plus `extra` args, on free ports, with a fresh
    /// data dir; waits until the xDS port accepts connections.
    pub fn start(config: &Path, extra: &[&str]) -> Coalmine {
        let mut args = vec!["--config".to_string(), config.display().to_string()];
        args.extend(extra.iter().map(|s| s.to_string()));
        Self::spawn_new(args)
    }

    /// `coalmine serve` without `--config` (state only through the API and data dir).
    pub fn start_bare(extra: &[&str]) -> Coalmine {
        Self::spawn_new(extra.iter().map(|s| s.to_string()).collect())
    }

    /// `start_bare` with extra environment for the serve process.
    pub fn start_bare_env(extra: &[&str], env: &[(&str, &str)]) -> Coalmine {
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        Self::spawn_with(extra.iter().map(|s| s.to_string()).collect(), env.collect())
    }

    fn spawn_new(extra: Vec<String>) -> Coalmine {
        Self::spawn_with(extra, Vec::new())
    }

    fn spawn_with(extra: Vec<String>, env: Vec<(String, String)>) -> Coalmine {
        let data_dir = TempDir::new().expect("tempdir");
        let (xds_port, admin_port) = (super::free_port(), super::free_port());
        let mut args = vec![
            "serve".to_string(),
            "--xds-addr".into(),
            format!("127.0.0.1:{xds_port}"),
            "--admin-addr".into(),
            format!("127.0.0.1:{admin_port}"),
            "--data-dir".into(),
            data_dir.path().join("data").display().to_string(),
        ];
        args.extend(extra);
        let mut c = Coalmine {
            child: None,
            args,
            env,
            xds_port,
            admin_port,
            data_dir,
            lines: Arc::new(Mutex::new(Vec::new())),
            run_start: 0,
        };
        c.spawn();
        c
    }

    fn spawn(&mut self) {
        std::fs::create_dir_all(self.data_dir.path().join("data")).expect("data dir");
        self.run_start = self.lines.lock().unwrap().len();
        let mut cmd = Command::new(coalmine_bin());
        cmd.args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // Only what the args say: no config or data dir inherited from the environment.
        cmd.env("NO_COLOR", "1")
            .env_remove("COALMINE_CONFIG")
            .env_remove("COALMINE_DATA_DIR")
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn coalmine: {e}"));
        capture(child.stdout.take().expect("piped"), self.lines.clone());
        capture(child.stderr.take().expect("piped"), self.lines.clone());
        self.child = Some(child);
        self.wait_port(self.xds_port, "xDS", Duration::from_secs(30), true);
        self.wait_port(self.admin_port, "admin", Duration::from_secs(5), false);
    }

    fn wait_port(&mut self, port: u16, what: &str, timeout: Duration, required: bool) {
        let deadline = Instant::now() + timeout;
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return;
            }
            if let Some(status) = self.try_exit() {
                panic!("coalmine exited {status} at start:\n{}", self.logs());
            }
            if Instant::now() >= deadline {
                if required {
                    panic!(
                        "coalmine {what} port {port} not up in {timeout:?}:\n{}",
                        self.logs()
                    );
                }
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// `127.0.0.1:PORT` of the xDS server.
    pub fn xds_addr(&self) -> String {
        format!("127.0.0.1:{}", self.xds_port)
    }

    /// `127.0.0.1:PORT` of the admin API.
    pub fn admin_addr(&self) -> String {
        format!("127.0.0.1:{}", self.admin_port)
    }

    pub fn admin_port(&self) -> u16 {
        self.admin_port
    }

    /// `http://127.0.0.1:PORT`, for `--server`.
    pub fn server_url(&self) -> String {
        format!("http://{}", self.admin_addr())
    }

    pub fn data_dir(&self) -> PathBuf {
        self.data_dir.path().join("data")
    }

    /// Every line printed so far, across restarts.
    pub fn logs(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// Whether the current run printed a line containing `needle`.
    pub fn log_contains(&self, needle: &str) -> bool {
        self.lines.lock().unwrap()[self.run_start..]
            .iter()
            .any(|l| l.contains(needle))
    }

    /// How many lines printed so far, across restarts, contain `needle`.
    pub fn log_count(&self, needle: &str) -> usize {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    }

    /// Waits until the current run prints a line containing `needle`; panics after `timeout`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) {
        if !super::poll_until(timeout, || self.log_contains(needle)) {
            panic!(
                "coalmine never logged {needle:?} in {timeout:?}; output:\n{}",
                self.logs()
            );
        }
    }

    /// `coalmine ARGS...` against this process (`COALMINE_SERVER` set to it).
    pub fn cli(&self, args: &[&str]) -> Output {
        cli_with(args, &[("COALMINE_SERVER", &self.server_url())], None)
    }

    /// `coalmine ARGS...` against this process, with `stdin` as input (`apply -f -`).
    pub fn cli_stdin(&self, args: &[&str], stdin: &str) -> Output {
        cli_with(
            args,
            &[("COALMINE_SERVER", &self.server_url())],
            Some(stdin),
        )
    }

    /// An Envoy bootstrap for this control plane, from the real CLI.
    pub fn bootstrap(&self, node_id: &str, labels: &[(&str, &str)], delta: bool) -> String {
        bootstrap_yaml(node_id, labels, &self.xds_addr(), delta)
    }

    /// GET on the admin API.
    /// The serve process's resident memory in KiB (from `/proc/PID/status`).
    pub fn rss_kib(&self) -> u64 {
        let pid = self.child.as_ref().expect("running").id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/PID/status")
    }

    pub fn admin_get(&self, path: &str) -> traffic::Response {
        traffic::get(self.admin_port, "localhost", path, &[])
            .unwrap_or_else(|e| panic!("coalmine admin GET {path}: {e}"))
    }

    /// POST (or any method) with a body on the admin API.
    pub fn admin_request(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: &str,
    ) -> traffic::Response {
        let headers = [("content-type", content_type)];
        traffic::request(
            self.admin_port,
            method,
            "localhost",
            path,
            &headers,
            body.as_bytes(),
        )
        .unwrap_or_else(|e| panic!("coalmine admin {method} {path}: {e}"))
    }

    /// `Some(status)` once the process has exited.
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    pub fn is_running(&mut self) -> bool {
        self.child.is_some() && self.try_exit().is_none()
    }

    /// SIGKILL, and reap.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then waits up to `timeout` for the exit; panics if it does not come.
    pub fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        let mut child = self.child.take().expect("coalmine is running");
        let pid = child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -TERM {pid} failed");
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "coalmine did not exit within {timeout:?} of SIGTERM:\n{}",
                    self.logs()
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts again with the same ports, args and data dir (killing a live process first).
    pub fn restart(&mut self) {
        self.kill9();
        self.lines
            .lock()
            .unwrap()
            .push("---- harness: restart ----".into());
        self.spawn();
    }
}

impl Drop for Coalmine {
    fn drop(&mut self) {
        self.kill9();
        if thread::panicking() {
            let logs = self.logs();
            let lines: Vec<&str> = logs.lines().collect();
            let tail = lines[lines.len().saturating_sub(120)..].join("\n");
            eprintln!(
                "---- coalmine (xds {}) output tail ----\n{tail}",
                self.xds_addr()
            );
        }
    }
}

fn capture(pipe: impl Read + Send + 'static, lines: Arc<Mutex<Vec<String>>>) {
    let echo = std::env::var_os("COALMINE_TEST_ECHO").is_some();
    thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if echo {
                eprintln!("[coalmine] {line}");
            }
            lines.lock().unwrap().push(line);
        }
    });
}
