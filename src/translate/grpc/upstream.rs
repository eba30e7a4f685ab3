//! Clusters and load assignments as gRPC accepts them: the Envoy translation's, with
//! what a gRPC client would reject (NACK) or misread changed.
//!
//! - Load balancing is `ROUND_ROBIN`: gRPC rejects `LEAST_REQUEST` and `RANDOM`.
//! - A DNS service is a `LOGICAL_DNS` cluster of its first endpoint (gRPC has no
//!   `STRICT_DNS`, and a logical DNS cluster holds exactly one endpoint); when its
//!   subset selects none, an EDS cluster with no endpoints, so calls fail `UNAVAILABLE`.
//! - Every locality has a locality and a weight (gRPC ignores a locality without a
//!   weight), localities without endpoints are left out, and an address appears once
//!   (gRPC rejects duplicate addresses).
//! - Upstream HTTP protocol options are dropped: gRPC always speaks HTTP/2.

use envoy_types::pb::envoy::config::cluster::v3::cluster::{
    ClusterDiscoveryType, DiscoveryType, DnsLookupFamily, EdsClusterConfig, LbPolicy,
};
use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::core::v3::{Address, Locality};
use envoy_types::pb::envoy::config::endpoint::v3::{
    lb_endpoint::HostIdentifier, ClusterLoadAssignment, LbEndpoint, LocalityLbEndpoints,
};
use envoy_types::pb::google::protobuf::UInt32Value;

use crate::translate::ads_config_source;

