//! Pure, deterministic translation of the model into Envoy v3 resources.
//!
//! One proxy class (the set of Gateways that select a proxy) gets one [`Resources`]:
//! listeners ([`listener`]), their route configurations ([`route`], with matchers in
//! [`route_match`] and per-filter configs in [`route_filter`]), the clusters those
//! routes name ([`cluster`]) and, for EDS clusters, their endpoints ([`endpoint`]).
//! [`select`] decides which listeners a class gets and which virtual services each
//! serves. The RequestAuthentications and AuthorizationPolicies of a class become
//! JWT and RBAC filters on its listeners ([`security`], [`jwt`], [`rbac`]).
//! Proxyless gRPC clients are one more class, with API listeners instead of
//! sockets ([`grpc`]). Nothing here does I/O, reads the clock or iterates a `HashMap`.
//!
//! prost encodes protobuf maps (`typed_per_filter_config`, ...) in `HashMap` iteration
//! order, so every map filled here holds one entry, and encoding the same resources
//! gives the same bytes. The one exception: a redirect or fault-only route with both
//! a fault and a CORS policy carries two entries, whose encoded order may vary. Maps
//! that hold several entries inside a typed config (JWT providers, RBAC policies) are
//! written in key order ([`packed`]).

mod chains;
mod cluster;
mod endpoint;
pub mod grpc;
mod jwt;
mod listener;
mod packed;
mod rbac;
mod reach;
mod route;
mod route_filter;
mod route_match;
mod security;
mod select;
mod tls;

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod gateway_api_tests;
#[cfg(test)]
mod golden_tests;
#[cfg(test)]
mod grpc_route_tests;
#[cfg(test)]
mod render;
#[cfg(test)]
mod security_tests;

use std::collections::{BTreeMap, BTreeSet};

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::core::v3::{
    config_source::ConfigSourceSpecifier, AggregatedConfigSource, ApiVersion, ConfigSource,
};
use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use envoy_types::pb::envoy::config::listener::v3::Listener;
use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::Secret;
use envoy_types::pb::envoy::r#type::v3::{fractional_percent::DenominatorType, FractionalPercent};
use envoy_types::pb::google::protobuf::Duration;

use crate::model::{Config, Destination, Labels, ResourceKey};

pub use reach::reaches;
pub use select::select_gateways;

/// Everything one proxy class is served. BTreeMaps keyed by resource name, so output
/// is deterministic.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resources {
    pub clusters: BTreeMap<String, Cluster>,
    pub endpoints: BTreeMap<String, ClusterLoadAssignment>,
    pub listeners: BTreeMap<String, Listener>,
    pub routes: BTreeMap<String, RouteConfiguration>,
    /// SDS secrets, by the names the listeners give them.
    pub secrets: BTreeMap<String, Secret>,
}

/// Everything a proxy selected by exactly `gateways` is served (empty: a proxy no
/// Gateway selects, which gets the default listener serving the `mesh` virtual
/// services).
///
/// Pure and deterministic: the same input always gives equal output.
pub fn translate(config: &Config, gateways: &BTreeSet<ResourceKey>) -> Resources {
    translate_routes(config, gateways).into_resources(config, translate_destination)
}

/// The listener half of a class's translation: its listeners and route configurations,
/// and every destination a cluster is needed for (the routed ones and their sibling
/// subsets).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Routed {
    pub listeners: BTreeMap<String, Listener>,
    pub routes: BTreeMap<String, RouteConfiguration>,
    pub destinations: BTreeSet<Destination>,
    /// The SDS names the listeners use.
    pub secrets: BTreeSet<String>,
    /// Clusters the listeners' filters use themselves (JWKS fetches), by name.
    pub clusters: BTreeMap<String, Cluster>,
}

impl Routed {
    /// These listeners and route configurations, with a cluster (and, for an EDS
    /// cluster, its assignment) per destination, as `upstream` translates them.
    pub fn into_resources(
        self,
        config: &Config,
        upstream: impl Fn(&Config, &Destination) -> (Cluster, Option<ClusterLoadAssignment>),
    ) -> Resources {
        let mut out = Resources {
            listeners: self.listeners,
            routes: self.routes,
            secrets: tls::to_secrets(config, &self.secrets),
            clusters: self.clusters,
            ..Resources::default()
        };
        for destination in &self.destinations {
            let (cluster, cla) = upstream(config, destination);
            if let Some(cla) = cla {
                out.endpoints.insert(cla.cluster_name.clone(), cla);
            }
            out.clusters.insert(cluster.name.clone(), cluster);
        }
        out
    }
}

