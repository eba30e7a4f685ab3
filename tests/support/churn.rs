//! Traffic through releases that move it (make-before-break tests): a background
//! keep-alive `Load` that can tell when its traffic moved to a version, failure reports
//! that say how many requests failed and with which statuses, and the settle and churn
//! checks of a proxy (its ledger entry ACKed, Envoy's update counters).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::traffic::{Client, LoadReport};
use super::{poll_until, Coalmine, Envoy, Load};

/// The pause between two requests of a `Traffic` (one connection, one at a time).
pub const PAUSE: Duration = Duration::from_millis(1);

/// Background traffic through one Envoy listener, labelled for failure messages.
pub struct Traffic {
    pub label: String,
    load: Load,
    started: Instant,
}

impl Traffic {
    /// GET / with `host` on 127.0.0.1:`port`, one keep-alive connection, `PAUSE` apart.
    pub fn start(label: &str, port: u16, host: &str) -> Traffic {
        Traffic {
            label: label.to_string(),
            load: Load::start(port, host, "/", &[], PAUSE),
            started: Instant::now(),
        }
    }

    pub fn report(&self) -> LoadReport {
        self.load.report()
    }

    /// 2xx answers by `version` so far.
    pub fn count(&self, version: &str) -> usize {
        self.report().versions.get(version).copied().unwrap_or(0)
    }

    /// Waits until `n` more requests than now have been answered (or failed).
    pub fn run(&self, n: usize) {
        let target = self.report().total + n;
        let ok = poll_until(Duration::from_secs(20), || self.report().total >= target);
        assert!(
            ok,
            "{}: load stalled: {}",
            self.label,
            describe(&self.report())
        );
    }

    /// Waits until the traffic is on `to`: `to` answers 10 more requests than it had,
    /// and then the next 20 requests are answered by `to` alone. Panics after `timeout`
    /// naming `what` (e.g. "switch 7 to green").
    pub fn wait_moved(&self, to: &str, what: &str, timeout: Duration) {
        let base = self.count(to);
        let moved = poll_until(timeout, || self.count(to) >= base + 10);
        assert!(
            moved,
            "{}: {what}: traffic never moved to {to:?} in {timeout:?}: {}",
            self.label,
            describe(&self.report())
        );
        let before = self.report();
        self.run(20);
        let after = self.report();
        let others: Vec<String> = after
            .versions
            .iter()
            .filter(|(v, n)| v.as_str() != to && before.versions.get(*v) != Some(*n))
            .map(|(v, n)| format!("{v} +{}", n - before.versions.get(v).copied().unwrap_or(0)))
            .collect();
        assert!(
            others.is_empty(),
            "{}: {what}: after the traffic reached {to:?} other versions still answered: {others:?}; {}",
            self.label,
            describe(&after)
        );
    }

    /// Stops the load: what it saw and for how long it ran.
    pub fn stop(self) -> (String, LoadReport, Duration) {
        let took = self.started.elapsed();
        (self.label, self.load.stop(), took)
    }
}

/// Failures counted step by step ("switch 7 to green: sotw: {error:503: 2}"), so a
/// failure message says which steps lost requests.
#[derive(Default)]
pub struct Tally {
    last: BTreeMap<String, BTreeMap<String, usize>>,
    steps: usize,
    failed: Vec<String>,
}

impl Tally {
    /// Ends step `what`: records the failures of each load since the previous step.
    pub fn mark(&mut self, what: &str, loads: &[Traffic]) {
        self.steps += 1;
        let mut parts = Vec::new();
        for t in loads {
            let errors = t.report().errors;
            let prev = self.last.entry(t.label.clone()).or_default();
            let delta: BTreeMap<&String, usize> = errors
                .iter()
                .map(|(k, v)| (k, v - prev.get(k).copied().unwrap_or(0)))
                .filter(|(_, d)| *d > 0)
                .collect();
            if !delta.is_empty() {
                parts.push(format!("{}: {delta:?}", t.label));
            }
            *prev = errors;
        }
        if !parts.is_empty() {
            self.failed.push(format!("{what}: {}", parts.join(", ")));
        }
    }

    /// "failures in 7 of 50 steps:" and those steps, one a line (the first 20).
    pub fn summary(&self) -> String {
        const SHOWN: usize = 20;
        let mut out = format!("failures in {} of {} steps", self.failed.len(), self.steps);
        for f in self.failed.iter().take(SHOWN) {
            out.push_str("\n  ");
            out.push_str(f);
        }
        if self.failed.len() > SHOWN {
            out.push_str(&format!("\n  ... and {} more", self.failed.len() - SHOWN));
        }
        out
    }
}

/// "N of M requests failed ({error:503: N}); answered by {...}; first failures: [...]".
pub fn describe(r: &LoadReport) -> String {
    format!(
        "{} of {} requests failed {:?}; answered by {:?}; first failures: {:?}",
        r.failures(),
        r.total,
        r.errors,
        r.versions,
        r.first_errors
    )
}

