//! The coalmine under test: started here (`--server-bin`, on free loopback ports with a
//! temporary data dir) or already running; its CPU time and peak RSS from `/proc`; and
//! the admin API calls the load generator makes.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use tokio::process::{Child, Command};

/// A coalmine process that this run started, removed (with its data) on drop.
#[derive(Debug)]
pub struct Started {
    pub child: Child,
    pub dir: PathBuf,
}

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Where to reach the server, and its pid when known.
#[derive(Debug)]
pub struct Target {
    pub xds_addr: String,
    pub admin_url: String,
    pub pid: Option<u32>,
    pub started: Option<Started>,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Starts `bin serve` on free ports and waits for `/readyz`.
pub async fn start(bin: &Path, extra: &[String]) -> anyhow::Result<Target> {
    let (xds, admin) = (free_port()?, free_port()?);
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos();
    let dir = std::env::temp_dir().join(format!("coalmine-loadgen-{}-{stamp}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let log = std::fs::File::create(dir.join("server.log"))?;
    let child = Command::new(bin)
        .arg("serve")
        .args(["--xds-addr", &format!("127.0.0.1:{xds}")])
        .args(["--admin-addr", &format!("127.0.0.1:{admin}")])
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(extra)
        .env_remove("COALMINE_ADMIN_TOKEN")
        .env_remove("COALMINE_CONFIG")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let pid = child.id();
    let started = Started { child, dir };
    let target = Target {
        xds_addr: format!("127.0.0.1:{xds}"),
        admin_url: format!("http://127.0.0.1:{admin}"),
        pid,
        started: Some(started),
    };
    wait_ready(&target).await?;
    Ok(target)
}

async fn wait_ready(target: &Target) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let url = format!("{}/readyz", target.admin_url);
    while Instant::now() < deadline {
        if let Ok(r) = client.get(&url).send().await {
            if r.status().is_success() {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = target
        .started
        .as_ref()
        .map(|s| std::fs::read_to_string(s.dir.join("server.log")).unwrap_or_default())
        .unwrap_or_default();
    bail!("coalmine did not become ready within 30s; its log:\n{log}")
}

/// Applies a YAML body; returns once coalmine has answered 200.
pub async fn apply(client: &reqwest::Client, admin_url: &str, body: String) -> anyhow::Result<()> {
    let resp = client
        .post(format!("{admin_url}/api/v1/apply"))
        .header("content-type", "application/yaml")
        .body(body)
        .send()
        .await
        .context("POST /api/v1/apply")?;
    let status = resp.status();
    if !status.is_success() {
        let text = resp.text().await.unwrap_or_default();
        bail!("apply answered {status}: {text}");
    }
    Ok(())
}

/// CPU seconds (user + system) and resident set sizes of a process, from `/proc`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcStats {
    pub cpu_s: f64,
    pub rss_mb: f64,
    pub peak_rss_mb: f64,
}

pub fn proc_stats(pid: u32) -> Option<ProcStats> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb = |key: &str| -> Option<f64> {
        let line = status.lines().find(|l| l.starts_with(key))?;
        line.split_whitespace().nth(1)?.parse().ok()
    };
    Some(ProcStats {
        // USER_HZ is 100 on every Linux architecture that matters here.
        cpu_s: ticks / 100.0,
        rss_mb: kb("VmRSS:")? / 1024.0,
        peak_rss_mb: kb("VmHWM:")? / 1024.0,
    })
}