pub fn translate_routes(config: &Config, gateways: &BTreeSet<ResourceKey>) -> Routed {
    let plans = select::plan_listeners(config, gateways);
    let security = security::for_class(config, gateways);
    let mut out = Routed {
        clusters: security.clusters,
        ..Routed::default()
    };
    let mut destinations = BTreeSet::new();
    for plan in &plans {
        let routes = route::to_route_configuration(plan);
        let features = route::FiltersUsed {
            security: security.filters.clone(),
            ..route::filters_used(plan)
        };
        let listener = listener::to_listener(plan.port, &plan.chains, features);
        let tls = plan.chains.iter().filter_map(|c| c.tls);
        out.secrets.extend(tls.flat_map(tls::secret_names));
        for vhost in &plan.virtual_hosts {
            destinations.extend(vhost.http_routes().flat_map(select::route_destinations));
        }
        out.routes.insert(routes.name.clone(), routes);
        out.listeners.insert(listener.name.clone(), listener);
    }
    out.destinations = with_sibling_subsets(config, destinations);
    out
}

/// The cluster half, one destination at a time: its cluster, and its endpoints when the
/// cluster takes them from EDS.
pub fn translate_destination(
    config: &Config,
    destination: &Destination,
) -> (Cluster, Option<ClusterLoadAssignment>) {
    let cluster = cluster::to_cluster(config, destination);
    let cla = cluster::is_eds(&cluster)
        .then(|| endpoint::to_cluster_load_assignment(config, destination));
    (cluster, cla)
}

/// The routed destinations plus every other subset their hosts' destination rules
/// define, on the same port, as Istio does: a blue-green switch or a canary step then
/// only changes a route, never adds a cluster that is still warming or removes one a
/// route in flight still names.
fn with_sibling_subsets(config: &Config, routed: BTreeSet<Destination>) -> BTreeSet<Destination> {
    let mut all = routed.clone();
    for d in &routed {
        let rules = config.destination_rules.iter().filter(|r| r.host == d.host);
        for subset in rules.flat_map(|r| r.subsets.iter()) {
            all.insert(Destination {
                subset: Some(subset.name.clone()),
                ..d.clone()
            });
        }
    }
    all
}

/// The cluster the share of an unresolved backend is sent to. It is never defined, and a
/// route naming it says "cluster not found" is a 500, so those requests answer 500 (the
/// Gateway API's rule for invalid backendRefs) while the rest of the rule is served.
/// Make-before-break waits for no such cluster (`snapshot::uses`).
pub const UNRESOLVED_CLUSTER: &str = "coalmine|unresolved-backend";

/// The Envoy cluster name for a destination: Istio's `outbound|PORT|SUBSET|HOST`
/// (SUBSET empty when none).
pub fn cluster_name(d: &Destination) -> String {
    format!(
        "outbound|{}|{}|{}",
        d.port,
        d.subset.as_deref().unwrap_or(""),
        d.host
    )
}

/// The subset labels a destination selects: those of the subset of that name in the
/// destination rule for its host; empty (every endpoint) without a subset.
fn subset_labels(config: &Config, d: &Destination) -> Labels {
    let Some(name) = &d.subset else {
        return Labels::new();
    };
    config
        .destination_rules
        .iter()
        .filter(|rule| rule.host == d.host)
        .find_map(|rule| rule.subset(name))
        .map(|subset| subset.labels.clone())
        .unwrap_or_default()
}

/// `{ ads: {}, resource_api_version: V3 }`: everything comes over the one ADS stream.
fn ads_config_source() -> ConfigSource {
    ConfigSource {
        resource_api_version: ApiVersion::V3 as i32,
        config_source_specifier: Some(ConfigSourceSpecifier::Ads(AggregatedConfigSource {})),
        ..Default::default()
    }
}

fn to_duration(d: std::time::Duration) -> Duration {
    Duration {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
    }
}

/// A 0-100 share as millionths, so that fractional percents (0.01 %) stay exact;
/// `None` means all.
fn to_fractional_percent(percent: Option<f64>) -> FractionalPercent {
    let share = percent.unwrap_or(100.0).clamp(0.0, 100.0);
    FractionalPercent {
        numerator: (share * 10_000.0).round() as u32,
        denominator: DenominatorType::Million as i32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_names_follow_istio() {
        let d = Destination {
            host: "petstore".into(),
            subset: Some("v2".into()),
            port: 8080,
        };
        assert_eq!(cluster_name(&d), "outbound|8080|v2|petstore");
        let d = Destination { subset: None, ..d };
        assert_eq!(cluster_name(&d), "outbound|8080||petstore");
    }

    #[test]
    fn fractional_percents_are_millionths() {
        assert_eq!(to_fractional_percent(Some(0.01)).numerator, 100);
        assert_eq!(to_fractional_percent(None).numerator, 1_000_000);
        assert_eq!(to_fractional_percent(Some(12.5)).numerator, 125_000);
    }
}
