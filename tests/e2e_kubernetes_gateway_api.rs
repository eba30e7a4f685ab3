//! Gateway API under `coalmine serve --kubernetes`, end to end: the real kube-rs client
//! against the in-process fake API server and a real Envoy 1.40. Status as the Gateway
//! API specifies it, written by the leader: a Gateway `Accepted` and `Programmed` with
//! per-listener `attachedRoutes`; an HTTPRoute's parents each `Accepted` or not with the
//! spec's reason (`NoMatchingParent`), and `ResolvedRefs` false with `BackendNotFound`
//! for a missing Service, while the route's other rules serve. Routes of equal
//! precedence are ordered by creation time.

mod support;

use std::time::Duration;

use coalmine::gateway_api::GATEWAY_NAME_LABEL;
use serde_json::Value;
use support::config::service_entry;
use support::fake_apiserver::FakeApiServer;
use support::traffic;
use support::{Backend, Envoy};
use tempfile::TempDir;

const WAIT: Duration = Duration::from_secs(20);
const GATEWAYS: &str = "apis/gateway.networking.k8s.io/v1/gateways";
const ROUTES: &str = "apis/gateway.networking.k8s.io/v1/httproutes";
const GRPC_ROUTES: &str = "apis/gateway.networking.k8s.io/v1/grpcroutes";
const CLASSES: &str = "apis/gateway.networking.k8s.io/v1/gatewayclasses";

fn wait_for_cluster_scoped(api: &FakeApiServer, name: &str) -> Value {
    let ok = support::poll_until(WAIT, || {
        api.get(CLASSES, "", name)
            .is_some_and(|c| !c["status"]["conditions"].is_null())
    });
    let got = api.get(CLASSES, "", name);
    assert!(ok, "GatewayClass {name}: no status; last {got:#?}");
    got.unwrap()
}

fn yaml(text: &str) -> Value {
    coalmine::yaml::value(text).expect("test YAML")
}

/// The condition `kind` of the first entry of `conditions` that has one.
fn condition<'a>(conditions: &'a Value, kind: &str) -> Option<&'a Value> {
    conditions.as_array()?.iter().find(|c| c["type"] == kind)
}

/// Waits until `check` holds on the object, and returns it.
fn wait_for(
    api: &FakeApiServer,
    resource: &str,
    name: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let ok = support::poll_until(WAIT, || {
        api.get(resource, "default", name)
            .is_some_and(|o| check(&o))
    });
    let got = api.get(resource, "default", name);
    assert!(ok, "{name}: the status never held; last {got:#?}");
    got.unwrap()
}

#[test]
fn gateway_api_status_and_routing_under_kubernetes() {
    let api = FakeApiServer::start();
    let dir = TempDir::new().expect("tempdir");
    let (v1, v2) = (Backend::start("v1"), Backend::start("v2"));
    let name = support::unique("k8s-gapi");
    let port = support::free_port();
    api.apply(yaml(&service_entry("v1", "v1", &[(v1.port(), "v1")])));
    api.apply(yaml(&service_entry("v2", "v2", &[(v2.port(), "v2")])));
    // coalmine's class, and another controller's with a Gateway of its own.
    api.apply(yaml(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: coalmine}\n\
         spec: {controllerName: coalmine.dev/controller}\n",
    ));
    api.apply(yaml(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: other}\n\
         spec: {controllerName: example.com/other-controller}\n",
    ));
    api.apply(yaml(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: theirs, namespace: default}\n\
         spec: {gatewayClassName: other, listeners: [{name: http, port: 80, protocol: HTTP}]}\n",
    ));
    api.apply(yaml(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: theirs-only, namespace: default}\n\
         spec: {parentRefs: [{name: theirs}], rules: [{backendRefs: [{name: v1, port: 80}]}]}\n",
    ));
    api.apply(yaml(&format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: {name}, namespace: default, generation: 1}}
spec:
  gatewayClassName: coalmine
  listeners:
  - {{name: http, port: {port}, protocol: HTTP}}
  - {{name: other, port: {port}, protocol: HTTP, hostname: other.test}}
"
    )));
    // Created first (the API server stamps creationTimestamp to the second): on the
    // same hostname, its catch-all goes before the equally specific one of `web`.
    api.apply(yaml(&format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: z-older, namespace: default, generation: 1}}
spec:
  parentRefs: [{{name: {name}}}]
  hostnames: [web.test]
  rules:
  - matches: [{{path: {{type: PathPrefix, value: /}}, headers: [{{name: x-older, value: 'yes'}}]}}]
    backendRefs: [{{name: v2, port: 80}}]
  - backendRefs: [{{name: v2, port: 80}}]
"
    )));

    std::thread::sleep(Duration::from_millis(1100));
    // Parent 0 names no listener of the Gateway; parent 1 attaches. Rule /missing
    // names no Service.
    api.apply(yaml(&format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: web, namespace: default}}
spec:
  parentRefs: [{{name: {name}, sectionName: nope}}, {{name: {name}, sectionName: http}}, {{name: theirs}}]
  hostnames: [web.test]
  rules:
  - matches: [{{path: {{type: PathPrefix, value: /missing}}}}]
    backendRefs: [{{name: no-such-service, port: 80}}]
  - backendRefs: [{{name: v1, port: 80}}]
