//! `allowedRoutes.namespaces.from: Selector` and `spec.addresses` through a whole set
//! (`build_config_with`): which routes attach by their namespace's labels, what a
//! refused one says, and the addresses a Gateway's status gets.

use std::collections::BTreeMap;

use super::{NamespaceLabels, NAMESPACE_NAME_LABEL};
use crate::ingest::{parse_documents, Errors};
use crate::model::*;
use crate::resource_set::build_config_with;

/// A Gateway in `default` whose one listener admits namespaces labelled `team: web`,
/// a route in `shop` and one in `books`, each with a ServiceEntry backend of its own
/// namespace, and a route in `books` that also names an `All` listener.
const SET: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: edge, namespace: default}
spec:
  gatewayClassName: coalmine
  addresses: [{value: 10.0.0.7}, {type: Hostname, value: edge.example.com}]
  listeners:
    - name: web
      port: 8080
      protocol: HTTP
      allowedRoutes:
        namespaces:
          from: Selector
          selector:
            matchLabels: {team: web}
            matchExpressions: [{key: env, operator: NotIn, values: [test]}]
    - {name: open, port: 9090, protocol: HTTP, allowedRoutes: {namespaces: {from: All}}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: backends, namespace: default}
spec:
  hosts: [backend.test]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 10.0.0.1}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: shop, namespace: shop}
spec:
  parentRefs: [{name: edge, namespace: default, sectionName: web}]
  rules: [{backendRefs: [{group: networking.istio.io, kind: Hostname, name: backend.test, port: 80}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: books, namespace: books}
spec:
  parentRefs:
    - {name: edge, namespace: default, sectionName: web}
    - {name: edge, namespace: default, sectionName: open}
  rules: [{backendRefs: [{group: networking.istio.io, kind: Hostname, name: backend.test, port: 80}]}]
"#;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn build(text: &str, namespaces: &NamespaceLabels) -> Result<Config, Errors> {
    build_config_with(&parse_documents(text)?, &BTreeMap::new(), namespaces)
}

fn key(kind: Kind, namespace: &str, name: &str) -> ResourceKey {
    ResourceKey::new(kind, namespace, name)
}

#[test]
fn a_selector_listener_admits_routes_by_their_namespace_labels() {
    let namespaces = NamespaceLabels::from([
        ("shop".to_string(), labels(&[("team", "web")])),
        (
            "books".to_string(),
            labels(&[("team", "web"), ("env", "test")]),
        ),
    ]);
    let config = build(SET, &namespaces).unwrap();
    let parents = &config.gateway_status.parents;
    assert_eq!(parents[&key(Kind::HttpRoute, "shop", "shop")], [None]);
    // books is labelled env: test, which the selector refuses; its other parentRef
    // attaches it to the `All` listener.
    let books = &parents[&key(Kind::HttpRoute, "books", "books")];
    let refused = books[0].as_ref().expect("refused by the selector");
    assert_eq!(refused.reason, "NotAllowedByListeners");
    assert!(refused.message.contains("\"books\""), "{}", refused.message);
    assert_eq!(books[1], None);
    let listeners =
        &config.gateway_status.listeners[&key(Kind::KubernetesGateway, "default", "edge")];
    let attached: Vec<(&str, u32)> = listeners
        .iter()
        .map(|l| (l.name.as_str(), l.attached_routes))
        .collect();
    assert_eq!(attached, [("web", 1), ("open", 1)]);
    let ports = |name: &str| -> Vec<u32> {
        let vs = config
            .virtual_services
            .iter()
            .find(|vs| vs.key.name == name)
            .unwrap();
        vs.listeners.iter().map(|l| l.port).collect()
    };
    assert_eq!(ports("shop"), [8080]);
    assert_eq!(ports("books"), [9090]);
}

#[test]
fn without_namespace_objects_a_namespace_has_only_its_name_label() {
    // Nothing known about shop: only kubernetes.io/metadata.name, so team: web fails
    // and the route, attached nowhere, is an error naming its parentRef.
    let errors = build(SET, &NamespaceLabels::new()).unwrap_err();
    let found: Vec<(&str, &str, Option<&str>)> = errors
        .0
        .iter()
        .map(|e| (e.resource.as_str(), e.field.as_str(), e.reason))
        .collect();
    assert_eq!(
        found,
        [(
            "HTTPRoute shop/shop",
            "spec.parentRefs[0]",
            Some("NotAllowedByListeners")
        )]
    );
    // A selector on the name label admits it.
    let by_name = SET.replace(
        "matchLabels: {team: web}",
        &format!("matchLabels: {{{NAMESPACE_NAME_LABEL}: shop}}"),
    );
    let config = build(&by_name, &NamespaceLabels::new()).unwrap();
    let shop = &config.gateway_status.parents[&key(Kind::HttpRoute, "shop", "shop")];
    assert_eq!(shop, &[None]);
}

#[test]
fn a_gateway_keeps_its_spec_addresses_for_its_status() {
    let namespaces = NamespaceLabels::from([("shop".to_string(), labels(&[("team", "web")]))]);
    let config = build(SET, &namespaces).unwrap();
    let addresses =
        &config.gateway_status.addresses[&key(Kind::KubernetesGateway, "default", "edge")];
    let got: Vec<(&str, &str)> = addresses
        .iter()
        .map(|a| (a.kind, a.value.as_str()))
        .collect();
    assert_eq!(
        got,
        [("IPAddress", "10.0.0.7"), ("Hostname", "edge.example.com")]
    );
    let unsupported = SET.replace("{value: 10.0.0.7}", "{type: NamedAddress, value: lb-1}");
    let errors = build(&unsupported, &namespaces).unwrap_err();
    let gateway: Vec<(&str, Option<&str>)> = errors
        .0
        .iter()
        .filter(|e| e.resource == "Gateway.gateway.networking.k8s.io default/edge")
        .map(|e| (e.field.as_str(), e.reason))
        .collect();
    assert_eq!(
        gateway,
        [("spec.addresses[0].type", Some("UnsupportedAddress"))]
    );
}
