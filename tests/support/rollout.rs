//! Releases under test: a Rollout document, its status from the admin API
//! (`GET /api/v1/rollouts/{namespace}/{name}`), polling it and keeping every distinct
//! status seen, and reading the fields tests assert on.

use std::collections::BTreeMap;
use std::fs::File;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;
use tempfile::TempDir;

use super::process::coalmine_bin;
use super::scenario::{expect_code, json, stdout, Petstore};
use super::traffic::{self, wait_for_outcomes};
use super::{dump, Coalmine, Envoy, Load};

/// A `coalmine.dev/v1alpha1` Rollout `name` of VirtualService `target`, from subset
/// `v1` to subset `v2` of host `petstore`; `analysis` is the YAML of `spec.analysis`,
/// indented by four spaces.
pub fn rollout_yaml(name: &str, target: &str, strategy: &str, analysis: &str) -> String {
    format!(
        "apiVersion: coalmine.dev/v1alpha1
kind: Rollout
metadata:
  name: {name}
spec:
  target: {{kind: VirtualService, name: {target}}}
  stable: {{host: petstore, subset: v1}}
  canary: {{host: petstore, subset: v2}}
  strategy: {strategy}
  analysis:
{analysis}"
    )
}

/// The status of Rollout `name` (namespace `default`), or `None` before it exists.
pub fn status(coalmine: &Coalmine, name: &str) -> Option<Value> {
    let r = coalmine.admin_get(&format!("/api/v1/rollouts/default/{name}"));
    match r.status {
        200 => Some(serde_json::from_str(&r.body).expect("rollout status is JSON")),
        404 => None,
        other => panic!("GET rollout {name}: {other} {}", r.body),
    }
}

pub fn phase(status: &Value) -> &str {
    status["phase"].as_str().unwrap_or("")
}

pub fn is_final(status: &Value) -> bool {
    matches!(phase(status), "Succeeded" | "Failed")
}

pub fn steps(status: &Value) -> Vec<Value> {
    status["steps"].as_array().cloned().unwrap_or_default()
}

/// The newest step, if any.
pub fn last_step(status: &Value) -> Option<Value> {
    steps(status).pop()
}

/// Each step's `(kind, weight)`.
pub fn step_kinds(status: &Value) -> Vec<(String, f64)> {
    steps(status)
        .iter()
        .map(|s| {
            (
                s["kind"].as_str().unwrap_or("?").to_string(),
                s["weight"].as_f64().unwrap_or(-1.0),
            )
        })
        .collect()
}

/// An RFC 3339 time of the status (`appliedAt`, `ackedAt`, ...).
pub fn time(v: &Value) -> Option<SystemTime> {
    v.as_str()
        .map(|t| humantime::parse_rfc3339(t).unwrap_or_else(|e| panic!("time {t:?}: {e}")))
}

/// Every distinct status of one release, in the order they were seen.
#[derive(Debug, Default)]
pub struct Seen {
    pub statuses: Vec<Value>,
}

impl Seen {
    /// Records `status` if it differs from the last one.
    pub fn push(&mut self, status: &Value) {
        if self.statuses.last() != Some(status) {
            self.statuses.push(status.clone());
        }
    }

    pub fn last(&self) -> Option<&Value> {
        self.statuses.last()
    }

