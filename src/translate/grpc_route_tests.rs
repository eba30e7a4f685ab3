//! GRPCRoutes through translation: method matches as path matches, the GRPCRoute
//! precedence, HTTP/2 to their backends, `UNAVAILABLE` (503) for what they cannot serve,
//! and no HTTPRoute sharing their hostname.

use std::collections::{BTreeMap, BTreeSet};

use envoy_types::pb::envoy::config::route::v3::{
    route::Action, route_action::ClusterSpecifier, route_match::PathSpecifier, RouteConfiguration,
};
use envoy_types::pb::envoy::extensions::upstreams::http::v3::{
    http_protocol_options::{explicit_http_config::ProtocolConfig, UpstreamProtocolOptions},
    HttpProtocolOptions,
};
use prost::Message;

use super::{translate_destination, translate_routes, UNRESOLVED_CLUSTER};
use crate::ingest::parse_documents;
use crate::model::{Config, Destination, Kind, ResourceKey};
use crate::resource_set::build_config;

const BASE: &str = r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: backends}
spec:
  hosts: [echo-v1, echo-v2]
  ports: [{number: 9000, name: tcp, protocol: TCP}]
  resolution: STATIC
  endpoints: [{address: 10.0.0.1}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: edge}
spec:
  gatewayClassName: coalmine
  listeners: [{name: http, port: 8080, protocol: HTTP}]
"#;

fn config_of(text: &str) -> Result<Config, String> {
    let docs = parse_documents(&format!("{BASE}---\n{text}")).unwrap();
    build_config(&docs, &BTreeMap::new()).map_err(|e| e.to_string())
}

fn routes_of(config: &Config) -> RouteConfiguration {
    let edge = ResourceKey::new(Kind::KubernetesGateway, "default", "edge");
    let mut routed = translate_routes(config, &BTreeSet::from([edge]));
    routed.routes.remove("http.8080").expect("http.8080")
}

