//! `coalmine serve --kubernetes` end to end: the real kube-rs client and watchers
//! against the in-process fake API server, a real Envoy 1.40, and pods that are test
//! backends on distinct loopback addresses (127.x.y.z) sharing one port, as pods do.
//! Replica ratios and scaling, readiness and draining without failed requests, a
//! watch that expires (410) and a Service deleted and re-added, subsets by pod label,
//! and one address on two ports (hand-written slices of a selector-less Service).

mod support;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use serde_json::{json, Value};
use support::config::{destination_rule, docs, weighted_virtual_service};
use support::endpoints::{endpoint, endpoint_slice, Cond};
use support::fake_apiserver::FakeApiServer;
use support::traffic::{send, wait_ready};
use support::{start_envoy_for, Backend, Coalmine, Envoy, GatewaySpec, Load};
use tempfile::TempDir;

const WAIT: Duration = Duration::from_secs(20);
const CLUSTER: &str = "outbound|80||web.default.svc.cluster.local";
const SERVICES: &str = "api/v1/services";
const SLICES: &str = "apis/discovery.k8s.io/v1/endpointslices";

struct Pod {
    backend: Backend,
    version: String,
    cond: Cond,
}

/// The fake cluster of one test: Service `web` (port 80 → named target port `http`),
/// pods as backends, and one EndpointSlice per version (`web-v1`, `web-v2`).
struct Cluster {
    api: FakeApiServer,
    dir: TempDir,
    subnet: [u8; 2],
    port: u16,
    pods: BTreeMap<String, Pod>,
}

impl Cluster {
    fn new() -> Cluster {
        static NEXT: AtomicU8 = AtomicU8::new(1);
        let subnet = [
            100 + (std::process::id() % 100) as u8,
            NEXT.fetch_add(1, Ordering::Relaxed),
        ];
        let c = Cluster {
            api: FakeApiServer::start(),
            dir: TempDir::new().expect("tempdir"),
            subnet,
            port: support::free_port(),
            pods: BTreeMap::new(),
        };
        c.apply_service();
        c
    }

    fn apply_service(&self) {
        self.api.apply(json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"selector": {"app": "web"},
                     "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}
        }));
    }

    /// Starts pod `web-<version>-<n>` (a backend answering `version`) and its Pod object;
    /// call `publish` to list it in its slice.
    fn add_pod(&mut self, version: &str) {
        let n = self.pods.len() as u8 + 1;
        let ip = IpAddr::from([127, self.subnet[0], self.subnet[1], n]);
        let name = format!("web-{version}-{n}");
        self.api.apply(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default",
                         "labels": {"app": "web", "version": version}},
            "spec": {"containers": [{"name": "web", "image": "web"}]}
        }));
        let backend = Backend::start_on_addr(ip, self.port, version);
        self.pods.insert(
            name,
            Pod {
                backend,
                version: version.into(),
                cond: Cond::Ready,
            },
        );
    }

    fn set(&mut self, pod: &str, cond: Cond) {
        self.pods.get_mut(pod).expect("pod").cond = cond;
        self.publish();
    }

    fn remove_pod(&mut self, pod: &str) -> Pod {
        let p = self.pods.remove(pod).expect("pod");
        self.publish();
        p
    }

    /// Writes the EndpointSlices from the pods held.
    fn publish(&self) {
        let versions: std::collections::BTreeSet<&str> =
            self.pods.values().map(|p| p.version.as_str()).collect();
        for version in versions {
            let endpoints: Vec<Value> = self
                .pods
                .iter()
                .filter(|(_, p)| p.version == version)
                .map(|(name, p)| endpoint(p.backend.ip(), name, p.cond))
                .collect();
            let name = format!("web-{version}");
            self.api
                .apply(endpoint_slice(&name, "web", self.port, endpoints));
        }
    }

    fn coalmine(&self) -> Coalmine {
        let kubeconfig = self.api.kubeconfig(self.dir.path());
        let kubeconfig = kubeconfig.display().to_string();
        Coalmine::start_bare_env(&["--kubernetes"], &[("KUBECONFIG", &kubeconfig)])
    }

    fn hits(&self, pod: &str) -> u64 {
        self.pods[pod].backend.hits()
    }
}

/// A Gateway and the routes in `yaml`, created in the cluster (the source of truth
/// under `--kubernetes`); then an Envoy for the Gateway, waited for until it answers.
fn route(cluster: &Cluster, coalmine: &Coalmine, gw: &GatewaySpec, yaml: &str) -> Envoy {
    let body = docs(&[&gw.yaml(), yaml]);
    for value in coalmine::yaml::documents(&body).expect("test YAML") {
        cluster.api.apply(value);
    }
    let envoy = start_envoy_for(coalmine, gw, false);
    wait_ready(gw.port, "web", "/", WAIT);
    envoy
}

/// A VirtualService on `gw` sending everything to the Kubernetes Service `web`.
fn vs_to_web(gw: &GatewaySpec) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: web}}\n\
         spec:\n  hosts: [\"*\"]\n  gateways: [\"{}\"]\n  http:\n  - route:\n    - destination: {{host: web}}\n",
        gw.name
    )
}

