//! Which Gateways select a proxy, which listeners a proxy class gets, and which virtual
//! hosts (domains and routes, in the order Envoy tries them) each listener serves.
//! Builds no protobuf.
//!
//! A VirtualService is one virtual host, its routes in order (Istio). HTTPRoutes merge:
//! every HTTPRoute hostname on a listener is one virtual host holding the rules of all
//! routes with that hostname, ordered by the Gateway API's precedence ([`precedence`]).
//! A more specific hostname wins over a wildcard by Envoy's own domain matching, which
//! is the Gateway API's order too.

use std::collections::{BTreeMap, BTreeSet};

use std::cmp::Reverse;

use super::chains::{to_chains, ChainPlan};
use crate::model::{
    Config, Destination, Gateway, GrpcMethod, HttpRoute, Kind, Labels, Protocol, ResourceKey,
    RouteAction, RouteMatch, Server, StringMatch, VirtualService, DEFAULT_LISTENER_PORT,
    MESH_GATEWAY,
};

/// The Gateways that select a proxy with these node-metadata labels (selector ⊆
/// labels; an empty selector selects all), and the RequestAuthentications and
/// AuthorizationPolicies that apply to it (by the same labels, or by targeting one of
/// those Gateways): the proxy's class. Sorted.
pub fn select_gateways(config: &Config, labels: &Labels) -> BTreeSet<ResourceKey> {
    let mut class: BTreeSet<ResourceKey> = config
        .gateways
        .iter()
        .filter(|g| g.selector.iter().all(|(k, v)| labels.get(k) == Some(v)))
        .map(|g| g.key.clone())
        .collect();
    let authentications = config
        .request_authentications
        .iter()
        .map(|p| (&p.key, &p.target));
    let authorizations = config
        .authorization_policies
        .iter()
        .map(|p| (&p.key, &p.target));
    let policies: Vec<ResourceKey> = authentications
        .chain(authorizations)
        .filter(|(_, target)| target.selects(labels, &class))
        .map(|(key, _)| key.clone())
        .collect();
    class.extend(policies);
    class
}

/// One listener to build: its port, filter chains, and the virtual hosts of its route
/// config.
#[derive(Debug)]
pub(super) struct ListenerPlan<'a> {
    pub port: u32,
    /// One chain per distinct TLS setting of the port's servers (one plain chain for
    /// HTTP), each for the host names it serves; sorted.
    pub chains: Vec<ChainPlan<'a>>,
    /// Requests on this (HTTP) port are redirected to HTTPS (Istio's `httpsRedirect`).
    pub https_redirect: bool,
    pub virtual_hosts: Vec<VirtualHostPlan<'a>>,
}

#[derive(Debug)]
pub(super) struct VirtualHostPlan<'a> {
    /// `namespace/name` of a VirtualService; `hostname` for merged HTTPRoutes.
    pub name: String,
    /// Envoy domains, unique across the whole route configuration; never empty.
    pub domains: Vec<String>,
    /// In the order Envoy tries them: one per match of each rule (a rule without
    /// matches is one entry matching every request).
    pub routes: Vec<RoutePlan<'a>>,
    /// The hostname of merged HTTPRoutes when it has no wildcard.
    pub exact_host: Option<String>,
}

/// One Envoy route: a model route and the one match it stands for.
#[derive(Debug, Clone, Copy)]
pub(super) struct RoutePlan<'a> {
    pub route: &'a HttpRoute,
    pub matched: Option<&'a RouteMatch>,
}

impl<'a> VirtualHostPlan<'a> {
    /// A VirtualService's virtual host: its routes in order.
    pub(super) fn in_order(vs: &'a VirtualService, domains: Vec<String>) -> Self {
        VirtualHostPlan {
            name: format!("{}/{}", vs.key.namespace, vs.key.name),
            domains,
            routes: vs.http.iter().flat_map(route_plans).collect(),
            exact_host: None,
        }
    }

