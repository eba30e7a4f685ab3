//! Route configurations: one per listener (`http.PORT`), a virtual host per virtual
//! service, and per HTTP route what a matching request gets (clusters and weights,
//! rewrites, retries, mirrors, redirects, header changes, fault and CORS).

use envoy_types::pb::envoy::config::core::v3::RuntimeFractionalPercent;
use envoy_types::pb::envoy::config::core::v3::{
    header_value_option::HeaderAppendAction, HeaderValue, HeaderValueOption,
};
use envoy_types::pb::envoy::config::route::v3::{
    redirect_action::{PathRewriteSpecifier, RedirectResponseCode, SchemeRewriteSpecifier},
    retry_policy::{self, RetryHostPredicate},
    route::Action,
    route_action::{self, ClusterSpecifier, HostRewriteSpecifier, RequestMirrorPolicy},
    virtual_host,
    weighted_cluster::ClusterWeight,
    DirectResponseAction, RedirectAction, RetryPolicy, Route, RouteAction as EnvoyRouteAction,
    RouteConfiguration, VirtualHost, WeightedCluster,
};
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::HttpFilter;
use envoy_types::pb::envoy::extensions::retry::host::previous_hosts::v3::PreviousHostsPredicate;
use envoy_types::pb::envoy::r#type::matcher::v3::RegexMatcher;
use envoy_types::pb::google::protobuf::{Any, UInt32Value};
use envoy_types::util::pack_any;

use super::route_filter::{self, CORS_FILTER, FAULT_FILTER};
use super::route_match::{match_all, to_route_match};
use super::select::{ListenerPlan, VirtualHostPlan};
use super::{cluster_name, to_duration, to_fractional_percent, UNRESOLVED_CLUSTER};
use crate::model::{
    HeaderOps, Headers, HttpRoute, Redirect, Retries, RouteAction, RouteMatch, StringMatch,
    WeightedDestination,
};

/// Istio's `retry_on` when a route's retries name no conditions.
const DEFAULT_RETRY_ON: &str =
    "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes";

/// The HTTP filters a listener's routes need besides the router.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct FiltersUsed {
    pub fault: bool,
    pub cors: bool,
    /// JWT and RBAC filters, first in the chain (see `security`).
    pub security: Vec<HttpFilter>,
}

pub(super) fn route_config_name(port: u32) -> String {
    format!("http.{port}")
}

pub(super) fn filters_used(plan: &ListenerPlan<'_>) -> FiltersUsed {
    let routes = || plan.virtual_hosts.iter().flat_map(|v| v.http_routes());
    FiltersUsed {
        fault: routes().any(|r| r.fault.is_some()),
        cors: routes().any(|r| r.cors.is_some()),
        security: Vec::new(),
    }
}

pub(super) fn to_route_configuration(plan: &ListenerPlan<'_>) -> RouteConfiguration {
    RouteConfiguration {
        name: route_config_name(plan.port),
        virtual_hosts: plan
            .virtual_hosts
            .iter()
            .map(|v| {
                let mut vhost = to_virtual_host(v, plan.port);
                // httpsRedirect: Envoy answers 301 to the same URL over https.
                if plan.https_redirect {
                    vhost.require_tls = virtual_host::TlsRequirementType::All as i32;
                }
                vhost
            })
            .collect(),
        ..Default::default()
    }
}

/// `port` is the listener's (0 for a proxyless client): Gateway API redirects default
/// to it.
pub(super) fn to_virtual_host(plan: &VirtualHostPlan<'_>, port: u32) -> VirtualHost {
    let place = Place {
        listener_port: port,
        host: plan.exact_host.as_deref(),
    };
    VirtualHost {
        name: plan.name.clone(),
        domains: plan.domains.clone(),
        routes: plan
            .routes
            .iter()
            .map(|p| to_route(p.route, p.matched, &place))
            .collect(),
        ..Default::default()
    }
}

/// Where a route is served: what a Gateway API redirect without a port or host needs.
struct Place<'a> {
    listener_port: u32,
    /// The one host of the virtual host, when it has exactly one and no wildcard.
    host: Option<&'a str>,
}

