//! Attaching HTTPRoutes and GRPCRoutes to their parent Gateways and resolving their backends, once
//! every document is read; `resource_set`'s cross-resource checks then run on the result.
//!
//! A parentRef attaches the route to the Gateway's listeners it picks (all, or those of
//! its `sectionName` / `port`, among those whose `allowedRoutes` admit the route's
//! namespace, by name or by its labels). Each picked listener whose hostname meets one of the route's becomes an
//! [`AttachedListener`] with the route's hostnames on it, so a route on
//! `*.example.com` never serves the names of a `*.foo.example.com` listener beside it.
//! A Gateway API Gateway with the namespace and name of an Istio Gateway is an error:
//! routes name gateways by `namespace/name`.
//!
//! A backend that cannot be resolved (no such Service, an unsupported kind, another
//! namespace without a ReferenceGrant) does not reject the route: its share of the
//! rule's requests answers 500 and it is reported as an [`UnresolvedRef`].

use std::collections::{BTreeMap, BTreeSet};

use super::backend_ref::Unresolved;
use super::certificates;
use super::gateway::Listener;
use super::http_route::{abort_500, BackendSlot, ParentRef, Route};
use super::reference_grant::{permitted, Grant, Target};
use super::{gateway_ref, namespace_labels, NamespaceLabels, Pending, API_GROUP};
use crate::ingest::{FieldError, Read, Report};
use crate::model::{
    host_candidates, AttachedListener, Destination, HttpRoute, Kind, Labels, ListenerStatus,
    NotTrue, ResourceKey, RouteAction, Service, UnresolvedRef, Weight, MESH_GATEWAY,
};

/// Attaches every HTTPRoute read into `read.virtual_services`, reporting to `errors`.
/// `namespaces` holds the labels that `from: Selector` listeners match.
pub(crate) fn attach_routes(
    read: &mut Read,
    mut pending: Pending,
    discovered: &BTreeMap<String, Service>,
    namespaces: &NamespaceLabels,
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
            reason: None,
        });
        pending.listeners.remove(&name);
        pending.broken_gateways.insert(name);
        false
    });
    certificates::resolve_certificates(read, &mut pending.listeners, &pending.grants);
    let mut services: BTreeMap<&str, &Service> =
        discovered.iter().map(|(h, s)| (h.as_str(), s)).collect();
    for (_, entry) in &read.service_entries {
        services.extend(entry.iter().map(|(_, s)| (s.host.as_str(), s)));
    }
    let mut attached_routes: BTreeMap<(String, String), u32> = BTreeMap::new();
    for mut route in pending.routes {
        let mut r = Report::new(route.vs.key.to_string());
        let labels = namespace_labels(namespaces, &route.vs.key.namespace);
        let parents = Parents {
            listeners: &pending.listeners,
            broken: &pending.broken_gateways,
            services: &services,
        };
        let attached = attach(&mut route, &parents, &labels, &mut r);
        let known = Known {
            services: &services,
            broken_hosts: &read.broken.hosts,
            grants: &pending.grants,
        };
        let unresolved = resolve_backends(&mut route, &known, &mut r);
        if r.is_clean() && !attached.broken_parent {
            for listener in attached.listeners {
                *attached_routes.entry(listener).or_default() += 1;
            }
            read.unresolved.extend(unresolved);
            let key = route.vs.key.clone();
            read.gateway_status.parents.insert(key, attached.parents);
            read.virtual_services.push(route.vs);
        } else {
            read.broken.virtual_services.insert(route.vs.key.clone());
        }
        errors.extend(r.errors);
    }
    for (name, listeners) in &pending.listeners {
        let Some((namespace, gateway)) = name.split_once('/') else {
            continue;
        };
        let key = ResourceKey::new(Kind::KubernetesGateway, namespace, gateway);
        let statuses = listeners
            .iter()
            .map(|l| ListenerStatus {
                name: l.name.clone(),
                attached_routes: attached_routes
                    .get(&(name.clone(), l.name.clone()))
                    .copied()
                    .unwrap_or(0),
                kinds: l.kinds.clone(),
                problem: l.problem.clone(),
            })
            .collect();
        read.gateway_status.listeners.insert(key, statuses);
    }
}

