//! GRPCRoute specs into a not yet attached [`VirtualService`](crate::model::VirtualService) keyed
//! [`Kind::GrpcRoute`](crate::model::Kind::GrpcRoute): the same parentRefs,
//! hostnames and weighted backendRefs as an HTTPRoute, rules matching a gRPC service
//! and method ([`GrpcMethod`]) and headers, and GRPCRoute's filters (header modifiers,
//! RequestMirror). What a rule cannot serve answers gRPC `UNAVAILABLE` (HTTP 503).

use serde_json::Value;

use super::filters::{try_filters, Scope};
use super::http_route::{mk_route, try_backends, try_route, BackendSlot, Route, RouteKind};
use super::matches::try_named;
use super::weights::normalize;
use crate::ingest::{check_regex, Fields, Obj, Report};
use crate::model::{
    Abort, Fault, GrpcMethod, HeaderMatch, HttpRoute, Mirror, ResourceKey, RouteAction, RouteMatch,
};

const RULE: Fields = Fields {
    known: &["name", "matches", "filters", "backendRefs"],
    unsupported: &["sessionPersistence"],
};
const MATCH: Fields = Fields::known(&["method", "headers"]);
const METHOD: Fields = Fields::known(&["type", "service", "method"]);

/// The status gRPC clients see as `UNAVAILABLE`.
const UNAVAILABLE: u32 = 503;

/// Reads a GRPCRoute spec; every problem goes to `r`.
pub(super) fn try_grpc_route(
    key: &ResourceKey,
    spec: &Value,
    created: Option<String>,
    r: &mut Report,
) -> Option<Route> {
    let kind = RouteKind {
        rule: RULE,
        try_rule,
        default: unavailable(Vec::new()),
    };
    try_route(key, spec, created, kind, r)
}

/// A rule that answers every request `UNAVAILABLE`.
fn unavailable(matches: Vec<RouteMatch>) -> HttpRoute {
    let abort = Abort {
        http_status: UNAVAILABLE,
        percent: None,
    };
    let fault = Fault {
        delay: None,
        abort: Some(abort),
    };
    let mut route = mk_route(matches, RouteAction::None, Some(fault));
    route.grpc = true;
    route
}