"
    )));
    // A GRPCRoute on its own hostname beside them.
    api.apply(yaml(&format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {{name: echo, namespace: default, generation: 1}}
spec:
  parentRefs: [{{name: {name}, sectionName: http}}]
  hostnames: [grpc.test]
  rules:
  - matches: [{{method: {{service: coalmine.test.Echo}}}}]
    backendRefs: [{{name: v1, port: 80}}]
"
    )));
    let coalmine = api.replica(dir.path(), "replica-a");
    let labels = [(GATEWAY_NAME_LABEL, name.as_str())];
    let _envoy = Envoy::start(&coalmine.bootstrap(&name, &labels, false));
    let get = |path: &str, headers: &[(&str, &str)]| {
        let r = traffic::get(port, "web.test", path, headers);
        r.map(|r| (r.status, r.body)).unwrap_or((0, String::new()))
    };
    let ok = support::poll_until(WAIT, || get("/", &[]).0 == 200);
    assert!(ok, "the route never served: {:?}", get("/", &[]));
    // The older route's catch-all goes first; the header rule beats both catch-alls.
    assert_eq!(get("/", &[]), (200, "v2".to_string()));
    assert_eq!(get("/missing", &[]).0, 500);

    let gateway = wait_for(&api, GATEWAYS, &name, |g| {
        condition(&g["status"]["conditions"], "Programmed").is_some()
    });
    let status = &gateway["status"];
    for kind in ["Accepted", "Programmed"] {
        let c = condition(&status["conditions"], kind).unwrap();
        assert_eq!(c["status"], "True", "{kind}: {c}");
        assert_eq!(c["observedGeneration"], 1, "{c}");
    }
    let listeners = status["listeners"].as_array().expect("listeners");
    let attached: Vec<(&str, u64)> = listeners
        .iter()
        .map(|l| {
            (
                l["name"].as_str().unwrap(),
                l["attachedRoutes"].as_u64().unwrap(),
            )
        })
        .collect();
    // web and echo attach to http; z-older to both listeners.
    assert_eq!(attached, [("http", 3), ("other", 1)]);
    assert_eq!(listeners[0]["supportedKinds"][0]["kind"], "HTTPRoute");
    assert_eq!(listeners[0]["supportedKinds"][1]["kind"], "GRPCRoute");

    let grpc = wait_for(&api, GRPC_ROUTES, "echo", |r| {
        r["status"]["parents"]
            .as_array()
            .is_some_and(|p| p.len() == 1)
    });
    let parent = &grpc["status"]["parents"][0];
    for kind in ["Accepted", "ResolvedRefs"] {
        let c = condition(&parent["conditions"], kind).unwrap();
        assert_eq!(c["status"], "True", "GRPCRoute {kind}: {c}");
    }

    let route = wait_for(&api, ROUTES, "web", |r| {
        r["status"]["parents"]
            .as_array()
            .is_some_and(|p| p.len() == 2)
    });
    let parents = route["status"]["parents"].as_array().unwrap();
    let accepted = |i: usize| {
        condition(&parents[i]["conditions"], "Accepted")
            .unwrap()
            .clone()
    };
    let resolved = |i: usize| {
        condition(&parents[i]["conditions"], "ResolvedRefs")
            .unwrap()
            .clone()
    };
    assert_eq!(parents[0]["controllerName"], "coalmine.dev/controller");
    assert_eq!(accepted(0)["status"], "False");
    assert_eq!(accepted(0)["reason"], "NoMatchingParent");
    assert_eq!(accepted(1)["status"], "True");
    assert_eq!(accepted(1)["observedGeneration"], 1);
    assert_eq!(resolved(1)["status"], "False");
    assert_eq!(resolved(1)["reason"], "BackendNotFound");
    assert!(
        resolved(1)["message"]
            .as_str()
            .unwrap()
            .contains("no-such-service"),
        "{}",
        resolved(1)
    );
    // Two entries: the parentRef to the other controller's Gateway is not coalmine's.
    let refs: Vec<&Value> = parents
        .iter()
        .map(|p| &p["parentRef"]["sectionName"])
        .collect();
    assert_eq!(refs, [&Value::from("nope"), &Value::from("http")]);

    // coalmine's class is accepted with its features; the other class, its Gateway and
    // the route only on it get nothing from coalmine.
    let class = wait_for_cluster_scoped(&api, "coalmine");
    let accepted = condition(&class["status"]["conditions"], "Accepted").unwrap();
    assert_eq!(accepted["status"], "True");
    let features = class["status"]["supportedFeatures"].as_array().unwrap();
    assert!(
        features.contains(&serde_json::json!({"name": "HTTPRoute"})),
        "{features:?}"
    );
    let get_class = |n: &str| api.get(CLASSES, "", n).unwrap();
    assert!(
        get_class("other")["status"].is_null(),
        "{}",
        get_class("other")
    );
    assert!(api.get(GATEWAYS, "default", "theirs").unwrap()["status"].is_null());
    assert!(api.get(ROUTES, "default", "theirs-only").unwrap()["status"].is_null());
}
