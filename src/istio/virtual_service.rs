//! `VirtualService` specs into [`model::VirtualService`](crate::model::VirtualService): hosts, gateways, HTTP routes
//! and weighted destinations.
//!
//! Destinations come out unresolved: the host as written and port 0 when none was
//! given. [`crate::resource_set`] resolves them against the known services.

use serde_json::Value;

use super::http_policy::{
    try_cors, try_fault, try_headers, try_redirect, try_retries, try_rewrite,
};
use crate::ingest::{check_host, try_destination, try_matches, Fields, Obj, Report};
use crate::model::{
    HttpRoute, Mirror, ResourceKey, RouteAction, VirtualService, Weight, WeightedDestination,
    MESH_GATEWAY,
};

const SPEC: Fields = Fields {
    known: &["hosts", "gateways", "http"],
    unsupported: &["tcp", "tls", "exportTo"],
};
const HTTP: Fields = Fields {
    known: &[
        "name",
        "match",
        "route",
        "redirect",
        "rewrite",
        "timeout",
        "retries",
        "fault",
        "mirror",
        "mirrorPercentage",
        "corsPolicy",
        "headers",
    ],
    unsupported: &[
        "delegate",
        "directResponse",
        "mirrors",
        "mirrorPercent",
        "mirror_percent",
    ],
};
const ROUTE_DESTINATION: Fields = Fields::known(&["destination", "weight", "headers"]);

/// Reads a VirtualService spec; every problem goes to `r`.
pub(crate) fn try_virtual_service(
    key: &ResourceKey,
    spec: &Value,
    r: &mut Report,
) -> Option<VirtualService> {
    let spec = Obj::new(r, "spec", spec, SPEC)?;
    let hosts = spec.strings(r, "hosts");
    if hosts.is_empty() {
        r.push(spec.at("hosts"), "at least one host is required");
    }
    for (i, host) in hosts.iter().enumerate() {
        if let Err(message) = check_host(host) {
            r.push(format!("spec.hosts[{i}]"), message);
        }
    }
    let gateways = try_gateways(spec, &key.namespace, r);
    let routes = spec.list(r, "http");
    if routes.is_empty() && !spec.has("tcp") && !spec.has("tls") {
        r.push(spec.at("http"), "at least one route is required");
    }
    let http = routes
        .into_iter()
        .filter_map(|(path, value)| try_http_route(&path, value, r))
        .collect();
    Some(VirtualService {
        key: key.clone(),
        hosts,
        gateways,
        http,
        listeners: Vec::new(),
        created: None,
    })
}

/// Gateways as `namespace/name` or `mesh`; a bare name takes the VirtualService's
/// namespace, and an omitted list means `mesh`.
fn try_gateways(spec: Obj<'_, '_>, namespace: &str, r: &mut Report) -> Vec<String> {
    let listed = spec.strings(r, "gateways");
    if listed.is_empty() {
        return vec![MESH_GATEWAY.to_string()];
    }
    let mut out = Vec::new();
    for (i, gateway) in listed.into_iter().enumerate() {
        let parts: Vec<&str> = gateway.split('/').collect();
        match parts.as_slice() {
            [MESH_GATEWAY] => out.push(gateway),
            [name] => out.push(format!("{namespace}/{name}")),
            [ns, name] if !ns.is_empty() && !name.is_empty() => {
                let ns = if *ns == "." { namespace } else { ns };
                out.push(format!("{ns}/{name}"));
            }
            _ => r.push(
                format!("{}[{i}]", spec.at("gateways")),
                format!("{gateway:?} is not a gateway (\"name\", \"namespace/name\" or \"mesh\")"),
            ),
        }
    }
    out
}

