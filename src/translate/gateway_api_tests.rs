//! HTTPRoutes through translation as the Gateway API specifies them: rules of every
//! route of a hostname merged by precedence, listeners isolated by hostname, whole path
//! elements for prefixes, and the 500 share of an unresolved backend.

use std::collections::{BTreeMap, BTreeSet};

use envoy_types::pb::envoy::config::route::v3::{
    route::Action, route_action::ClusterSpecifier, route_match::PathSpecifier, RouteConfiguration,
    VirtualHost,
};

use super::{translate_routes, UNRESOLVED_CLUSTER};
use crate::ingest::parse_documents;
use crate::model::{Config, Kind, ResourceKey};
use crate::resource_set::build_config;

const SERVICES: &str = r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: backends}
spec:
  hosts: [v1, v2, v3, v4]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 10.0.0.1}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: edge}
spec:
  gatewayClassName: coalmine
  listeners:
    - {name: any, port: 8080, protocol: HTTP}
    - {name: example, port: 8080, protocol: HTTP, hostname: "*.example.com"}
    - {name: foo, port: 8080, protocol: HTTP, hostname: "*.foo.example.com"}
"#;

fn routes_of(text: &str) -> RouteConfiguration {
    let docs = parse_documents(&format!("{SERVICES}---\n{text}")).unwrap();
    let config: Config = build_config(&docs, &BTreeMap::new()).unwrap();
    let edge = ResourceKey::new(Kind::KubernetesGateway, "default", "edge");
    let mut routed = translate_routes(&config, &BTreeSet::from([edge]));
    routed.routes.remove("http.8080").expect("http.8080")
}

fn vhost<'a>(rc: &'a RouteConfiguration, domain: &str) -> &'a VirtualHost {
    let found = rc
        .virtual_hosts
        .iter()
        .find(|v| v.domains.iter().any(|d| d == domain));
    found.unwrap_or_else(|| panic!("no virtual host for {domain}: {rc:#?}"))
}

/// `(path, cluster)` of each route of a virtual host, in order.
fn order(vh: &VirtualHost) -> Vec<(String, String)> {
    vh.routes
        .iter()
        .map(|r| {
            let path = match r.r#match.as_ref().and_then(|m| m.path_specifier.as_ref()) {
                Some(PathSpecifier::Prefix(p)) => format!("prefix {p}"),
                Some(PathSpecifier::Path(p)) => format!("exact {p}"),
                Some(PathSpecifier::PathSeparatedPrefix(p)) => format!("elements {p}"),
                other => format!("{other:?}"),
            };
            let headers = r.r#match.as_ref().map_or(0, |m| m.headers.len());
            let path = if headers > 0 {
                format!("{path} +{headers}h")
            } else {
                path
            };
            let cluster = match &r.action {
                Some(Action::Route(a)) => match &a.cluster_specifier {
                    Some(ClusterSpecifier::Cluster(c)) => c.rsplit('|').next().unwrap().to_string(),
                    other => format!("{other:?}"),
                },
                other => format!("{other:?}"),
            };
            (path, cluster)
        })
        .collect()
}

fn route(name: &str, extra_metadata: &str, hostnames: &str, rules: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n\
         metadata: {{name: {name}{extra_metadata}}}\n\
         spec:\n  parentRefs: [{{name: edge, sectionName: any}}]\n  hostnames: {hostnames}\n  rules:\n{rules}"
    )
}

#[test]
fn rules_of_every_route_of_a_hostname_merge_by_precedence() {
    // The catch-all comes first in `a` and is oldest; the spec still tries the exact
    // path, then the longest prefix, then the header match, before it.
    let a = route(
        "a",
        ", creationTimestamp: '2026-01-01T00:00:00Z'",
        "[web.example.org]",
        "    - backendRefs: [{name: v1, port: 80}]\n    \
         - matches: [{path: {type: PathPrefix, value: /v2}}]\n      backendRefs: [{name: v2, port: 80}]\n",
    );
    let b = route(
        "b",
        ", creationTimestamp: '2026-02-01T00:00:00Z'",
        "[web.example.org]",
        "    - matches: [{headers: [{name: x-canary, value: 'true'}]}]\n      backendRefs: [{name: v3, port: 80}]\n    \
         - matches: [{path: {type: Exact, value: /v2/exact}}]\n      backendRefs: [{name: v4, port: 80}]\n",
    );
    let rc = routes_of(&format!("{a}---\n{b}"));
    let got = order(vhost(&rc, "web.example.org"));
    assert_eq!(
        got,
        [
            ("exact /v2/exact".to_string(), "v4".to_string()),
            ("elements /v2".into(), "v2".into()),
            ("prefix / +1h".into(), "v3".into()),
            ("prefix /".into(), "v1".into()),
        ]
    );
}

