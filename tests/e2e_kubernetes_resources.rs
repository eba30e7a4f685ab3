//! Route resources from the cluster, end to end: two `coalmine serve --kubernetes`
//! replicas (the real binary, the real kube-rs client) against the in-process fake API
//! server, and a real Envoy. An invalid VirtualService gets an `Accepted: False`
//! condition naming the field while the valid resources keep being served; only the
//! leader writes status, and the other replica takes over when it stops; the REST API
//! refuses writes in this mode.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::config::service_entry;
use support::fake_apiserver::FakeApiServer;
use support::traffic::{send, wait_ready};
use support::{start_envoy_for, Backend, GatewaySpec};
use tempfile::TempDir;

const WAIT: Duration = Duration::from_secs(20);
const VIRTUAL_SERVICES: &str = "apis/networking.istio.io/v1/virtualservices";
const SERVICE_ENTRIES: &str = "apis/networking.istio.io/v1/serviceentries";

fn yaml(text: &str) -> Value {
    coalmine::yaml::value(text).expect("test YAML")
}

/// A VirtualService on `gw` for `host`, to `web.example` with `weight`.
fn virtual_service(name: &str, gw: &GatewaySpec, host: &str, weight: u32) -> Value {
    json!({
        "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": name, "namespace": "default", "generation": 1},
        "spec": {"hosts": [host], "gateways": [gw.name],
                 "http": [{"route": [{"destination": {"host": "web.example"}, "weight": weight}]}]}
    })
}

/// The `Accepted` condition of an object, once it has one.
fn accepted(api: &FakeApiServer, resource: &str, name: &str) -> Option<Value> {
    let obj = api.get(resource, "default", name)?;
    let conditions = obj["status"]["conditions"].as_array()?.clone();
    conditions.into_iter().find(|c| c["type"] == "Accepted")
}

fn wait_accepted(api: &FakeApiServer, resource: &str, name: &str, status: &str) -> Value {
    let ok = support::poll_until(WAIT, || {
        accepted(api, resource, name).is_some_and(|c| c["status"] == status)
    });
    let got = accepted(api, resource, name);
    assert!(ok, "{name}: wanted Accepted {status}, have {got:?}");
    got.unwrap()
}

#[test]
fn invalid_resources_get_a_status_and_the_valid_ones_keep_serving() {
    let api = FakeApiServer::start();
    let dir = TempDir::new().expect("tempdir");
    let backend = Backend::start("v1");
    let gw = GatewaySpec::new("k8s-crd");
    api.apply(yaml(&gw.yaml()));
    api.apply(yaml(&service_entry(
        "web",
        "web.example",
        &[(backend.port(), "v1")],
    )));
    api.apply(virtual_service("web", &gw, "web.example", 100));
    api.apply(virtual_service("broken", &gw, "broken.example", 500));

    let mut replicas = [
        api.replica(dir.path(), "replica-a"),
        api.replica(dir.path(), "replica-b"),
    ];
    let _envoy = start_envoy_for(&replicas[0], &gw, false);
    wait_ready(gw.port, "web.example", "/", WAIT);
    let counts = send(50, gw.port, "web.example", &[]);
    assert_eq!(counts.get("v1"), Some(&50), "{counts:?}");

    // The invalid one is reported, naming the field; the valid ones are accepted.
    let bad = wait_accepted(&api, VIRTUAL_SERVICES, "broken", "False");
    assert_eq!(bad["reason"], "Invalid");
    let message = bad["message"].as_str().unwrap_or_default();
    assert!(message.contains("spec.http[0].route[0].weight"), "{bad}");
    assert_eq!(bad["observedGeneration"], 1);
    wait_accepted(&api, VIRTUAL_SERVICES, "web", "True");
    wait_accepted(&api, SERVICE_ENTRIES, "web", "True");

    // Only the leader wrote status.
    assert!(support::poll_until(WAIT, || api.lease_holder().is_some()));
    let leader = api.lease_holder().unwrap();
    let (lead, follow) = match leader.as_str() {
        "replica-a" => (0, 1),
        _ => (1, 0),
    };
    assert!(
        replicas[lead].log_contains("status written"),
        "{leader} wrote none"
    );
    assert!(
        !replicas[follow].log_contains("status written"),
        "the follower wrote status:\n{}",
        replicas[follow].logs()
    );

    // The REST API is read-only here, and says why.
    let body = virtual_service("rest", &gw, "rest.example", 100).to_string();
    let r = replicas[0].admin_request("POST", "/api/v1/apply", "application/json", &body);
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.body.contains("use kubectl apply"), "{}", r.body);
    let r = replicas[0].admin_get("/api/v1/resources");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.contains("web") && !r.body.contains("broken"),
        "{}",
        r.body
    );

    // Fixed in the cluster: accepted, and served.
    let mut fixed = virtual_service("broken", &gw, "broken.example", 100);
    fixed["metadata"]["generation"] = json!(2);
    api.apply(fixed);
    let good = wait_accepted(&api, VIRTUAL_SERVICES, "broken", "True");
    assert_eq!(good["observedGeneration"], 2);
    wait_ready(gw.port, "broken.example", "/", WAIT);

    // The leader stops: the other replica takes the Lease and writes status from then on.
    replicas[lead].terminate(Duration::from_secs(5));
    let other = if lead == 0 { "replica-b" } else { "replica-a" };
    assert!(
        support::poll_until(WAIT, || api.lease_holder().as_deref() == Some(other)),
        "{other} never took over: {:?}",
        api.lease_holder()
    );
    api.apply(virtual_service("later", &gw, "later.example", 700));
    let late = wait_accepted(&api, VIRTUAL_SERVICES, "later", "False");
    assert!(late["message"]
        .as_str()
        .unwrap_or_default()
        .contains("weight"));
    assert!(replicas[follow].log_contains("status written"));
    // Still serving the valid ones throughout.
    let counts = send(20, gw.port, "web.example", &[]);
    assert_eq!(counts.get("v1"), Some(&20), "{counts:?}");
}
