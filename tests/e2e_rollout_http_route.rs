//! Releases whose target is a Gateway API HTTPRoute, end to end through a real Envoy
//! 1.40 selected by its Gateway's name label, real backends and steady load: a canary
//! steps the rule's backendRef weights to promotion (the stored HTTPRoute then names
//! only the canary Service, every step a revision in `history`), and an A/B test sends
//! `x-canary: true` to the canary through an extra rule while others stay on stable,
//! then rolls back on abort.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use coalmine::gateway_api::GATEWAY_NAME_LABEL;
use serde_json::Value;
use support::config::{docs, service_entry};
use support::rollout::{is_final, phase, poll, step_kinds, steps, wait, Seen};
use support::scenario::{expect_code, json};
use support::traffic::{send, wait_for_outcomes};
use support::{Backend, Coalmine, Envoy, Load};

const HOST: &str = "petstore.test";
const NAME: &str = "release";
const TIMEOUT: Duration = Duration::from_secs(120);
const V1: &str = "outbound|80||petstore-v1";
const V2: &str = "outbound|80||petstore-v2";

/// A Gateway API Gateway `name` on `port`, two ServiceEntry hosts (one per version)
/// and an HTTPRoute `petstore` whose first rule is a redirect and whose second sends
/// everything to `petstore-v1`.
fn mesh(name: &str, port: u16, v1: &Backend, v2: &Backend) -> String {
    let gateway = format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: {name}}}
spec:
  gatewayClassName: coalmine
  listeners: [{{name: http, port: {port}, protocol: HTTP}}]
"
    );
    let route = format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: petstore}}
spec:
  parentRefs: [{{name: {name}}}]
  hostnames: [{HOST}]
  rules:
  - matches: [{{path: {{type: Exact, value: /old}}}}]
    filters:
    - type: RequestRedirect
      requestRedirect: {{path: {{type: ReplaceFullPath, replaceFullPath: /new}}, statusCode: 301}}
  - backendRefs: [{{name: petstore-v1, port: 80}}]
"
    );
    docs(&[
        &gateway,
        &service_entry("petstore-v1", "petstore-v1", &[(v1.port(), "v1")]),
        &service_entry("petstore-v2", "petstore-v2", &[(v2.port(), "v2")]),
        &route,
    ])
}

fn rollout(strategy: &str, analysis: &str) -> String {
    format!(
        "apiVersion: coalmine.dev/v1alpha1
kind: Rollout
metadata: {{name: {NAME}}}
spec:
  target: {{kind: HTTPRoute, name: petstore}}
  stable: {{host: petstore-v1, port: {{number: 80}}}}
  canary: {{host: petstore-v2, port: {{number: 80}}}}
  strategy: {strategy}
  analysis:
{analysis}"
    )
}

/// A step as Envoy's route configuration (cluster → weight in millionths) and the
/// stored HTTPRoute's target rule (backendRef → relative weight) had it.
type Observed = (BTreeMap<String, u64>, Vec<(String, u64)>);

struct World {
    port: u16,
    dir: tempfile::TempDir,
    coalmine: Coalmine,
    envoy: Envoy,
    _backends: (Backend, Backend),
}

impl World {
    /// Backends v1 and v2, a bare coalmine holding [`mesh`] (applied by the CLI, so
    /// rollout steps and `history` share one store), and an Envoy with the Gateway's
    /// name label; returns once Envoy serves v1.
    fn start(prefix: &str) -> World {
        let (v1, v2) = (Backend::start("v1"), Backend::start("v2"));
        let name = support::unique(prefix);
        let port = support::free_port();
        let dir = tempfile::TempDir::new().expect("tempdir");
        let coalmine = Coalmine::start_bare(&[]);
        apply(&coalmine, &dir, "mesh.yaml", &mesh(&name, port, &v1, &v2));
        let labels = [(GATEWAY_NAME_LABEL, name.as_str())];
        let envoy = Envoy::start(&coalmine.bootstrap(&name, &labels, false));
        wait_for_outcomes(port, HOST, &[], &["v1"], Duration::from_secs(30));
        World {
            port,
            dir,
            coalmine,
            envoy,
            _backends: (v1, v2),
        }
    }

