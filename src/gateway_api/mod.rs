//! Kubernetes Gateway API (`gateway.networking.k8s.io/v1`, also `v1beta1`: [`crate::ingest::GATEWAY_API`]) `Gateway`
//! and `HTTPRoute` documents into the same validated model Istio documents become, so
//! the translation serves both unchanged.
//!
//! - A `Gateway` becomes a [`model::Gateway`](crate::model::Gateway) keyed
//!   [`Kind::KubernetesGateway`]: one server per listener (HTTP only; `hostname`
//!   absent means `*`). It selects the proxies whose node-metadata labels carry
//!   `gateway.networking.k8s.io/gateway-name: <metadata.name>` ([`GATEWAY_NAME_LABEL`],
//!   the label Istio puts on the gateways it deploys for a Gateway API Gateway).
//! - An `HTTPRoute` becomes a [`model::VirtualService`](crate::model::VirtualService)
//!   keyed [`Kind::HttpRoute`]: parentRefs become its gateways (`namespace/name`),
//!   hostnames its hosts (absent means `*`), rules its HTTP routes in order.
//!   backendRefs name a Kubernetes Service of the route's namespace or a ServiceEntry
//!   host, and their relative weights are normalized to exactly 100 %
//!   ([`weights::normalize`]); a rule whose weights are all 0 (or that has no
//!   backendRefs and no redirect) answers 500, as the Gateway API requires.
//! - A `GRPCRoute` becomes one too, keyed [`Kind::GrpcRoute`]
//!   ([`grpc_route`]): its method matches are [`GrpcMethod`](crate::model::GrpcMethod)s,
//!   and what it cannot serve answers gRPC `UNAVAILABLE`.
//!
//! - A listener's `allowedRoutes.namespaces.from: Selector` admits the routes of the
//!   namespaces whose labels its selector matches: the labels of the cluster's
//!   Namespace objects under `--kubernetes` ([`NamespaceLabels`]), else only
//!   `kubernetes.io/metadata.name: <name>`, which Kubernetes puts on every namespace
//!   ([`namespace_labels`]).
//!
//! Reading happens per document ([`read_gateway`], [`read_route`]); attaching
//! routes to their parents and resolving backends needs every document and happens in
//! [`attach_routes`], before [`crate::resource_set`]'s cross-resource checks run on the
//! result. Nothing here knows Envoy or Istio's kinds; field walking and errors are
//! [`crate::ingest`]'s.

mod addresses;
mod attach;
mod backend_ref;
mod certificates;
mod filters;
mod gateway;
mod grpc_route;
mod http_route;
mod label_selector;
mod match_json;
mod matches;
mod reference_grant;
mod weights;

#[cfg(test)]
mod namespace_tests;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

pub(crate) use attach::attach_routes;

pub use match_json::match_json;

use crate::ingest::{Read, Report};
use crate::model::{Kind, Labels, ResourceKey};

/// The API group of the Gateway API kinds, as references name it.
const API_GROUP: &str = crate::ingest::GATEWAY_API.group;

/// The node-metadata label whose value selects the proxies of a Gateway: its name.
pub const GATEWAY_NAME_LABEL: &str = "gateway.networking.k8s.io/gateway-name";

/// The label Kubernetes puts on every namespace: its name.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// The labels of each namespace known (Kubernetes' Namespace objects), by name.
pub type NamespaceLabels = BTreeMap<String, Labels>;

/// The labels of `namespace`: its known ones, else only [`NAMESPACE_NAME_LABEL`] (all
/// a namespace has in file and REST mode, where there are no Namespace objects).
pub fn namespace_labels(known: &NamespaceLabels, namespace: &str) -> Labels {
    known.get(namespace).cloned().unwrap_or_else(|| {
        Labels::from([(NAMESPACE_NAME_LABEL.to_string(), namespace.to_string())])
    })
}

/// What routes need from the Gateways, and the routes themselves, until every
/// document is read.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    /// Listeners of each Gateway that read cleanly, by `namespace/name`.
    listeners: BTreeMap<String, Vec<gateway::Listener>>,
    /// `namespace/name` of Gateways with errors: routes to them report nothing more.
    broken_gateways: BTreeSet<String>,
    routes: Vec<http_route::Route>,
    /// ReferenceGrants that read cleanly.
    grants: Vec<reference_grant::Grant>,
}

/// `namespace/name`, as a VirtualService names its gateways.
fn gateway_ref(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

/// Reads a Gateway API Gateway's spec into `read` and its listeners into `pending`, or
/// records it as broken.
pub(crate) fn read_gateway(
    key: &ResourceKey,
    spec: &Value,
    r: &mut Report,
    read: &mut Read,
    pending: &mut Pending,
) {
    let name = gateway_ref(&key.namespace, &key.name);
    match gateway::try_gateway(key, spec, r).filter(|_| r.is_clean()) {
        Some((gateway, listeners, addresses)) => {
            pending.listeners.insert(name, listeners);
            if !addresses.is_empty() {
                read.gateway_status.addresses.insert(key.clone(), addresses);
            }
            read.gateways.push(gateway);
        }
        None => {
            pending.broken_gateways.insert(name.clone());
            read.broken.gateways.insert(name);
        }
    }
}

/// Reads an HTTPRoute's or a GRPCRoute's spec into `pending` (attached later), or
/// records it as broken.
pub(crate) fn read_route(
    key: &ResourceKey,
    spec: &Value,
    created: Option<String>,
    r: &mut Report,
    read: &mut Read,
    pending: &mut Pending,
) {
    let route = match key.kind {
        Kind::GrpcRoute => grpc_route::try_grpc_route(key, spec, created, r),
        _ => http_route::try_http_route(key, spec, created, r),
    };
    match route.filter(|_| r.is_clean()) {
        Some(route) => pending.routes.push(route),
        None => {
            read.broken.virtual_services.insert(key.clone());
        }
    }
}

/// Reads a ReferenceGrant's spec into `pending`. A broken grant allows nothing.
pub(crate) fn read_reference_grant(
    key: &ResourceKey,
    spec: &Value,
    r: &mut Report,
    pending: &mut Pending,
) {
    if let Some(grant) = reference_grant::try_reference_grant(key, spec, r).filter(|_| r.is_clean())
    {
        pending.grants.push(grant);
    }
}