    /// The model route of each entry (a route with several matches repeats).
    /// Gateway API routes sharing one host, their rules in the Gateway API's order.
    pub(super) fn merged(
        routes: &[&'a VirtualService],
        name: String,
        domains: Vec<String>,
    ) -> Self {
        VirtualHostPlan {
            name,
            domains,
            routes: precedence(routes),
            exact_host: None,
        }
    }

    pub(super) fn http_routes(&self) -> impl Iterator<Item = &'a HttpRoute> + '_ {
        self.routes.iter().map(|p| p.route)
    }
}

/// One entry per match, in order; a route without matches matches everything.
fn route_plans(route: &HttpRoute) -> Vec<RoutePlan<'_>> {
    if route.matches.is_empty() {
        return vec![RoutePlan {
            route,
            matched: None,
        }];
    }
    route
        .matches
        .iter()
        .map(|m| RoutePlan {
            route,
            matched: Some(m),
        })
        .collect()
}

/// The listeners a proxy class gets: the default one for a class no Gateway selects,
/// else one per distinct server port of its Gateways. Sorted by port.
pub(super) fn plan_listeners<'a>(
    config: &'a Config,
    gateways: &BTreeSet<ResourceKey>,
) -> Vec<ListenerPlan<'a>> {
    let mut services: Vec<&VirtualService> = config.virtual_services.iter().collect();
    services.sort_by(|a, b| a.key.cmp(&b.key));

    let selected: Vec<&Gateway> = gateways
        .iter()
        .filter_map(|key| config.gateways.iter().find(|g| &g.key == key))
        .collect();
    if selected.is_empty() {
        let bound = services
            .iter()
            .filter(|vs| vs.gateways.iter().any(|g| g == MESH_GATEWAY))
            .map(|vs| (*vs, vs.hosts.clone()));
        return vec![ListenerPlan {
            port: DEFAULT_LISTENER_PORT,
            chains: vec![ChainPlan {
                server_names: Vec::new(),
                tls: None,
            }],
            https_redirect: false,
            virtual_hosts: to_virtual_hosts(bound),
        }];
    }

    let mut ports: BTreeMap<u32, Vec<&Server>> = BTreeMap::new();
    for server in selected.iter().flat_map(|g| &g.servers) {
        ports.entry(server.port).or_default().push(server);
    }
    ports
        .into_iter()
        .map(|(port, servers)| {
            let bound = services
                .iter()
                .map(|vs| (*vs, hosts_on_port(vs, &selected, port)));
            // Servers of one port share a protocol (checked); HTTP ones have no TLS.
            let https = servers.iter().any(|s| s.protocol == Protocol::Https);
            let servers: Vec<&Server> = match https {
                true => servers.into_iter().filter(|s| s.tls.is_some()).collect(),
                false => servers,
            };
            ListenerPlan {
                port,
                chains: to_chains(&servers),
                https_redirect: servers.iter().any(|s| s.https_redirect),
                virtual_hosts: to_virtual_hosts(bound),
            }
        })
        .collect()
}

/// The hosts a virtual service serves on `port`: its hosts intersected with the hosts
/// of every server on that port of the selected gateways it binds to (an HTTPRoute:
/// the hostnames of the listeners it attached to on that port). In VS order.
fn hosts_on_port(vs: &VirtualService, selected: &[&Gateway], port: u32) -> Vec<String> {
    let mut hosts = Vec::new();
    if vs.key.kind.is_gateway_api_route() {
        for gateway in selected {
            let name = format!("{}/{}", gateway.key.namespace, gateway.key.name);
            let attached = vs.listeners.iter().filter(|l| l.gateway == name);
            for listener in attached.filter(|l| l.port == port) {
                for host in &listener.hostnames {
                    if !hosts.contains(host) {
                        hosts.push(host.clone());
                    }
                }
            }
        }
        return hosts;
    }
    for gateway in selected {
        let name = format!("{}/{}", gateway.key.namespace, gateway.key.name);
        if !vs.gateways.contains(&name) {
            continue;
        }
        for server in gateway.servers.iter().filter(|s| s.port == port) {
            for host in &vs.hosts {
                hosts.extend(server.hosts.iter().filter_map(|sh| intersect(sh, host)));
            }
        }
    }
    hosts
}