/// How a route's parentRefs attached it.
struct Attached {
    /// Per parentRef: `None` when it attached, else why not.
    parents: Vec<Option<NotTrue>>,
    /// `(gateway, listener)` of every listener the route is attached to (hostnames
    /// aside, as `attachedRoutes` counts them).
    listeners: BTreeSet<(String, String)>,
    /// A parent is a Gateway with errors of its own: nothing more is reported.
    broken_parent: bool,
}

/// What parentRefs attach to.
struct Parents<'a> {
    /// Listeners of each Gateway that read cleanly, by `namespace/name`.
    listeners: &'a BTreeMap<String, Vec<Listener>>,
    /// Gateways with errors of their own.
    broken: &'a BTreeSet<String>,
    /// Every known service by host, for Service (mesh) parents.
    services: &'a BTreeMap<&'a str, &'a Service>,
}

/// Fills in the route's gateways and attached listeners and narrows its hosts. A
/// parentRef that attaches nowhere gets its reason; when none attaches the reasons are
/// errors of the route (it would serve nothing).
///
/// A Service parent (GAMMA) binds the route to the mesh for that Service's host,
/// whatever its hostnames: the proxies no Gateway selects and proxyless gRPC clients
/// dialling the Service route by it (on every port of the Service).
fn attach(route: &mut Route, parents: &Parents<'_>, labels: &Labels, r: &mut Report) -> Attached {
    let (listeners, broken) = (parents.listeners, parents.broken);
    let namespace = (route.vs.key.namespace.clone(), labels);
    let mut hosts: Vec<String> = Vec::new();
    let mut gateways: Vec<String> = Vec::new();
    let mut bindings: Vec<AttachedListener> = Vec::new();
    let mut out = Attached {
        parents: Vec::new(),
        listeners: BTreeSet::new(),
        broken_parent: false,
    };
    let mut failures: Vec<(String, NotTrue)> = Vec::new();
    let mut mesh_hosts: Vec<String> = Vec::new();
    for (i, parent) in route.parents.iter().enumerate() {
        let path = format!("spec.parentRefs[{i}]");
        if parent.service {
            match mesh_host(parent, parents.services) {
                Ok(host) => {
                    out.parents.push(None);
                    mesh_hosts.push(host);
                }
                Err(not_true) => {
                    failures.push((format!("{path}.name"), not_true.clone()));
                    out.parents.push(Some(not_true));
                }
            }
            continue;
        }
        let name = gateway_ref(&parent.namespace, &parent.name);
        if broken.contains(&name) {
            out.broken_parent = true;
            out.parents.push(None);
            continue;
        }
        let kind = route.vs.key.kind.as_str();
        let outcome = attach_one(parent, &name, listeners, &namespace, kind, &route.vs.hosts);
        match outcome {
            Err((field, not_true)) => {
                failures.push((format!("{path}{field}"), not_true.clone()));
                out.parents.push(Some(not_true));
            }
            Ok((picked, on_listeners)) => {
                out.parents.push(None);
                for listener in picked {
                    out.listeners.insert((name.clone(), listener));
                }
                for binding in on_listeners {
                    for host in &binding.hostnames {
                        if !hosts.contains(host) {
                            hosts.push(host.clone());
                        }
                    }
                    if !bindings.contains(&binding) {
                        bindings.push(binding);
                    }
                }
                if !gateways.contains(&name) {
                    gateways.push(name);
                }
            }
        }
    }
    if !mesh_hosts.is_empty() {
        gateways.push(MESH_GATEWAY.to_string());
        for host in mesh_hosts {
            if !hosts.contains(&host) {
                hosts.push(host);
            }
        }
    }
    if gateways.is_empty() && !out.broken_parent {
        for (field, not_true) in failures {
            r.push_reason(field, not_true.reason, not_true.message);
        }
    }
    route.vs.hosts = hosts;
    route.vs.gateways = gateways;
    route.vs.listeners = bindings;
    out
}

