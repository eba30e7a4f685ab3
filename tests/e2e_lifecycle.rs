//! End to end lifecycle through a real Envoy 1.40: blue-green switches under load, an
//! invalid config file that leaves traffic alone, coalmine killed and restarted (Envoy
//! keeps serving and is sent nothing new), a clean SIGTERM, and the plain-text log.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::churn::wait_acked;
use support::config::{destination_rule, docs, service_entry};
use support::dump::{route_targets, version_infos};
use support::traffic::{send, wait_for_outcomes};
use support::{start_envoy_for, Backend, Coalmine, ConfigDir, Envoy, GatewaySpec, Load};

const HOST: &str = "petstore.test";
const WAIT: Duration = Duration::from_secs(20);
const V1: &str = "outbound|80|v1|petstore";
const V2: &str = "outbound|80|v2|petstore";

/// A VirtualService `name` on `gateway` splitting `petstore` by subset weights
/// (written as given, so invalid weights go through as is).
fn split_vs(name: &str, gateway: &str, weights: &[(&str, u32)]) -> String {
    support::config::weighted_virtual_service(name, gateway, "petstore", weights)
}

/// One test's world: backends v1 and v2, its Gateway, the config folder, coalmine
/// serving it and one Envoy selected by the Gateway.
struct World {
    v1: Backend,
    v2: Backend,
    gw: GatewaySpec,
    cfg: ConfigDir,
    coalmine: Coalmine,
    envoy: Envoy,
}

impl World {
    fn start(prefix: &str, weights: &[(&str, u32)]) -> World {
        let (v1, v2) = (Backend::start("v1"), Backend::start("v2"));
        let gw = GatewaySpec::new(prefix);
        let cfg = ConfigDir::new();
        let vs = split_vs("petstore", &gw.name, weights);
        cfg.write("mesh.yaml", &mesh(&gw, &v1, &v2, &vs));
        let coalmine = Coalmine::start(&cfg.path(), &[]);
        let envoy = start_envoy_for(&coalmine, &gw, false);
        World {
            v1,
            v2,
            gw,
            cfg,
            coalmine,
            envoy,
        }
    }

    /// Replaces the VirtualService in the config file.
    fn write_vs(&self, vs: &str) {
        let yaml = mesh(&self.gw, &self.v1, &self.v2, vs);
        self.cfg.write("mesh.yaml", &yaml);
    }

    fn write_weights(&self, weights: &[(&str, u32)]) {
        self.write_vs(&split_vs("petstore", &self.gw.name, weights));
    }

    /// Waits until Envoy's route sends traffic to exactly `want` (cluster → millionths,
    /// 100 for a lone cluster).
    fn wait_weights(&self, want: &[(&str, u64)]) {
        let want: BTreeMap<String, u64> = want.iter().map(|(n, w)| (n.to_string(), *w)).collect();
        let route = format!("http.{}", self.gw.port);
        let ok = support::poll_until(WAIT, || route_targets(&self.envoy, &route) == want);
        let got = route_targets(&self.envoy, &route);
        assert!(ok, "{route} never routed to {want:?}; it has {got:?}");
    }

    fn wait_outcomes(&self, versions: &[&str]) {
        wait_for_outcomes(self.gw.port, HOST, &[], versions, WAIT);
    }

    fn load(&self) -> Load {
        Load::start(self.gw.port, HOST, "/", &[], Duration::from_millis(1))
    }

    fn connected(&self) -> Option<u64> {
        self.envoy.stat("control_plane.connected_state")
    }

    /// How many revisions coalmine has stored.
    fn revisions(&self) -> usize {
        let r = self.coalmine.admin_get("/api/v1/revisions");
        assert_eq!(r.status, 200, "{}", r.body);
        let v: Value = serde_json::from_str(&r.body).expect("revisions JSON");
        v["revisions"].as_array().map_or(0, Vec::len)
    }
}

fn mesh(gw: &GatewaySpec, v1: &Backend, v2: &Backend, vs: &str) -> String {
    docs(&[
        &gw.yaml(),
        &service_entry(
            "petstore",
            "petstore",
            &[(v1.port(), "v1"), (v2.port(), "v2")],
        ),
        &destination_rule("petstore", "petstore", &["v1", "v2"]),
        vs,
    ])
}

/// Waits until `load` has sent `n` more requests than it had.
fn run_load(load: &Load, n: usize) {
    let target = load.report().total + n;
    let ok = support::poll_until(WAIT, || load.report().total >= target);
    assert!(ok, "load stalled: {:?}", load.report());
}