/// Virtual hosts with unique domains: VirtualServices first (by key), a domain an
/// earlier one already claims skipped, as is a VirtualService left with none; then one
/// virtual host per HTTPRoute hostname not claimed yet, merging the routes that have it.
fn to_virtual_hosts<'a>(
    bound: impl Iterator<Item = (&'a VirtualService, Vec<String>)>,
) -> Vec<VirtualHostPlan<'a>> {
    let mut claimed = BTreeSet::new();
    let mut out = Vec::new();
    let mut by_hostname: BTreeMap<String, Vec<&'a VirtualService>> = BTreeMap::new();
    for (virtual_service, hosts) in bound {
        if virtual_service.key.kind.is_gateway_api_route() {
            for host in hosts {
                by_hostname
                    .entry(host.to_ascii_lowercase())
                    .or_default()
                    .push(virtual_service);
            }
            continue;
        }
        let domains: Vec<String> = hosts
            .iter()
            .flat_map(|h| to_domains(h))
            .filter(|d| claimed.insert(d.clone()))
            .collect();
        if !domains.is_empty() {
            out.push(VirtualHostPlan::in_order(virtual_service, domains));
        }
    }
    for (hostname, routes) in by_hostname {
        let domains: Vec<String> = to_domains(&hostname)
            .into_iter()
            .filter(|d| claimed.insert(d.clone()))
            .collect();
        if !domains.is_empty() {
            out.push(VirtualHostPlan {
                exact_host: (!hostname.contains('*')).then(|| hostname.clone()),
                name: hostname,
                domains,
                routes: precedence(&routes),
            });
        }
    }
    out
}

/// The rules of HTTPRoutes sharing a hostname, one entry per match, in the Gateway API's
/// order: an exact path first, then a regular expression, then the longest prefix;
/// then a method match; then the most header matches, then the most query matches;
/// then the oldest route (by `creationTimestamp`), then `namespace/name`; then the
/// order of rules and matches in the route. (The specification leaves regular
/// expressions to implementations; coalmine puts them after exact paths and before
/// prefixes, as Envoy Gateway does.)
///
/// GRPCRoutes sharing a hostname order by the longest service, then the longest
/// method, then the most header matches, then age, name and rule order, as the
/// GRPCRoute specification says (a regular expression counts as no characters, so
/// it follows the names). An HTTPRoute and a GRPCRoute never share a hostname on a
/// listener (`resource_set` refuses it, as the Gateway API does).
fn precedence<'a>(routes: &[&'a VirtualService]) -> Vec<RoutePlan<'a>> {
    let mut entries: Vec<(Rank<'a>, RoutePlan<'a>)> = Vec::new();
    for vs in routes {
        for (rule, route) in vs.http.iter().enumerate() {
            for (index, plan) in route_plans(route).into_iter().enumerate() {
                let rank = match vs.key.kind {
                    Kind::GrpcRoute => grpc_rank(vs, rule, index, plan.matched),
                    _ => rank(vs, rule, index, plan.matched),
                };
                entries.push((rank, plan));
            }
        }
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries.into_iter().map(|(_, plan)| plan).collect()
}

/// What orders one match among the others of a hostname; smaller goes first.
type Rank<'a> = (
    u8,
    Reverse<usize>,
    bool,
    Reverse<usize>,
    Reverse<usize>,
    (bool, Option<&'a str>),
    &'a str,
    &'a str,
    usize,
    usize,
);

