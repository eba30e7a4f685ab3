//! Proxyless gRPC end to end: a real gRPC client (grpcio, through gRPC's own xDS
//! support: an `xds:///` target and a bootstrap from `coalmine bootstrap --grpc`)
//! served by the real coalmine binary, calling two real gRPC servers (v1, v2); the
//! route changed through the REST API and the CLI, and the client's calls follow.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use support::grpc::{GrpcClient, GrpcServer, Outcomes};
use support::scenario::{expect_code, stdout};
use support::{unique, Coalmine};
use tempfile::TempDir;

const HOST: &str = "petstore.example";
const TARGET: &str = "xds:///petstore.example:8080";
const WAIT: Duration = Duration::from_secs(30);
const CANARY: &[(&str, &str)] = &[("x-canary", "true")];

/// A ServiceEntry `petstore.example:8080` on the two servers (labelled v1, v2), its
/// subsets, and a mesh VirtualService whose `http` routes are `routes`.
fn petstore(v1: &GrpcServer, v2: &GrpcServer, routes: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: petstore}}
spec:
  hosts: [{HOST}]
  ports: [{{number: 8080, name: grpc, protocol: GRPC}}]
  resolution: STATIC
  endpoints:
  - {{address: 127.0.0.1, ports: {{grpc: {}}}, labels: {{version: v1}}}}
  - {{address: 127.0.0.1, ports: {{grpc: {}}}, labels: {{version: v2}}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: petstore}}
spec:
  host: {HOST}
  subsets:
  - {{name: v1, labels: {{version: v1}}}}
  - {{name: v2, labels: {{version: v2}}}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: petstore}}
spec:
  hosts: [{HOST}]
  http:
{routes}",
        v1.port(),
        v2.port()
    )
}

/// A weighted split between the subsets, in percent.
fn split(v1: u32, v2: u32) -> String {
    format!(
        "  - name: split
    route:
    - destination: {{host: {HOST}, subset: v1}}
      weight: {v1}
    - destination: {{host: {HOST}, subset: v2}}
      weight: {v2}
"
    )
}