fn to_route(route: &HttpRoute, m: Option<&RouteMatch>, place: &Place<'_>) -> Route {
    let name = [route.name.as_deref(), m.and_then(|m| m.name.as_deref())]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(".");
    let mut out = Route {
        name,
        r#match: Some(m.map(to_route_match).unwrap_or_else(match_all)),
        ..Default::default()
    };
    add_headers(&mut out, &route.headers);
    let fault = route.fault.as_ref().map(route_filter::to_http_fault);
    // Fault and CORS on one route would make a two-entry map, whose encoding order
    // varies; a routed request then carries the fault on its cluster weights instead
    // (Envoy looks there first).
    let fault_on_clusters = matches!(route.action, RouteAction::Route(_)) && route.cors.is_some();
    let action = match &route.action {
        RouteAction::Route(destinations) => {
            let cluster_fault = fault.clone().filter(|_| fault_on_clusters);
            Action::Route(to_route_action(
                route,
                m,
                destinations,
                cluster_fault,
                &mut out,
            ))
        }
        RouteAction::Redirect(redirect) => Action::Redirect(to_redirect_action(redirect, place)),
        RouteAction::None => Action::DirectResponse(DirectResponseAction {
            status: route
                .fault
                .as_ref()
                .and_then(|f| f.abort.as_ref())
                .map_or(500, |a| a.http_status),
            body: None,
            body_format: None,
        }),
    };
    out.action = Some(action);
    if let Some(fault) = fault.filter(|_| !fault_on_clusters) {
        out.typed_per_filter_config
            .insert(FAULT_FILTER.into(), fault);
    }
    if let Some(cors) = &route.cors {
        let policy = route_filter::to_cors_policy(cors);
        out.typed_per_filter_config
            .insert(CORS_FILTER.into(), policy);
    }
    out
}