fn try_http_route(path: &str, value: &Value, r: &mut Report) -> Option<HttpRoute> {
    let route = Obj::new(r, path, value, HTTP)?;
    let fault = try_fault(route, r);
    let action = try_action(route, fault.as_ref().is_some_and(|f| f.abort.is_some()), r);
    let mirror = route
        .get("mirror")
        .and_then(|value| try_destination(&route.at("mirror"), value, r))
        .map(|destination| Mirror {
            destination,
            percent: route.percentage(r, "mirrorPercentage"),
        });
    if route.has("mirrorPercentage") && !route.has("mirror") {
        r.push(route.at("mirrorPercentage"), "requires mirror");
    }
    let rewrite = try_rewrite(route, r);
    if rewrite.is_some() && route.has("redirect") {
        r.push(
            route.at("rewrite"),
            "rewrite and redirect are mutually exclusive",
        );
    }
    let name = route.string(r, "name");
    let matches = try_matches(route, r);
    let timeout = route.duration(r, "timeout");
    let retries = try_retries(route, r);
    let cors = try_cors(route, r);
    let headers = try_headers(route, r);
    Some(HttpRoute {
        name,
        matches,
        action: action?,
        rewrite,
        timeout,
        retries,
        fault,
        mirror,
        cors,
        headers,
        unresolved: Weight::ZERO,
        grpc: false,
    })
}

/// Exactly one of `route` or `redirect`, or neither when a fault aborts every request.
fn try_action(route: Obj<'_, '_>, aborts: bool, r: &mut Report) -> Option<RouteAction> {
    let destinations = route.list(r, "route");
    let redirect = route.get("redirect");
    match (destinations.is_empty(), redirect) {
        (false, Some(_)) => {
            r.push(
                route.at("redirect"),
                "route and redirect are mutually exclusive",
            );
            None
        }
        (false, None) => {
            try_destinations(&route.at("route"), destinations, r).map(RouteAction::Route)
        }
        (true, Some(redirect)) => {
            try_redirect(&route.at("redirect"), redirect, r).map(RouteAction::Redirect)
        }
        (true, None) if aborts => Some(RouteAction::None),
        (true, None) => {
            r.push(route.path, "one of route or redirect is required");
            None
        }
    }
}

/// Weighted destinations adding up to 100 %: a lone destination without a weight (or
/// with 0, as Istio cannot tell them apart) gets 100; among several, an omitted weight
/// counts 0.
fn try_destinations(
    path: &str,
    items: Vec<(String, &Value)>,
    r: &mut Report,
) -> Option<Vec<WeightedDestination>> {
    let lone = items.len() == 1;
    let mut out = Vec::new();
    let mut clean = true;
    for (item_path, value) in items {
        let Some(item) = Obj::new(r, &item_path, value, ROUTE_DESTINATION) else {
            clean = false;
            continue;
        };
        let destination = match item.get("destination") {
            Some(value) => try_destination(&item.at("destination"), value, r),
            None => {
                r.push(item.at("destination"), "required");
                None
            }
        };
        let weight = try_weight(item, r);
        let headers = try_headers(item, r);
        match (destination, weight) {
            (Some(destination), Some(weight)) => out.push(WeightedDestination {
                destination,
                weight: if lone && weight == Weight::ZERO {
                    Weight::FULL
                } else {
                    weight
                },
                headers,
            }),
            _ => clean = false,
        }
    }
    if !clean {
        return None;
    }
    let total: u64 = out.iter().map(|d| u64::from(d.weight.units())).sum();
    if total != u64::from(Weight::FULL.units()) {
        let percent = total as f64 / f64::from(Weight::PER_PERCENT);
        r.push(path, format!("weights add up to {percent}, must be 100"));
        return None;
    }
    Some(out)
}

/// A weight in percent, 0 to 100 with at most four decimals; omitted is 0.
fn try_weight(item: Obj<'_, '_>, r: &mut Report) -> Option<Weight> {
    let Some(percent) = item.number(r, "weight") else {
        return (!item.has("weight")).then_some(Weight::ZERO);
    };
    let weight = Weight::from_percent(percent);
    if weight.is_none() {
        let message = if (0.0..=100.0).contains(&percent) {
            "must have at most 4 decimals"
        } else {
            "must be between 0 and 100"
        };
        r.push(item.at("weight"), message);
    }
    weight
}
