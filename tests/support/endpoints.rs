//! EndpointSlice objects for the fake API server: a pod's endpoint by its condition,
//! and the slice that lists them.

use std::net::IpAddr;

use serde_json::{json, Value};

/// A pod's condition as its EndpointSlice endpoint shows it.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Cond {
    Ready,
    /// Starting: not ready yet.
    Unready,
    /// Terminating but still serving.
    Draining,
}

/// The endpoint of pod `pod` (namespace `default`) at `ip`, with `cond`'s conditions.
pub fn endpoint(ip: IpAddr, pod: &str, cond: Cond) -> Value {
    let (ready, serving, terminating) = match cond {
        Cond::Ready => (true, true, false),
        Cond::Unready => (false, false, false),
        Cond::Draining => (false, true, true),
    };
    json!({"addresses": [ip.to_string()],
           "conditions": {"ready": ready, "serving": serving, "terminating": terminating},
           "targetRef": {"kind": "Pod", "name": pod, "namespace": "default"}})
}

/// EndpointSlice `name` (namespace `default`) of Service `service`: `endpoints` on port `http`.
pub fn endpoint_slice(name: &str, service: &str, port: u16, endpoints: Vec<Value>) -> Value {
    json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": name, "namespace": "default",
                     "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": port, "protocol": "TCP"}],
        "endpoints": endpoints
    })
}
