//! Virtual services: hosts, ordered HTTP routes, matches and what a matching request gets.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{ResourceKey, Weight};

#[derive(Debug, Clone, PartialEq)]
pub struct VirtualService {
    pub key: ResourceKey,
    /// Hosts as the `Host` / `:authority` header carries them (`*` and `*.suffix` allowed).
    pub hosts: Vec<String>,
    /// Gateways as `namespace/name` (the parser fills the namespace in), or
    /// [`super::MESH_GATEWAY`]. Never empty: an omitted field means `mesh`.
    pub gateways: Vec<String>,
    /// A VirtualService's are matched in order, the first route whose match holds
    /// winning; an HTTPRoute's merge with the other HTTPRoutes of each hostname by the
    /// Gateway API's precedence (see `translate::select`).
    pub http: Vec<HttpRoute>,
    /// An HTTPRoute's Gateway listeners, each with the route's hostnames on it; empty
    /// for a VirtualService, which binds every server of its gateways.
    pub listeners: Vec<AttachedListener>,
    /// `metadata.creationTimestamp` (RFC 3339) when the document has one: the Gateway
    /// API orders equally specific matches of two routes by age.
    pub created: Option<String>,
}

/// A reference of an accepted resource that could not be resolved (the Gateway API's
/// `ResolvedRefs: False`): the resource serves, and what the reference would have
/// served answers 500.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnresolvedRef {
    pub resource: ResourceKey,
    /// The field path of the reference, e.g. `spec.rules[0].backendRefs[1]`.
    pub field: String,
    /// The Gateway API reason: `BackendNotFound`, `InvalidKind`, `RefNotPermitted`.
    pub reason: &'static str,
    pub message: String,
}

/// One Gateway listener an HTTPRoute attached to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachedListener {
    /// The Gateway as `namespace/name`.
    pub gateway: String,
    pub port: u32,
    /// The route's hostnames intersected with the listener's (`*` for neither).
    pub hostnames: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HttpRoute {
    pub name: Option<String>,
    /// Any one of these matching is enough; empty matches every request.
    pub matches: Vec<RouteMatch>,
    pub action: RouteAction,
    pub rewrite: Option<Rewrite>,
    pub timeout: Option<Duration>,
    pub retries: Option<Retries>,
    pub fault: Option<Fault>,
    pub mirror: Option<Mirror>,
    pub cors: Option<CorsPolicy>,
    pub headers: Headers,
    /// The share of requests meant for backends that could not be resolved (an
    /// HTTPRoute backendRef to a missing Service, an unknown kind, another namespace
    /// without a ReferenceGrant): they answer 500, as the Gateway API says. The
    /// weights of `action` and this add up to [`Weight::FULL`]; zero when all resolved.
    pub unresolved: Weight,
    /// A GRPCRoute rule: what it cannot serve (an unresolved backend, no backend)
    /// answers 503, which Envoy sends to a gRPC client as `UNAVAILABLE`, as the
    /// Gateway API says; an HTTPRoute's answers 500.
    pub grpc: bool,
}

/// Every condition present must hold.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RouteMatch {
    pub name: Option<String>,
    pub uri: Option<StringMatch>,
    pub method: Option<StringMatch>,
    pub authority: Option<StringMatch>,
    /// Header name (lowercase) to how its value must match.
    pub headers: BTreeMap<String, HeaderMatch>,
    /// Headers that must be absent, or present without matching the given value.
    pub without_headers: BTreeMap<String, HeaderMatch>,
    pub query_params: BTreeMap<String, StringMatch>,
    /// Conditions on the claims of the request's verified JWT.
    pub claims: Vec<super::ClaimMatch>,
    /// A GRPCRoute's method match (instead of `uri`): the translation turns it into a
    /// match of the request path `/service/method`.
    pub grpc: Option<GrpcMethod>,
}

/// A gRPC service and method match; at least one of the two is set unless `regex`
/// (then an absent one matches any name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrpcMethod {
    /// The full service name, `package.Service`.
    pub service: Option<String>,
    pub method: Option<String>,
    /// Service and method are RE2 expressions, each matched against its whole part.
    pub regex: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StringMatch {
    Exact(String),
    Prefix(String),
    /// A prefix of whole path elements (the Gateway API's `PathPrefix`: `/foo` matches
    /// `/foo` and `/foo/bar`, not `/foobar`); a trailing `/` is ignored. Paths only.
    PathPrefix(String),
    /// RE2 syntax, matched against the whole value.
    Regex(String),
}

/// A header condition; `Present` is Istio's empty match object (`{}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderMatch {
    Value(StringMatch),
    Present,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RouteAction {
    /// Weighted destinations; the weights add up to [`Weight::FULL`].
    Route(Vec<WeightedDestination>),
    Redirect(Redirect),
    /// A fault that aborts every request (Istio allows a route with only `fault`).
    None,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WeightedDestination {
    pub destination: Destination,
    pub weight: Weight,
    /// Header changes for requests sent to this destination only.
    pub headers: Headers,
}

/// A resolved destination: the host names a known service, the subset is defined for
/// it, and the port is one of its ports.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Destination {
    pub host: String,
    pub subset: Option<String>,
    pub port: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rewrite {
    /// Replaces the matched path prefix (or the whole path for an exact match).
    pub uri: Option<String>,
    pub authority: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    /// The whole path replaced with this.
    pub uri: Option<String>,
    /// The matched prefix replaced with this (the Gateway API's `ReplacePrefixMatch`).
    pub prefix: Option<String>,
    pub authority: Option<String>,
    pub scheme: Option<String>,
    pub port: Option<u32>,
    /// The Gateway API's port rule: with no `port`, the redirect goes to the scheme's
    /// well-known port, or without a scheme to the listener's port; a scheme's default
    /// port is left out of `Location`. (Istio keeps the request's port.)
    pub port_follows_scheme: bool,
    /// 301 unless given: 301, 302, 303, 307 or 308.
    pub status: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retries {
    pub attempts: u32,
    pub per_try_timeout: Option<Duration>,
    /// Envoy `retry_on` conditions, comma separated as Istio writes them.
    pub retry_on: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    pub delay: Option<Delay>,
    pub abort: Option<Abort>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Delay {
    pub fixed: Duration,
    /// Share of requests delayed, 0-100; `None` means all.
    pub percent: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Abort {
    pub http_status: u32,
    pub percent: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Mirror {
    pub destination: Destination,
    /// Share of requests mirrored, 0-100; `None` means all.
    pub percent: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CorsPolicy {
    pub allow_origins: Vec<StringMatch>,
    pub allow_methods: Vec<String>,
    pub allow_headers: Vec<String>,
    pub expose_headers: Vec<String>,
    pub max_age: Option<Duration>,
    pub allow_credentials: Option<bool>,
}

/// Header changes for requests and responses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Headers {
    pub request: HeaderOps,
    pub response: HeaderOps,
}

impl Headers {
    pub fn is_empty(&self) -> bool {
        self.request.is_empty() && self.response.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HeaderOps {
    /// Overwrites the header.
    pub set: BTreeMap<String, String>,
    /// Appends a value, keeping any already there.
    pub add: BTreeMap<String, String>,
    pub remove: Vec<String>,
}

impl HeaderOps {
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.add.is_empty() && self.remove.is_empty()
    }
}