/// Requests counted per version in `later` but not in `earlier`.
fn new_versions(earlier: &BTreeMap<String, usize>, later: &BTreeMap<String, usize>) -> Vec<String> {
    later
        .iter()
        .filter(|(v, n)| earlier.get(*v).copied().unwrap_or(0) < **n)
        .map(|(v, _)| v.clone())
        .collect()
}

#[test]
fn blue_green_switch_under_load_loses_nothing() {
    let w = World::start("bluegreen", &[("v1", 100)]);
    w.wait_outcomes(&["v1"]);
    let load = w.load();
    run_load(&load, 50);

    for (to, cluster) in [("v2", V2), ("v1", V1)] {
        w.write_weights(&[(to, 100)]);
        w.wait_weights(&[(cluster, 100)]);
        w.wait_outcomes(&[to]);
        let switched = load.report();
        run_load(&load, 200);
        let after = load.report();
        assert_eq!(
            new_versions(&switched.versions, &after.versions),
            [to],
            "all traffic on {to} after the switch: {switched:?} then {after:?}"
        );
    }
    let report = load.stop();
    let why = w
        .envoy
        .stats(r"\.(no_cluster|no_route)$|upstream_cx_none_healthy$");
    assert_eq!(report.failures(), 0, "{report:?}; envoy: {why:?}");
    assert!(
        report.versions.get("v2").is_some_and(|n| *n > 0),
        "{report:?}"
    );
    assert!(report.total >= 450, "{report:?}");
}

#[test]
fn invalid_weights_keep_the_last_good_split() {
    let w = World::start("invalid", &[("v1", 80), ("v2", 20)]);
    w.wait_weights(&[(V1, 800_000), (V2, 200_000)]);
    w.wait_outcomes(&["v1", "v2"]);
    let revisions = w.revisions();
    let versions = version_infos(&w.envoy);

    // A weight over 100, then weights adding up to 120: both rejected, field by field.
    w.write_weights(&[("v1", 150), ("v2", 20)]);
    w.coalmine
        .wait_for_log("spec.http[0].route[0].weight", WAIT);
    w.write_weights(&[("v1", 60), ("v2", 60)]);
    w.coalmine.wait_for_log("weights add up to 120", WAIT);
    let logs = w.coalmine.logs();
    let rejected: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("config rejected"))
        .collect();
    assert!(
        rejected.iter().any(|l| l.contains(
            "config rejected, keeping the last good set: VirtualService default/petstore: spec.http[0].route[0].weight: must be between 0 and 100"
        )),
        "{rejected:#?}"
    );
    assert!(
        rejected.iter().any(
            |l| l.contains("VirtualService default/petstore: spec.http[0].route")
                && l.contains("120")
        ),
        "{rejected:#?}"
    );

    // Nothing reached Envoy: the same versions, the same 80/20 split.
    assert_eq!(w.revisions(), revisions, "no revision for an invalid file");
    assert_eq!(version_infos(&w.envoy), versions);
    let counts = send(1000, w.gw.port, HOST, &[]);
    let n2 = counts.get("v2").copied().unwrap_or(0);
    assert_eq!(
        counts.get("v1").copied().unwrap_or(0) + n2,
        1000,
        "{counts:?}"
    );
    assert!((150..=250).contains(&n2), "still 80/20: {counts:?}");

    // Fixed, it applies.
    w.write_weights(&[("v1", 30), ("v2", 70)]);
    w.wait_weights(&[(V1, 300_000), (V2, 700_000)]);
    assert_eq!(w.revisions(), revisions + 1);
    let counts = send(1000, w.gw.port, HOST, &[]);
    let n2 = counts.get("v2").copied().unwrap_or(0);
    assert!((650..=750).contains(&n2), "30/70 once fixed: {counts:?}");
}

/// `kind/name` → `version_info` of every dynamic cluster, listener and route config.
fn resource_versions(envoy: &Envoy) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let sections = [
        (
            "ClustersConfigDump",
            "dynamic_active_clusters",
            "cluster",
            "/cluster/name",
        ),
        (
            "ListenersConfigDump",
            "dynamic_listeners",
            "listener",
            "/name",
        ),
        (
            "RoutesConfigDump",
            "dynamic_route_configs",
            "route",
            "/route_config/name",
        ),
    ];
    for (section, list, kind, name) in sections {
        for item in envoy.dump_section(section)[list]
            .as_array()
            .into_iter()
            .flatten()
        {
            let version = item["version_info"]
                .as_str()
                .or_else(|| item["active_state"]["version_info"].as_str())
                .unwrap_or("?");
            let name = item.pointer(name).and_then(Value::as_str).unwrap_or("?");
            out.insert(format!("{kind}/{name}"), version.to_string());
        }
    }
    out
}