#[test]
fn equally_specific_matches_go_to_the_oldest_route_then_by_name() {
    let rule = "    - backendRefs: [{name: NAME, port: 80}]\n";
    let newer = route(
        "a-newer",
        ", creationTimestamp: '2026-03-01T00:00:00Z'",
        "[web.example.org]",
        &rule.replace("NAME", "v1"),
    );
    let older = route(
        "z-older",
        ", creationTimestamp: '2026-01-01T00:00:00Z'",
        "[web.example.org]",
        &rule.replace("NAME", "v2"),
    );
    let rc = routes_of(&format!("{newer}---\n{older}"));
    let got = order(vhost(&rc, "web.example.org"));
    assert_eq!(got[0].1, "v2", "{got:?}");
    // Without creation times, namespace/name decides.
    let rc = routes_of(&format!(
        "{}---\n{}",
        route("b", "", "[web.example.org]", &rule.replace("NAME", "v1")),
        route("a", "", "[web.example.org]", &rule.replace("NAME", "v2")),
    ));
    assert_eq!(order(vhost(&rc, "web.example.org"))[0].1, "v2");
}

#[test]
fn listeners_keep_their_own_hostnames() {
    // Each route attached to one listener by sectionName, none naming a hostname.
    let on = |name: &str, section: &str, path: &str, backend: &str| {
        format!(
            "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: {name}}}\n\
             spec:\n  parentRefs: [{{name: edge, sectionName: {section}}}]\n  rules:\n    \
             - matches: [{{path: {{type: PathPrefix, value: {path}}}}}]\n      backendRefs: [{{name: {backend}, port: 80}}]\n"
        )
    };
    let text = [
        on("empty", "any", "/empty-hostname", "v1"),
        on("example", "example", "/wildcard-example-com", "v2"),
        on("foo", "foo", "/wildcard-foo-example-com", "v3"),
    ]
    .join("---\n");
    let rc = routes_of(&text);
    let only = |domain: &str| order(vhost(&rc, domain));
    assert_eq!(
        only("*"),
        [("elements /empty-hostname".to_string(), "v1".to_string())]
    );
    assert_eq!(
        only("*.example.com"),
        [(
            "elements /wildcard-example-com".to_string(),
            "v2".to_string()
        )]
    );
    assert_eq!(
        only("*.foo.example.com"),
        [(
            "elements /wildcard-foo-example-com".to_string(),
            "v3".to_string()
        )]
    );
}

#[test]
fn an_unresolved_backend_gets_its_share_as_a_500() {
    let text = route(
        "split",
        "",
        "[web.example.org]",
        "    - backendRefs: [{name: v1, port: 80, weight: 3}, {name: missing, port: 80, weight: 1}]\n",
    );
    let rc = routes_of(&text);
    let vh = vhost(&rc, "web.example.org");
    let Some(Action::Route(action)) = &vh.routes[0].action else {
        panic!("{vh:#?}")
    };
    let Some(ClusterSpecifier::WeightedClusters(w)) = &action.cluster_specifier else {
        panic!("{action:#?}")
    };
    let weights: Vec<(&str, u32)> = w
        .clusters
        .iter()
        .map(|c| (c.name.as_str(), c.weight.as_ref().map_or(0, |w| w.value)))
        .collect();
    assert_eq!(
        weights,
        [("outbound|80||v1", 750_000), (UNRESOLVED_CLUSTER, 250_000)]
    );
    assert_eq!(action.cluster_not_found_response_code, 2, "500");
}
