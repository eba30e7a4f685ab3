//! Pure conversions from Kubernetes fields to model values: a Service port's protocol
//! (Istio's rules), an endpoint's health from its conditions, the addresses a Service
//! gives the Gateway it fronts. No state, no IO.

use k8s_openapi::api::core::v1::{Service as K8sService, ServicePort as K8sServicePort};
use k8s_openapi::api::discovery::v1::EndpointConditions;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::gateway_api::GATEWAY_NAME_LABEL;
use crate::model::{EndpointHealth, GatewayAddress, ServicePort};

/// A Service port as the model has it, or `None` for ports Envoy cannot carry here
/// (UDP, SCTP) and out-of-range numbers.
///
/// A numeric `targetPort` becomes the model's target port; a named one is left to the
/// EndpointSlices, whose ports carry the number each pod listens on.
pub fn to_service_port(p: &K8sServicePort) -> Option<ServicePort> {
    if p.protocol.as_deref().is_some_and(|proto| proto != "TCP") {
        return None;
    }
    let number = u32::try_from(p.port)
        .ok()
        .filter(|n| (1..=65535).contains(n))?;
    let name = p.name.clone().unwrap_or_default();
    let target_port = match &p.target_port {
        Some(IntOrString::Int(n)) => u32::try_from(*n).ok().filter(|n| *n > 0),
        Some(IntOrString::String(_)) => None,
        None => Some(number),
    };
    Some(ServicePort {
        number,
        protocol: to_protocol(p.app_protocol.as_deref(), &name),
        name,
        target_port,
    })
}

/// Istio's protocol selection: `appProtocol` first, else the port name's prefix
/// (`http`, `http-web`, `grpc-api`, ...). What names no protocol is served as HTTP,
/// which is what Istio's sniffing ends up with for HTTP/1.1 traffic at a gateway.
pub fn to_protocol(app_protocol: Option<&str>, port_name: &str) -> String {
    if let Some(app) = app_protocol.map(str::to_ascii_lowercase) {
        let known = match app.as_str() {
            "kubernetes.io/h2c" => Some("HTTP2"),
            "kubernetes.io/ws" | "kubernetes.io/wss" => Some("HTTP"),
            other => known_protocol(other),
        };
        if let Some(p) = known {
            return p.to_string();
        }
    }
    let lower = port_name.to_ascii_lowercase();
    // `grpc-web` is a protocol of its own; otherwise the prefix is before the first `-`.
    let prefix = if lower == "grpc-web" || lower.starts_with("grpc-web-") {
        "grpc-web"
    } else {
        lower.split('-').next().unwrap_or("")
    };
    known_protocol(prefix).unwrap_or("HTTP").to_string()
}

fn known_protocol(name: &str) -> Option<&'static str> {
    Some(match name {
        "http" => "HTTP",
        "http2" | "h2c" => "HTTP2",
        "grpc" => "GRPC",
        "grpc-web" => "GRPC-WEB",
        "https" => "HTTPS",
        "tls" => "TLS",
        "tcp" | "mongo" | "mysql" | "redis" => "TCP",
        _ => return None,
    })
}

/// The Gateway a Service fronts (its `spec.selector` has
/// `gateway.networking.k8s.io/gateway-name: <gateway>`, the label of that Gateway's
/// Envoys) and the addresses it gives it: its load balancer's ingress (`ip` an
/// `IPAddress`, `hostname` a `Hostname`), else its cluster IPs (`None`, a headless
/// Service, is none). `None` for a Service that fronts no Gateway.
pub fn to_gateway_front(service: &K8sService) -> Option<(String, Vec<GatewayAddress>)> {
    let spec = service.spec.as_ref()?;
    let gateway = spec.selector.as_ref()?.get(GATEWAY_NAME_LABEL)?.clone();
    let ingress = service
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref());
    let address = |kind: &'static str, value: &String| GatewayAddress {
        kind,
        value: value.clone(),
    };
    let mut addresses: Vec<GatewayAddress> = Vec::new();
    for entry in ingress.into_iter().flatten() {
        let ip = entry.ip.iter().map(|ip| address("IPAddress", ip));
        let hostname = entry.hostname.iter().map(|h| address("Hostname", h));
        addresses.extend(ip.chain(hostname).filter(|a| !a.value.is_empty()));
    }
    if addresses.is_empty() {
        let ips = match &spec.cluster_ips {
            Some(ips) if !ips.is_empty() => ips.clone(),
            _ => spec.cluster_ip.iter().cloned().collect(),
        };
        let ips = ips.iter().filter(|ip| !ip.is_empty() && *ip != "None");
        addresses.extend(ips.map(|ip| address("IPAddress", ip)));
    }
    let mut unique = Vec::new();
    for a in addresses {
        if !unique.contains(&a) {
            unique.push(a);
        }
    }
    Some((gateway, unique))
}