fn stat(envoy: &Envoy, cluster: &str, name: &str) -> u64 {
    envoy
        .stat(&format!("cluster.{cluster}.{name}"))
        .unwrap_or(0)
}

/// Waits until Envoy's cluster has `healthy` healthy hosts of `total`.
fn wait_members(envoy: &Envoy, cluster: &str, healthy: u64, total: u64) {
    let ok = support::poll_until(WAIT, || {
        stat(envoy, cluster, "membership_healthy") == healthy
            && stat(envoy, cluster, "membership_total") == total
    });
    let got = (
        stat(envoy, cluster, "membership_healthy"),
        stat(envoy, cluster, "membership_total"),
    );
    assert!(
        ok,
        "{cluster}: wanted {healthy} healthy of {total}, have {got:?}"
    );
}

fn share(counts: &BTreeMap<String, usize>, version: &str, total: usize) -> f64 {
    let ok: usize = ["v1", "v2"]
        .iter()
        .map(|v| counts.get(*v).copied().unwrap_or(0))
        .sum();
    assert_eq!(ok, total, "every request answered by a pod: {counts:?}");
    counts.get(version).copied().unwrap_or(0) as f64 / total as f64
}

#[test]
fn replica_ratio_follows_scaling() {
    let mut cluster = Cluster::new();
    for version in ["v1", "v1", "v1", "v1", "v2"] {
        cluster.add_pod(version);
    }
    cluster.publish();
    let coalmine = cluster.coalmine();
    let gw = GatewaySpec::new("k8s-ratio");
    let envoy = route(&cluster, &coalmine, &gw, &vs_to_web(&gw));
    wait_members(&envoy, CLUSTER, 5, 5);
    let v2 = share(&send(1000, gw.port, "web", &[]), "v2", 1000);
    assert!(
        (0.15..=0.25).contains(&v2),
        "4 v1 pods and 1 v2: {v2} on v2"
    );

    for _ in 0..3 {
        cluster.add_pod("v2");
    }
    cluster.publish();
    wait_members(&envoy, CLUSTER, 8, 8);
    let v2 = share(&send(1000, gw.port, "web", &[]), "v2", 1000);
    assert!(
        (0.40..=0.60).contains(&v2),
        "4 v1 pods and 4 v2: {v2} on v2"
    );
}

#[test]
fn unready_and_draining_pods_leave_the_rotation_without_failures() {
    let mut cluster = Cluster::new();
    for _ in 0..5 {
        cluster.add_pod("v1");
    }
    cluster.publish();
    let coalmine = cluster.coalmine();
    let gw = GatewaySpec::new("k8s-ready");
    let envoy = route(&cluster, &coalmine, &gw, &vs_to_web(&gw));
    wait_members(&envoy, CLUSTER, 5, 5);
    let load = Load::start(gw.port, "web", "/", &[], Duration::from_millis(2));

    // Failing readiness: out of the endpoints Envoy gets.
    cluster.set("web-v1-2", Cond::Unready);
    wait_members(&envoy, CLUSTER, 4, 4);
    let before = cluster.hits("web-v1-2");
    send(200, gw.port, "web", &[]);
    assert_eq!(
        cluster.hits("web-v1-2"),
        before,
        "an unready pod got traffic"
    );

    // Terminating but serving: draining, no new requests, then gone.
    cluster.set("web-v1-3", Cond::Draining);
    wait_members(&envoy, CLUSTER, 3, 4);
    let before = cluster.hits("web-v1-3");
    send(200, gw.port, "web", &[]);
    assert_eq!(
        cluster.hits("web-v1-3"),
        before,
        "a draining pod got new requests"
    );
    let gone = cluster.remove_pod("web-v1-3");
    wait_members(&envoy, CLUSTER, 3, 3);
    gone.backend.stop();

    // Ready again.
    cluster.set("web-v1-2", Cond::Ready);
    wait_members(&envoy, CLUSTER, 4, 4);
    let before = cluster.hits("web-v1-2");
    send(200, gw.port, "web", &[]);
    assert!(
        cluster.hits("web-v1-2") > before,
        "the pod is back in rotation"
    );
    let report = load.stop();
    assert!(report.total > 100, "the load ran: {report:?}");
    assert_eq!(
        report.failures(),
        0,
        "failed requests: {:?}",
        report.first_errors
    );
}

