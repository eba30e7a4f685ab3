//! Cluster load assignments: a destination's endpoints (those carrying its subset's
//! labels), for EDS and for the inline assignment of DNS clusters.

use envoy_types::pb::envoy::config::core::v3::HealthStatus;
use envoy_types::pb::envoy::config::endpoint::v3::{
    lb_endpoint::HostIdentifier, ClusterLoadAssignment, Endpoint as EnvoyEndpoint, LbEndpoint,
    LocalityLbEndpoints,
};
use envoy_types::pb::google::protobuf::UInt32Value;

use super::listener::to_address;
use super::{cluster_name, subset_labels};
use crate::model::{Config, Destination, EndpointHealth, Resolution, ServicePort};

/// One locality with every endpoint of the destination's service whose labels include
/// its subset's, sorted by (address, port). Emitted even when empty. A DNS service
/// without endpoints resolves its own host name.
///
/// An endpoint is its (address, port): the same address on two ports is two Envoy
/// endpoints; the same (address, port) listed twice is one, the healthiest entry
/// winning, else the first listed.
pub(super) fn to_cluster_load_assignment(
    config: &Config,
    d: &Destination,
) -> ClusterLoadAssignment {
    let mut lb_endpoints = Vec::new();
    if let Some(service) = config.services.get(&d.host) {
        let fallback = ServicePort {
            number: d.port,
            name: String::new(),
            protocol: "HTTP".into(),
            target_port: None,
        };
        let port = service.port(d.port).unwrap_or(&fallback);
        let labels = subset_labels(config, d);
        let mut endpoints: Vec<(String, u32, &crate::model::Endpoint)> = service
            .endpoints
            .iter()
            .filter(|e| labels.iter().all(|(k, v)| e.labels.get(k) == Some(v)))
            .map(|e| (e.address.clone(), e.port_for(port), e))
            .collect();
        // Stable: among entries of the same (address, port) and health, the first stays.
        endpoints
            .sort_by(|a, b| (&a.0, a.1, a.2.health.rank()).cmp(&(&b.0, b.1, b.2.health.rank())));
        endpoints.dedup_by(|later, kept| (&later.0, later.1) == (&kept.0, kept.1));
        lb_endpoints = endpoints
            .into_iter()
            .map(|(address, port, e)| to_lb_endpoint(&address, port, e.health, e.weight))
            .collect();
        if lb_endpoints.is_empty()
            && service.resolution == Resolution::Dns
            && service.endpoints.is_empty()
        {
            let target = port.target_port.unwrap_or(port.number);
            lb_endpoints.push(to_lb_endpoint(&d.host, target, EndpointHealth::Healthy, 1));
        }
    }
    ClusterLoadAssignment {
        cluster_name: cluster_name(d),
        endpoints: vec![LocalityLbEndpoints {
            lb_endpoints,
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn to_lb_endpoint(address: &str, port: u32, health: EndpointHealth, weight: u32) -> LbEndpoint {
    let health_status = match health {
        EndpointHealth::Healthy => HealthStatus::Healthy,
        EndpointHealth::Draining => HealthStatus::Draining,
        EndpointHealth::Unhealthy => HealthStatus::Unhealthy,
    };
    LbEndpoint {
        host_identifier: Some(HostIdentifier::Endpoint(EnvoyEndpoint {
            address: Some(to_address(address, port)),
            ..Default::default()
        })),
        health_status: health_status as i32,
        // Envoy rejects a zero weight.
        load_balancing_weight: Some(UInt32Value {
            value: weight.max(1),
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use envoy_types::pb::envoy::config::core::v3::{
        address::Address::SocketAddress, socket_address::PortSpecifier::PortValue,
    };

    use super::super::fixtures::{mk_endpoint, mk_service};
    use super::*;
    use crate::model::Endpoint;

    fn mk_on(address: &str, port: Option<u32>, health: EndpointHealth) -> Endpoint {
        let mut e = mk_endpoint(address, "v1");
        e.ports.extend(port.map(|p| ("http".to_string(), p)));
        e.health = health;
        e
    }

    /// `(address:port, health)` of each LbEndpoint of `petstore:8080`.
    fn served(endpoints: Vec<Endpoint>) -> Vec<(String, i32)> {
        let mut config = Config::default();
        let service = mk_service("petstore", 8080, Resolution::Static, endpoints);
        config.services.insert("petstore".into(), service);
        let d = Destination {
            host: "petstore".into(),
            subset: None,
            port: 8080,
        };
        let cla = to_cluster_load_assignment(&config, &d);
        cla.endpoints[0]
            .lb_endpoints
            .iter()
            .map(|lb| {
                let Some(HostIdentifier::Endpoint(e)) = &lb.host_identifier else {
                    panic!("an endpoint");
                };
                let address = e.address.as_ref().unwrap();
                let Some(SocketAddress(s)) = &address.address else {
                    panic!("a socket address");
                };
                let Some(PortValue(port)) = s.port_specifier else {
                    panic!("a port");
                };
                (format!("{}:{port}", s.address), lb.health_status)
            })
            .collect()
    }

    const HEALTHY: i32 = HealthStatus::Healthy as i32;
    const DRAINING: i32 = HealthStatus::Draining as i32;

    #[test]
    fn one_address_on_two_ports_is_two_endpoints() {
        let endpoints = vec![
            mk_on("127.0.0.1", Some(9002), EndpointHealth::Healthy),
            mk_on("127.0.0.1", Some(9001), EndpointHealth::Draining),
            // Falls back to the service port.
            mk_on("127.0.0.1", None, EndpointHealth::Healthy),
        ];
        assert_eq!(
            served(endpoints),
            vec![
                ("127.0.0.1:8080".into(), HEALTHY),
                ("127.0.0.1:9001".into(), DRAINING),
                ("127.0.0.1:9002".into(), HEALTHY),
            ]
        );
    }

    #[test]
    fn one_address_and_port_listed_twice_is_one_endpoint_the_healthiest() {
        let endpoints = vec![
            mk_on("10.0.0.1", Some(9001), EndpointHealth::Draining),
            mk_on("10.0.0.1", Some(9001), EndpointHealth::Healthy),
            // Resolves to 8080 like the service port fallback below.
            mk_on("10.0.0.2", Some(8080), EndpointHealth::Healthy),
            mk_on("10.0.0.2", None, EndpointHealth::Draining),
        ];
        assert_eq!(
            served(endpoints),
            vec![
                ("10.0.0.1:9001".into(), HEALTHY),
                ("10.0.0.2:8080".into(), HEALTHY),
            ]
        );
    }
}