/// An endpoint's health from its conditions, or `None` when it must get no traffic
/// at all (not ready and not draining): such endpoints are left out of the model, so
/// Envoy's panic routing can never pick them.
///
/// - `ready` true (or unknown, which Kubernetes says to read as ready) → Healthy;
/// - not ready, but `serving` and `terminating` → Draining: in-flight requests finish,
///   no new ones arrive;
/// - anything else → omitted.
pub fn to_health(c: Option<&EndpointConditions>) -> Option<EndpointHealth> {
    let Some(c) = c else {
        return Some(EndpointHealth::Healthy);
    };
    let terminating = c.terminating.unwrap_or(false);
    let ready = c.ready.unwrap_or(!terminating);
    let serving = c.serving.unwrap_or(ready);
    if ready {
        Some(EndpointHealth::Healthy)
    } else if serving && terminating {
        Some(EndpointHealth::Draining)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_from_app_protocol_then_name_prefix() {
        assert_eq!(to_protocol(Some("grpc"), "http"), "GRPC");
        assert_eq!(to_protocol(Some("kubernetes.io/h2c"), ""), "HTTP2");
        assert_eq!(to_protocol(Some("unknown"), "http2-api"), "HTTP2");
        assert_eq!(to_protocol(None, "grpc-web"), "GRPC-WEB");
        assert_eq!(to_protocol(None, "grpc-api"), "GRPC");
        assert_eq!(to_protocol(None, "tcp-db"), "TCP");
        assert_eq!(to_protocol(None, "web"), "HTTP");
        assert_eq!(to_protocol(None, ""), "HTTP");
    }

    #[test]
    fn health_from_conditions() {
        let c = |ready, serving, terminating| EndpointConditions {
            ready,
            serving,
            terminating,
        };
        let h = |c: EndpointConditions| to_health(Some(&c));
        assert_eq!(to_health(None), Some(EndpointHealth::Healthy));
        assert_eq!(h(c(Some(true), None, None)), Some(EndpointHealth::Healthy));
        assert_eq!(h(c(None, None, None)), Some(EndpointHealth::Healthy));
        let draining = c(Some(false), Some(true), Some(true));
        assert_eq!(h(draining), Some(EndpointHealth::Draining));
        assert_eq!(h(c(Some(false), Some(false), Some(true))), None);
        assert_eq!(h(c(Some(false), None, None)), None);
        // Not ready and not terminating: failing its readiness probe.
        assert_eq!(h(c(Some(false), Some(true), Some(false))), None);
    }

    #[test]
    fn a_gateway_front_gives_its_ingress_else_its_cluster_ips() {
        let mk = |v: serde_json::Value| -> K8sService { serde_json::from_value(v).unwrap() };
        let selector = serde_json::json!({GATEWAY_NAME_LABEL: "edge", "app": "envoy"});
        let front = mk(serde_json::json!({
            "metadata": {"name": "edge", "namespace": "default"},
            "spec": {"selector": selector, "clusterIP": "10.96.0.9", "clusterIPs": ["10.96.0.9"]},
            "status": {"loadBalancer": {"ingress": [
                {"ip": "203.0.113.7"}, {"hostname": "lb.example.com"}, {"ip": "203.0.113.7"}]}}
        }));
        let (gateway, addresses) = to_gateway_front(&front).unwrap();
        assert_eq!(gateway, "edge");
        let got: Vec<(&str, &str)> = addresses
            .iter()
            .map(|a| (a.kind, a.value.as_str()))
            .collect();
        assert_eq!(
            got,
            [("IPAddress", "203.0.113.7"), ("Hostname", "lb.example.com")]
        );
        let cluster_only = mk(serde_json::json!({
            "metadata": {"name": "edge"},
            "spec": {"selector": selector, "clusterIPs": ["10.96.0.9", "fd00::9"]}
        }));
        let (_, addresses) = to_gateway_front(&cluster_only).unwrap();
        let got: Vec<&str> = addresses.iter().map(|a| a.value.as_str()).collect();
        assert_eq!(got, ["10.96.0.9", "fd00::9"]);
        let headless = mk(serde_json::json!({
            "metadata": {"name": "edge"}, "spec": {"selector": selector, "clusterIP": "None"}
        }));
        assert_eq!(to_gateway_front(&headless).unwrap().1, []);
        let other = mk(serde_json::json!({
            "metadata": {"name": "web"}, "spec": {"selector": {"app": "web"}, "clusterIP": "10.96.0.1"}
        }));
        assert_eq!(to_gateway_front(&other), None);
    }

    #[test]
    fn service_ports() {
        let p: K8sServicePort = serde_json::from_value(serde_json::json!(
            {"name": "http-web", "port": 80, "targetPort": "web"}
        ))
        .unwrap();
        let port = to_service_port(&p).unwrap();
        assert_eq!(
            (port.number, port.name.as_str(), port.protocol.as_str()),
            (80, "http-web", "HTTP")
        );
        assert_eq!(port.target_port, None);
        let p: K8sServicePort = serde_json::from_value(serde_json::json!(
            {"port": 53, "protocol": "UDP"}
        ))
        .unwrap();
        assert_eq!(to_service_port(&p), None);
        let p: K8sServicePort =
            serde_json::from_value(serde_json::json!({"port": 80, "targetPort": 8080})).unwrap();
        assert_eq!(to_service_port(&p).unwrap().target_port, Some(8080));
    }
}