    fn apply(&self, file: &str, yaml: &str) {
        apply(&self.coalmine, &self.dir, file, yaml);
    }

    fn load(&self, headers: &[(&str, &str)]) -> Load {
        Load::start(self.port, HOST, "/", headers, Duration::from_millis(3))
    }

    /// The stored HTTPRoute, from `coalmine get httproute petstore -o json`.
    fn stored_route(&self) -> Value {
        let out = self
            .coalmine
            .cli(&["get", "HTTPRoute", "petstore", "-o", "json"]);
        json(&out, "get HTTPRoute")
    }

    /// backendRefs `(name, weight)` of each rule of the stored HTTPRoute.
    fn stored_backends(&self) -> Vec<Vec<(String, u64)>> {
        let route = self.stored_route();
        let rules = route
            .pointer("/spec/rules")
            .or_else(|| route.pointer("/items/0/spec/rules"));
        let rules = rules.and_then(Value::as_array).cloned().unwrap_or_default();
        rules
            .iter()
            .map(|rule| {
                let refs = rule["backendRefs"].as_array().cloned().unwrap_or_default();
                refs.iter()
                    .map(|r| {
                        let name = r["name"].as_str().unwrap_or("?").to_string();
                        (name, r["weight"].as_u64().unwrap_or(1))
                    })
                    .collect()
            })
            .collect()
    }

    /// Revision numbers from `coalmine history -o json`.
    fn revisions(&self) -> Vec<u64> {
        let h = json(&self.coalmine.cli(&["history", "-o", "json"]), "history");
        let list = h["revisions"].as_array().cloned().unwrap_or_default();
        list.iter().filter_map(|r| r["revision"].as_u64()).collect()
    }

    /// The clusters Envoy's route configuration sends to, weights in millionths.
    fn weights(&self) -> BTreeMap<String, u64> {
        support::dump::route_targets(&self.envoy, &format!("http.{}", self.port))
    }
}

fn apply(coalmine: &Coalmine, dir: &tempfile::TempDir, file: &str, yaml: &str) {
    let path = dir.path().join(file);
    std::fs::write(&path, yaml).expect("write yaml");
    let out = coalmine.cli(&["apply", "-f", &path.display().to_string()]);
    expect_code(&out, 0, "apply");
}