/// The host of a Service parent, or why it attaches nowhere.
fn mesh_host(parent: &ParentRef, services: &BTreeMap<&str, &Service>) -> Result<String, NotTrue> {
    let found = host_candidates(&parent.name, &parent.namespace)
        .into_iter()
        .find_map(|h| services.get(h.as_str()).map(|s| s.host.clone()));
    found.ok_or_else(|| NotTrue {
        reason: "NoMatchingParent",
        message: format!(
            "Service {}/{} is not known (no Kubernetes Service or ServiceEntry host)",
            parent.namespace, parent.name
        ),
    })
}

/// The route's namespace and its labels.
type RouteNamespace<'a> = (String, &'a Labels);

/// One parentRef: the names of the listeners it attaches to and the route's hostnames
/// on each, or the field (after `spec.parentRefs[i]`) and reason it attaches nowhere.
#[allow(clippy::type_complexity)]
fn attach_one(
    parent: &ParentRef,
    name: &str,
    listeners: &BTreeMap<String, Vec<Listener>>,
    namespace: &RouteNamespace<'_>,
    kind: &str,
    route_hosts: &[String],
) -> Result<(Vec<String>, Vec<AttachedListener>), (String, NotTrue)> {
    let not_true = |field: &str, reason: &'static str, message: String| {
        Err((field.to_string(), NotTrue { reason, message }))
    };
    let Some(all) = listeners.get(name) else {
        let message = format!("{} {name} is not defined", Kind::KubernetesGateway);
        return not_true(".name", "NoMatchingParent", message);
    };
    let picked = pick(parent, all, namespace, kind)?;
    let mut bindings = Vec::new();
    for listener in &picked {
        let mut on_listener: Vec<String> = Vec::new();
        for host in route_hosts {
            if let Some(host) = intersect(&listener.hostname, host) {
                if !on_listener.contains(&host) {
                    on_listener.push(host);
                }
            }
        }
        if !on_listener.is_empty() {
            bindings.push(AttachedListener {
                gateway: name.to_string(),
                port: listener.port,
                hostnames: on_listener,
            });
        }
    }
    if bindings.is_empty() {
        let message = format!("no hostname of the route matches a listener hostname of {name}");
        return not_true("", "NoMatchingListenerHostname", message);
    }
    let names = picked.iter().map(|l| l.name.clone()).collect();
    Ok((names, bindings))
}

/// The listeners of `all` a parentRef attaches to (`sectionName` and `port` narrow them),
/// or the field and reason it attaches to none.
fn pick<'l>(
    parent: &ParentRef,
    all: &'l [Listener],
    (namespace, labels): &RouteNamespace<'_>,
    kind: &str,
) -> Result<Vec<&'l Listener>, (String, NotTrue)> {
    let not_true = |field: &str, reason: &'static str, message: String| {
        Err((field.to_string(), NotTrue { reason, message }))
    };
    // A listener that is not served takes no route.
    let mut picked: Vec<&Listener> = all.iter().filter(|l| l.problem.is_none()).collect();
    if let Some(section) = &parent.section {
        picked.retain(|l| &l.name == section);
        if picked.is_empty() {
            let message = format!("the Gateway has no listener named {section:?}");
            return not_true(".sectionName", "NoMatchingParent", message);
        }
    }
    if let Some(port) = parent.port {
        picked.retain(|l| l.port == port);
        if picked.is_empty() {
            let message = format!("the Gateway has no listener on port {port} here");
            return not_true(".port", "NoMatchingParent", message);
        }
    }
    picked.retain(|l| l.kinds.contains(&kind));
    if picked.is_empty() {
        let message = format!("no listener picked admits {kind}s (allowedRoutes.kinds)");
        return not_true("", "NotAllowedByListeners", message);
    }
    picked.retain(|l| l.namespaces.admit(&parent.namespace, namespace, labels));
    if picked.is_empty() {
        let message = format!(
            "no listener of the Gateway admits routes of namespace {namespace:?} \
             (allowedRoutes.namespaces)"
        );
        return not_true("", "NotAllowedByListeners", message);
    }
    Ok(picked)
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

/// What backends resolve against.
struct Known<'a> {
    services: &'a BTreeMap<&'a str, &'a Service>,
    /// Hosts of ServiceEntries with errors: a backend naming one reports nothing more.
    broken_hosts: &'a BTreeSet<String>,
    grants: &'a [Grant],
}

