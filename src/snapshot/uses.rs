//! Which clusters a resource needs warm before Envoy may use it: the clusters a route
//! configuration sends traffic to (routes, weighted clusters, mirrors), and for a
//! cluster, the assignment it warms with (EDS clusters). The xDS state machines hold a
//! resource back until what it uses is warm on that proxy (see `xds::warm`).
//!
//! Listeners name route configurations over RDS, which Envoy warms a listener on by
//! itself; a listener uses the clusters its JWT filter fetches keys through, which
//! must be warm before it goes (else its first key fetch fails).

use envoy_types::pb::envoy::config::cluster::v3::{
    cluster::{ClusterDiscoveryType, DiscoveryType},
    Cluster,
};
use envoy_types::pb::envoy::config::core::v3::http_uri::HttpUpstreamType;
use envoy_types::pb::envoy::config::core::v3::HealthStatus;
use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use envoy_types::pb::envoy::config::listener::v3::{filter::ConfigType, Listener};
use envoy_types::pb::envoy::config::route::v3::{
    route::Action, route_action::ClusterSpecifier, RouteConfiguration,
};
use envoy_types::pb::envoy::extensions::filters::http::jwt_authn::v3::{
    jwt_provider::JwksSourceSpecifier, JwtAuthentication,
};
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    http_filter, HttpConnectionManager,
};
use prost::{Message, Name};

use crate::translate::UNRESOLVED_CLUSTER;

