//! HTTPRoute specs into a not yet attached [`VirtualService`]: hostnames, rules,
//! weighted backendRefs and filters. parentRefs are read here and attached, with the
//! backends resolved, in [`super::attach`].

use serde_json::Value;

use super::backend_ref::{try_backend_ref, Backend};
use super::filters::{try_filters, PathModifier, Scope};
use super::matches::try_matches;
use super::weights::normalize;
use super::API_GROUP;
use crate::ingest::{check_host, Fields, Obj, Report};
use crate::model::{
    Abort, Fault, HttpRoute, Mirror, ResourceKey, Rewrite, RouteAction, RouteMatch, StringMatch,
    VirtualService, Weight, WeightedDestination,
};

const SPEC: Fields = Fields::known(&["parentRefs", "hostnames", "rules"]);
const PARENT_REF: Fields =
    Fields::known(&["group", "kind", "namespace", "name", "sectionName", "port"]);
const RULE: Fields = Fields {
    known: &["name", "matches", "filters", "backendRefs", "timeouts"],
    unsupported: &["retry", "sessionPersistence"],
};
const TIMEOUTS: Fields = Fields::known(&["request", "backendRequest"]);
const BACKEND_REF: Fields = Fields::known(&[
    "group",
    "kind",
    "name",
    "namespace",
    "port",
    "weight",
    "filters",
]);

/// A parentRef: the Gateway's `namespace/name`, and the listener it picks, if any; or
/// a Service (GAMMA's mesh parent: the route serves requests addressed to it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ParentRef {
    pub namespace: String,
    pub name: String,
    pub section: Option<String>,
    pub port: Option<u32>,
    /// The parent is a Service (group `""`, kind `Service`), not a Gateway.
    pub service: bool,
}

/// An HTTPRoute read but not attached: `vs.gateways` is empty and destinations name
/// backends as written (port 0 when not given).
#[derive(Debug, Clone)]
pub(super) struct Route {
    pub vs: VirtualService,
    pub parents: Vec<ParentRef>,
    /// Every backend of the route, to resolve once every document is read.
    pub backends: Vec<BackendSlot>,
}

/// Where a backend sits in the route, and the backend as written.
#[derive(Debug, Clone)]
pub(super) struct BackendSlot {
    /// The index of the rule in `vs.http`.
    pub rule: usize,
    /// The backendRef's index in the rule's destinations; `None` for its mirror.
    pub slot: Option<usize>,
    /// The backendRef's field path.
    pub path: String,
    pub backend: Backend,
}

/// Reads an HTTPRoute spec; every problem goes to `r`.
pub(super) fn try_http_route(
    key: &ResourceKey,
    spec: &Value,
    created: Option<String>,
    r: &mut Report,
) -> Option<Route> {
    // The Gateway API's default rule: every request to the backends of none, a 500.
    let default = mk_route(Vec::new(), RouteAction::None, Some(abort_500()));
    let kind = RouteKind {
        rule: RULE,
        try_rule,
        default,
    };
    try_route(key, spec, created, kind, r)
}

/// What tells the route kinds apart: a rule's fields, how a rule reads, and the rule
/// a route without rules has.
pub(super) struct RouteKind {
    pub rule: Fields,
    pub try_rule: RuleReader,
    pub default: HttpRoute,
}

/// Reads one rule: `(rule, namespace, index in the route, backend slots, report)`.
pub(super) type RuleReader =
    fn(Obj<'_, '_>, &str, usize, &mut Vec<BackendSlot>, &mut Report) -> Option<HttpRoute>;

/// A route spec (HTTPRoute or GRPCRoute): parentRefs and hostnames, then each rule as
/// `kind` reads it; every problem goes to `r`.
pub(super) fn try_route(
    key: &ResourceKey,
    spec: &Value,
    created: Option<String>,
    kind: RouteKind,
    r: &mut Report,
) -> Option<Route> {
    let spec = Obj::new(r, "spec", spec, SPEC)?;
    let (parents, hosts) = try_parents_and_hostnames(spec, &key.namespace, r);
    let mut backends = Vec::new();
    let mut http = Vec::new();
    let rules = spec.list(r, "rules");
    let no_rules = rules.is_empty();
    for (path, value) in rules {
        let Some(rule) = Obj::new(r, &path, value, kind.rule) else {
            continue;
        };
        let index = http.len();
        let mut slots = Vec::new();
        if let Some(route) = (kind.try_rule)(rule, &key.namespace, index, &mut slots, r) {
            http.push(route);
            backends.extend(slots);
        }
    }
    if no_rules {
        http.push(kind.default);
    }
    let vs = VirtualService {
        key: key.clone(),
        hosts,
        gateways: Vec::new(),
        http,
        listeners: Vec::new(),
        created,
    };
    Some(Route {
        vs,
        parents,
        backends,
    })
}