fn rank<'a>(
    vs: &'a VirtualService,
    rule: usize,
    index: usize,
    m: Option<&'a RouteMatch>,
) -> Rank<'a> {
    let (kind, length) = match m.and_then(|m| m.uri.as_ref()) {
        Some(StringMatch::Exact(path)) => (0, path.len()),
        Some(StringMatch::Regex(regex)) => (1, regex.len()),
        Some(StringMatch::Prefix(prefix) | StringMatch::PathPrefix(prefix)) => (2, prefix.len()),
        None => (2, 1),
    };
    let method = m.is_some_and(|m| m.method.is_some());
    let headers = m.map_or(0, |m| m.headers.len());
    let queries = m.map_or(0, |m| m.query_params.len());
    // Routes without a creation time sort after those with one.
    let created = (vs.created.is_none(), vs.created.as_deref());
    (
        kind,
        Reverse(length),
        !method,
        Reverse(headers),
        Reverse(queries),
        created,
        vs.key.namespace.as_str(),
        vs.key.name.as_str(),
        rule,
        index,
    )
}

/// [`rank`] for a GRPCRoute match, in the same shape: the service's and method's
/// lengths take the path's and method's places.
fn grpc_rank<'a>(
    vs: &'a VirtualService,
    rule: usize,
    index: usize,
    m: Option<&'a RouteMatch>,
) -> Rank<'a> {
    let named = |part: fn(&GrpcMethod) -> &Option<String>| {
        m.and_then(|m| m.grpc.as_ref())
            .filter(|g| !g.regex)
            .and_then(|g| part(g).as_ref())
            .map_or(0, String::len)
    };
    let headers = m.map_or(0, |m| m.headers.len());
    let created = (vs.created.is_none(), vs.created.as_deref());
    (
        0,
        Reverse(named(|g| &g.service)),
        false,
        Reverse(named(|g| &g.method)),
        Reverse(headers),
        created,
        vs.key.namespace.as_str(),
        vs.key.name.as_str(),
        rule,
        index,
    )
}

/// A host and its `host:*` variant (any port in the Host header); a wildcard host
/// stays as it is, since Envoy allows one wildcard per domain.
fn to_domains(host: &str) -> Vec<String> {
    if host.starts_with('*') {
        vec![host.to_string()]
    } else {
        vec![host.to_string(), format!("{host}:*")]
    }
}

/// The narrower of a server host and a virtual-service host when one covers the
/// other (Istio's host intersection), else `None`.
pub(super) fn intersect(server: &str, vs: &str) -> Option<String> {
    if covers(server, vs) {
        Some(vs.to_string())
    } else if covers(vs, server) {
        Some(server.to_string())
    } else {
        None
    }
}

/// Whether every name `narrow` matches is matched by `wide`: `*` covers all,
/// `*.example.com` covers its subdomains (and narrower wildcards under it).
fn covers(wide: &str, narrow: &str) -> bool {
    if wide == "*" || wide.eq_ignore_ascii_case(narrow) {
        return true;
    }
    match wide.strip_prefix('*') {
        Some(suffix) => {
            let narrow = narrow.to_ascii_lowercase();
            narrow.len() > suffix.len() && narrow.ends_with(&suffix.to_ascii_lowercase())
        }
        None => false,
    }
}

/// Every destination a virtual service's routes send to or mirror to, including
/// zero-weight ones (so a canary's cluster is warm before traffic shifts to it).
pub(super) fn destinations(vs: &VirtualService) -> impl Iterator<Item = Destination> + '_ {
    vs.http.iter().flat_map(route_destinations)
}

/// Every destination one route sends to or mirrors to, zero-weight ones included.
pub(super) fn route_destinations(route: &HttpRoute) -> Vec<Destination> {
    let routed = match &route.action {
        RouteAction::Route(weighted) => weighted.iter().map(|w| w.destination.clone()).collect(),
        RouteAction::Redirect(_) | RouteAction::None => Vec::new(),
    };
    routed
        .into_iter()
        .chain(route.mirror.iter().map(|m| m.destination.clone()))
        .collect()
}

#[cfg(test)]
mod tests;
