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
        endpoints.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
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
