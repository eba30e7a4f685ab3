//! Attaching HTTPRoutes to their parent Gateways and resolving their backends, once
//! every document is read; the Istio cross-resource checks then run on the result.
//!
//! A parentRef attaches the route to the Gateway's listeners it picks (all, or those of
//! its `sectionName` / `port`, among those whose `allowedRoutes` admit the route's
//! namespace). The model binds a route to a whole Gateway, so the route's hosts are
//! narrowed to the hostnames of the picked listeners, and picking listeners on only
//! some of the Gateway's ports is an error. A Gateway API Gateway with the namespace and
//! name of an Istio Gateway is an error too: routes name gateways by `namespace/name`.

use std::collections::{BTreeMap, BTreeSet};

use super::gateway::Listener;
use super::http_route::{ParentRef, Route};
use super::{gateway_ref, Pending};
use crate::ingest::{FieldError, Read, Report};
use crate::model::host_candidates;
use crate::model::{Destination, Kind, RouteAction, Service};

/// Attaches every HTTPRoute read into `read.virtual_services`, reporting to `errors`.
pub(crate) fn attach_routes(
    read: &mut Read,
    mut pending: Pending,
    discovered: &BTreeMap<String, Service>,
    errors: &mut Vec<FieldError>,
) {
    let istio: BTreeSet<String> = read
        .gateways
        .iter()
        .filter(|g| g.key.kind == Kind::Gateway)
        .map(|g| gateway_ref(&g.key.namespace, &g.key.name))
        .collect();
    read.gateways.retain(|g| {
        let name = gateway_ref(&g.key.namespace, &g.key.name);
        if g.key.kind != Kind::KubernetesGateway || !istio.contains(&name) {
            return true;
        }
        errors.push(FieldError {
            resource: g.key.to_string(),
            field: "metadata.name".into(),
            message: format!(
                "Gateway {name} (networking.istio.io) has the same namespace and name; \
                 routes could not tell them apart"
            ),
        });
        pending.listeners.remove(&name);
        pending.broken_gateways.insert(name);
        false
    });
    let mut services: BTreeMap<&str, &Service> =
        discovered.iter().map(|(h, s)| (h.as_str(), s)).collect();
    for (_, entry) in &read.service_entries {
        services.extend(entry.iter().map(|(_, s)| (s.host.as_str(), s)));
    }
    for mut route in pending.routes {
        let mut r = Report::new(route.vs.key.to_string());
        let broken_parent = attach(
            &mut route,
            &pending.listeners,
            &pending.broken_gateways,
            &mut r,
        );
        resolve_backends(&mut route, &services, &read.broken.hosts, &mut r);
        if r.is_clean() && !broken_parent {
            read.virtual_services.push(route.vs);
        } else {
            read.broken.virtual_services.insert(route.vs.key.clone());
        }
        errors.extend(r.errors);
    }
}

/// Fills in the route's gateways and narrows its hosts; true when a parent is a
/// Gateway with errors of its own (nothing more is reported about it).
fn attach(
    route: &mut Route,
    listeners: &BTreeMap<String, Vec<Listener>>,
    broken: &BTreeSet<String>,
    r: &mut Report,
) -> bool {
    let namespace = route.vs.key.namespace.clone();
    let mut hosts: Vec<String> = Vec::new();
    let mut gateways: Vec<String> = Vec::new();
    let mut broken_parent = false;
    for (i, parent) in route.parents.iter().enumerate() {
        let path = format!("spec.parentRefs[{i}]");
        let name = gateway_ref(&parent.namespace, &parent.name);
        if broken.contains(&name) {
            broken_parent = true;
            continue;
        }
        let Some(all) = listeners.get(&name) else {
            let message = format!("{} {name} is not defined", Kind::KubernetesGateway);
            r.push(format!("{path}.name"), message);
            continue;
        };
        let Some(picked) = pick(parent, all, &namespace, &path, r) else {
            continue;
        };
        let mut narrowed: Vec<String> = Vec::new();
        for listener in &picked {
            for host in &route.vs.hosts {
                if let Some(host) = intersect(&listener.hostname, host) {
                    if !narrowed.contains(&host) {
                        narrowed.push(host);
                    }
                }
            }
        }
        if narrowed.is_empty() {
            let message = format!("no hostname of the route matches a listener hostname of {name}");
            r.push(path, message);
            continue;
        }
        hosts.extend(
            narrowed
                .into_iter()
                .filter(|h| !hosts.contains(h))
                .collect::<Vec<_>>(),
        );
        if !gateways.contains(&name) {
            gateways.push(name);
        }
    }
    route.vs.hosts = hosts;
    route.vs.gateways = gateways;
    broken_parent
}