/// `parentRefs` (at least one) and `hostnames` (`*` when absent) of a route spec, as
/// HTTPRoute and GRPCRoute write them.
pub(super) fn try_parents_and_hostnames(
    spec: Obj<'_, '_>,
    namespace: &str,
    r: &mut Report,
) -> (Vec<ParentRef>, Vec<String>) {
    let mut parents = Vec::new();
    let refs = spec.list(r, "parentRefs");
    if refs.is_empty() {
        r.push(spec.at("parentRefs"), "at least one parentRef is required");
    }
    for (path, value) in refs {
        parents.extend(try_parent_ref(&path, value, namespace, r));
    }
    let mut hosts = spec.strings(r, "hostnames");
    for (i, host) in hosts.iter().enumerate() {
        if host == "*" || host.contains(':') || check_host(host).is_err() {
            let message = format!("{host:?} is not a valid hostname (a DNS name or *.suffix)");
            r.push(format!("spec.hostnames[{i}]"), message);
        }
    }
    if hosts.is_empty() {
        hosts.push("*".into());
    }
    (parents, hosts)
}

fn try_parent_ref(path: &str, value: &Value, namespace: &str, r: &mut Report) -> Option<ParentRef> {
    let parent = Obj::new(r, path, value, PARENT_REF)?;
    let group = parent
        .string(r, "group")
        .unwrap_or_else(|| API_GROUP.into());
    let kind = parent.string(r, "kind").unwrap_or_else(|| "Gateway".into());
    let service = matches!(group.as_str(), "" | "core") && kind == "Service";
    if !service && (group != API_GROUP || kind != "Gateway") {
        let message = format!(
            "{kind:?} of group {group:?} is not supported (a Gateway of {API_GROUP}, or a \
             Service of the core group for the mesh)"
        );
        r.push(parent.at("kind"), message);
    }
    let name = parent.required_string(r, "name");
    let section = parent.string(r, "sectionName");
    let port = parent.uint(r, "port", 1, 65535);
    let namespace = parent
        .string(r, "namespace")
        .unwrap_or_else(|| namespace.into());
    Some(ParentRef {
        namespace,
        name: name?,
        section,
        port,
        service,
    })
}

pub(super) fn abort_500() -> Fault {
    let abort = Abort {
        http_status: 500,
        percent: None,
    };
    Fault {
        delay: None,
        abort: Some(abort),
    }
}

pub(super) fn mk_route(
    matches: Vec<RouteMatch>,
    action: RouteAction,
    fault: Option<Fault>,
) -> HttpRoute {
    HttpRoute {
        name: None,
        matches,
        action,
        rewrite: None,
        timeout: None,
        retries: None,
        fault,
        mirror: None,
        cors: None,
        headers: Default::default(),
        unresolved: Weight::ZERO,
        grpc: false,
    }
}

