//! Releases under `coalmine serve --kubernetes` without a failed request (issue 10): the
//! fake API server delivers watch events one object at a time, and the same
//! make-before-break rules must hold whatever order they come in. Two real Envoys 1.40
//! (one State of the World, one Delta, each on its own Gateway) carry keep-alive load
//! from the start of each test to its end; any non-2xx answer or broken connection fails
//! the test. Pods are loopback backends on distinct 127.x.y.z addresses sharing a port.
//!
//! - a rolling update of a Deployment behind one Service: each new pod's endpoint comes
//!   (unready, then ready) before an old one drains and goes (maxUnavailable 0);
//! - a blue-green between two Services (`web-blue`, `web-green`): the new Service and its
//!   EndpointSlice, the VirtualService moved to it, the old Service and its slice
//!   deleted, one object at a time; in that order, with the route moved before the new
//!   Service exists, and with the old Service deleted before the route moves.

mod support;

use std::net::IpAddr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::thread;
use std::time::Duration;

use serde_json::{json, Value};
use support::churn::{assert_clean, wait_cluster, wait_members, why_failed, Tally, Traffic};
use support::endpoints::{endpoint, endpoint_slice, Cond};
use support::fake_apiserver::FakeApiServer;
use support::traffic::wait_for_outcomes;
use support::{start_envoy_for, Backend, Coalmine, Envoy, GatewaySpec};
use tempfile::TempDir;

const WAIT: Duration = Duration::from_secs(20);
const HOST: &str = "web";
const SERVICES: &str = "api/v1/services";
const SLICES: &str = "apis/discovery.k8s.io/v1/endpointslices";
/// The pause between two watch events that must arrive one at a time: far over the
/// debounce, so each is its own revision and push.
const GAP: Duration = Duration::from_millis(500);

fn cluster_of(service: &str) -> String {
    format!("outbound|80||{service}.default.svc.cluster.local")
}

/// A pod: a backend answering its version on its own loopback address.
struct Pod {
    name: String,
    backend: Backend,
    cond: Cond,
}

/// The fake cluster of one test, with coalmine on it and two Envoys (SotW, Delta).
struct World {
    api: FakeApiServer,
    dir: TempDir,
    subnet: [u8; 2],
    port: u16,
    pods: u8,
    gws: Vec<GatewaySpec>,
    coalmine: Option<Coalmine>,
    envoys: Vec<Envoy>,
}

impl World {
    fn new(prefix: &str) -> World {
        static NEXT: AtomicU8 = AtomicU8::new(1);
        let subnet = [
            150 + (std::process::id() % 50) as u8,
            NEXT.fetch_add(1, Ordering::Relaxed),
        ];
        World {
            api: FakeApiServer::start(),
            dir: TempDir::new().expect("tempdir"),
            subnet,
            port: support::free_port(),
            pods: 0,
            gws: vec![
                GatewaySpec::new(&format!("{prefix}-sotw")),
                GatewaySpec::new(&format!("{prefix}-delta")),
            ],
            coalmine: None,
            envoys: Vec::new(),
        }
    }

    /// Starts pod `<prefix>-<n>` (its backend answers `version`); not in any slice yet.
    fn pod(&mut self, prefix: &str, version: &str) -> Pod {
        self.pods += 1;
        let n = self.pods;
        let ip = IpAddr::from([127, self.subnet[0], self.subnet[1], n]);
        Pod {
            name: format!("{prefix}-{n}"),
            backend: Backend::start_on_addr(ip, self.port, version),
            cond: Cond::Ready,
        }
    }