#[test]
fn expired_watch_and_re_added_service_resync_without_storm_or_loss() {
    let mut cluster = Cluster::new();
    for _ in 0..5 {
        cluster.add_pod("v1");
    }
    cluster.publish();
    let coalmine = cluster.coalmine();
    let gw = GatewaySpec::new("k8s-resync");
    let envoy = route(&cluster, &coalmine, &gw, &vs_to_web(&gw));
    wait_members(&envoy, CLUSTER, 5, 5);
    let load = Load::start(gw.port, "web", "/", &[], Duration::from_millis(2));
    let updates = stat(&envoy, CLUSTER, "update_success");

    // History compacted and watches closed: they resume, get 410 Gone, relist.
    let lists = |api: &FakeApiServer| {
        let lists = api
            .requests()
            .into_iter()
            .filter(|r| !r.contains("watch=true"));
        lists
            .filter(|r| r.starts_with("GET /api") && !r.contains("/namespaces/"))
            .count()
    };
    let pushes = |c: &Coalmine| c.logs().matches("pushing configuration").count();
    let (listed, pushed) = (lists(&cluster.api), pushes(&coalmine));
    cluster.api.compact(true);
    let relisted = support::poll_until(WAIT, || lists(&cluster.api) >= listed + 3);
    assert!(
        relisted,
        "the watchers never relisted: {:?}",
        cluster.api.requests()
    );
    std::thread::sleep(Duration::from_secs(1));
    wait_members(&envoy, CLUSTER, 5, 5);
    assert_eq!(
        pushes(&coalmine),
        pushed,
        "a relist that changed nothing was pushed"
    );
    let after = stat(&envoy, CLUSTER, "update_success");
    assert!(
        after <= updates + 1,
        "a relist that changed nothing pushed EDS {} times",
        after - updates
    );
    let report = load.report();
    assert_eq!(
        report.failures(),
        0,
        "failed requests: {:?}",
        report.first_errors
    );

    // Service deleted: the route stays, without endpoints; re-added: every pod is back.
    assert!(cluster.api.delete(SERVICES, "default", "web"));
    wait_members(&envoy, CLUSTER, 0, 0);
    let report = load.stop();
    assert!(report.total > 100, "the load ran: {report:?}");
    cluster.apply_service();
    wait_members(&envoy, CLUSTER, 5, 5);
    let before: Vec<u64> = cluster.pods.keys().map(|p| cluster.hits(p)).collect();
    let counts = send(500, gw.port, "web", &[]);
    assert_eq!(counts.get("v1"), Some(&500), "{counts:?}");
    let after: Vec<u64> = cluster.pods.keys().map(|p| cluster.hits(p)).collect();
    assert!(
        before.iter().zip(&after).all(|(b, a)| a > b),
        "every pod serves again: {before:?} → {after:?}"
    );
    let pushes = stat(&envoy, CLUSTER, "update_success") - updates;
    assert!(pushes <= 4, "delete and re-add pushed EDS {pushes} times");
    assert!(cluster.api.get(SLICES, "default", "web-v1").is_some());
}

#[test]
fn subsets_select_pods_by_label() {
    let mut cluster = Cluster::new();
    for version in ["v1", "v2"] {
        for _ in 0..5 {
            cluster.add_pod(version);
        }
    }
    cluster.publish();
    let coalmine = cluster.coalmine();
    let gw = GatewaySpec::new("k8s-subsets");
    let routes = docs(&[
        &destination_rule("web", "web", &["v1", "v2"]),
        &weighted_virtual_service("web", &gw.name, "web", &[("v1", 90), ("v2", 10)]),
    ]);
    let envoy = route(&cluster, &coalmine, &gw, &routes);
    wait_members(&envoy, "outbound|80|v1|web.default.svc.cluster.local", 5, 5);
    wait_members(&envoy, "outbound|80|v2|web.default.svc.cluster.local", 5, 5);
    let v2 = share(&send(1000, gw.port, "web", &[]), "v2", 1000);
    assert!(
        (0.05..=0.15).contains(&v2),
        "90/10 by pod label: {v2} on v2"
    );
}

#[test]
fn one_address_on_two_ports_in_hand_written_slices_serves_both() {
    // A selector-less Service whose slices are written by hand, listing 127.0.0.1
    // with a different port each (as hostNetwork pods, or a named targetPort
    // resolving differently per slice, would): two endpoints, not one.
    let cluster = Cluster::new();
    cluster.api.apply(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"ports": [{"name": "http", "port": 80, "targetPort": "http"}]}
    }));
    let ip = IpAddr::from([127, 0, 0, 1]);
    let backends = [
        Backend::start_on_addr(ip, support::free_port(), "v1"),
        Backend::start_on_addr(ip, support::free_port(), "v2"),
    ];
    for (name, backend) in ["web-manual-a", "web-manual-b"].iter().zip(&backends) {
        let endpoint = json!({"addresses": [ip.to_string()], "conditions": {"ready": true}});
        cluster
            .api
            .apply(endpoint_slice(name, "web", backend.port(), vec![endpoint]));
    }
    let coalmine = cluster.coalmine();
    let gw = GatewaySpec::new("k8s-two-ports");
    let envoy = route(&cluster, &coalmine, &gw, &vs_to_web(&gw));
    wait_members(&envoy, CLUSTER, 2, 2);
    let counts = send(400, gw.port, "web", &[]);
    let v2 = share(&counts, "v2", 400);
    assert!(
        (0.3..=0.7).contains(&v2),
        "both ports of 127.0.0.1 serve: {counts:?}"
    );
    assert!(backends.iter().all(|b| b.hits() > 0), "{counts:?}");
}
