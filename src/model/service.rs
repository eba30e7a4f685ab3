//! Services and their endpoints, and the destination rules that subset them.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{Labels, ResourceKey};

/// A host that destinations may name, with its ports and endpoints.
///
/// Today from a `ServiceEntry`; later also from Kubernetes Services and EndpointSlices.
#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    pub host: String,
    /// Where it was declared, for error messages.
    pub source: ResourceKey,
    pub ports: Vec<ServicePort>,
    pub resolution: Resolution,
    /// An endpoint is identified, per service port, by its address and the port it
    /// serves that port on ([`Endpoint::port_for`]): one address may be listed several
    /// times with different ports (Kubernetes hostNetwork pods, a named `targetPort`
    /// resolving to different numbers, hand-written slices or ServiceEntry endpoints),
    /// and each is its own Envoy endpoint. The same (address, port) listed twice is one
    /// endpoint, the healthiest entry winning ([`EndpointHealth::rank`]).
    pub endpoints: Vec<Endpoint>,
}

impl Service {
    pub fn port(&self, number: u32) -> Option<&ServicePort> {
        self.ports.iter().find(|p| p.number == number)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePort {
    pub number: u32,
    pub name: String,
    /// `HTTP`, `HTTP2`, `GRPC`, `TCP`, ... as declared, upper case.
    pub protocol: String,
    /// The port endpoints listen on when they do not name one for this port.
    pub target_port: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// Endpoints are the addresses given.
    Static,
    /// Endpoints (or, when there are none, the host itself) are DNS names Envoy resolves.
    Dns,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// An IP address (or, for DNS resolution, a host name).
    pub address: String,
    /// Port name to the port this endpoint listens on for it.
    pub ports: BTreeMap<String, u32>,
    pub labels: Labels,
    pub health: EndpointHealth,
    /// Load balancing weight, 1 when not given.
    pub weight: u32,
}

impl Endpoint {
    /// The port this endpoint serves `port` on: its own mapping by name, else the
    /// service's target port, else the service port itself.
    pub fn port_for(&self, port: &ServicePort) -> u32 {
        self.ports
            .get(&port.name)
            .copied()
            .or(port.target_port)
            .unwrap_or(port.number)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointHealth {
    Healthy,
    /// Terminating but still serving: no new requests, in-flight ones finish.
    Draining,
    Unhealthy,
}

impl EndpointHealth {
    /// 0 for the healthiest: when one endpoint is listed twice, the lower rank wins.
    pub fn rank(self) -> u8 {
        match self {
            EndpointHealth::Healthy => 0,
            EndpointHealth::Draining => 1,
            EndpointHealth::Unhealthy => 2,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct DestinationRule {
    pub key: ResourceKey,
    pub host: String,
    pub traffic_policy: Option<TrafficPolicy>,
    pub subsets: Vec<Subset>,
}

impl DestinationRule {
    pub fn subset(&self, name: &str) -> Option<&Subset> {
        self.subsets.iter().find(|s| s.name == name)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Subset {
    pub name: String,
    /// An endpoint belongs to the subset when it carries every one of these labels.
    pub labels: Labels,
    /// Overrides the rule's policy field by field, as in Istio.
    pub traffic_policy: Option<TrafficPolicy>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct TrafficPolicy {
    pub load_balancer: Option<LoadBalancer>,
    pub connection_pool: Option<ConnectionPool>,
    pub outlier_detection: Option<OutlierDetection>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadBalancer {
    RoundRobin,
    LeastRequest,
    Random,
    Passthrough,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectionPool {
    pub max_connections: Option<u32>,
    pub connect_timeout: Option<Duration>,
    pub http1_max_pending_requests: Option<u32>,
    pub http2_max_requests: Option<u32>,
    pub max_requests_per_connection: Option<u32>,
    pub max_retries: Option<u32>,
    pub idle_timeout: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct OutlierDetection {
    pub consecutive_5xx_errors: Option<u32>,
    pub consecutive_gateway_errors: Option<u32>,
    pub interval: Option<Duration>,
    pub base_ejection_time: Option<Duration>,
    pub max_ejection_percent: Option<u32>,
    pub min_health_percent: Option<u32>,
}

/// The names a destination host may stand for: itself, and for a short Kubernetes
/// name (`name`, `name.namespace`, `name.namespace.svc`) the full
/// `name.namespace.svc.cluster.local`, the namespace defaulting to `namespace`.
pub fn host_candidates(host: &str, namespace: &str) -> Vec<String> {
    let mut out = vec![host.to_string()];
    match host.matches('.').count() {
        0 => out.push(format!("{host}.{namespace}.svc.cluster.local")),
        1 => out.push(format!("{host}.svc.cluster.local")),
        2 if host.ends_with(".svc") => out.push(format!("{host}.cluster.local")),
        _ => {}
    }
    out
}
