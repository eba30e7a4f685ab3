//! Index tests for every event ordering; no cluster, objects built from JSON.

use serde_json::{json, Value};

use super::*;

const HOST: &str = "web.default.svc.cluster.local";

fn mk<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).expect("valid fixture")
}

fn mk_service(port_name: &str) -> K8sService {
    mk(json!({
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"ports": [{"name": port_name, "port": 80, "targetPort": "web"}]}
    }))
}

/// A slice of `web` with one port `http` (8080) and endpoints `(address, pod, ready)`.
fn mk_slice(name: &str, endpoints: &[(&str, &str, bool)]) -> EndpointSlice {
    mk_slice_on(name, 8080, endpoints)
}

/// A slice of `web` whose port `http` is `port`.
fn mk_slice_on(name: &str, port: u16, endpoints: &[(&str, &str, bool)]) -> EndpointSlice {
    let endpoints: Vec<Value> = endpoints
        .iter()
        .map(|(address, pod, ready)| {
            json!({
                "addresses": [address],
                "conditions": {"ready": ready, "serving": ready, "terminating": false},
                "targetRef": {"kind": "Pod", "name": pod, "namespace": "default"}
            })
        })
        .collect();
    mk(json!({
        "metadata": {"name": name, "namespace": "default",
                     "labels": {SERVICE_NAME_LABEL: "web"}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": port, "protocol": "TCP"}],
        "endpoints": endpoints
    }))
}

fn mk_pod(name: &str, version: &str) -> PartialObjectMeta<Pod> {
    use kube::core::PartialObjectMetaExt;
    mk::<ObjectMeta>(json!({
        "name": name, "namespace": "default",
        "labels": {"app": "web", "version": version}
    }))
    .into_response_partial()
}

fn endpoints(index: &Index) -> Vec<(String, EndpointHealth, Option<String>)> {
    let services = index.services();
    services[HOST]
        .endpoints
        .iter()
        .map(|e| {
            (
                e.address.clone(),
                e.health,
                e.labels.get("version").cloned(),
            )
        })
        .collect()
}

fn ep(address: &str, version: Option<&str>) -> (String, EndpointHealth, Option<String>) {
    (
        address.into(),
        EndpointHealth::Healthy,
        version.map(str::to_string),
    )
}

#[test]
fn service_alone_has_ports_and_no_endpoints() {
    let mut index = Index::default();
    index.apply(&mk_service("http"));
    let services = index.services();
    let web = &services[HOST];
    assert_eq!(web.ports.len(), 1);
    assert_eq!(
        (web.ports[0].number, web.ports[0].name.as_str()),
        (80, "http")
    );
    assert_eq!(web.ports[0].protocol, "HTTP");
    assert!(web.endpoints.is_empty());
    assert_eq!(web.resolution, Resolution::Static);
}

#[test]
fn slice_before_service() {
    let mut index = Index::default();
    index.apply(&mk_slice("web-a", &[("10.0.0.1", "p1", true)]));
    assert!(index.services().is_empty(), "no Service, no host");
    index.apply(&mk_service("http"));
    let services = index.services();
    let e = &services[HOST].endpoints[0];
    assert_eq!(e.address, "10.0.0.1");
    assert_eq!(e.ports.get("http"), Some(&8080));
    assert_eq!(e.port_for(&services[HOST].ports[0]), 8080);
}

#[test]
fn pod_before_slice_and_after() {
    let mut index = Index::default();
    index.apply(&mk_service("http"));
    index.apply(&mk_pod("p1", "v1"));
    index.apply(&mk_slice(
        "web-a",
        &[("10.0.0.1", "p1", true), ("10.0.0.2", "p2", true)],
    ));
    assert_eq!(
        endpoints(&index),
        vec![ep("10.0.0.1", Some("v1")), ep("10.0.0.2", None)]
    );
    // The labels appear when the pod arrives.
    index.apply(&mk_pod("p2", "v2"));
    assert_eq!(
        endpoints(&index),
        vec![ep("10.0.0.1", Some("v1")), ep("10.0.0.2", Some("v2"))]
    );
}

#[test]
fn pod_label_change() {
    let mut index = Index::default();
    index.apply(&mk_service("http"));
    index.apply(&mk_slice("web-a", &[("10.0.0.1", "p1", true)]));
    index.apply(&mk_pod("p1", "v1"));
    index.apply(&mk_pod("p1", "v2"));
    assert_eq!(endpoints(&index), vec![ep("10.0.0.1", Some("v2"))]);
    index.delete(&mk_pod("p1", "v2"));
    assert_eq!(endpoints(&index), vec![ep("10.0.0.1", None)]);
}

#[test]
fn port_rename_on_the_service() {
    let mut index = Index::default();
    index.apply(&mk_service("http"));
    index.apply(&mk_slice("web-a", &[("10.0.0.1", "p1", true)]));
    index.apply(&mk_service("web"));
    let services = index.services();
    let web = &services[HOST];
    assert_eq!(web.ports[0].name, "web");
    // The slice still names the old port until the controller rewrites it: the
    // endpoint has no port of that name, so the Service port number is used.
    assert_eq!(web.endpoints[0].port_for(&web.ports[0]), 80);
    let mut slice = mk_slice("web-a", &[("10.0.0.1", "p1", true)]);
    slice.ports.as_mut().unwrap()[0].name = Some("web".into());
    index.apply(&slice);
    let services = index.services();
    assert_eq!(
        services[HOST].endpoints[0].port_for(&services[HOST].ports[0]),
        8080
    );
}

#[test]
fn slice_deleted() {
    let mut index = Index::default();
    index.apply(&mk_service("http"));
    index.apply(&mk_slice("web-a", &[("10.0.0.1", "p1", true)]));
    index.apply(&mk_slice("web-b", &[("10.0.0.2", "p2", true)]));
    index.delete(&mk_slice("web-a", &[]));
    assert_eq!(endpoints(&index), vec![ep("10.0.0.2", None)]);
}

#[test]
fn service_deleted_and_re_added_keeps_its_slices() {
    let mut index = Index::default();
    index.apply(&mk_service("http"));
    index.apply(&mk_slice("web-a", &[("10.0.0.1", "p1", true)]));
    let before = index.services();
    index.delete(&mk_service("http"));
    assert!(index.services().is_empty());
    index.apply(&mk_service("http"));
    assert_eq!(index.services(), before);
}

#[test]
fn duplicate_addresses_across_slices_count_once_healthiest_wins() {
    let mut index = Index::default();
    index.apply(&mk_service("http"));
    index.apply(&mk_slice("web-a", &[("10.0.0.1", "p1", true)]));
    let mut draining = mk_slice("web-b", &[("10.0.0.1", "p1", false)]);
    let conditions = draining.endpoints[0].conditions.as_mut().unwrap();
    conditions.serving = Some(true);
    conditions.terminating = Some(true);
    index.apply(&draining);
    assert_eq!(endpoints(&index), vec![ep("10.0.0.1", None)]);
    index.delete(&mk_slice("web-a", &[]));
    assert_eq!(
        endpoints(&index),
        vec![("10.0.0.1".into(), EndpointHealth::Draining, None)]
    );
}

#[test]
fn unready_endpoints_are_left_out() {
    let mut index = Index::default();
    index.apply(&mk_service("http"));
    index.apply(&mk_slice(
        "web-a",
        &[("10.0.0.1", "p1", true), ("10.0.0.2", "p2", false)],
    ));
    assert_eq!(endpoints(&index), vec![ep("10.0.0.1", None)]);
}

#[test]
fn relist_replaces_a_kind_and_an_unchanged_relist_changes_nothing() {
    let mut index = Index::default();
    index.apply(&mk_service("http"));
    index.apply(&mk_slice("web-a", &[("10.0.0.1", "p1", true)]));
    index.apply(&mk_slice("web-b", &[("10.0.0.2", "p2", true)]));
    let before = index.clone();
    index.replace(&[
        mk_slice("web-a", &[("10.0.0.1", "p1", true)]),
        mk_slice("web-b", &[("10.0.0.2", "p2", true)]),
    ]);
    assert_eq!(index, before);
    // A slice deleted while the watch was down is gone after the relist.
    index.replace(&[mk_slice("web-b", &[("10.0.0.2", "p2", true)])]);
    assert_eq!(endpoints(&index), vec![ep("10.0.0.2", None)]);
}

#[test]
fn slices_of_other_services_fqdn_and_external_name_are_ignored() {
    let mut index = Index::default();
    index.apply(&mk_service("http"));
    let mut other = mk_slice("other-a", &[("10.0.0.9", "p9", true)]);
    other.metadata.labels = Some([(SERVICE_NAME_LABEL.to_string(), "other".to_string())].into());
    index.apply(&other);
    let mut fqdn = mk_slice("web-fqdn", &[("example.com", "p9", true)]);
    fqdn.address_type = "FQDN".into();
    index.apply(&fqdn);
    assert_eq!(endpoints(&index), vec![]);
    let external: K8sService = mk(json!({
        "metadata": {"name": "ext", "namespace": "default"},
        "spec": {"type": "ExternalName", "externalName": "example.com"}
    }));
    index.apply(&external);
    assert_eq!(index.services().len(), 1);
}

/// `(address, port)` of each endpoint for the Service's first port.
fn served(index: &Index) -> Vec<(String, u32)> {
    let services = index.services();
    let web = &services[HOST];
    let endpoints = web.endpoints.iter();
    endpoints
        .map(|e| (e.address.clone(), e.port_for(&web.ports[0])))
        .collect()
}

#[test]
fn one_address_on_two_ports_in_two_slices_is_two_endpoints() {
    // hostNetwork pods, or a selector-less Service with hand-written slices.
    let mut index = Index::default();
    index.apply(&mk_service("http"));
    index.apply(&mk_slice_on("web-a", 9001, &[("10.0.0.1", "p1", true)]));
    index.apply(&mk_slice_on("web-b", 9002, &[("10.0.0.1", "p2", true)]));
    assert_eq!(
        served(&index),
        vec![("10.0.0.1".into(), 9001), ("10.0.0.1".into(), 9002)]
    );
    index.delete(&mk_slice("web-a", &[]));
    assert_eq!(served(&index), vec![("10.0.0.1".into(), 9002)]);
}

#[test]
fn a_named_target_port_resolves_per_slice() {
    // `targetPort: web` is 8080 in one pod and 9090 in another: the controller puts
    // them in different slices, each slice's ports applying to its endpoints.
    let mut index = Index::default();
    index.apply(&mk_service("http"));
    index.apply(&mk_slice_on(
        "web-a",
        8080,
        &[("10.0.0.1", "p1", true), ("10.0.0.2", "p2", true)],
    ));
    index.apply(&mk_slice_on("web-b", 9090, &[("10.0.0.3", "p3", true)]));
    assert_eq!(
        served(&index),
        vec![
            ("10.0.0.1".into(), 8080),
            ("10.0.0.2".into(), 8080),
            ("10.0.0.3".into(), 9090)
        ]
    );
}

#[test]
fn health_is_kept_per_address_and_port() {
    let mut index = Index::default();
    index.apply(&mk_service("http"));
    let mut draining = mk_slice_on("web-a", 9001, &[("10.0.0.1", "p1", false)]);
    let conditions = draining.endpoints[0].conditions.as_mut().unwrap();
    conditions.serving = Some(true);
    conditions.terminating = Some(true);
    index.apply(&draining);
    index.apply(&mk_slice_on("web-b", 9002, &[("10.0.0.1", "p2", true)]));
    let services = index.services();
    let health: Vec<EndpointHealth> = services[HOST].endpoints.iter().map(|e| e.health).collect();
    assert_eq!(health, [EndpointHealth::Draining, EndpointHealth::Healthy]);
}

#[test]
fn namespaces_and_gateway_fronts_follow_their_objects() {
    let mut index = Index::default();
    let ns: Namespace = mk(json!({"metadata": {"name": "shop",
        "labels": {"team": "web", "kubernetes.io/metadata.name": "shop"}}}));
    index.apply(&ns);
    assert_eq!(index.cluster().namespaces["shop"]["team"], "web");
    let front = |name: &str, ip: &str| -> K8sService {
        mk(json!({
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"selector": {"gateway.networking.k8s.io/gateway-name": "edge"},
                     "clusterIP": ip}
        }))
    };
    index.apply(&front("edge-b", "10.96.0.2"));
    index.apply(&front("edge-a", "10.96.0.1"));
    let key = ("default".to_string(), "edge".to_string());
    let values = |index: &Index| -> Vec<String> {
        let cluster = index.cluster();
        let addresses = cluster.gateway_addresses.get(&key).cloned();
        addresses.into_iter().flatten().map(|a| a.value).collect()
    };
    assert_eq!(values(&index), ["10.96.0.1", "10.96.0.2"]);
    // A Service whose selector no longer names the Gateway stops fronting it.
    let mut moved = front("edge-a", "10.96.0.1");
    moved.spec.as_mut().unwrap().selector = Some([("app".to_string(), "x".to_string())].into());
    index.apply(&moved);
    assert_eq!(values(&index), ["10.96.0.2"]);
    index.delete(&front("edge-b", "10.96.0.2"));
    assert_eq!(values(&index), Vec::<String>::new());
    index.delete(&ns);
    assert!(index.cluster().namespaces.is_empty());
}