    /// Service `name` (port 80 → target port `http`).
    fn service(&self, name: &str) {
        self.api.apply(json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"selector": {"app": name},
                     "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}
        }));
    }

    /// EndpointSlice `<service>-slice` of Service `service`, listing `pods`.
    fn slice(&self, service: &str, pods: &[&Pod]) {
        let endpoints: Vec<Value> = pods
            .iter()
            .map(|p| endpoint(p.backend.ip(), &p.name, p.cond))
            .collect();
        let name = format!("{service}-slice");
        self.api
            .apply(endpoint_slice(&name, service, self.port, endpoints));
    }

    fn delete_service(&self, name: &str) {
        assert!(
            self.api.delete(SERVICES, "default", name),
            "no Service {name}"
        );
    }

    fn delete_slice(&self, service: &str) {
        let slice = format!("{service}-slice");
        assert!(
            self.api.delete(SLICES, "default", &slice),
            "no slice {slice}"
        );
    }

    /// The VirtualService `web` on both Gateways, everything to Service `service`.
    fn route(&self, service: &str) {
        let gateways: Vec<&str> = self.gws.iter().map(|g| g.name.as_str()).collect();
        self.api.apply(json!({
            "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"hosts": ["*"], "gateways": gateways,
                     "http": [{"name": "main", "route": [{"destination": {"host": service}}]}]}
        }));
    }

    /// coalmine on the cluster (the Gateways created first), the two Envoys, and the
    /// listeners answering `version`.
    fn start(&mut self, version: &str) {
        for gw in &self.gws {
            self.api.apply_yaml(&gw.yaml());
        }
        let kubeconfig = self.api.kubeconfig(self.dir.path());
        let kubeconfig = kubeconfig.display().to_string();
        let coalmine = Coalmine::start_bare_env(&["--kubernetes"], &[("KUBECONFIG", &kubeconfig)]);
        for (gw, delta) in self.gws.iter().zip([false, true]) {
            self.envoys.push(start_envoy_for(&coalmine, gw, delta));
        }
        self.coalmine = Some(coalmine);
        for gw in &self.gws {
            wait_for_outcomes(gw.port, HOST, &[], &[version], WAIT);
        }
    }

    /// Load through both Envoys.
    fn traffic(&self) -> Vec<Traffic> {
        let loads: Vec<Traffic> = ["sotw", "delta"]
            .iter()
            .zip(&self.gws)
            .map(|(label, gw)| Traffic::start(label, gw.port, HOST))
            .collect();
        for t in &loads {
            t.run(50);
        }
        loads
    }

    /// Waits until every load is on `version` (`what` names the wait), then asserts them clean.
    fn assert_ended_on(&self, loads: Vec<Traffic>, tally: &Tally, version: &str, what: &str) {
        for t in &loads {
            t.wait_moved(version, what, WAIT);
        }
        let stats: Vec<String> = self.envoys.iter().map(why_failed).collect();
        let context = format!("{}\n{}", tally.summary(), stats.join("\n"));
        assert_clean(loads, 2000, &context);
    }

    fn each_envoy(&self, f: impl Fn(&Envoy)) {
        for e in &self.envoys {
            f(e);
        }
    }
}

/// Ready hosts and all hosts (ready or draining) Envoy gets for `pods`.
fn members(pods: &[&Pod]) -> (u64, u64) {
    let ready = pods.iter().filter(|p| p.cond == Cond::Ready).count() as u64;
    let draining = pods.iter().filter(|p| p.cond == Cond::Draining).count() as u64;
    (ready, ready + draining)
}

#[test]
fn rolling_update_one_pod_at_a_time_loses_nothing() {
    const REPLICAS: usize = 3;
    let cluster = cluster_of("web");
    let mut w = World::new("k8s-rolling");
    let mut pods: Vec<Pod> = (0..REPLICAS).map(|_| w.pod("web-v1", "v1")).collect();
    w.service("web");
    w.slice("web", &pods.iter().collect::<Vec<_>>());
    w.route("web");
    w.start("v1");
    let wait = |w: &World, pods: &[Pod]| {
        let refs: Vec<&Pod> = pods.iter().collect();
        let (healthy, total) = members(&refs);
        w.each_envoy(|e| wait_members(e, &cluster, healthy, total, WAIT));
    };
    wait(&w, &pods);
    let loads = w.traffic();

    let mut tally = Tally::default();
    for i in 1..=REPLICAS {
        // maxSurge 1, maxUnavailable 0: the new pod starts, becomes ready, and only then
        // does an old one terminate (draining), and go.
        let mut new = w.pod("web-v2", "v2");
        new.cond = Cond::Unready;
        pods.push(new);
        w.slice("web", &pods.iter().collect::<Vec<_>>());
        thread::sleep(GAP);
        tally.mark(&format!("pod {i}: the new pod listed, not ready"), &loads);
        pods.last_mut().expect("new pod").cond = Cond::Ready;
        w.slice("web", &pods.iter().collect::<Vec<_>>());
        wait(&w, &pods);
        thread::sleep(GAP);
        tally.mark(&format!("pod {i}: the new pod ready"), &loads);
        let old = pods
            .iter()
            .position(|p| p.backend.version() == "v1")
            .expect("an old pod");
        pods[old].cond = Cond::Draining;
        w.slice("web", &pods.iter().collect::<Vec<_>>());
        wait(&w, &pods);
        thread::sleep(GAP);
        tally.mark(&format!("pod {i}: an old pod terminating"), &loads);
        let gone = pods.remove(old);
        w.slice("web", &pods.iter().collect::<Vec<_>>());
        wait(&w, &pods);
        thread::sleep(GAP);
        gone.backend.stop();
        for t in &loads {
            t.run(100);
        }
        tally.mark(&format!("pod {i}: the old pod gone"), &loads);
        eprintln!("pod {i} of {REPLICAS} replaced");
    }
    w.assert_ended_on(loads, &tally, "v2", "the rolling update's end");
}

