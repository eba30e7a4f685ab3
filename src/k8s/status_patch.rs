//! The status each watched object gets written: the Gateway API's own conditions for
//! Gateways, HTTPRoutes and GRPCRoutes (from the set's
//! [`GatewayStatus`](crate::model::GatewayStatus) and the cluster's fronting
//! Services), none for a Secret, the `Accepted` condition for the rest.

use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

use super::gateway_api_status;
use super::judge::ObjectId;
use super::status::{to_patch, Verdict};
use super::Cluster;

/// The status patch for one object: the Gateway API's own for its Gateways,
/// HTTPRoutes and GRPCRoutes, the `Accepted` condition for the rest.
pub(super) fn status_patch(
    id: &ObjectId,
    value: &Value,
    verdict: &Verdict,
    errors: Option<&[crate::ingest::FieldError]>,
    (config, cluster): (&crate::model::Config, &Cluster),
    now: Timestamp,
) -> Option<Value> {
    use crate::model::{Kind, NotTrue, ResourceKey};
    let gateway_api = id.api_version.starts_with("gateway.networking.k8s.io/");
    match (gateway_api, id.kind.as_str()) {
        // A Secret has no status: a problem with it shows on the Gateway naming it.
        (false, "Secret") => None,
        (true, route @ ("HTTPRoute" | "GRPCRoute")) => {
            let kind = match route {
                "HTTPRoute" => Kind::HttpRoute,
                _ => Kind::GrpcRoute,
            };
            let key = ResourceKey::new(kind, id.namespace.clone(), id.name.clone());
            let count = value["spec"]["parentRefs"].as_array().map_or(0, Vec::len);
            let parents = config.gateway_status.parents.get(&key).map(Vec::as_slice);
            let unresolved: Vec<_> = config
                .unresolved
                .iter()
                .filter(|u| u.resource == key)
                .collect();
            let states = gateway_api_status::route_parents(count, parents, &unresolved, errors);
            gateway_api_status::route_patch(value, &states, now)
        }
        (true, "Gateway") => {
            let key = ResourceKey::new(
                Kind::KubernetesGateway,
                id.namespace.clone(),
                id.name.clone(),
            );
            // A rejected Gateway says the reason of its first error that has one
            // (`UnsupportedAddress`), else `Invalid`.
            let reason = errors.into_iter().flatten().find_map(|e| e.reason);
            let outcome = match verdict.accepted {
                true => Ok(()),
                false => Err(NotTrue {
                    reason: reason.unwrap_or("Invalid"),
                    message: verdict.message.clone(),
                }),
            };
            let listeners = config.gateway_status.listeners.get(&key);
            let listeners = listeners.map(Vec::as_slice).unwrap_or_default();
            let fronts = (id.namespace.clone(), id.name.clone());
            let addresses = match verdict.accepted {
                true => config
                    .gateway_status
                    .addresses
                    .get(&key)
                    .or_else(|| cluster.gateway_addresses.get(&fronts))
                    .map(Vec::as_slice)
                    .unwrap_or_default(),
                false => &[],
            };
            let gateway = gateway_api_status::Gateway {
                outcome: &outcome,
                listeners,
                addresses,
            };
            gateway_api_status::gateway_patch(value, &gateway, now)
        }
        _ => to_patch(value, verdict, now),
    }
}
