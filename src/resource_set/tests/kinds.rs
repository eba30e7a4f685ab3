//! Errors inside one VirtualService, DestinationRule or ServiceEntry, by field path.

use super::{mk_config, mk_errors};
use crate::model::*;

fn doc(kind: &str, spec: &str) -> String {
    let entry = "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: svc}\n\
                 spec: {hosts: [svc], ports: [{number: 80, name: http}], resolution: DNS}\n---\n";
    format!("{entry}apiVersion: networking.istio.io/v1\nkind: {kind}\nmetadata: {{name: x}}\nspec:\n{spec}")
}

/// (field, message) of every error, all on the resource `x`.
fn fields(text: &str) -> Vec<(String, String)> {
    mk_errors(text)
        .into_iter()
        .map(|(resource, field, message)| {
            assert!(resource.ends_with(" default/x"), "{resource}");
            (field, message)
        })
        .collect()
}

fn field(field: &str, message: &str) -> (String, String) {
    (field.into(), message.into())
}

#[test]
fn virtual_service_weights() {
    let lone = doc(
        "VirtualService",
        "  hosts: [a]\n  http:\n  - route: [{destination: {host: svc}}]\n",
    );
    let config = mk_config(&lone).unwrap();
    let RouteAction::Route(to) = &config.virtual_services[0].http[0].action else {
        panic!("route");
    };
    assert_eq!(to[0].weight, Weight::FULL);
    // Omitted among several counts 0.
    let split = doc(
        "VirtualService",
        "  hosts: [a]\n  http:\n  - route:\n    - {destination: {host: svc}, weight: 100}\n\
         \x20   - {destination: {host: svc}}\n",
    );
    let config = mk_config(&split).unwrap();
    let RouteAction::Route(to) = &config.virtual_services[0].http[0].action else {
        panic!("route");
    };
    assert_eq!((to[0].weight, to[1].weight), (Weight::FULL, Weight::ZERO));
    let bad = doc(
        "VirtualService",
        "  hosts: [a]\n  http:\n  - route:\n    - {destination: {host: svc}, weight: 100.5}\n\
         \x20   - {destination: {host: svc}, weight: 0.00001}\n\
         \x20 - route:\n    - {destination: {host: svc}, weight: 60}\n    - {destination: {host: svc}, weight: 30}\n",
    );
    assert_eq!(
        fields(&bad),
        vec![
            field("spec.http[0].route[0].weight", "must be between 0 and 100"),
            field(
                "spec.http[0].route[1].weight",
                "must have at most 4 decimals"
            ),
            field("spec.http[1].route", "weights add up to 90, must be 100"),
        ]
    );
}

#[test]
fn virtual_service_shape() {
    let text = doc(
        "VirtualService",
        "  hosts: []\n  gateways: [a/b/c]\n  tcp: []\n  http:\n\
         \x20 - route: [{destination: {host: svc}}]\n    redirect: {uri: /x}\n\
         \x20 - name: nothing\n\
         \x20 - redirect: {redirectCode: 305, scheme: ftp}\n    rewrite: {uri: /y}\n\
         \x20 - fault: {}\n    route: [{destination: {port: {}}}]\n    timeout: 3\n\
         \x20   retries: {retryOn: \"5xx,\"}\n    mirrorPercentage: {value: 101}\n",
    );
    assert_eq!(
        fields(&text),
        vec![
            field("spec.tcp", "not supported"),
            field("spec.hosts", "at least one host is required"),
            field(
                "spec.gateways[0]",
                "\"a/b/c\" is not a gateway (\"name\", \"namespace/name\" or \"mesh\")"
            ),
            field(
                "spec.http[0].redirect",
                "route and redirect are mutually exclusive"
            ),
            field("spec.http[1]", "one of route or redirect is required"),
            field("spec.http[2].redirect.scheme", "must be http or https"),
            field(
                "spec.http[2].redirect.redirectCode",
                "must be 301, 302, 303, 307 or 308"
            ),
            field(
                "spec.http[2].rewrite",
                "rewrite and redirect are mutually exclusive"
            ),
            field("spec.http[3].fault", "one of delay or abort is required"),
            field("spec.http[3].route[0].destination.host", "required"),
            field("spec.http[3].route[0].destination.port.number", "required"),
            field("spec.http[3].mirrorPercentage", "requires mirror"),
            field("spec.http[3].timeout", "must be a string"),
            field(
                "spec.http[3].retries.retryOn",
                "must be a comma-separated list of conditions"
            ),
        ]
    );
}

#[test]
fn virtual_service_gateways_take_its_namespace() {
    let gateway = "---\napiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: gw}\n\
                   spec: {servers: [{port: {number: 80, protocol: HTTP}, hosts: ['*']}]}\n";
    let text = doc(
        "VirtualService",
        "  hosts: [a]\n  gateways: [gw, default/gw, ./gw]\n  http: [{route: [{destination: {host: svc}}]}]\n",
    );
    let config = mk_config(&format!("{text}{gateway}")).unwrap();
    assert_eq!(config.virtual_services[0].gateways, vec!["default/gw"; 3]);
}