/// The gRPC form of a destination's cluster and, for EDS, its assignment.
pub(super) fn to_grpc_upstream(
    mut cluster: Cluster,
    cla: Option<ClusterLoadAssignment>,
) -> (Cluster, Option<ClusterLoadAssignment>) {
    cluster.lb_policy = LbPolicy::RoundRobin as i32;
    cluster.typed_extension_protocol_options.clear();
    if cluster.cluster_discovery_type
        != Some(ClusterDiscoveryType::Type(DiscoveryType::StrictDns as i32))
    {
        return (cluster, cla.map(to_grpc_assignment));
    }
    let inline = cluster.load_assignment.take().unwrap_or_default();
    let first = inline
        .endpoints
        .iter()
        .flat_map(|l| &l.lb_endpoints)
        .next()
        .cloned();
    match first {
        Some(endpoint) => {
            cluster.cluster_discovery_type =
                Some(ClusterDiscoveryType::Type(DiscoveryType::LogicalDns as i32));
            cluster.load_assignment = Some(ClusterLoadAssignment {
                cluster_name: cluster.name.clone(),
                endpoints: vec![LocalityLbEndpoints {
                    lb_endpoints: vec![LbEndpoint {
                        host_identifier: endpoint.host_identifier,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            });
            (cluster, None)
        }
        None => {
            cluster.cluster_discovery_type =
                Some(ClusterDiscoveryType::Type(DiscoveryType::Eds as i32));
            cluster.dns_lookup_family = DnsLookupFamily::Auto as i32;
            cluster.eds_cluster_config = Some(EdsClusterConfig {
                eds_config: Some(ads_config_source()),
                service_name: cluster.name.clone(),
            });
            let empty = ClusterLoadAssignment {
                cluster_name: cluster.name.clone(),
                ..Default::default()
            };
            (cluster, Some(empty))
        }
    }
}

/// Weighted localities with unique addresses; empty localities left out.
fn to_grpc_assignment(mut cla: ClusterLoadAssignment) -> ClusterLoadAssignment {
    let mut seen: Vec<Address> = Vec::new();
    for locality in &mut cla.endpoints {
        locality.lb_endpoints.retain(|e| match address_of(e) {
            Some(a) if seen.contains(a) => false,
            Some(a) => {
                seen.push(a.clone());
                true
            }
            None => true,
        });
        locality.locality.get_or_insert_with(Locality::default);
        locality.load_balancing_weight = Some(UInt32Value { value: 1 });
    }
    cla.endpoints.retain(|l| !l.lb_endpoints.is_empty());
    cla
}

fn address_of(e: &LbEndpoint) -> Option<&Address> {
    match &e.host_identifier {
        Some(HostIdentifier::Endpoint(ep)) => ep.address.as_ref(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Destination, LoadBalancer, Resolution, TrafficPolicy};
    use crate::translate::fixtures::*;
    use crate::translate::translate_destination;

    fn mk_d(host: &str, subset: Option<&str>) -> Destination {
        Destination {
            host: host.into(),
            subset: subset.map(Into::into),
            port: 8080,
        }
    }

    #[test]
    fn eds_clusters_round_robin_over_weighted_unique_localities() {
        let mut config = mk_petstore_config(vec![]);
        config.destination_rules[0].traffic_policy = Some(TrafficPolicy {
            load_balancer: Some(LoadBalancer::LeastRequest),
            ..Default::default()
        });
        let petstore = config.services.get_mut("petstore").unwrap();
        petstore.ports[0].protocol = "GRPC".into();
        petstore.endpoints.push(mk_endpoint("10.0.0.1", "v1"));
        let (envoy, envoy_cla) = translate_destination(&config, &mk_d("petstore", Some("v1")));
        assert_eq!(envoy.lb_policy, LbPolicy::LeastRequest as i32);
        assert!(!envoy.typed_extension_protocol_options.is_empty());

        let (cluster, cla) = to_grpc_upstream(envoy, envoy_cla);
        assert_eq!(cluster.lb_policy, LbPolicy::RoundRobin as i32);
        assert!(cluster.typed_extension_protocol_options.is_empty());
        let cla = cla.expect("an EDS assignment");
        assert_eq!(cla.endpoints.len(), 1);
        let locality = &cla.endpoints[0];
        assert_eq!(
            locality.load_balancing_weight,
            Some(UInt32Value { value: 1 })
        );
        assert!(locality.locality.is_some());
        // 10.0.0.1 twice and 10.0.0.3 (draining): the duplicate goes.
        assert_eq!(locality.lb_endpoints.len(), 2);

        let mut empty = mk_petstore_config(vec![]);
        empty
            .services
            .get_mut("petstore")
            .unwrap()
            .endpoints
            .clear();
        let (cluster, cla) = translate_destination(&empty, &mk_d("petstore", None));
        let (_, cla) = to_grpc_upstream(cluster, cla);
        assert!(cla.unwrap().endpoints.is_empty(), "no empty locality");
    }

    #[test]
    fn dns_services_become_logical_dns_or_empty_eds() {
        let mut config = mk_petstore_config(vec![]);
        let dns = mk_service(
            "api.example.org",
            8080,
            Resolution::Dns,
            vec![
                mk_endpoint("a.example.org", "v1"),
                mk_endpoint("b.example.org", "v1"),
            ],
        );
        config.services.insert(dns.host.clone(), dns);
        let (envoy, cla) = translate_destination(&config, &mk_d("api.example.org", None));
        assert!(cla.is_none());
        let (cluster, cla) = to_grpc_upstream(envoy, cla);
        assert!(cla.is_none());
        assert_eq!(
            cluster.cluster_discovery_type,
            Some(ClusterDiscoveryType::Type(DiscoveryType::LogicalDns as i32))
        );
        let inline = cluster.load_assignment.unwrap();
        assert_eq!(inline.endpoints.len(), 1);
        assert_eq!(inline.endpoints[0].lb_endpoints.len(), 1);
        let address = address_of(&inline.endpoints[0].lb_endpoints[0]).unwrap();
        assert!(format!("{address:?}").contains("a.example.org"));

        config
            .destination_rules
            .push(mk_rule("api.example.org", vec![mk_subset("v9")], None));
        let d = mk_d("api.example.org", Some("v9"));
        let (envoy, cla) = translate_destination(&config, &d);
        let (cluster, cla) = to_grpc_upstream(envoy, cla);
        assert_eq!(
            cluster.cluster_discovery_type,
            Some(ClusterDiscoveryType::Type(DiscoveryType::Eds as i32))
        );
        assert!(cluster.load_assignment.is_none());
        let eds = cluster.eds_cluster_config.unwrap();
        assert_eq!(eds.service_name, "outbound|8080|v9|api.example.org");
        assert_eq!(eds.eds_config, Some(ads_config_source()));
        let cla = cla.unwrap();
        assert_eq!(cla.cluster_name, "outbound|8080|v9|api.example.org");
        assert!(cla.endpoints.is_empty());
    }
}
