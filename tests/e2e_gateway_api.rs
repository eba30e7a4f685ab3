//! End to end through a real Envoy 1.40 with Gateway API documents: a Gateway selected
//! by the `gateway.networking.k8s.io/gateway-name` label, and an HTTPRoute with a 90/10
//! weighted split between two ServiceEntry hosts, a header canary and a URLRewrite.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use coalmine::gateway_api::GATEWAY_NAME_LABEL;
use support::config::{docs, service_entry};
use support::traffic::{self, send, wait_for_outcomes};
use support::{Backend, Coalmine, ConfigDir, Envoy};

const HOST: &str = "petstore.test";
const WAIT: Duration = Duration::from_secs(20);

/// A Gateway API Gateway with one HTTP listener on `port`.
fn gateway(name: &str, port: u16) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: {name}
spec:
  gatewayClassName: coalmine
  listeners:
  - name: http
    port: {port}
    protocol: HTTP
"
    )
}

/// Canary by header first, then `/petstore` rewritten to `/api/pets` on v1, then the
/// weighted split for everything else.
fn http_route(gateway: &str, v1: u32, v2: u32) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: petstore
spec:
  parentRefs:
  - name: {gateway}
  rules:
  - matches:
    - headers:
      - {{name: x-canary, value: \"true\"}}
    backendRefs:
    - {{name: petstore-v2, port: 80}}
  - matches:
    - path: {{type: PathPrefix, value: /petstore}}
    filters:
    - type: URLRewrite
      urlRewrite:
        path: {{type: ReplacePrefixMatch, replacePrefixMatch: /api/pets}}
    backendRefs:
    - {{name: petstore-v1, port: 80}}
  - backendRefs:
    - {{name: petstore-v1, port: 80, weight: {v1}}}
    - {{name: petstore-v2, port: 80, weight: {v2}}}
"
    )
}

/// Backends v1 and v2, coalmine on a Gateway + ServiceEntries + HTTPRoute, and an Envoy
/// labelled with the Gateway's name; returns once the listener serves.
struct Setup {
    port: u16,
    v1: Backend,
    v2: Backend,
    _coalmine: Coalmine,
    _envoy: Envoy,
    _cfg: ConfigDir,
}

fn setup(prefix: &str) -> Setup {
    let (v1, v2) = (Backend::start("v1"), Backend::start("v2"));
    let name = support::unique(prefix);
    let port = support::free_port();
    let cfg = ConfigDir::new();
    let text = docs(&[
        &gateway(&name, port),
        &service_entry("petstore-v1", "petstore-v1", &[(v1.port(), "v1")]),
        &service_entry("petstore-v2", "petstore-v2", &[(v2.port(), "v2")]),
        &http_route(&name, 90, 10),
    ]);
    cfg.write("gateway-api.yaml", &text);
    let coalmine = Coalmine::start(&cfg.path(), &[]);
    let labels = [(GATEWAY_NAME_LABEL, name.as_str())];
    let envoy = Envoy::start(&coalmine.bootstrap(&name, &labels, false));
    wait_for_outcomes(port, HOST, &[("x-canary", "true")], &["v2"], WAIT);
    Setup {
        port,
        v1,
        v2,
        _coalmine: coalmine,
        _envoy: envoy,
        _cfg: cfg,
    }
}

#[test]
fn relative_weights_split_ninety_ten() {
    let s = setup("gapi-split");
    wait_for_outcomes(s.port, HOST, &[], &["v1", "v2"], WAIT);
    let counts = send(1000, s.port, HOST, &[]);
    let ok = counts.get("v1").unwrap_or(&0) + counts.get("v2").unwrap_or(&0);
    assert_eq!(ok, 1000, "every request answered by a backend: {counts:?}");
    let v2 = counts.get("v2").copied().unwrap_or(0);
    assert!((50..=150).contains(&v2), "90/10 split: {counts:?}");
}

#[test]
fn header_canary_and_prefix_rewrite() {
    let s = setup("gapi-canary");
    let only = |v: &str, n: usize| BTreeMap::from([(v.to_string(), n)]);
    assert_eq!(
        send(50, s.port, HOST, &[("x-canary", "true")]),
        only("v2", 50)
    );

    let r = traffic::get(s.port, HOST, "/petstore/7?q=1", &[]).expect("get");
    assert_eq!((r.status, r.body.as_str()), (200, "v1"), "{r:?}");
    assert_eq!(r.header("x-request-path"), Some("/api/pets/7?q=1"), "{r:?}");
    let r = traffic::get(s.port, HOST, "/petstore", &[]).expect("get");
    assert_eq!(r.header("x-request-path"), Some("/api/pets"), "{r:?}");
    let seen: Vec<String> = s.v1.received().into_iter().map(|r| r.path).collect();
    assert!(seen.iter().any(|p| p == "/api/pets/7?q=1"), "{seen:?}");
    assert!(!seen.iter().any(|p| p.starts_with("/petstore")), "{seen:?}");
    let canary: Vec<String> = s.v2.received().into_iter().map(|r| r.path).collect();
    assert!(!canary.iter().any(|p| p.starts_with("/api")), "{canary:?}");
}