    /// The sequence of `phase weight% failed/threshold [steps]`, for failure messages.
    pub fn summary(&self) -> String {
        self.statuses
            .iter()
            .map(|s| {
                format!(
                    "{} {}% failed {}/{} iteration {} steps {:?} metrics {} msg {:?}",
                    phase(s),
                    s["canaryWeight"],
                    s["failedChecks"],
                    s["threshold"],
                    s["iteration"],
                    step_kinds(s),
                    s["metrics"],
                    s["message"].as_str().unwrap_or("")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Polls the status every 50 ms into `seen`, calling `each` on every poll, until
/// `done` holds for a status (returned); panics after `timeout` with what was seen.
pub fn poll(
    coalmine: &Coalmine,
    name: &str,
    seen: &mut Seen,
    timeout: Duration,
    mut each: impl FnMut(&Value),
    mut done: impl FnMut(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(s) = status(coalmine, name) {
            seen.push(&s);
            each(&s);
            if done(&s) {
                return s;
            }
        }
        if Instant::now() >= deadline {
            panic!(
                "rollout {name}: condition not met in {timeout:?}; statuses seen:\n{}",
                seen.summary()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `poll` until `done`, with no per-poll work.
pub fn wait(
    coalmine: &Coalmine,
    name: &str,
    seen: &mut Seen,
    timeout: Duration,
    done: impl FnMut(&Value) -> bool,
) -> Value {
    poll(coalmine, name, seen, timeout, |_| {}, done)
}

/// Asserts the step ordering rules on every status seen: no step was applied before
/// the one before it was ACKed (a rollback excepted: an abort or a failure may
/// overtake a pending step), and a traffic step or promotion follows the ACK of the
/// step before it by at least `interval` (its interval had to be counted first).
pub fn assert_gated_on_ack(seen: &Seen, interval: Duration) {
    for s in &seen.statuses {
        let steps = steps(s);
        for pair in steps.windows(2) {
            let (prev, next) = (&pair[0], &pair[1]);
            if next["kind"] == "rollback" {
                continue;
            }
            let acked = time(&prev["ackedAt"]).unwrap_or_else(|| {
                panic!(
                    "step {next} applied before step {prev} was ACKed; statuses:\n{}",
                    seen.summary()
                )
            });
            let applied = time(&next["appliedAt"]).expect("appliedAt");
            let held = applied
                .duration_since(acked)
                .unwrap_or_else(|_| panic!("step {next} applied before the ACK of {prev}"));
            assert!(
                held >= interval,
                "step {next} applied {held:?} after the ACK of {prev}, under the interval \
                 {interval:?}"
            );
        }
    }
}

/// One release test's world: the two-version `Petstore` (VirtualService `petstore` all
/// on v1), a bare coalmine holding it (applied by the CLI, so rollout steps and
/// `history` share one store), and an Envoy that serves it.
pub struct World {
    pub p: Petstore,
    pub coalmine: Coalmine,
    pub envoy: Envoy,
}

impl World {
    pub fn start(prefix: &str) -> World {
        let p = Petstore::new(prefix);
        let coalmine = Coalmine::start_bare(&[]);
        let mesh = p.write("mesh.yaml", &p.yaml(&[("v1", 100)]));
        expect_code(&coalmine.cli(&["apply", "-f", &mesh]), 0, "apply mesh");
        let envoy = super::start_envoy_for(&coalmine, &p.gw, false);
        wait_for_outcomes(p.gw.port, HOST, &[], &["v1"], Duration::from_secs(30));
        World { p, coalmine, envoy }
    }

    /// `coalmine apply -f` of `yaml`; returns the revision it printed.
    pub fn apply(&self, file: &str, yaml: &str) -> u64 {
        let path = self.p.write(file, yaml);
        let out = self.coalmine.cli(&["apply", "-f", &path]);
        expect_code(&out, 0, "apply");
        let printed = stdout(&out);
        printed
            .split_whitespace()
            .skip_while(|w| *w != "revision")
            .nth(1)
            .and_then(|n| n.trim_end_matches(')').parse().ok())
            .unwrap_or_else(|| panic!("apply printed no revision: {printed:?}"))
    }

    /// Every stored revision, from `coalmine history -o json`.
    pub fn revisions(&self) -> Vec<u64> {
        let h = json(&self.coalmine.cli(&["history", "-o", "json"]), "history");
        h["revisions"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| r["revision"].as_u64().expect("revision number"))
            .collect()
    }

    /// `coalmine rollout ARGS...` against this coalmine.
    pub fn rollout_cli(&self, args: &[&str]) -> Output {
        let mut all = vec!["rollout"];
        all.extend_from_slice(args);
        self.coalmine.cli(&all)
    }

    /// The clusters Envoy's route configuration sends to, with weights in millionths
    /// (100 for a lone cluster, weight-0 entries left out).
    pub fn weights(&self) -> BTreeMap<String, u64> {
        dump::route_targets(&self.envoy, &self.p.route())
    }

    /// Steady GET / traffic through Envoy with `headers`, one request every `every`.
    pub fn load(&self, headers: &[(&str, &str)], every: Duration) -> Load {
        Load::start(self.p.gw.port, HOST, "/", headers, every)
    }

    /// `n` requests through Envoy, counted by outcome.
    pub fn send(&self, n: usize, headers: &[(&str, &str)]) -> BTreeMap<String, usize> {
        traffic::send(n, self.p.gw.port, HOST, headers)
    }

    /// Waits until Envoy's route configuration sends traffic to exactly the subsets
    /// `subsets` (sorted), e.g. after a rollback that the status cannot show as ACKed.
    pub fn wait_targets(&self, subsets: &[&str]) {
        let ok = super::poll_until(Duration::from_secs(30), || {
            self.p.targets(&self.envoy) == subsets
        });
        assert!(
            ok,
            "Envoy never routed to {subsets:?} only: {:?}",
            self.weights()
        );
    }

    /// Waits until requests with `headers` are answered only by `versions`.
    pub fn wait_outcomes(&self, headers: &[(&str, &str)], versions: &[&str]) {
        wait_for_outcomes(
            self.p.gw.port,
            HOST,
            headers,
            versions,
            Duration::from_secs(30),
        );
    }
}

/// Route weights in millionths of a canary step at `percent` to v2 (the rest to v1).
pub fn split(percent: f64) -> BTreeMap<String, u64> {
    let v2 = (percent * 10_000.0).round() as u64;
    let mut m = BTreeMap::new();
    if v2 < 1_000_000 {
        m.insert(V1.to_string(), 1_000_000 - v2);
    }
    if v2 > 0 {
        m.insert(V2.to_string(), v2);
    }
    m
}

pub const HOST: &str = "petstore.test";
pub const V1: &str = "outbound|80|v1|petstore";
pub const V2: &str = "outbound|80|v2|petstore";

/// `coalmine rollout status NAME --watch` running in the background, its output in files.
pub struct Watch {
    child: Child,
    dir: TempDir,
}

impl Watch {
    pub fn start(coalmine: &Coalmine, name: &str) -> Watch {
        let dir = TempDir::new().expect("tempdir");
        let out = File::create(dir.path().join("stdout")).expect("stdout file");
        let err = File::create(dir.path().join("stderr")).expect("stderr file");
        let child = Command::new(coalmine_bin())
            .args(["rollout", "status", name, "--watch"])
            .env("COALMINE_SERVER", coalmine.server_url())
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn coalmine rollout status --watch");
        Watch { child, dir }
    }

    /// Waits up to `timeout` for the exit: `(exit code, stdout, stderr)`; panics (after
    /// killing it) when it is still running.
    pub fn finish(mut self, timeout: Duration) -> (Option<i32>, String, String) {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "`rollout status --watch` still running after {timeout:?}; stdout:\n{}",
                    self.read("stdout")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        (status.code(), self.read("stdout"), self.read("stderr"))
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
