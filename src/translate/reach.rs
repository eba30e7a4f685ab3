//! Which stored resources shape what a class of proxies is served: for resource
//! status, and for the rollout controller's "proxies that carry the route".

use std::collections::BTreeSet;

use crate::model::{Config, Kind, ResourceKey, MESH_GATEWAY};

/// Whether a stored resource shapes what a proxy of this class (its Gateways and
/// security policies, see [`super::select_gateways`]) is served.
pub fn reaches(config: &Config, key: &ResourceKey, gateways: &BTreeSet<ResourceKey>) -> bool {
    let policy = |k: &&ResourceKey| {
        matches!(
            k.kind,
            Kind::RequestAuthentication | Kind::AuthorizationPolicy
        )
    };
    let only_policies = gateways.iter().all(|k| policy(&k));
    let bound = |names: &[String]| {
        if only_policies {
            names.iter().any(|g| g == MESH_GATEWAY)
        } else {
            gateways
                .iter()
                .any(|k| names.contains(&format!("{}/{}", k.namespace, k.name)))
        }
    };
    let hosts_served = || -> BTreeSet<&str> {
        config
            .virtual_services
            .iter()
            .filter(|vs| bound(&vs.gateways))
            .flat_map(|vs| vs.http.iter())
            .flat_map(|r| match &r.action {
                crate::model::RouteAction::Route(ds) => {
                    ds.iter().map(|d| d.destination.host.as_str()).collect()
                }
                _ => Vec::new(),
            })
            .collect()
    };
    match key.kind {
        Kind::Gateway
        | Kind::KubernetesGateway
        | Kind::RequestAuthentication
        | Kind::AuthorizationPolicy => gateways.contains(key),
        Kind::VirtualService | Kind::HttpRoute | Kind::GrpcRoute => config
            .virtual_services
            .iter()
            .any(|vs| &vs.key == key && bound(&vs.gateways)),
        Kind::DestinationRule => config
            .destination_rules
            .iter()
            .any(|dr| &dr.key == key && hosts_served().contains(dr.host.as_str())),
        Kind::ServiceEntry => {
            let hosts = hosts_served();
            config
                .services
                .values()
                .any(|s| &s.source == key && hosts.contains(s.host.as_str()))
        }
        // A template is read by the rollout controller, never by proxies.
        Kind::MetricTemplate | Kind::AlertProvider => false,
        // A Secret shapes the proxies whose Gateways terminate TLS with it.
        Kind::Secret => {
            let name = format!("{}/{}", key.namespace, key.name);
            config
                .gateways
                .iter()
                .filter(|g| gateways.contains(&g.key))
                .flat_map(|g| g.servers.iter().filter_map(|s| s.tls.as_ref()))
                .any(|tls| tls.secrets().any(|s| s == name))
        }
        // A grant can change what any HTTPRoute of the class resolves to.
        Kind::ReferenceGrant => config
            .virtual_services
            .iter()
            .any(|vs| vs.key.kind.is_gateway_api_route() && bound(&vs.gateways)),
        // A Rollout shapes what its target VirtualService serves.
        Kind::Rollout => config.rollouts.iter().any(|ro| {
            &ro.key == key
                && config
                    .virtual_services
                    .iter()
                    .any(|vs| vs.key == ro.target && bound(&vs.gateways))
        }),
    }
}