#[test]
fn an_http_route_canary_steps_its_backend_weights_to_promotion() {
    let w = World::start("ro-httproute");
    let before = w.revisions();
    let load = w.load(&[]);
    let analysis = "    interval: 2s
    threshold: 2
    stepWeights: [10, 50]
    metrics:
    - name: request-success-rate
      thresholdRange: {min: 99}
      interval: 4s
      minSamples: 1
";
    w.apply("rollout.yaml", &rollout("Canary", analysis));
    let mut seen = Seen::default();
    // Each ACKed step, as Envoy's route configuration and the stored HTTPRoute had it.
    let mut observed: BTreeMap<u64, Observed> = BTreeMap::new();
    let end = poll(
        &w.coalmine,
        NAME,
        &mut seen,
        TIMEOUT,
        |s| {
            let list = steps(s);
            let Some(last) = list.last() else { return };
            let weight = last["weight"].as_f64().unwrap_or(-1.0) as u64;
            if last["kind"] != "step" || last["ackedAt"].is_null() || observed.contains_key(&weight)
            {
                return;
            }
            let (envoy, stored) = (w.weights(), w.stored_backends());
            let again = support::rollout::status(&w.coalmine, NAME).expect("status");
            if steps(&again).len() == list.len() {
                observed.insert(weight, (envoy, stored[1].clone()));
            }
        },
        is_final,
    );
    assert_eq!(phase(&end), "Succeeded", "statuses:\n{}", seen.summary());
    let kinds: Vec<(String, f64)> = step_kinds(&end);
    assert_eq!(
        kinds,
        [("step", 10.0), ("step", 50.0), ("promote", 100.0)]
            .map(|(k, w)| (k.to_string(), w))
            .to_vec()
    );
    let want = |v1: u64, v2: u64, refs: [(&str, u64); 2]| {
        (
            BTreeMap::from([(V1.to_string(), v1), (V2.to_string(), v2)]),
            refs.map(|(n, w)| (n.to_string(), w)).to_vec(),
        )
    };
    assert_eq!(
        observed,
        BTreeMap::from([
            (
                10,
                want(900_000, 100_000, [("petstore-v1", 9), ("petstore-v2", 1)])
            ),
            (
                50,
                want(500_000, 500_000, [("petstore-v1", 1), ("petstore-v2", 1)])
            ),
        ]),
        "each ACKed step in Envoy and in the stored HTTPRoute; statuses:\n{}",
        seen.summary()
    );
    // Promoted: the rule names only the canary Service, the redirect rule untouched.
    assert_eq!(
        w.stored_backends(),
        vec![vec![], vec![("petstore-v2".to_string(), 1)]]
    );
    let stored = w.stored_route();
    let rules = stored
        .pointer("/spec/rules")
        .or_else(|| stored.pointer("/items/0/spec/rules"));
    assert_eq!(
        rules.expect("rules")[0]["filters"][0]["type"],
        "RequestRedirect"
    );
    wait_for_outcomes(w.port, HOST, &[], &["v2"], Duration::from_secs(30));
    let report = load.stop();
    assert_eq!(
        report.failures(),
        0,
        "no request failed during the release: {report:?}"
    );
    assert!(
        report.versions.get("v2").copied().unwrap_or(0) > 0,
        "{report:?}"
    );
    // Every step is a revision in history: the Rollout, two steps and the promotion.
    let after = w.revisions();
    assert!(
        after.len() >= before.len() + 4,
        "history before {before:?}, after {after:?}"
    );
    let revisions: Vec<u64> = steps(&end)
        .iter()
        .map(|s| s["revision"].as_u64().expect("each step has its revision"))
        .collect();
    for r in &revisions {
        assert!(
            after.contains(r),
            "step revision {r} not in history {after:?}"
        );
    }
}