/// Stops every load, then asserts that none saw a failure (non-2xx or a broken
/// connection) and that each sent at least `min_total` requests. `context` is appended
/// to the failure message (e.g. Envoy's stats of why requests failed).
pub fn assert_clean(loads: Vec<Traffic>, min_total: usize, context: &str) -> Vec<LoadReport> {
    let stopped: Vec<(String, LoadReport, Duration)> =
        loads.into_iter().map(Traffic::stop).collect();
    let mut problems = Vec::new();
    for (label, r, took) in &stopped {
        let rate = r.total as f64 / took.as_secs_f64().max(0.001);
        eprintln!(
            "{label}: {} requests in {took:.1?} ({rate:.0}/s), {} failed {:?}, answered by {:?}",
            r.total,
            r.failures(),
            r.errors,
            r.versions
        );
        if r.failures() > 0 {
            problems.push(format!("{label}: {}", describe(r)));
        }
        if r.total < min_total {
            problems.push(format!(
                "{label}: only {} requests in {took:.1?} (want at least {min_total}): {}",
                r.total,
                describe(r)
            ));
        }
    }
    assert!(problems.is_empty(), "{}\n{context}", problems.join("\n"));
    stopped.into_iter().map(|(_, r, _)| r).collect()
}

/// Envoy's counters that say why requests failed (no cluster, no route, no healthy
/// upstream, resets, 5xx by cluster) and clusters still warming, for failure messages.
pub fn why_failed(envoy: &Envoy) -> String {
    let stats = envoy.stats(
        r"\.(no_cluster|no_route|upstream_cx_none_healthy|upstream_rq_503|upstream_rq_5xx|upstream_cx_connect_fail|upstream_rq_pending_failure_eject|upstream_cx_destroy_remote_with_active_rq|downstream_rq_5xx)$|^cluster_manager\.warming_clusters$|^listener_manager\.total_listeners_warming$",
    );
    // Not the xDS connection's own cluster (coalmine killed, restarted).
    let nonzero: BTreeMap<String, u64> = stats
        .into_iter()
        .filter(|(k, v)| *v > 0 && !k.contains("coalmine_xds"))
        .collect();
    format!("envoy {}: {nonzero:?}", envoy.admin_addr())
}

/// Envoy's `update_success` counters of CDS, LDS, every RDS subscription and every
/// EDS cluster: what it took from the control plane.
pub fn update_successes(envoy: &Envoy) -> BTreeMap<String, u64> {
    envoy.stats(
        r"^(cluster_manager\.cds|listener_manager\.lds|http\..*\.rds\..*|cluster\..*)\.update_success$",
    )
}

/// Waits until coalmine's ledger lists `node` with cds, eds, lds and rds each ACKed
/// at the version it serves, nothing pending.
pub fn wait_acked(coalmine: &Coalmine, node: &str, timeout: Duration) {
    let settled = || {
        let body = coalmine.admin_get("/api/v1/proxies").body;
        let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        let proxies = v["proxies"].as_array().cloned().unwrap_or_default();
        proxies.iter().any(|p| {
            p["node"] == node
                && ["cds", "eds", "lds", "rds"].iter().all(|t| {
                    let t = &p["types"][t];
                    t["acked"].is_string() && t["acked"] == t["served"] && t["pending"] == false
                })
        })
    };
    let ok = poll_until(timeout, settled);
    assert!(
        ok,
        "{node} never settled: {}",
        coalmine.admin_get("/api/v1/proxies").body
    );
}

/// Waits until Envoy's cluster `cluster` has `healthy` healthy hosts of `total`.
pub fn wait_members(envoy: &Envoy, cluster: &str, healthy: u64, total: u64, timeout: Duration) {
    let stat = |name: &str| {
        envoy
            .stat(&format!("cluster.{cluster}.{name}"))
            .unwrap_or(0)
    };
    let ok = poll_until(timeout, || {
        stat("membership_healthy") == healthy && stat("membership_total") == total
    });
    let got = (stat("membership_healthy"), stat("membership_total"));
    assert!(
        ok,
        "envoy {}: {cluster}: wanted {healthy} healthy of {total}, have {got:?}",
        envoy.admin_addr()
    );
}

/// Waits until Envoy holds (`present`) or no longer holds the dynamic cluster `cluster`.
pub fn wait_cluster(envoy: &Envoy, cluster: &str, present: bool, timeout: Duration) {
    let has = || envoy.dynamic_cluster_names().iter().any(|c| c == cluster);
    let ok = poll_until(timeout, || has() == present);
    assert!(
        ok,
        "envoy {}: cluster {cluster} {} in {timeout:?}; it has {:?}",
        envoy.admin_addr(),
        if present { "never came" } else { "never left" },
        envoy.dynamic_cluster_names()
    );
}

/// The protocol's name in labels and messages.
pub fn protocol(delta: bool) -> &'static str {
    if delta {
        "delta"
    } else {
        "sotw"
    }
}

/// POSTs `yaml` to `path` (`/api/v1/apply?wait=10s`, ...); the status, the body and
/// how long the answer took (read for up to 30 s, longer than any `wait=` here).
pub fn post(coalmine: &Coalmine, path: &str, yaml: &str) -> (u16, Value, Duration) {
    let mut client = Client::new(coalmine.admin_port());
    client.timeout = Duration::from_secs(30);
    let headers = [("content-type", "application/yaml")];
    let started = Instant::now();
    let r = client
        .request("POST", "localhost", path, &headers, yaml.as_bytes())
        .unwrap_or_else(|e| panic!("coalmine admin POST {path}: {e}"));
    let took = started.elapsed();
    let body = serde_json::from_str(&r.body).unwrap_or(Value::String(r.body.clone()));
    (r.status, body, took)
}

/// POSTs and asserts a 200.
pub fn post_ok(coalmine: &Coalmine, path: &str, yaml: &str) -> (Value, Duration) {
    let (status, body, took) = post(coalmine, path, yaml);
    assert_eq!(
        status, 200,
        "POST {path} answered {status} after {took:?}: {body}"
    );
    (body, took)
}