/// The clusters a listener's JWT filters fetch keys through, sorted, without repeats.
pub fn of_listener(listener: &Listener) -> Box<[String]> {
    let mut out = Vec::new();
    let filters = listener.filter_chains.iter().flat_map(|c| &c.filters);
    let typed = filters.filter_map(|f| match &f.config_type {
        Some(ConfigType::TypedConfig(any)) => Some(any),
        _ => None,
    });
    let managers = typed
        .filter(|any| any.type_url == HttpConnectionManager::type_url())
        .filter_map(|any| HttpConnectionManager::decode(any.value.as_slice()).ok());
    for hcm in managers {
        for filter in &hcm.http_filters {
            let Some(http_filter::ConfigType::TypedConfig(any)) = &filter.config_type else {
                continue;
            };
            if any.type_url != JwtAuthentication::type_url() {
                continue;
            }
            let Ok(jwt) = JwtAuthentication::decode(any.value.as_slice()) else {
                continue;
            };
            for provider in jwt.providers.values() {
                let Some(JwksSourceSpecifier::RemoteJwks(remote)) = &provider.jwks_source_specifier
                else {
                    continue;
                };
                let upstream = remote
                    .http_uri
                    .as_ref()
                    .and_then(|u| u.http_upstream_type.as_ref());
                if let Some(HttpUpstreamType::Cluster(name)) = upstream {
                    out.push(name.clone());
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out.into_boxed_slice()
}

/// The clusters a route configuration sends requests to, sorted, without repeats.
pub fn of_route(rc: &RouteConfiguration) -> Box<[String]> {
    let mut out = Vec::new();
    for route in rc.virtual_hosts.iter().flat_map(|vh| &vh.routes) {
        let Some(Action::Route(action)) = &route.action else {
            continue;
        };
        match &action.cluster_specifier {
            Some(ClusterSpecifier::Cluster(name)) => out.push(name.clone()),
            Some(ClusterSpecifier::WeightedClusters(w)) => {
                out.extend(w.clusters.iter().map(|c| c.name.clone()))
            }
            _ => {}
        }
        out.extend(
            action
                .request_mirror_policies
                .iter()
                .map(|m| m.cluster.clone()),
        );
    }
    out.sort();
    out.dedup();
    out.retain(|n| !n.is_empty() && n != UNRESOLVED_CLUSTER);
    out.into_boxed_slice()
}

/// Whether an encoded assignment has no endpoint that can take traffic: none, or none
/// healthy (or of unknown health, which Envoy routes to).
pub fn serves_nothing(assignment: &[u8]) -> bool {
    let Ok(cla) = ClusterLoadAssignment::decode(assignment) else {
        return false;
    };
    let serving = [HealthStatus::Unknown as i32, HealthStatus::Healthy as i32];
    !cla.endpoints
        .iter()
        .flat_map(|l| &l.lb_endpoints)
        .any(|e| serving.contains(&e.health_status))
}

/// For an EDS cluster, the name of the assignment it warms with; nothing otherwise.
pub fn of_cluster(cluster: &Cluster) -> Box<[String]> {
    let eds = cluster.cluster_discovery_type
        == Some(ClusterDiscoveryType::Type(DiscoveryType::Eds as i32));
    if !eds {
        return Box::default();
    }
    let service = cluster
        .eds_cluster_config
        .as_ref()
        .map(|c| c.service_name.as_str())
        .filter(|s| !s.is_empty())
        .unwrap_or(&cluster.name);
    Box::new([service.to_string()])
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::envoy::config::cluster::v3::cluster::EdsClusterConfig;
    use envoy_types::pb::envoy::config::route::v3::{
        route_action::RequestMirrorPolicy, weighted_cluster::ClusterWeight, Route, RouteAction,
        VirtualHost, WeightedCluster,
    };

    fn route(spec: ClusterSpecifier, mirror: &str) -> Route {
        Route {
            action: Some(Action::Route(RouteAction {
                cluster_specifier: Some(spec),
                request_mirror_policies: vec![RequestMirrorPolicy {
                    cluster: mirror.into(),
                    ..Default::default()
                }],
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    #[test]
    fn a_route_configuration_uses_every_cluster_it_sends_to() {
        let weighted = WeightedCluster {
            clusters: ["v2", "v1"]
                .map(|n| ClusterWeight {
                    name: n.into(),
                    ..Default::default()
                })
                .to_vec(),
            ..Default::default()
        };
        let rc = RouteConfiguration {
            virtual_hosts: vec![VirtualHost {
                routes: vec![
                    route(ClusterSpecifier::WeightedClusters(weighted), "shadow"),
                    route(ClusterSpecifier::Cluster("v1".into()), ""),
                ],
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_eq!(&*of_route(&rc), ["shadow", "v1", "v2"]);
    }

    #[test]
    fn an_eds_cluster_uses_its_assignment_and_a_dns_cluster_nothing() {
        let mut c = Cluster {
            name: "outbound|80||a".into(),
            cluster_discovery_type: Some(ClusterDiscoveryType::Type(DiscoveryType::Eds as i32)),
            eds_cluster_config: Some(EdsClusterConfig::default()),
            ..Default::default()
        };
        assert_eq!(&*of_cluster(&c), ["outbound|80||a"]);
        c.cluster_discovery_type =
            Some(ClusterDiscoveryType::Type(DiscoveryType::StrictDns as i32));
        assert!(of_cluster(&c).is_empty());
    }

    #[test]
    fn a_listener_uses_the_clusters_its_jwt_filter_fetches_keys_through() {
        let text = r#"
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt}
spec:
  jwtRules:
  - {issuer: a, jwksUri: "http://keys.test:8080/a"}
  - {issuer: b, jwksUri: "http://keys.test:8080/b"}
  - {issuer: c, jwks: '{"keys":[{"kty":"EC"}]}'}
"#;
        let docs = crate::ingest::parse_documents(text).unwrap();
        let config =
            crate::resource_set::build_config(&docs, &std::collections::BTreeMap::new()).unwrap();
        let class = crate::translate::select_gateways(&config, &Default::default());
        let out = crate::translate::translate(&config, &class);
        let listener = &out.listeners["0.0.0.0_10000"];
        assert_eq!(&*of_listener(listener), ["coalmine|jwks|keys.test|8080"]);
        let cluster = &out.clusters["coalmine|jwks|keys.test|8080"];
        assert!(
            of_cluster(cluster).is_empty(),
            "a DNS cluster, no assignment"
        );
        assert!(of_listener(&Listener::default()).is_empty());
    }
}