fn grpc_route(name: &str, created: &str, rules: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: GRPCRoute\n\
         metadata: {{name: {name}, creationTimestamp: \"{created}\"}}\n\
         spec:\n  parentRefs: [{{name: edge}}]\n  hostnames: [grpc.example.com]\n  rules:\n{rules}"
    )
}

#[test]
fn methods_match_paths_in_the_grpc_route_precedence() {
    let older = grpc_route(
        "older",
        "2026-01-01T00:00:00Z",
        "    - matches: [{method: {type: RegularExpression, method: \"Say.*\"}}]\n      \
         backendRefs: [{name: echo-v1, port: 9000}]\n    \
         - matches: [{method: {service: grpc.Echo}}]\n      \
         backendRefs: [{name: echo-v1, port: 9000}]\n",
    );
    let newer = grpc_route(
        "newer",
        "2026-02-01T00:00:00Z",
        "    - matches: [{method: {service: grpc.Echo, method: Say}}]\n      \
         backendRefs: [{name: echo-v1, port: 9000}]\n    \
         - matches: [{method: {service: grpc.Echo, method: Say}, \
         headers: [{name: x-canary, value: \"true\"}]}]\n      \
         backendRefs: [{name: echo-v2, port: 9000}]\n",
    );
    let config = config_of(&format!("{older}---\n{newer}")).unwrap();
    let rc = routes_of(&config);
    let vh = rc
        .virtual_hosts
        .iter()
        .find(|v| v.domains.iter().any(|d| d == "grpc.example.com"))
        .unwrap();
    let order: Vec<(String, usize, String)> = vh
        .routes
        .iter()
        .map(|r| {
            let m = r.r#match.as_ref().unwrap();
            let path = match m.path_specifier.as_ref().unwrap() {
                PathSpecifier::Path(p) => format!("exact {p}"),
                PathSpecifier::Prefix(p) => format!("prefix {p}"),
                PathSpecifier::SafeRegex(re) => format!("regex {}", re.regex),
                other => format!("{other:?}"),
            };
            let Some(Action::Route(action)) = &r.action else {
                panic!("{r:#?}")
            };
            let Some(ClusterSpecifier::Cluster(cluster)) = &action.cluster_specifier else {
                panic!("{action:#?}")
            };
            (path, m.headers.len(), cluster.clone())
        })
        .collect();
    let at = |path: &str, headers: usize, cluster: &str| {
        (
            path.to_string(),
            headers,
            format!("outbound|9000||{cluster}"),
        )
    };
    assert_eq!(
        order,
        [
            // Longest service, then longest method, then the most headers; age last.
            at("exact /grpc.Echo/Say", 1, "echo-v2"),
            at("exact /grpc.Echo/Say", 0, "echo-v1"),
            at("prefix /grpc.Echo/", 0, "echo-v1"),
            at("regex /[^/]+/(?:Say.*)", 0, "echo-v1"),
        ]
    );
}

#[test]
fn backends_get_http2_and_what_cannot_be_served_is_unavailable() {
    let route = grpc_route(
        "echo",
        "2026-01-01T00:00:00Z",
        "    - matches: [{method: {service: grpc.Echo}}]\n      \
         backendRefs: [{name: echo-v1, port: 9000, weight: 1}, {name: gone, port: 9000, weight: 1}]\n    \
         - matches: [{method: {service: grpc.Other}}]\n",
    );
    let config = config_of(&route).unwrap();
    let destination = Destination {
        host: "echo-v1".into(),
        subset: None,
        port: 9000,
    };
    let (cluster, _) = translate_destination(&config, &destination);
    let options = cluster
        .typed_extension_protocol_options
        .values()
        .next()
        .expect("protocol options");
    let options = HttpProtocolOptions::decode(options.value.as_slice()).unwrap();
    let Some(UpstreamProtocolOptions::ExplicitHttpConfig(explicit)) =
        options.upstream_protocol_options
    else {
        panic!("{options:#?}")
    };
    assert!(matches!(
        explicit.protocol_config,
        Some(ProtocolConfig::Http2ProtocolOptions(_))
    ));
    let rc = routes_of(&config);
    let vh = &rc.virtual_hosts[0];
    let by_prefix = |prefix: &str| {
        let found = vh.routes.iter().find(|r| {
            r.r#match.as_ref().and_then(|m| m.path_specifier.as_ref())
                == Some(&PathSpecifier::Prefix(prefix.into()))
        });
        found.unwrap_or_else(|| panic!("no {prefix}: {vh:#?}"))
    };
    let Some(Action::Route(split)) = &by_prefix("/grpc.Echo/").action else {
        panic!("{vh:#?}")
    };
    let Some(ClusterSpecifier::WeightedClusters(w)) = &split.cluster_specifier else {
        panic!("{split:#?}")
    };
    assert_eq!(w.clusters[1].name, UNRESOLVED_CLUSTER);
    // Envoy's default, 503, which gRPC clients see as UNAVAILABLE.
    assert_eq!(split.cluster_not_found_response_code, 0);
    let Some(Action::DirectResponse(none)) = &by_prefix("/grpc.Other/").action else {
        panic!("{vh:#?}")
    };
    assert_eq!(none.status, 503);
}

#[test]
fn an_http_route_cannot_share_a_grpc_routes_hostname() {
    let grpc = grpc_route(
        "echo",
        "2026-01-01T00:00:00Z",
        "    - backendRefs: [{name: echo-v1, port: 9000}]\n",
    );
    let http = "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n\
                metadata: {name: web}\n\
                spec:\n  parentRefs: [{name: edge}]\n  hostnames: [grpc.example.com]\n  \
                rules: [{backendRefs: [{name: echo-v1, port: 9000}]}]\n";
    let error = config_of(&format!("{grpc}---\n{http}")).unwrap_err();
    assert!(
        error.contains("spec.hostnames") && error.contains("GRPCRoute"),
        "{error}"
    );
    // Two GRPCRoutes on one hostname merge.
    let other = grpc_route(
        "other",
        "2026-01-02T00:00:00Z",
        "    - matches: [{method: {service: b.B}}]\n      backendRefs: [{name: echo-v2, port: 9000}]\n",
    );
    let config = config_of(&format!("{grpc}---\n{other}")).unwrap();
    assert_eq!(routes_of(&config).virtual_hosts[0].routes.len(), 2);
}