fn try_rule(
    rule: Obj<'_, '_>,
    namespace: &str,
    index: usize,
    slots: &mut Vec<BackendSlot>,
    r: &mut Report,
) -> Option<HttpRoute> {
    let matches = try_matches(rule, r);
    let filters = try_filters(rule, namespace, Scope::GrpcRule, r);
    let refs = rule.list(r, "backendRefs");
    let (mut destinations, weights) = try_backends(&refs, namespace, index, slots, r);
    let clean = destinations.len() == refs.len();
    let mut route = match normalize(&weights) {
        Some(shares) => {
            for (destination, share) in destinations.iter_mut().zip(shares) {
                destination.weight = share;
            }
            let mut route = mk_route(matches, RouteAction::Route(destinations), None);
            route.grpc = true;
            route
        }
        // No backend, or every weight 0.
        None => unavailable(matches),
    };
    route.mirror = filters.mirror.map(|(path, backend, percent)| {
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
    route.name = rule.string(r, "name");
    route.headers = filters.headers;
    clean.then_some(route)
}

/// `matches[]`: a method match and header matches each; absent or empty means every
/// request. Of several header conditions with one name only the first counts.
fn try_matches(rule: Obj<'_, '_>, r: &mut Report) -> Vec<RouteMatch> {
    let mut out = Vec::new();
    for (path, item) in rule.list(r, "matches") {
        let Some(m) = Obj::new(r, &path, item, MATCH) else {
            continue;
        };
        let mut out_match = RouteMatch {
            grpc: m
                .get("method")
                .and_then(|value| try_method(&m.at("method"), value, r)),
            ..RouteMatch::default()
        };
        for (name, matcher) in try_named(m, "headers", r) {
            let lower = name.to_ascii_lowercase();
            let matcher = HeaderMatch::Value(matcher);
            out_match.headers.entry(lower).or_insert(matcher);
        }
        out.push(out_match);
    }
    out
}

/// `{type: Exact | RegularExpression, service, method}`. An Exact match names a
/// service, a method or both, in the syntax protobuf gives them; a RegularExpression
/// match with neither matches every method (then `None`).
fn try_method(path: &str, value: &Value, r: &mut Report) -> Option<GrpcMethod> {
    let m = Obj::new(r, path, value, METHOD)?;
    let service = m.string(r, "service").filter(|s| !s.is_empty());
    let method = m.string(r, "method").filter(|s| !s.is_empty());
    let regex = match m.string(r, "type").as_deref() {
        None | Some("Exact") => false,
        Some("RegularExpression") => true,
        Some(other) => {
            let message = format!("{other:?} is not supported (Exact or RegularExpression)");
            r.push(m.at("type"), message);
            return None;
        }
    };
    if regex {
        let service_ok = service
            .as_ref()
            .is_none_or(|s| check_regex(&m.at("service"), s, r));
        let method_ok = method
            .as_ref()
            .is_none_or(|s| check_regex(&m.at("method"), s, r));
        if !service_ok || !method_ok {
            return None;
        }
        if service.is_none() && method.is_none() {
            return None;
        }
    } else {
        if service.is_none() && method.is_none() {
            r.push(path, "an Exact match needs a service, a method or both");
            return None;
        }
        if let Some(s) = service.as_ref().filter(|s| !is_service_name(s)) {
            let message = format!("{s:?} is not a gRPC service name (package.Service)");
            r.push(m.at("service"), message);
            return None;
        }
        if let Some(name) = method.as_ref().filter(|name| !is_identifier(name)) {
            let message = format!("{name:?} is not a gRPC method name");
            r.push(m.at("method"), message);
            return None;
        }
    }
    Some(GrpcMethod {
        service,
        method,
        regex,
    })
}

/// A letter or `_`, then letters, digits or `_`.
fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Dot-separated identifiers, optionally with a leading dot (the Gateway API's rule).
fn is_service_name(name: &str) -> bool {
    let name = name.strip_prefix('.').unwrap_or(name);
    name.split('.').all(is_identifier)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Kind, StringMatch};
    use serde_json::json;

    fn read(spec: Value) -> (Option<Route>, Vec<(String, String)>) {
        let key = ResourceKey::new(Kind::GrpcRoute, "default", "echo");
        let mut r = Report::new(key.to_string());
        let route = try_grpc_route(&key, &spec, None, &mut r);
        let errors = r.errors.into_iter().map(|e| (e.field, e.message)).collect();
        (route, errors)
    }

    #[test]
    fn reads_method_and_header_matches_weights_and_filters() {
        let (route, errors) = read(json!({
            "parentRefs": [{"name": "edge"}],
            "hostnames": ["grpc.example.com"],
            "rules": [{
                "matches": [
                    {"method": {"service": "grpc.Echo", "method": "Say"},
                     "headers": [{"name": "X-Canary", "value": "true"}]},
                    {"method": {"type": "RegularExpression", "method": "Say.*"}}
                ],
                "filters": [{"type": "RequestHeaderModifier",
                             "requestHeaderModifier": {"set": [{"name": "x-a", "value": "1"}]}}],
                "backendRefs": [{"name": "v1", "port": 9000, "weight": 3},
                                {"name": "v2", "port": 9000, "weight": 1}]
            }]
        }));
        assert_eq!(errors, vec![]);
        let route = route.unwrap();
        assert_eq!(route.vs.hosts, ["grpc.example.com"]);
        let rule = &route.vs.http[0];
        assert!(rule.grpc);
        let exact = GrpcMethod {
            service: Some("grpc.Echo".into()),
            method: Some("Say".into()),
            regex: false,
        };
        assert_eq!(rule.matches[0].grpc, Some(exact));
        assert_eq!(
            rule.matches[0].headers["x-canary"],
            HeaderMatch::Value(StringMatch::Exact("true".into()))
        );
        assert_eq!(rule.matches[1].grpc.as_ref().unwrap().service, None);
        assert!(rule.matches[1].grpc.as_ref().unwrap().regex);
        let RouteAction::Route(destinations) = &rule.action else {
            panic!("{:?}", rule.action)
        };
        let weights: Vec<u32> = destinations.iter().map(|d| d.weight.units()).collect();
        assert_eq!(weights, [750_000, 250_000]);
        assert_eq!(rule.headers.request.set.len(), 1);
        assert_eq!(route.backends.len(), 2);
    }

    #[test]
    fn no_backend_answers_unavailable() {
        let (route, errors) = read(json!({
            "parentRefs": [{"name": "edge"}],
            "rules": [{"matches": [{"method": {"service": "grpc.Echo"}}]}]
        }));
        assert_eq!(errors, vec![]);
        let rule = &route.unwrap().vs.http[0];
        assert_eq!(rule.action, RouteAction::None);
        let abort = rule.fault.as_ref().unwrap().abort.as_ref().unwrap();
        assert_eq!(abort.http_status, 503);
    }

    #[test]
    fn names_bad_fields() {
        let (_, errors) = read(json!({
            "parentRefs": [{"name": "edge"}],
            "rules": [{
                "matches": [
                    {"method": {}},
                    {"method": {"service": "bad service"}},
                    {"method": {"method": "a/b"}},
                    {"method": {"type": "RegularExpression", "service": "("}},
                    {"method": {"type": "Prefix", "service": "a"}}
                ],
                "filters": [{"type": "URLRewrite", "urlRewrite": {"hostname": "a"}}],
                "sessionPersistence": {}
            }]
        }));
        let fields: Vec<&str> = errors.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.rules[0].sessionPersistence",
                "spec.rules[0].matches[0].method",
                "spec.rules[0].matches[1].method.service",
                "spec.rules[0].matches[2].method.method",
                "spec.rules[0].matches[3].method.service",
                "spec.rules[0].matches[4].method.type",
                "spec.rules[0].filters[0].type",
            ]
        );
    }
}
