//! `ServiceEntry` specs into one [`model::Service`](crate::model::Service) per host: ports, resolution and
//! static endpoints.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::Value;

use crate::ingest::{check_host, Fields, Obj, Report};
use crate::model::{Endpoint, EndpointHealth, Resolution, ResourceKey, Service, ServicePort};

const SPEC: Fields = Fields {
    known: &["hosts", "ports", "resolution", "endpoints", "location"],
    unsupported: &[
        "addresses",
        "exportTo",
        "workloadSelector",
        "subjectAltNames",
    ],
};
const PORT: Fields = Fields::known(&["number", "name", "protocol", "targetPort"]);
const ENDPOINT: Fields = Fields {
    known: &["address", "ports", "labels", "weight"],
    unsupported: &["network", "locality", "serviceAccount"],
};

/// Port protocols Istio knows.
const PROTOCOLS: [&str; 11] = [
    "HTTP", "HTTPS", "HTTP2", "GRPC", "GRPC-WEB", "TCP", "TLS", "MONGO", "REDIS", "MYSQL", "UDP",
];

/// Reads a ServiceEntry spec into its services, each with the index of its host in
/// `spec.hosts`; every problem goes to `r`.
///
/// `resolution` may be left out when endpoints are given and then means `STATIC`
/// (Istio's default, `NONE`, is not supported); without endpoints it is required.
pub(crate) fn try_service_entry(
    key: &ResourceKey,
    spec: &Value,
    r: &mut Report,
) -> Option<Vec<(usize, Service)>> {
    let spec = Obj::new(r, "spec", spec, SPEC)?;
    let hosts = try_hosts(spec, r);
    let ports = try_ports(spec, r);
    let resolution = try_resolution(spec, r);
    let endpoints: Vec<Endpoint> = spec
        .list(r, "endpoints")
        .into_iter()
        .filter_map(|(path, value)| try_endpoint(&path, value, resolution, &ports, r))
        .collect();
    if let Some(location) = spec.string(r, "location") {
        if !matches!(location.as_str(), "MESH_EXTERNAL" | "MESH_INTERNAL") {
            r.push(
                spec.at("location"),
                "must be MESH_EXTERNAL or MESH_INTERNAL",
            );
        }
    }
    let resolution = resolution?;
    let services = hosts
        .into_iter()
        .map(|(i, host)| {
            let service = Service {
                host,
                source: key.clone(),
                ports: ports.clone(),
                resolution,
                endpoints: endpoints.clone(),
            };
            (i, service)
        })
        .collect();
    Some(services)
}

fn try_hosts(spec: Obj<'_, '_>, r: &mut Report) -> Vec<(usize, String)> {
    let hosts = spec.strings(r, "hosts");
    if hosts.is_empty() {
        r.push(spec.at("hosts"), "at least one host is required");
    }
    let mut out: Vec<(usize, String)> = Vec::new();
    for (i, host) in hosts.into_iter().enumerate() {
        let path = format!("{}[{i}]", spec.at("hosts"));
        if host.contains('*') {
            r.push(path, "wildcard hosts are not supported");
        } else if let Err(message) = check_host(&host) {
            r.push(path, message);
        } else if out.iter().any(|(_, h)| *h == host) {
            r.push(path, format!("host {host:?} is listed twice"));
        } else {
            out.push((i, host));
        }
    }
    out
}

fn try_ports(spec: Obj<'_, '_>, r: &mut Report) -> Vec<ServicePort> {
    let items = spec.list(r, "ports");
    if items.is_empty() {
        r.push(spec.at("ports"), "at least one port is required");
    }
    let mut out: Vec<ServicePort> = Vec::new();
    for (path, value) in items {
        let Some(port) = Obj::new(r, &path, value, PORT) else {
            continue;
        };
        let number = port.uint(r, "number", 1, 65535);
        if !port.has("number") {
            r.push(port.at("number"), "required");
        }
        let name = port.required_string(r, "name");
        let protocol = match port.string(r, "protocol") {
            Some(protocol) => Some(protocol.to_ascii_uppercase()),
            None => name.as_deref().map(protocol_from_name),
        };
        if let Some(p) = protocol.as_deref().filter(|p| !PROTOCOLS.contains(p)) {
            r.push(
                port.at("protocol"),
                format!("unknown protocol {p:?} (one of {})", PROTOCOLS.join(", ")),
            );
        }
        let target_port = port.uint(r, "targetPort", 1, 65535);
        let (Some(number), Some(name), Some(protocol)) = (number, name, protocol) else {
            continue;
        };
        if out.iter().any(|p| p.name == name) {
            r.push(port.at("name"), format!("port name {name:?} is used twice"));
        } else if out.iter().any(|p| p.number == number) {
            r.push(port.at("number"), format!("port {number} is listed twice"));
        } else {
            out.push(ServicePort {
                number,
                name,
                protocol,
                target_port,
            });
        }
    }
    out
}

/// As Istio infers it: the port name up to the first `-` when that is a protocol
/// (`http-web` is HTTP), else HTTP, the protocol coalmine routes.
fn protocol_from_name(name: &str) -> String {
    let prefix = name
        .split('-')
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    let known = PROTOCOLS.contains(&prefix.as_str()) || prefix == "GRPC";
    if known {
        prefix
    } else {
        "HTTP".to_string()
    }
}

fn try_resolution(spec: Obj<'_, '_>, r: &mut Report) -> Option<Resolution> {
    match spec.string(r, "resolution").as_deref() {
        Some("STATIC") => Some(Resolution::Static),
        Some("DNS") => Some(Resolution::Dns),
        None if spec.has("endpoints") => Some(Resolution::Static),
        None => {
            r.push(
                spec.at("resolution"),
                "required when there are no endpoints (STATIC or DNS)",
            );
            None
        }
        Some(other) => {
            r.push(
                spec.at("resolution"),
                format!("{other:?} is not supported (STATIC or DNS)"),
            );
            None
        }
    }
}

fn try_endpoint(
    path: &str,
    value: &Value,
    resolution: Option<Resolution>,
    ports: &[ServicePort],
    r: &mut Report,
) -> Option<Endpoint> {
    let endpoint = Obj::new(r, path, value, ENDPOINT)?;
    let address = endpoint.required_string(r, "address");
    if let Some(address) = &address {
        let is_ip = address.parse::<IpAddr>().is_ok();
        let problem = match resolution {
            Some(Resolution::Static) if !is_ip => {
                Some("must be an IP address for STATIC resolution")
            }
            _ if !is_ip && check_host(address).is_err() => {
                Some("must be an IP address or a host name")
            }
            _ => None,
        };
        if let Some(problem) = problem {
            r.push(endpoint.at("address"), problem);
        }
    }
    let mut endpoint_ports = BTreeMap::new();
    for (port_path, name, value) in endpoint.entries(r, "ports") {
        let number = value.as_u64().filter(|n| (1..=65535).contains(n));
        match number {
            None => r.push(port_path, "must be an integer between 1 and 65535"),
            Some(_) if ports.iter().all(|p| p.name != name) => r.push(
                port_path,
                format!("{name:?} is not a port name of this ServiceEntry"),
            ),
            Some(number) => {
                endpoint_ports.insert(name.to_string(), number as u32);
            }
        }
    }
    let labels = endpoint.string_map(r, "labels");
    let weight = endpoint.uint(r, "weight", 1, 1_000_000).unwrap_or(1);
    Some(Endpoint {
        address: address?,
        ports: endpoint_ports,
        labels,
        health: EndpointHealth::Healthy,
        weight,
    })
}