/// The listeners of `all` a parentRef attaches to, or why it attaches to none.
fn pick<'l>(
    parent: &ParentRef,
    all: &'l [Listener],
    namespace: &str,
    path: &str,
    r: &mut Report,
) -> Option<Vec<&'l Listener>> {
    let mut picked: Vec<&Listener> = all.iter().collect();
    if let Some(section) = &parent.section {
        picked.retain(|l| &l.name == section);
        if picked.is_empty() {
            let message = format!("the Gateway has no listener named {section:?}");
            r.push(format!("{path}.sectionName"), message);
            return None;
        }
    }
    if let Some(port) = parent.port {
        picked.retain(|l| l.port == port);
        if picked.is_empty() {
            let message = format!("the Gateway has no listener on port {port} here");
            r.push(format!("{path}.port"), message);
            return None;
        }
    }
    picked.retain(|l| l.all_namespaces || parent.namespace == namespace);
    if picked.is_empty() {
        let message = format!(
            "the listeners only admit routes of namespace {:?} (allowedRoutes.namespaces.from: \
             Same)",
            parent.namespace
        );
        r.push(path, message);
        return None;
    }
    let ports =
        |ls: &mut dyn Iterator<Item = &Listener>| ls.map(|l| l.port).collect::<BTreeSet<_>>();
    let (every, mine) = (ports(&mut all.iter()), ports(&mut picked.iter().copied()));
    if every != mine {
        let message = format!(
            "attaching to listeners on only some of the Gateway's ports ({mine:?} of {every:?}) \
             is not supported: coalmine binds a route to every port of its Gateway"
        );
        r.push(path, message);
        return None;
    }
    Some(picked)
}

/// The narrower of a listener hostname and a route hostname when one covers the other.
fn intersect(listener: &str, route: &str) -> Option<String> {
    let (a, b) = (listener.to_ascii_lowercase(), route.to_ascii_lowercase());
    if covers(&a, &b) {
        Some(b)
    } else if covers(&b, &a) {
        Some(a)
    } else {
        None
    }
}

/// `*` covers everything, `*.example.com` every name below example.com.
fn covers(wide: &str, narrow: &str) -> bool {
    wide == "*"
        || wide == narrow
        || wide
            .strip_prefix('*')
            .is_some_and(|suffix| narrow.len() > suffix.len() && narrow.ends_with(suffix))
}

/// Resolves every backend to the full host of a known service and one of its ports.
fn resolve_backends(
    route: &mut Route,
    services: &BTreeMap<&str, &Service>,
    broken_hosts: &BTreeSet<String>,
    r: &mut Report,
) {
    let namespace = route.vs.key.namespace.clone();
    for ((rule, slot), path) in &route.backend_paths {
        let Some(http) = route.vs.http.get_mut(*rule) else {
            continue;
        };
        let destination = match (slot, &mut http.action, &mut http.mirror) {
            (None, _, Some(mirror)) => &mut mirror.destination,
            (Some(j), RouteAction::Route(destinations), _) => match destinations.get_mut(*j) {
                Some(weighted) => &mut weighted.destination,
                None => continue,
            },
            _ => continue,
        };
        resolve(destination, path, &namespace, services, broken_hosts, r);
    }
}

fn resolve(
    d: &mut Destination,
    path: &str,
    namespace: &str,
    services: &BTreeMap<&str, &Service>,
    broken_hosts: &BTreeSet<String>,
    r: &mut Report,
) {
    let candidates = host_candidates(&d.host, namespace);
    let Some(service) = candidates.iter().find_map(|h| services.get(h.as_str())) else {
        if !candidates.iter().any(|h| broken_hosts.contains(h)) {
            let message = format!(
                "backend {:?} is not a Service of namespace {namespace:?} nor a ServiceEntry host",
                d.host
            );
            r.push(format!("{path}.name"), message);
        }
        return;
    };
    d.host = service.host.clone();
    let ports: Vec<String> = service.ports.iter().map(|p| p.number.to_string()).collect();
    if d.port != 0 {
        if service.port(d.port).is_none() {
            let message = format!(
                "port {} is not a port of {:?} (ports: {})",
                d.port,
                d.host,
                ports.join(", ")
            );
            r.push(format!("{path}.port"), message);
        }
        return;
    }
    match service.ports.as_slice() {
        [only] => d.port = only.number,
        _ => {
            let message = format!("required: {:?} has ports {}", d.host, ports.join(", "));
            r.push(format!("{path}.port"), message);
        }
    }
}