#[test]
fn an_http_route_ab_test_sends_the_header_to_the_canary_then_aborts() {
    let w = World::start("ro-httproute-ab");
    let analysis = "    interval: 30s
    iterations: 10
    match:
    - headers: {x-canary: {exact: \"true\"}}
";
    w.apply("rollout.yaml", &rollout("ABTesting", analysis));
    let mut seen = Seen::default();
    wait(&w.coalmine, NAME, &mut seen, TIMEOUT, |s| {
        steps(s).last().is_some_and(|l| !l["ackedAt"].is_null())
    });
    let rules = w.stored_backends();
    assert_eq!(rules.len(), 3, "an A/B rule was added: {rules:?}");
    assert_eq!(
        rules[1],
        vec![("petstore-v2".to_string(), 1)],
        "the A/B rule"
    );
    let stable = [("petstore-v1", 1), ("petstore-v2", 0)].map(|(n, w)| (n.to_string(), w));
    assert_eq!(rules[2], stable.to_vec(), "the target rule");
    // With the header: the canary only; without: stable only.
    let canary = send(60, w.port, HOST, &[("x-canary", "true")]);
    assert_eq!(
        canary,
        BTreeMap::from([("v2".to_string(), 60)]),
        "x-canary: true"
    );
    let plain = send(60, w.port, HOST, &[]);
    assert_eq!(plain, BTreeMap::from([("v1".to_string(), 60)]), "no header");

    let out = w.coalmine.cli(&["rollout", "abort", NAME]);
    expect_code(&out, 0, "rollout abort");
    let end = wait(&w.coalmine, NAME, &mut seen, TIMEOUT, is_final);
    assert_eq!(phase(&end), "Failed", "statuses:\n{}", seen.summary());
    assert_eq!(
        w.stored_backends(),
        vec![vec![], vec![("petstore-v1".to_string(), 1)]],
        "rolled back: the A/B rule gone, the rule on stable"
    );
    wait_for_outcomes(
        w.port,
        HOST,
        &[("x-canary", "true")],
        &["v1"],
        Duration::from_secs(30),
    );
}

/// The `name=value` of a response's `Set-Cookie`, if it has one.
fn cookie_of(r: &support::traffic::Response) -> Option<String> {
    let header = r.header("set-cookie")?;
    Some(header.split(';').next().unwrap_or_default().to_string())
}

#[test]
fn an_http_route_canary_keeps_sticky_sessions_and_gives_the_route_back() {
    let w = World::start("ro-httproute-sticky");
    let spec_of = |route: Value| {
        let spec = route
            .pointer("/spec")
            .or_else(|| route.pointer("/items/0/spec"));
        spec.cloned().expect("an HTTPRoute spec")
    };
    let before = spec_of(w.stored_route());
    let analysis = "    interval: 2s
    stepWeights: [30, 70]
    sessionAffinity: {cookieName: canary, primaryCookieName: stable, maxAge: 600}
";
    w.apply("rollout.yaml", &rollout("Canary", analysis));
    let get = |headers: &[(&str, &str)]| {
        let r = support::traffic::get(w.port, HOST, "/", headers).expect("request");
        assert_eq!(r.status, 200, "{r:?}");
        r
    };
    // (cookie, version) of every user so far, and the steps checked.
    let mut users: Vec<(String, String)> = Vec::new();
    let mut checked: BTreeMap<u64, usize> = BTreeMap::new();
    let mut seen = Seen::default();
    let end = poll(
        &w.coalmine,
        NAME,
        &mut seen,
        TIMEOUT,
        |s| {
            let Some(last) = steps(s).last().cloned() else {
                return;
            };
            let weight = last["weight"].as_f64().unwrap_or(-1.0) as u64;
            if last["kind"] != "step" || last["ackedAt"].is_null() || checked.contains_key(&weight)
            {
                return;
            }
            for _ in 0..10 {
                let r = get(&[]);
                let cookie = cookie_of(&r).unwrap_or_else(|| panic!("no cookie: {r:?}"));
                let side = if r.outcome() == "v2" {
                    "canary="
                } else {
                    "stable="
                };
                assert!(cookie.starts_with(side), "{} set {cookie}", r.outcome());
                users.push((cookie, r.outcome()));
            }
            let moved: Vec<String> = users
                .iter()
                .filter_map(|(cookie, version)| {
                    let now = get(&[("cookie", cookie)]).outcome();
                    (&now != version).then(|| format!("{cookie}: {version} -> {now}"))
                })
                .collect();
            let promoted = status_has_promotion(&w);
            if !promoted {
                assert!(moved.is_empty(), "at {weight} %: {moved:?}");
                checked.insert(weight, users.len());
            }
        },
        is_final,
    );
    assert_eq!(phase(&end), "Succeeded", "statuses:\n{}", seen.summary());
    assert_eq!(
        checked.keys().copied().collect::<Vec<_>>(),
        [30, 70],
        "{}",
        seen.summary()
    );
    let sides: std::collections::BTreeSet<&str> = users.iter().map(|(_, v)| v.as_str()).collect();
    assert_eq!(sides.len(), 2, "users landed on both sides: {users:?}");
    // Promoted: the stored route is the one before the release, on the canary Service.
    let mut expected = before.clone();
    expected["rules"][1]["backendRefs"][0]["name"] = Value::from("petstore-v2");
    assert_eq!(spec_of(w.stored_route()), expected);
    wait_for_outcomes(w.port, HOST, &[], &["v2"], Duration::from_secs(30));
    for (cookie, _) in &users {
        let r = get(&[("cookie", cookie)]);
        assert_eq!((r.outcome().as_str(), cookie_of(&r)), ("v2", None));
    }
}

/// Whether the release has stored its promotion (after which cookies stop mattering).
fn status_has_promotion(w: &World) -> bool {
    let s = support::rollout::status(&w.coalmine, NAME).expect("status");
    steps(&s).iter().any(|st| st["kind"] == "promote")
}
