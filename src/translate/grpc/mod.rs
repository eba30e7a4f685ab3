//! The view of proxyless gRPC clients (gRPC's built-in xDS support, channels to
//! `xds:///host:port`). Owns the API listeners and route configurations named
//! `host:port` ([`targets`] says which exist) and the gRPC form of clusters and
//! assignments ([`upstream`]); reuses the Envoy translation of routes, clusters and
//! endpoints and must not change it. Pure and deterministic like the rest of translate.
//!
//! Per target: an API listener whose HttpConnectionManager takes route configuration
//! `host:port` over ADS and has only the router filter; that route configuration, one
//! virtual host (domains `host`, `host:port`) with the routes Envoy would get, minus
//! per-route filter configs (CORS, fault: gRPC rejects filters it does not run), and a
//! route's timeout as gRPC's `max_stream_duration`. gRPC fails the calls of redirect
//! and fault-only routes (`UNAVAILABLE`), ignores rewrites, mirrors and header changes,
//! and skips routes that match query parameters.

mod targets;
mod upstream;

#[cfg(test)]
mod tests;

use std::collections::BTreeSet;

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use envoy_types::pb::envoy::config::listener::v3::{ApiListener, Listener};
use envoy_types::pb::envoy::config::route::v3::{
    route::Action, route_action::ClusterSpecifier, route_action::MaxStreamDuration, Route,
    RouteAction as EnvoyRouteAction, RouteConfiguration, VirtualHost,
};
use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    http_connection_manager::RouteSpecifier, HttpConnectionManager, Rds,
};
use envoy_types::util::pack_any;

use super::listener::to_http_filter;
use super::route::to_virtual_host;
use super::route_filter::ROUTER_FILTER;
use super::route_match::match_all;
use super::select::{destinations, VirtualHostPlan};
use super::{ads_config_source, cluster_name, with_sibling_subsets, Resources, Routed};
use crate::model::{Config, Destination};
use targets::{plan_targets, Target};

/// Everything a proxyless gRPC client may subscribe to. Pure and deterministic.
pub fn translate(config: &Config) -> Resources {
    translate_routes(config).into_resources(config, translate_destination)
}

/// The API listeners and route configurations, one of each per target, and every
/// destination a cluster is needed for (with sibling subsets, as for Envoy).
pub fn translate_routes(config: &Config) -> Routed {
    let mut out = Routed::default();
    let mut routed = BTreeSet::new();
    for target in plan_targets(config) {
        match target.virtual_service {
            Some(_) if !target.merged.is_empty() => {
                routed.extend(target.merged.iter().flat_map(|vs| destinations(vs)));
            }
            Some(vs) => routed.extend(destinations(vs)),
            None => {
                routed.insert(default_destination(&target));
            }
        }
        let name = target.name();
        out.routes
            .insert(name.clone(), to_route_configuration(&target));
        out.listeners.insert(name.clone(), to_api_listener(&name));
    }
    out.destinations = with_sibling_subsets(config, routed);
    out
}

/// One destination's cluster and, for EDS, its endpoints, as gRPC accepts them.
pub fn translate_destination(
    config: &Config,
    destination: &Destination,
) -> (Cluster, Option<ClusterLoadAssignment>) {
    let (cluster, cla) = super::translate_destination(config, destination);
    upstream::to_grpc_upstream(cluster, cla)
}

fn default_destination(target: &Target<'_>) -> Destination {
    Destination {
        host: target.host.clone(),
        subset: None,
        port: target.port,
    }
}

/// `api_listener`: an HttpConnectionManager taking route configuration `name` over
/// ADS, with the router filter only.
fn to_api_listener(name: &str) -> Listener {
    let hcm = HttpConnectionManager {
        route_specifier: Some(RouteSpecifier::Rds(Rds {
            config_source: Some(ads_config_source()),
            route_config_name: name.to_string(),
        })),
        http_filters: vec![to_http_filter(ROUTER_FILTER, pack_any(Router::default()))],
        ..Default::default()
    };
    Listener {
        name: name.to_string(),
        api_listener: Some(ApiListener {
            api_listener: Some(pack_any(hcm)),
        }),
        ..Default::default()
    }
}

fn to_route_configuration(target: &Target<'_>) -> RouteConfiguration {
    let name = target.name();
    let domains = vec![target.host.clone(), name.clone()];
    let virtual_host = match target.virtual_service {
        Some(virtual_service) => {
            let plan = match target.merged.as_slice() {
                [] => VirtualHostPlan::in_order(virtual_service, domains),
                routes => VirtualHostPlan::merged(routes, name.clone(), domains),
            };
            let mut vhost = to_virtual_host(&plan, 0);
            vhost.routes.iter_mut().for_each(to_grpc_route);
            vhost
        }
        None => VirtualHost {
            name: name.clone(),
            domains,
            routes: vec![Route {
                r#match: Some(match_all()),
                action: Some(Action::Route(EnvoyRouteAction {
                    cluster_specifier: Some(ClusterSpecifier::Cluster(cluster_name(
                        &default_destination(target),
                    ))),
                    ..Default::default()
                })),
                ..Default::default()
            }],
            ..Default::default()
        },
    };
    RouteConfiguration {
        name,
        virtual_hosts: vec![virtual_host],
        ..Default::default()
    }
}

/// No per-filter configs (the router is gRPC's only filter here), and a non-zero
/// timeout as the calls' maximum duration.
fn to_grpc_route(route: &mut Route) {
    route.typed_per_filter_config.clear();
    let Some(Action::Route(action)) = &mut route.action else {
        return;
    };
    if let Some(ClusterSpecifier::WeightedClusters(weighted)) = &mut action.cluster_specifier {
        for cluster in &mut weighted.clusters {
            cluster.typed_per_filter_config.clear();
        }
    }
    let timeout = action.timeout.filter(|t| t.seconds > 0 || t.nanos > 0);
    action.max_stream_duration = timeout.map(|t| MaxStreamDuration {
        max_stream_duration: Some(t),
        ..Default::default()
    });
}