/// Resolves every backend to the full host of a known service and one of its ports. A
/// backend that cannot be resolved leaves its rule: the share of requests meant for it
/// answers 500 (all of them when no backend is left), and it is returned to report.
fn resolve_backends(route: &mut Route, known: &Known<'_>, r: &mut Report) -> Vec<UnresolvedRef> {
    let key = route.vs.key.clone();
    let mut out = Vec::new();
    let mut dropped: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for slot in &route.backends {
        let Some(http) = route.vs.http.get_mut(slot.rule) else {
            continue;
        };
        let destination = match (slot.slot, &mut http.action, &mut http.mirror) {
            (None, _, Some(mirror)) => &mut mirror.destination,
            (Some(j), RouteAction::Route(destinations), _) => match destinations.get_mut(j) {
                Some(weighted) => &mut weighted.destination,
                None => continue,
            },
            _ => continue,
        };
        let Err((reason, message)) = resolve(destination, slot, &key, known, r) else {
            continue;
        };
        match slot.slot {
            None => http.mirror = None,
            Some(j) => dropped.entry(slot.rule).or_default().push(j),
        }
        if let Some(message) = message {
            out.push(UnresolvedRef {
                resource: key.clone(),
                field: slot.path.clone(),
                reason: reason.reason(),
                message,
            });
        }
    }
    for (rule, slots) in dropped {
        drop_backends(&mut route.vs.http[rule], &slots);
    }
    out
}

/// Takes the destinations at `slots` out of a rule, their weight going to the share
/// that answers 500; with none left, every request does.
fn drop_backends(http: &mut HttpRoute, slots: &[usize]) {
    let RouteAction::Route(destinations) = &mut http.action else {
        return;
    };
    let mut kept = Vec::new();
    let mut lost = Weight::ZERO;
    for (j, d) in std::mem::take(destinations).into_iter().enumerate() {
        if slots.contains(&j) {
            lost = Weight::from_units(lost.units() + d.weight.units());
        } else {
            kept.push(d);
        }
    }
    if kept.is_empty() {
        http.action = RouteAction::None;
        http.fault = Some(abort_500());
        http.unresolved = Weight::ZERO;
    } else {
        *destinations = kept;
        http.unresolved = lost;
    }
}

/// Resolves one backend in place, or says why it cannot be (with no message for a
/// ServiceEntry host whose document has errors of its own). A port that is no port of
/// the Service is a field error.
fn resolve(
    d: &mut Destination,
    slot: &BackendSlot,
    route: &ResourceKey,
    known: &Known<'_>,
    r: &mut Report,
) -> Result<(), (Unresolved, Option<String>)> {
    let backend = &slot.backend;
    if let Some(message) = &backend.invalid_kind {
        return Err((Unresolved::InvalidKind, Some(message.clone())));
    }
    if backend.service {
        let target = Target {
            group: "",
            kind: "Service",
            namespace: &backend.namespace,
            name: &d.host,
        };
        let (kind, namespace) = (route.kind.as_str(), route.namespace.as_str());
        if !permitted(known.grants, (API_GROUP, kind), namespace, &target) {
            let message = format!(
                "Service {}/{} is in another namespace and no ReferenceGrant there allows \
                 {kind}s of {namespace:?} to refer to it",
                backend.namespace, d.host
            );
            return Err((Unresolved::RefNotPermitted, Some(message)));
        }
    }
    let candidates = host_candidates(&d.host, &backend.namespace);
    let Some(service) = candidates
        .iter()
        .find_map(|h| known.services.get(h.as_str()))
    else {
        if candidates.iter().any(|h| known.broken_hosts.contains(h)) {
            return Err((Unresolved::BackendNotFound, None));
        }
        let message = format!(
            "backend {:?} is not a Service of namespace {:?} nor a ServiceEntry host",
            d.host, backend.namespace
        );
        return Err((Unresolved::BackendNotFound, Some(message)));
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
            return Err((Unresolved::BackendNotFound, Some(message)));
        }
        return Ok(());
    }
    match service.ports.as_slice() {
        [only] => d.port = only.number,
        _ => {
            let message = format!("required: {:?} has ports {}", d.host, ports.join(", "));
            r.push(format!("{}.port", slot.path), message);
        }
    }
    Ok(())
}
