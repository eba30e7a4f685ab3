//! Gateway API under `coalmine serve --kubernetes`, end to end: the real kube-rs client
//! against the in-process fake API server and a real Envoy 1.40. Status as the Gateway
//! API specifies it, written by the leader: a Gateway `Accepted` and `Programmed` with
//! per-listener `attachedRoutes`; an HTTPRoute's parents each `Accepted` or not with the
//! spec's reason (`NoMatchingParent`), and `ResolvedRefs` false with `BackendNotFound`
//! for a missing Service, while the route's other rules serve. Routes of equal
//! precedence are ordered by creation time. A Gateway's `status.addresses` from the
//! Service fronting its Envoys (load-balancer ingress, else cluster IP) or its
//! `spec.addresses`; a `from: Selector` listener admitting routes by their Namespace's
//! labels, and refusing others with `NotAllowedByListeners`.

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
const NAMESPACES: &str = "api/v1/namespaces";

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
    wait_in(api, resource, "default", name, check)
}

/// [`wait_for`] in `namespace`.
fn wait_in(
    api: &FakeApiServer,
    resource: &str,
    namespace: &str,
    name: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let ok = support::poll_until(WAIT, || {
        api.get(resource, namespace, name)
            .is_some_and(|o| check(&o))
    });
    let got = api.get(resource, namespace, name);
    assert!(
        ok,
        "{namespace}/{name}: the status never held; last {got:#?}"
    );
    got.unwrap()
}

/// The `Accepted` condition of a route's first parent entry, once it has one.
fn route_accepted(route: &Value) -> Option<(String, String)> {
    let parents = route["status"]["parents"].as_array()?;
    let c = condition(&parents.first()?["conditions"], "Accepted")?;
    Some((c["status"].as_str()?.into(), c["reason"].as_str()?.into()))
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

#[test]
fn gateway_addresses_and_selector_listeners_under_kubernetes() {
    let api = FakeApiServer::start();
    let dir = TempDir::new().expect("tempdir");
    let (v1, v2) = (Backend::start("v1"), Backend::start("v2"));
    let name = support::unique("k8s-addr");
    let port = support::free_port();
    api.apply(yaml(&service_entry("v1", "v1", &[(v1.port(), "v1")])));
    api.apply(yaml(&service_entry("v2", "v2", &[(v2.port(), "v2")])));
    api.apply(yaml(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {team: web}}\n",
    ));
    api.apply(yaml(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: books, labels: {team: books}}\n",
    ));
    // The Service in front of the Gateway's Envoys, with a load balancer.
    let front = |ingress: &str| {
        yaml(&format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}-envoy, namespace: default}}\n\
             spec: {{selector: {{{GATEWAY_NAME_LABEL}: {name}}}, clusterIP: 10.96.0.10, \
             clusterIPs: [10.96.0.10], ports: [{{name: http, port: 80}}]}}\n{ingress}"
        ))
    };
    api.apply(front(
        "status: {loadBalancer: {ingress: [{ip: 203.0.113.10}, {hostname: lb.example.com}]}}\n",
    ));
    let gateway = |addresses: &str| {
        yaml(&format!(
            "apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: {name}, namespace: default}}
spec:
  gatewayClassName: coalmine
{addresses}  listeners:
  - name: http
    port: {port}
    protocol: HTTP
    allowedRoutes:
      namespaces:
        from: Selector
        selector: {{matchExpressions: [{{key: team, operator: In, values: [web]}}]}}
"
        ))
    };
    api.apply(gateway(""));
    for (ns, backend) in [("shop", "v1"), ("books", "v2")] {
        api.apply(yaml(&format!(
            "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {ns}, namespace: {ns}}}
spec:
  parentRefs: [{{name: {name}, namespace: default}}]
  hostnames: [{ns}.test]
  rules: [{{backendRefs: [{{name: {backend}, port: 80}}]}}]
"
        )));
    }
    let coalmine = api.replica(dir.path(), "replica-a");
    let labels = [(GATEWAY_NAME_LABEL, name.as_str())];
    let _envoy = Envoy::start(&coalmine.bootstrap(&name, &labels, false));
    let get = |host: &str| {
        let r = traffic::get(port, host, "/", &[]);
        r.map(|r| (r.status, r.body)).unwrap_or((0, String::new()))
    };

    // shop is labelled team: web and attaches; books does not.
    let ok = support::poll_until(WAIT, || get("shop.test").0 == 200);
    assert!(ok, "the shop route never served: {:?}", get("shop.test"));
    assert_eq!(get("shop.test"), (200, "v1".to_string()));
    assert_eq!(get("books.test").0, 404);
    let accepted = |ns: &str, want: (&str, &str)| {
        let want = (want.0.to_string(), want.1.to_string());
        wait_in(&api, ROUTES, ns, ns, |r| {
            route_accepted(r) == Some(want.clone())
        })
    };
    accepted("shop", ("True", "Accepted"));
    let books = accepted("books", ("False", "NotAllowedByListeners"));
    let c = condition(&books["status"]["parents"][0]["conditions"], "Accepted").unwrap();
    assert!(c["message"].as_str().unwrap().contains("\"books\""), "{c}");

    // status.addresses from the fronting Service's load balancer.
    let addresses = |want: Value| {
        let g = wait_for(&api, GATEWAYS, &name, |g| g["status"]["addresses"] == want);
        let programmed = condition(&g["status"]["conditions"], "Programmed").unwrap();
        assert_eq!(programmed["status"], "True", "{programmed}");
    };
    addresses(serde_json::json!([
        {"type": "IPAddress", "value": "203.0.113.10"},
        {"type": "Hostname", "value": "lb.example.com"}
    ]));
    // Without an ingress, its cluster IP; rewritten when the Service changes.
    api.apply(front(""));
    addresses(serde_json::json!([{"type": "IPAddress", "value": "10.96.0.10"}]));
    // spec.addresses, when given, are what the status says.
    api.apply(gateway("  addresses: [{value: 192.0.2.1}]\n"));
    addresses(serde_json::json!([{"type": "IPAddress", "value": "192.0.2.1"}]));

    // books relabelled to match: its route attaches and serves.
    let mut ns = api.get(NAMESPACES, "", "books").expect("namespace books");
    ns["metadata"]["labels"]["team"] = "web".into();
    api.apply(ns);
    let ok = support::poll_until(WAIT, || get("books.test").0 == 200);
    assert!(
        ok,
        "books never served once relabelled: {:?}",
        get("books.test")
    );
    assert_eq!(get("books.test"), (200, "v2".to_string()));
    accepted("books", ("True", "Accepted"));
    wait_for(&api, GATEWAYS, &name, |g| {
        g["status"]["listeners"][0]["attachedRoutes"] == 2
    });
    let stored = api.get(NAMESPACES, "", "books").unwrap();
    assert_eq!(
        stored["metadata"]["labels"]["kubernetes.io/metadata.name"],
        "books"
    );
}