fn to_route_action(
    route: &HttpRoute,
    m: Option<&RouteMatch>,
    destinations: &[WeightedDestination],
    cluster_fault: Option<Any>,
    out: &mut Route,
) -> EnvoyRouteAction {
    let nonzero: Vec<&WeightedDestination> = destinations
        .iter()
        .filter(|d| d.weight.units() > 0)
        .collect();
    let live: Vec<&WeightedDestination> = if nonzero.is_empty() {
        destinations.iter().collect()
    } else {
        nonzero
    };
    let unresolved = route.unresolved.units();
    let cluster_specifier = match live.as_slice() {
        [only] if cluster_fault.is_none() && unresolved == 0 => {
            add_headers(out, &only.headers);
            ClusterSpecifier::Cluster(cluster_name(&only.destination))
        }
        _ => {
            let mut clusters: Vec<ClusterWeight> = live
                .iter()
                .map(|d| to_cluster_weight(d, cluster_fault.clone()))
                .collect();
            if unresolved > 0 {
                clusters.push(ClusterWeight {
                    name: UNRESOLVED_CLUSTER.into(),
                    weight: Some(UInt32Value { value: unresolved }),
                    ..Default::default()
                });
            }
            ClusterSpecifier::WeightedClusters(WeightedCluster {
                clusters,
                ..Default::default()
            })
        }
    };
    let rewrite = route.rewrite.as_ref();
    let mut action = EnvoyRouteAction {
        cluster_specifier: Some(cluster_specifier),
        host_rewrite_specifier: rewrite
            .and_then(|r| r.authority.clone())
            .map(HostRewriteSpecifier::HostRewriteLiteral),
        // Istio disables Envoy's 15 s default when a route sets no timeout.
        timeout: Some(to_duration(route.timeout.unwrap_or_default())),
        retry_policy: route.retries.as_ref().and_then(to_retry_policy),
        request_mirror_policies: route
            .mirror
            .iter()
            .map(|mirror| RequestMirrorPolicy {
                cluster: cluster_name(&mirror.destination),
                runtime_fraction: mirror.percent.map(|p| RuntimeFractionalPercent {
                    default_value: Some(to_fractional_percent(Some(p))),
                    runtime_key: String::new(),
                }),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    // A GRPCRoute's unresolved share answers 503 (Envoy's default here), which a gRPC
    // client gets as UNAVAILABLE; an HTTPRoute's 500.
    if unresolved > 0 && !route.grpc {
        action.cluster_not_found_response_code =
            route_action::ClusterNotFoundResponseCode::InternalServerError as i32;
    }
    if let Some(uri) = rewrite.and_then(|r| r.uri.as_ref()) {
        if matches!(m.and_then(|m| m.uri.as_ref()), Some(StringMatch::Regex(_))) {
            // A regex match has no prefix to swap: the whole path is replaced.
            action.regex_rewrite = Some(
                envoy_types::pb::envoy::r#type::matcher::v3::RegexMatchAndSubstitute {
                    pattern: Some(RegexMatcher {
                        regex: "^.*$".into(),
                        engine_type: None,
                    }),
                    substitution: uri.clone(),
                },
            );
        } else {
            // Swaps the matched prefix; for an exact match that is the whole path.
            action.prefix_rewrite = uri.clone();
        }
    }
    action
}

fn to_cluster_weight(d: &WeightedDestination, fault: Option<Any>) -> ClusterWeight {
    let (request_headers_to_add, request_headers_to_remove) = to_header_options(&d.headers.request);
    let (response_headers_to_add, response_headers_to_remove) =
        to_header_options(&d.headers.response);
    ClusterWeight {
        name: cluster_name(&d.destination),
        weight: Some(UInt32Value {
            value: d.weight.units(),
        }),
        request_headers_to_add,
        request_headers_to_remove,
        response_headers_to_add,
        response_headers_to_remove,
        typed_per_filter_config: fault
            .map(|f| route_filter::one_filter_config(FAULT_FILTER, f))
            .unwrap_or_default(),
        ..Default::default()
    }
}

/// `None` for zero attempts: no retries at all.
fn to_retry_policy(retries: &Retries) -> Option<RetryPolicy> {
    if retries.attempts == 0 {
        return None;
    }
    Some(RetryPolicy {
        retry_on: retries
            .retry_on
            .clone()
            .unwrap_or_else(|| DEFAULT_RETRY_ON.into()),
        num_retries: Some(UInt32Value {
            value: retries.attempts,
        }),
        per_try_timeout: retries.per_try_timeout.map(to_duration),
        // As Istio: a retry goes to another host when there is one.
        retry_host_predicate: vec![RetryHostPredicate {
            name: "envoy.retry_host_predicates.previous_hosts".into(),
            config_type: Some(retry_policy::retry_host_predicate::ConfigType::TypedConfig(
                pack_any(PreviousHostsPredicate {}),
            )),
        }],
        host_selection_retry_max_attempts: 5,
        ..Default::default()
    })
}

fn to_redirect_action(redirect: &Redirect, place: &Place<'_>) -> RedirectAction {
    let response_code = match redirect.status {
        302 => RedirectResponseCode::Found,
        303 => RedirectResponseCode::SeeOther,
        307 => RedirectResponseCode::TemporaryRedirect,
        308 => RedirectResponseCode::PermanentRedirect,
        _ => RedirectResponseCode::MovedPermanently,
    };
    let path = match (&redirect.uri, &redirect.prefix) {
        (Some(uri), _) => Some(PathRewriteSpecifier::PathRedirect(uri.clone())),
        (None, Some(prefix)) => Some(PathRewriteSpecifier::PrefixRewrite(prefix.clone())),
        (None, None) => None,
    };
    let port = match (redirect.port, redirect.scheme.as_deref()) {
        (Some(port), _) => port,
        (None, _) if !redirect.port_follows_scheme => 0,
        (None, Some("https")) => 443,
        (None, Some(_)) => 80,
        (None, None) => place.listener_port,
    };
    // The scheme's default port is left out of Location. Envoy writes any port it is
    // given and, given none, keeps the request's, unless the host is replaced: so the
    // virtual host's one host replaces it when there is one (a wildcard virtual host
    // keeps the port the request named).
    let https = redirect.scheme.as_deref() == Some("https");
    let default_port = matches!((https, port), (true, 443) | (false, 80));
    let mut host = redirect.authority.clone();
    let port = if default_port && redirect.port_follows_scheme {
        host = host.or_else(|| place.host.map(str::to_string));
        0
    } else {
        port
    };
    RedirectAction {
        host_redirect: host.unwrap_or_default(),
        port_redirect: port,
        response_code: response_code as i32,
        scheme_rewrite_specifier: redirect
            .scheme
            .clone()
            .map(SchemeRewriteSpecifier::SchemeRedirect),
        path_rewrite_specifier: path,
        ..Default::default()
    }
}

fn add_headers(route: &mut Route, headers: &Headers) {
    let (add, remove) = to_header_options(&headers.request);
    route.request_headers_to_add.extend(add);
    route.request_headers_to_remove.extend(remove);
    let (add, remove) = to_header_options(&headers.response);
    route.response_headers_to_add.extend(add);
    route.response_headers_to_remove.extend(remove);
}

/// `set` overwrites, `add` appends; both sorted by header name.
fn to_header_options(ops: &HeaderOps) -> (Vec<HeaderValueOption>, Vec<String>) {
    let option = |(key, value): (&String, &String), action: HeaderAppendAction| HeaderValueOption {
        header: Some(HeaderValue {
            key: key.clone(),
            value: value.clone(),
            ..Default::default()
        }),
        append_action: action as i32,
        ..Default::default()
    };
    let set = ops
        .set
        .iter()
        .map(|kv| option(kv, HeaderAppendAction::OverwriteIfExistsOrAdd));
    let add = ops
        .add
        .iter()
        .map(|kv| option(kv, HeaderAppendAction::AppendIfExistsOrAdd));
    (set.chain(add).collect(), ops.remove.clone())
}