/// One rule: matches, filters, and the action its backendRefs (or redirect) make.
fn try_rule(
    rule: Obj<'_, '_>,
    namespace: &str,
    index: usize,
    slots: &mut Vec<BackendSlot>,
    r: &mut Report,
) -> Option<HttpRoute> {
    let mut matches = try_matches(rule, r);
    let filters = try_filters(rule, namespace, Scope::HttpRule, r);
    let refs = rule.list(r, "backendRefs");
    let (mut destinations, weights) = try_backends(&refs, namespace, index, slots, r);
    let clean = destinations.len() == refs.len();
    let (action, fault) = match (&filters.redirect, normalize(&weights)) {
        (Some((path, _)), _) if !refs.is_empty() => {
            r.push(path, "a RequestRedirect rule takes no backendRefs");
            return None;
        }
        (Some((path, redirect)), _) => {
            let mut redirect = redirect.clone();
            if let Some(prefix) = redirect.prefix.take() {
                let modifier = PathModifier::Prefix(prefix);
                let at = format!("{path}.path");
                redirect.prefix = try_rewrite_path(&at, modifier, &mut matches, r);
            }
            (RouteAction::Redirect(redirect), None)
        }
        (None, Some(shares)) => {
            for (destination, share) in destinations.iter_mut().zip(shares) {
                destination.weight = share;
            }
            (RouteAction::Route(destinations), None)
        }
        // No backend, or every weight 0: the Gateway API answers 500.
        (None, None) => (RouteAction::None, Some(abort_500())),
    };
    if let Some((path, _)) = filters.redirect.as_ref().filter(|_| filters.has_rewrite()) {
        r.push(path, "a RequestRedirect rule takes no URLRewrite");
    }
    let rewrite_path = match filters.rewrite_path {
        None => None,
        Some((path, modifier)) => try_rewrite_path(&path, modifier, &mut matches, r),
    };
    let rewrite = (filters.rewrite_host.is_some() || rewrite_path.is_some()).then_some(Rewrite {
        uri: rewrite_path,
        authority: filters.rewrite_host,
    });
    let mirror = filters.mirror.map(|(path, backend, percent)| {
        let destination = backend.destination.clone();
        slots.push(BackendSlot {
            rule: index,
            slot: None,
            path,
            backend,
        });
        Mirror {
            destination,
            percent,
        }
    });
    let timeouts_path = rule.at("timeouts");
    let timeouts = rule
        .get("timeouts")
        .and_then(|value| Obj::new(r, &timeouts_path, value, TIMEOUTS));
    let request = timeouts.and_then(|t| t.duration(r, "request"));
    let backend_request = timeouts.and_then(|t| t.duration(r, "backendRequest"));
    if let (Some(request), Some(backend)) = (request, backend_request) {
        if !request.is_zero() && backend > request {
            let message = "must not be longer than timeouts.request";
            r.push(format!("{timeouts_path}.backendRequest"), message);
        }
    }
    // `request` bounds the whole exchange and `backendRequest` each attempt to a
    // backend (0 = no limit). A rule makes one attempt (`retry` is not supported), so
    // Envoy's route timeout is the shorter of the two.
    let timeout = match (request, backend_request) {
        (Some(a), Some(b)) if !a.is_zero() && !b.is_zero() => Some(a.min(b)),
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    let mut route = mk_route(matches, action, fault);
    route.name = rule.string(r, "name");
    route.rewrite = rewrite;
    route.mirror = mirror;
    route.headers = filters.headers;
    route.cors = filters.cors;
    route.timeout = timeout;
    clean.then_some(route)
}

/// A rule's `backendRefs`: their destinations (weights still zero) and relative
/// weights, and a slot per backend to resolve later.
pub(super) fn try_backends(
    refs: &[(String, &Value)],
    namespace: &str,
    index: usize,
    slots: &mut Vec<BackendSlot>,
    r: &mut Report,
) -> (Vec<WeightedDestination>, Vec<u32>) {
    let mut weights = Vec::new();
    let mut destinations = Vec::new();
    for (path, value) in refs {
        let Some(backend) = Obj::new(r, path, value, BACKEND_REF) else {
            continue;
        };
        let weight = backend.uint(r, "weight", 0, 1_000_000).unwrap_or(1);
        let headers = try_filters(backend, namespace, Scope::BackendRef, r).headers;
        if let Some(backend) = try_backend_ref(backend, namespace, r) {
            destinations.push(WeightedDestination {
                destination: backend.destination.clone(),
                weight: Weight::ZERO,
                headers,
            });
            slots.push(BackendSlot {
                rule: index,
                slot: Some(destinations.len() - 1),
                path: path.clone(),
                backend,
            });
            weights.push(weight);
        }
    }
    (destinations, weights)
}

/// The model's `rewrite.uri` swaps the matched prefix (the whole path for an exact or
/// regex match). ReplacePrefixMatch needs prefix matches; ReplaceFullPath turns each
/// prefix match into the equivalent regex, so that the whole path is replaced.
fn try_rewrite_path(
    path: &str,
    modifier: PathModifier,
    matches: &mut [RouteMatch],
    r: &mut Report,
) -> Option<String> {
    let mut all = [RouteMatch {
        uri: Some(StringMatch::Prefix("/".into())),
        ..Default::default()
    }];
    let matches: &mut [RouteMatch] = if matches.is_empty() {
        &mut all
    } else {
        matches
    };
    match modifier {
        PathModifier::Prefix(replacement) => {
            let prefixes = matches.iter().all(|m| {
                matches!(
                    m.uri,
                    Some(StringMatch::Prefix(_) | StringMatch::PathPrefix(_))
                )
            });
            if !prefixes {
                let message = "ReplacePrefixMatch needs every match of the rule to be a PathPrefix";
                r.push(format!("{path}.type"), message);
                return None;
            }
            // `/` swapped for `/api` must still leave a `/` before the rest.
            let root = matches
                .iter()
                .any(|m| m.uri == Some(StringMatch::Prefix("/".into())));
            let needs_slash = root && !replacement.ends_with('/');
            Some(if needs_slash {
                format!("{replacement}/")
            } else {
                replacement
            })
        }
        PathModifier::Full(replacement) => {
            for m in matches.iter_mut() {
                if let Some(StringMatch::Prefix(prefix) | StringMatch::PathPrefix(prefix)) = &m.uri
                {
                    let stem = regex::escape(prefix.trim_end_matches('/'));
                    m.uri = Some(StringMatch::Regex(format!("{stem}(/.*)?")));
                }
            }
            Some(replacement)
        }
    }
}
