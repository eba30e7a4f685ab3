//! GRPCRoute through a real Envoy 1.40 and real gRPC servers (grpcio), as the Gateway
//! API's GATEWAY-GRPC profile describes it (written from the specification and the
//! conformance test descriptions GRPCExactMethodMatching, GRPCRouteHeaderMatching,
//! GRPCRouteListenerHostnameMatching, GRPCRouteWeight): exact service and method
//! matches, a service-only match, a regular-expression method match, a header match
//! outranking the rule declared before it, weights, an unresolved backend answering
//! UNAVAILABLE for its share, and hostnames. The backends' ports are declared HTTP:
//! a GRPCRoute makes Envoy speak HTTP/2 to them. And a GRPCRoute on a Service (the
//! mesh) routing a proxyless gRPC client.

mod support;

use std::time::{Duration, Instant};

use coalmine::gateway_api::GATEWAY_NAME_LABEL;
use support::config::{docs, service_entry};
use support::grpc::{GrpcCaller, GrpcClient, GrpcServer, Outcomes};
use support::scenario::{expect_code, stdout};
use support::{Coalmine, ConfigDir, Envoy};

const WAIT: Duration = Duration::from_secs(30);
const CALL: &str = "/coalmine.test.Echo/Call";

fn gateway(name: &str, port: u16) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: {name}}}
spec:
  gatewayClassName: coalmine
  listeners:
  - {{name: grpc, port: {port}, protocol: HTTP, hostname: \"*.grpc.test\"}}
"
    )
}

fn grpc_route(gateway: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {{name: echo}}
spec:
  parentRefs: [{{name: {gateway}}}]
  hostnames: [echo.grpc.test]
  rules:
  - matches: [{{method: {{service: coalmine.test.Echo, method: Call}}}}]
    backendRefs: [{{name: v1, port: 80}}]
  - matches:
    - method: {{service: coalmine.test.Echo, method: Call}}
      headers: [{{name: x-canary, value: \"true\"}}]
    backendRefs: [{{name: v2, port: 80}}]
  - matches: [{{method: {{service: coalmine.test.Echo}}}}]
    backendRefs: [{{name: v3, port: 80}}]
  - matches: [{{method: {{type: RegularExpression, method: \"Spl.*\"}}}}]
    backendRefs: [{{name: v1, port: 80, weight: 1}}, {{name: v2, port: 80, weight: 1}}]
  - matches: [{{method: {{service: coalmine.test.Half}}}}]
    backendRefs: [{{name: v1, port: 80}}, {{name: no-such-service, port: 80}}]
"
    )
}

fn all(outcome: &str, calls: u64) -> Outcomes {
    Outcomes::from([(outcome.to_string(), calls)])
}

#[test]
fn grpc_routes_through_envoy() {
    let servers = [
        GrpcServer::start("v1"),
        GrpcServer::start("v2"),
        GrpcServer::start("v3"),
    ];
    let name = support::unique("grpc-route");
    let port = support::free_port();
    let mut parts = vec![gateway(&name, port), grpc_route(&name)];
    for (server, v) in servers.iter().zip(["v1", "v2", "v3"]) {
        parts.push(service_entry(v, v, &[(server.port(), v)]));
    }
    let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
    let cfg = ConfigDir::new();
    cfg.write("grpc-route.yaml", &docs(&refs));
    let coalmine = Coalmine::start(&cfg.path(), &[]);
    let labels = [(GATEWAY_NAME_LABEL, name.as_str())];
    let _envoy = Envoy::start(&coalmine.bootstrap(&name, &labels, false));

    let mut echo = GrpcCaller::start(port, "echo.grpc.test");
    let deadline = Instant::now() + WAIT;
    loop {
        let got = echo.call(5, CALL, &[]);
        if got == all("v1", 5) {
            break;
        }
        assert!(Instant::now() < deadline, "never served: {got:?}");
        std::thread::sleep(Duration::from_millis(200));
    }

    // Exact service and method; the header match outranks the rule declared first.
    assert_eq!(echo.call(20, CALL, &[]), all("v1", 20));
    assert_eq!(echo.call(20, CALL, &[("x-canary", "true")]), all("v2", 20));
    // A service-only match takes the service's other methods.
    assert_eq!(
        echo.call(10, "/coalmine.test.Echo/Other", &[]),
        all("v3", 10)
    );
    // A regular-expression method of any service, split 1:1.
    let split = echo.call(200, "/coalmine.test.Any/Split", &[]);
    let (v1, v2) = (split.get("v1").copied(), split.get("v2").copied());
    assert_eq!(v1.unwrap_or(0) + v2.unwrap_or(0), 200, "{split:?}");
    assert!(
        (60..=140).contains(&v1.unwrap_or(0)),
        "about half v1: {split:?}"
    );
    // An unresolved backend's share is UNAVAILABLE; the rest is served.
    let half = echo.call(200, "/coalmine.test.Half/Call", &[]);
    let unavailable = half.get("error UNAVAILABLE").copied().unwrap_or(0);
    assert_eq!(
        unavailable + half.get("v1").copied().unwrap_or(0),
        200,
        "{half:?}"
    );
    assert!((60..=140).contains(&unavailable), "about half: {half:?}");
    // A method no rule matches, and a hostname no route has.
    assert_eq!(
        echo.call(5, "/other.Service/Call", &[]),
        all("error UNIMPLEMENTED", 5)
    );
    let mut stranger = GrpcCaller::start(port, "nobody.grpc.test");
    assert_eq!(stranger.call(5, CALL, &[]), all("error UNIMPLEMENTED", 5));
}

/// A GRPCRoute whose parent is a Service (GAMMA's mesh binding) routes a proxyless
/// gRPC client dialling that Service: the header match to v2, the rest to v1.
#[test]
fn a_grpc_route_on_a_service_routes_proxyless_clients() {
    let (v1, v2) = (GrpcServer::start("v1"), GrpcServer::start("v2"));
    let front = "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: echo}
spec:
  hosts: [echo.example]
  ports: [{number: 8080, name: grpc, protocol: GRPC}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.1}]
";
    let route = "apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: echo}
spec:
  parentRefs: [{group: \"\", kind: Service, name: echo.example, port: 8080}]
  rules:
  - matches:
    - method: {service: coalmine.test.Echo, method: Call}
      headers: [{name: x-canary, value: \"true\"}]
    backendRefs: [{name: v2, port: 80}]
  - matches: [{method: {service: coalmine.test.Echo}}]
    backendRefs: [{name: v1, port: 80}]
";
    let backends = [
        service_entry("v1", "v1", &[(v1.port(), "v1")]),
        service_entry("v2", "v2", &[(v2.port(), "v2")]),
    ];
    let cfg = ConfigDir::new();
    cfg.write(
        "mesh.yaml",
        &docs(&[front, route, &backends[0], &backends[1]]),
    );
    let coalmine = Coalmine::start(&cfg.path(), &[]);
    let node = support::unique("grpc-mesh");
    let xds = coalmine.xds_addr();
    let args = [
        "bootstrap",
        "--grpc",
        "--node-id",
        &node,
        "--xds-addr",
        &xds,
    ];
    let out = coalmine.cli(&args);
    expect_code(&out, 0, "bootstrap --grpc");
    let mut client = GrpcClient::start(&stdout(&out), "xds:///echo.example:8080");
    client.wait_for("v1", &[], WAIT);
    assert_eq!(client.call(20, &[]), all("v1", 20));
    assert_eq!(client.call(20, &[("x-canary", "true")]), all("v2", 20));
}