/// One watch event of a blue-green switch.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Event {
    /// The new Service is created.
    NewService,
    /// The new Service's EndpointSlice is created (its pods ready).
    NewSlice,
    /// The VirtualService is patched to the new Service.
    Route,
    /// The old Service is deleted.
    OldServiceDeleted,
    /// The old Service's EndpointSlice is deleted (as Kubernetes' garbage collector
    /// does after the Service).
    OldSliceDeleted,
}

use Event::*;

/// New Service, its slice, the route moved, the old Service deleted, its slice.
const IN_ORDER: [Event; 5] = [
    NewService,
    NewSlice,
    Route,
    OldServiceDeleted,
    OldSliceDeleted,
];
/// The route moved first (to a Service that does not exist yet), then the rest.
const ROUTE_FIRST: [Event; 5] = [
    Route,
    NewService,
    NewSlice,
    OldServiceDeleted,
    OldSliceDeleted,
];
/// The new Service and its slice, then the old Service and its slice deleted while
/// the route still names it, and only then the route moved.
const OLD_DELETED_FIRST: [Event; 5] = [
    NewService,
    NewSlice,
    OldServiceDeleted,
    OldSliceDeleted,
    Route,
];

/// Three switches blue → green → blue → green between two Services, under load
/// through both Envoys, the events in `order`, `GAP` apart. Traffic must move once
/// both the route and the new slice are there, and never fail.
fn blue_green(name: &str, order: [Event; 5]) {
    let mut w = World::new(&format!("k8s-bg-{name}"));
    let blue: Vec<Pod> = (0..2).map(|_| w.pod("web-blue", "blue")).collect();
    let green: Vec<Pod> = (0..2).map(|_| w.pod("web-green", "green")).collect();
    let pods = |colour: &str| -> Vec<&Pod> {
        match colour {
            "blue" => blue.iter().collect(),
            _ => green.iter().collect(),
        }
    };
    w.service("web-blue");
    w.slice("web-blue", &pods("blue"));
    w.route("web-blue");
    w.start("blue");
    let loads = w.traffic();
    let mut tally = Tally::default();

    for (n, (from, to)) in [("blue", "green"), ("green", "blue"), ("blue", "green")]
        .into_iter()
        .enumerate()
    {
        let what = format!("switch {} {from} to {to}", n + 1);
        let (old, new) = (format!("web-{from}"), format!("web-{to}"));
        let (mut routed, mut sliced) = (false, false);
        for event in order {
            match event {
                NewService => w.service(&new),
                NewSlice => w.slice(&new, &pods(to)),
                Route => w.route(&new),
                OldServiceDeleted => w.delete_service(&old),
                OldSliceDeleted => w.delete_slice(&old),
            }
            routed |= event == Route;
            sliced |= event == NewSlice;
            // Once the route and the new slice are both there the traffic moves; before,
            // nothing in Envoy shows the event (a Service no route names is not sent),
            // so the pause alone lets coalmine take it as its own revision.
            if matches!(event, NewSlice | Route) && routed && sliced {
                for t in &loads {
                    t.wait_moved(to, &format!("{what}, after {event:?}"), WAIT);
                }
            }
            thread::sleep(GAP);
            tally.mark(&format!("{what}: {event:?}"), &loads);
        }
        w.each_envoy(|e| wait_cluster(e, &cluster_of(&old), false, WAIT));
        for t in &loads {
            t.run(100);
        }
        tally.mark(&format!("{what}: after"), &loads);
        eprintln!("{what}: done");
    }
    w.assert_ended_on(loads, &tally, "green", "the end");
    w.each_envoy(|e| {
        assert_eq!(
            e.dynamic_cluster_names(),
            [cluster_of("web-green")],
            "only the new Service's cluster is left"
        )
    });
}

#[test]
fn blue_green_between_services_in_order_loses_nothing() {
    blue_green("in-order", IN_ORDER);
}

#[test]
fn blue_green_route_moved_before_the_new_service_exists_loses_nothing() {
    blue_green("route-first", ROUTE_FIRST);
}

#[test]
fn blue_green_old_service_deleted_before_the_route_moves_loses_nothing() {
    blue_green("old-deleted-first", OLD_DELETED_FIRST);
}