#[test]
fn destination_rule_errors() {
    let text = doc(
        "DestinationRule",
        "  host: svc\n  exportTo: ['.']\n  trafficPolicy:\n    tls: {mode: ISTIO_MUTUAL}\n\
         \x20   portLevelSettings: []\n    loadBalancer: {consistentHash: {}}\n\
         \x20   connectionPool: {tcp: {maxConnections: 0}, http: {h2UpgradePolicy: UPGRADE}}\n\
         \x20   outlierDetection: {maxEjectionPercent: 150, interval: 10}\n\
         \x20 subsets:\n  - {name: v1, labels: {version: v1}}\n  - {name: v1, labels: {version: v2}}\n\
         \x20 - {name: 'a|b'}\n",
    );
    assert_eq!(
        fields(&text),
        vec![
            field("spec.exportTo", "not supported"),
            field("spec.trafficPolicy.portLevelSettings", "not supported"),
            field("spec.trafficPolicy.tls", "not supported"),
            field(
                "spec.trafficPolicy.loadBalancer.consistentHash",
                "not supported"
            ),
            field("spec.trafficPolicy.loadBalancer.simple", "required"),
            field(
                "spec.trafficPolicy.connectionPool.tcp.maxConnections",
                "must be an integer between 1 and 2147483647"
            ),
            field(
                "spec.trafficPolicy.connectionPool.http.h2UpgradePolicy",
                "not supported"
            ),
            field(
                "spec.trafficPolicy.outlierDetection.interval",
                "must be a string"
            ),
            field(
                "spec.trafficPolicy.outlierDetection.maxEjectionPercent",
                "must be an integer between 0 and 100"
            ),
            field("spec.subsets[1].name", "subset \"v1\" is defined twice"),
            field(
                "spec.subsets[2].name",
                "must be letters, digits, '-', '_' or '.'"
            ),
            field("spec.subsets[2].labels", "at least one label is required"),
        ]
    );
}

#[test]
fn service_entry_errors() {
    let text = "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: x}\nspec:\n\
                \x20 hosts: ['*.example.com', a.example.com, a.example.com]\n  exportTo: ['.']\n\
                \x20 location: MESH_ELSEWHERE\n  resolution: STATIC\n\
                \x20 ports: [{number: 80, name: http, protocol: QUIC}, {number: 81, name: http}, {number: 80, name: web}]\n\
                \x20 endpoints:\n  - {address: backend.local, ports: {grpc: 9000}, weight: 0, locality: eu}\n";
    assert_eq!(
        fields(text),
        vec![
            field("spec.exportTo", "not supported"),
            field("spec.hosts[0]", "wildcard hosts are not supported"),
            field("spec.hosts[2]", "host \"a.example.com\" is listed twice"),
            field(
                "spec.ports[0].protocol",
                "unknown protocol \"QUIC\" (one of HTTP, HTTPS, HTTP2, GRPC, GRPC-WEB, TCP, TLS, MONGO, REDIS, MYSQL, UDP)"
            ),
            field("spec.ports[1].name", "port name \"http\" is used twice"),
            field("spec.ports[2].number", "port 80 is listed twice"),
            field("spec.endpoints[0].locality", "not supported"),
            field("spec.endpoints[0].address", "must be an IP address for STATIC resolution"),
            field("spec.endpoints[0].ports.grpc", "\"grpc\" is not a port name of this ServiceEntry"),
            field("spec.endpoints[0].weight", "must be an integer between 1 and 1000000"),
            field("spec.location", "must be MESH_EXTERNAL or MESH_INTERNAL"),
        ]
    );
}

#[test]
fn service_entry_resolution() {
    let none = doc(
        "ServiceEntry",
        "  hosts: [b]\n  ports: [{number: 80, name: http}]\n  resolution: NONE\n",
    );
    assert_eq!(
        fields(&none),
        vec![field(
            "spec.resolution",
            "\"NONE\" is not supported (STATIC or DNS)"
        )]
    );
    let missing = doc(
        "ServiceEntry",
        "  hosts: [b]\n  ports: [{number: 80, name: http}]\n",
    );
    assert_eq!(
        fields(&missing),
        vec![field(
            "spec.resolution",
            "required when there are no endpoints (STATIC or DNS)"
        )]
    );
    let implied = doc(
        "ServiceEntry",
        "  hosts: [b]\n  ports: [{number: 80, name: grpc-api}]\n  endpoints: [{address: '::1'}]\n",
    );
    let config = mk_config(&implied).unwrap();
    assert_eq!(config.services["b"].resolution, Resolution::Static);
    assert_eq!(config.services["b"].ports[0].protocol, "GRPC");
    assert_eq!(
        config.services["b"].source,
        ResourceKey::new(Kind::ServiceEntry, "default", "x")
    );
}

#[test]
fn service_entry_endpoints_on_one_address_and_two_ports_are_both_kept() {
    let text = "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: web}\n\
                spec:\n  hosts: [web.example.com]\n  ports: [{number: 80, name: http}]\n\
                \x20 resolution: STATIC\n  endpoints:\n\
                \x20 - {address: 127.0.0.1, ports: {http: 9001}}\n\
                \x20 - {address: 127.0.0.1, ports: {http: 9002}}\n";
    let config = mk_config(text).unwrap();
    let web = &config.services["web.example.com"];
    let ports: Vec<(&str, u32)> = web
        .endpoints
        .iter()
        .map(|e| (e.address.as_str(), e.port_for(&web.ports[0])))
        .collect();
    assert_eq!(ports, [("127.0.0.1", 9001), ("127.0.0.1", 9002)]);
}