/// `x-canary: true` to v2, ahead of `rest`.
fn with_canary(rest: &str) -> String {
    format!(
        "  - name: canary
    match: [{{headers: {{x-canary: {{exact: \"true\"}}}}}}]
    route:
    - destination: {{host: {HOST}, subset: v2}}
{rest}"
    )
}

fn all(version: &str, n: u64) -> Outcomes {
    BTreeMap::from([(version.to_string(), n)])
}

/// The proxy `node` in `GET /api/v1/proxies`.
fn proxy(coalmine: &Coalmine, node: &str) -> Value {
    let r = coalmine.admin_get("/api/v1/proxies");
    assert_eq!(r.status, 200, "{}", r.body);
    let list: Value = serde_json::from_str(&r.body).expect("json");
    list["proxies"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["node"] == node)
        .cloned()
        .unwrap_or_else(|| panic!("proxy {node} not in {list}"))
}

#[test]
fn grpc_clients_follow_weights_and_header_canaries() {
    let (mut v1, mut v2) = (GrpcServer::start("v1"), GrpcServer::start("v2"));
    let coalmine = Coalmine::start_bare(&[]);
    let dir = TempDir::new().expect("tempdir");
    let write = |name: &str, yaml: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, yaml).expect("write yaml");
        path.display().to_string()
    };

    // 100 % to v1, applied with the CLI.
    let to_v1 = write("v1.yaml", &petstore(&v1, &v2, &split(100, 0)));
    expect_code(&coalmine.cli(&["apply", "-f", &to_v1]), 0, "apply 100 % v1");

    // A gRPC client with the bootstrap the CLI prints; and one dialling a target that
    // does not exist, whose call is started now and collected at the end (its
    // bootstrap without `GENERATOR: grpc`: gRPC's user agent alone says what it is).
    let bootstrap = |node: &str| {
        let args = ["bootstrap", "--grpc", "--node-id", node, "--xds-addr"];
        let mut args = args.to_vec();
        let xds = coalmine.xds_addr();
        args.push(&xds);
        let out = coalmine.cli(&args);
        expect_code(&out, 0, "bootstrap --grpc");
        stdout(&out)
    };
    let node = unique("grpc-client");
    let missing_node = unique("grpc-missing");
    let mut plain: Value = serde_json::from_str(&bootstrap(&missing_node)).expect("json");
    let generator = plain["node"]["metadata"]
        .as_object_mut()
        .and_then(|m| m.remove("GENERATOR"));
    assert_eq!(generator, Some(Value::from("grpc")), "{plain}");
    let mut missing = GrpcClient::start(&plain.to_string(), "xds:///nope.example:8080");
    missing.send(1, &[], WAIT);
    let mut client = GrpcClient::start(&bootstrap(&node), TARGET);
    client.wait_for("v1", &[], WAIT);
    assert_eq!(client.call(20, &[]), all("v1", 20));
    assert_eq!(
        client.call(20, CANARY),
        all("v1", 20),
        "no canary route yet"
    );

    // What gRPC declares itself as, and how coalmine classified it.
    let connected = format!("proxy connected node={node}");
    coalmine.wait_for_log(&connected, WAIT);
    let logs = coalmine.logs();
    let line = logs
        .lines()
        .find(|l| l.contains(&connected))
        .expect("logged");
    eprintln!("coalmine: {line}");
    assert!(line.contains("client=Grpc"), "{line}");
    let p = proxy(&coalmine, &node);
    assert_eq!(p["client"], "grpc", "{p}");
    assert_eq!(proxy(&coalmine, &missing_node)["client"], "grpc");
    let agent = p["userAgent"].as_str().unwrap_or_default();
    assert!(
        agent.starts_with("gRPC") && agent.contains(support::grpc::GRPCIO_VERSION),
        "{p}"
    );

    // A header canary, through the REST API, waiting for the client's ACK.
    let canary = petstore(&v1, &v2, &with_canary(&split(100, 0)));
    let r = coalmine.admin_request(
        "POST",
        "/api/v1/apply?wait=30s",
        "application/yaml",
        &canary,
    );
    assert_eq!(r.status, 200, "apply canary: {}", r.body);
    let body: Value = serde_json::from_str(&r.body).expect("json");
    assert_eq!(body["revision"], 2, "{body}");
    client.wait_for("v2", CANARY, Duration::from_secs(10));
    assert_eq!(client.call(20, CANARY), all("v2", 20));
    assert_eq!(client.call(20, &[]), all("v1", 20), "without the header");

    // Everything to v2, with the CLI, waiting for the ACK.
    let to_v2 = write("v2.yaml", &petstore(&v1, &v2, &with_canary(&split(0, 100))));
    let out = coalmine.cli(&["apply", "-f", &to_v2, "--wait", "--timeout", "30s"]);
    expect_code(&out, 0, "apply --wait 100 % v2");
    // Both clients: the one of the missing target ACKs what it holds, too.
    assert!(stdout(&out).contains("acked by 2 of 2"), "{}", stdout(&out));
    client.wait_for("v2", &[], Duration::from_secs(10));
    assert_eq!(client.call(20, &[]), all("v2", 20));
    assert_eq!(client.call(20, CANARY), all("v2", 20));
    assert!(v1.is_running() && v2.is_running());

    // The ledger: the client ACKed every type of revision 3, no NACK.
    let p = proxy(&coalmine, &node);
    assert_eq!(p["revision"], 3, "{p}");
    for kind in ["lds", "rds", "cds", "eds"] {
        let t = &p["types"][kind];
        assert!(t["acked"].is_string(), "{kind}: {p}");
        assert_eq!(t["acked"], t["served"], "{kind}: {p}");
        assert_eq!(
            (&t["pending"], &t["lastNack"]),
            (&Value::Bool(false), &Value::Null),
            "{kind}: {p}"
        );
    }

    // What it is served: the API listener and its route configuration, named after
    // the target, and no socket listener of Envoy's.
    let r = coalmine.admin_get(&format!("/api/v1/config_dump?node={node}"));
    assert_eq!(r.status, 200, "{}", r.body);
    let dump: Value = serde_json::from_str(&r.body).expect("json");
    let names = |kind: &str| -> Vec<String> {
        dump[kind]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| e["name"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    assert!(
        names("listeners").contains(&"petstore.example:8080".to_string()),
        "{dump}"
    );
    assert!(
        !names("listeners").iter().any(|n| n.starts_with("0.0.0.0_")),
        "{dump}"
    );
    assert!(
        names("routes").contains(&"petstore.example:8080".to_string()),
        "{dump}"
    );
    let listener = dump["listeners"]
        .as_array()
        .and_then(|l| l.iter().find(|e| e["name"] == "petstore.example:8080"))
        .expect("the API listener");
    let hcm = &listener["resource"]["api_listener"]["api_listener"];
    assert_eq!(
        hcm["rds"]["route_config_name"], "petstore.example:8080",
        "{listener}"
    );

    // A target that does not exist: gRPC gives up on it, naming it.
    let outcomes = missing.outcomes(WAIT + Duration::from_secs(10));
    let (outcome, _) = outcomes.iter().next().expect("one outcome");
    assert!(
        outcome.starts_with("error UNAVAILABLE") && outcome.contains("does not exist"),
        "{outcomes:?}"
    );
}
