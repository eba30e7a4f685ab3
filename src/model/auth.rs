//! Request authentication and authorization (Istio's `security.istio.io`
//! RequestAuthentication and AuthorizationPolicy): which proxies a policy applies to,
//! the JWTs they accept, and who may reach which paths. No protobuf here.

use std::collections::BTreeSet;
use std::time::Duration;

use super::{Labels, ResourceKey};

/// Which proxies a policy applies to: those of the targeted Gateway API Gateways when
/// `gateways` is set, else those whose node-metadata labels contain `selector` (an
/// empty one selects every proxy), as an Istio Gateway's selector does.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PolicyTarget {
    pub selector: Labels,
    /// `targetRefs` to Gateway API Gateways (kind `KubernetesGateway`).
    pub gateways: Vec<ResourceKey>,
}

impl PolicyTarget {
    /// Whether a proxy with these labels, selected by these Gateways, is targeted.
    pub fn selects(&self, labels: &Labels, gateways: &BTreeSet<ResourceKey>) -> bool {
        if self.gateways.is_empty() {
            self.selector.iter().all(|(k, v)| labels.get(k) == Some(v))
        } else {
            self.gateways.iter().any(|g| gateways.contains(g))
        }
    }
}

/// A RequestAuthentication: the JWTs its proxies accept. A request with a token none
/// of them accepts is refused (401); one without a token passes, for an
/// AuthorizationPolicy to decide.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestAuthentication {
    pub key: ResourceKey,
    pub target: PolicyTarget,
    pub jwt_rules: Vec<JwtRule>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct JwtRule {
    pub issuer: String,
    /// Any one must be in the token's `aud`; empty accepts any audience.
    pub audiences: Vec<String>,
    pub jwks: Jwks,
    /// Where the token is looked for; all three empty: `Authorization: Bearer` and
    /// the `access_token` query parameter.
    pub from_headers: Vec<JwtHeader>,
    pub from_params: Vec<String>,
    pub from_cookies: Vec<String>,
    pub forward_original_token: bool,
    /// The verified payload, base64url-encoded, in this request header.
    pub output_payload_to_header: Option<String>,
    pub output_claim_to_headers: Vec<ClaimToHeader>,
    /// How long fetching `jwksUri` may take.
    pub timeout: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Jwks {
    /// A JWKS document, as given.
    Inline(String),
    /// Fetched by the proxy from this URL.
    Uri(JwksUri),
}

/// An `http(s)://host[:port]/path` the proxy fetches keys from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwksUri {
    pub uri: String,
    /// A DNS name or an IP address (without brackets).
    pub host: String,
    pub port: u32,
    pub tls: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtHeader {
    pub name: String,
    /// What comes before the token in the header's value (`Bearer `).
    pub prefix: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimToHeader {
    pub header: String,
    /// A claim name; nested claims as `a.b`.
    pub claim: String,
}

/// An AuthorizationPolicy: DENY policies refuse the requests one of their rules
/// matches; when any ALLOW policy applies, a request must match a rule of one (403
/// otherwise). An ALLOW policy without rules allows nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthorizationPolicy {
    pub key: ResourceKey,
    pub target: PolicyTarget,
    pub action: AuthAction,
    pub rules: Vec<AuthRule>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AuthAction {
    Allow,
    Deny,
}

/// Matches when any `from` source matches (or there is none), any `to` operation
/// matches (or there is none) and every `when` condition holds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuthRule {
    pub from: Vec<AuthSource>,
    pub to: Vec<Operation>,
    pub when: Vec<Condition>,
}

/// Every list set must match. Principals are `issuer/subject` of the request's
/// verified JWT, written exactly, `*` (any), `prefix*` or `*suffix`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuthSource {
    pub request_principals: Vec<String>,
    pub not_request_principals: Vec<String>,
}

/// Every list set must match (a `not_` list: none of it). Values are exact, `*`,
/// `prefix*` or `*suffix`, as Istio writes them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Operation {
    pub hosts: Vec<String>,
    pub not_hosts: Vec<String>,
    pub ports: Vec<u32>,
    pub not_ports: Vec<u32>,
    pub methods: Vec<String>,
    pub not_methods: Vec<String>,
    pub paths: Vec<String>,
    pub not_paths: Vec<String>,
}

/// A `when` condition: the attribute has one of `values` (if any) and none of
/// `not_values`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub key: ConditionKey,
    pub values: Vec<String>,
    pub not_values: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConditionKey {
    /// `request.headers[name]`, the name lower-cased.
    Header(String),
    /// `request.auth.claims[a][b]`: a claim of the verified JWT, by its path; a claim
    /// holding a list matches when one of its items does.
    Claim(Vec<String>),
}

/// A route condition on a claim of the request's verified JWT (Istio's
/// `@request.auth.claims.<name>` header match): the claim at `path` (one name per
/// level of nesting) is a matching string, or a list with a matching item; `invert`
/// (from `withoutHeaders`) for the opposite. Requests without a verified JWT have no
/// claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimMatch {
    pub path: Vec<String>,
    pub matcher: super::HeaderMatch,
    pub invert: bool,
}