/// Envoy's `update_success` counters of CDS, LDS and every RDS subscription.
fn update_successes(envoy: &Envoy) -> BTreeMap<String, u64> {
    envoy.stats(r"^(cluster_manager\.cds|listener_manager\.lds|http\..*\.rds\..*)\.update_success$")
}

#[test]
fn restart_keeps_serving_and_resends_nothing() {
    let mut w = World::start("restart", &[("v1", 50), ("v2", 50)]);
    w.wait_weights(&[(V1, 500_000), (V2, 500_000)]);
    w.wait_outcomes(&["v1", "v2"]);
    wait_acked(&w.coalmine, &w.gw.app, WAIT);
    let load = w.load();
    run_load(&load, 50);
    let versions = resource_versions(&w.envoy);
    assert_eq!(
        versions.len(),
        4,
        "2 clusters, 1 listener, 1 route: {versions:?}"
    );
    let types = version_infos(&w.envoy);
    let successes = update_successes(&w.envoy);
    assert_eq!(successes.len(), 3, "{successes:?}");

    w.coalmine.kill9();
    w.envoy.wait_until(|_| w.connected() == Some(0), WAIT);
    run_load(&load, 300);
    let down = load.report();
    assert_eq!(down.failures(), 0, "while coalmine is down: {down:?}");

    w.coalmine.restart();
    w.envoy.wait_until(|_| w.connected() == Some(1), WAIT);
    wait_acked(&w.coalmine, &w.gw.app, WAIT);
    // Time for a push that should not come (the file watcher polls every 200 ms).
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(resource_versions(&w.envoy), versions);
    assert_eq!(version_infos(&w.envoy), types);
    assert_eq!(update_successes(&w.envoy), successes, "nothing re-sent");

    run_load(&load, 100);
    let report = load.stop();
    assert_eq!(report.failures(), 0, "{report:?}");
    assert_eq!(report.versions.len(), 2, "still split: {report:?}");
}

#[test]
fn sigterm_exits_cleanly_and_envoy_keeps_serving() {
    let mut w = World::start("sigterm", &[("v1", 100)]);
    w.wait_outcomes(&["v1"]);
    w.envoy.wait_until(|_| w.connected() == Some(1), WAIT);
    let load = w.load();
    run_load(&load, 50);

    let started = Instant::now();
    let status = w.coalmine.terminate(Duration::from_secs(15));
    let took = started.elapsed();
    assert!(status.success(), "exit {status}:\n{}", w.coalmine.logs());
    assert!(
        took < Duration::from_secs(6),
        "took {took:?}:\n{}",
        w.coalmine.logs()
    );
    let logs = w.coalmine.logs();
    assert!(logs.contains("shutting down"), "{logs}");
    assert!(
        !logs.contains("did not close"),
        "streams drained cleanly:\n{logs}"
    );

    w.envoy.wait_until(|_| w.connected() == Some(0), WAIT);
    run_load(&load, 300);
    let report = load.stop();
    assert_eq!(report.failures(), 0, "{report:?}");
    let counts = send(50, w.gw.port, HOST, &[]);
    assert_eq!(counts, BTreeMap::from([("v1".to_string(), 50)]));
}

#[test]
fn log_is_plain_text_with_revisions_and_field_paths() {
    let w = World::start("logs", &[("v1", 100)]);
    w.wait_outcomes(&["v1"]);
    w.coalmine
        .wait_for_log("pushing configuration revision=1", WAIT);
    w.coalmine
        .wait_for_log(&format!("proxy connected node={}", w.gw.app), WAIT);

    let bad = split_vs("petstore", &w.gw.name, &[("v1", 100), ("v2", 101)]);
    w.write_vs(&bad);
    w.coalmine.wait_for_log(
        "config rejected, keeping the last good set: VirtualService default/petstore: spec.http[0].route[1].weight: ",
        WAIT,
    );
    w.write_weights(&[("v2", 100)]);
    w.coalmine
        .wait_for_log("config file applied revision=2", WAIT);
    w.coalmine
        .wait_for_log("pushing configuration revision=2", WAIT);
    w.wait_outcomes(&["v2"]);

    let logs = w.coalmine.logs();
    assert!(!logs.contains('\u{1b}'), "no ANSI escapes:\n{logs}");
    assert!(
        !logs.trim_start().starts_with('{'),
        "plain text, not JSON:\n{logs}"
    );
    let pushes: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("pushing configuration"))
        .collect();
    assert_eq!(pushes.len(), 2, "one push per revision: {pushes:#?}");
}
