//! The security HTTP filters of one proxy class: `jwt_authn` ([`super::jwt`]) for
//! the RequestAuthentications in the class, then RBAC ([`super::rbac`]) for its
//! AuthorizationPolicies; and the clusters those filters fetch keys through. Every
//! listener of the class gets the same filters, ahead of fault, CORS and the router.

use std::collections::{BTreeMap, BTreeSet};

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::HttpFilter;

use super::jwt::{to_jwt_authn, JWT_AUTHN_FILTER};
use super::listener::to_http_filter;
use super::rbac::{to_rbac_filters, RBAC_FILTER};
use crate::model::{Config, ResourceKey};

#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Security {
    /// In the order the listener runs them.
    pub filters: Vec<HttpFilter>,
    /// The clusters the filters use, by name (JWKS fetches).
    pub clusters: BTreeMap<String, Cluster>,
}

/// The filters for the policies in `class` (a proxy class: the Gateways and the
/// policies that select its proxies, see [`super::select_gateways`]).
pub(super) fn for_class(config: &Config, class: &BTreeSet<ResourceKey>) -> Security {
    let authentications: Vec<_> = config
        .request_authentications
        .iter()
        .filter(|p| class.contains(&p.key))
        .collect();
    let authorizations: Vec<_> = config
        .authorization_policies
        .iter()
        .filter(|p| class.contains(&p.key))
        .collect();
    let mut out = Security::default();
    if let Some((filter, clusters)) = to_jwt_authn(&authentications) {
        out.filters.push(to_http_filter(JWT_AUTHN_FILTER, filter));
        out.clusters = clusters;
    }
    let mut issuers: Vec<&str> = authentications
        .iter()
        .flat_map(|p| &p.jwt_rules)
        .map(|r| r.issuer.as_str())
        .collect();
    issuers.sort_unstable();
    issuers.dedup();
    for rbac in to_rbac_filters(&authorizations, &issuers) {
        out.filters.push(to_http_filter(RBAC_FILTER, rbac));
    }
    out
}
