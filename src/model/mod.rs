//! The validated domain model: gateways, routes, destinations, subsets, services and
//! rollouts.
//!
//! Every input dialect (Istio, Gateway API, the Rollout kind, Kubernetes discovery) is
//! parsed and validated into these types once, at the edge. Nothing here knows about
//! protobuf, Envoy or Kubernetes, and a value of these types is always valid: the
//! translation that consumes them cannot fail.

mod alert;
mod auth;
mod gateway_status;
mod key;
mod release_controls;
mod rollout;
mod route;
mod service;
mod tls;
mod weight;

pub use alert::{Alert, AlertProvider, ProviderType, Severity};
pub use auth::{
    AuthAction, AuthRule, AuthSource, AuthorizationPolicy, ClaimMatch, ClaimToHeader, Condition,
    ConditionKey, Jwks, JwksUri, JwtHeader, JwtRule, Operation, PolicyTarget,
    RequestAuthentication,
};
pub use gateway_status::{GatewayAddress, GatewayStatus, ListenerStatus, NotTrue};
pub use key::{Kind, ResourceKey};
pub use release_controls::{OnFailure, ReleaseControls};
pub use rollout::{
    Analysis, BuiltinMetric, Metric, MetricSource, MetricTemplate, Rollout, SessionAffinity,
    Strategy, TemplateSource, ThresholdRange, Webhook, WebhookType,
};
pub use route::{
    Abort, AttachedListener, CorsPolicy, Delay, Destination, Fault, GrpcMethod, HeaderMatch,
    HeaderOps, Headers, HttpRoute, Mirror, Redirect, Retries, Rewrite, RouteAction, RouteMatch,
    StringMatch, UnresolvedRef, VirtualService, WeightedDestination,
};
pub use service::{
    host_candidates, ConnectionPool, DestinationRule, Endpoint, EndpointHealth, LoadBalancer,
    OutlierDetection, Resolution, Service, ServicePort, Subset, TrafficPolicy,
};
pub use tls::{CaSource, CertificateSource, ServerTls, TlsSecret, TlsVersion};
pub use weight::Weight;

use std::collections::BTreeMap;

/// Labels as Kubernetes has them: sorted, so that everything derived from them is stable.
pub type Labels = BTreeMap<String, String>;

/// The whole validated configuration that coalmine serves: one consistent set.
///
/// Cross-resource checks (every subset defined, every host resolved, no two virtual
/// services claiming one host on one port) have passed for a value of this type.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config {
    pub gateways: Vec<Gateway>,
    pub virtual_services: Vec<VirtualService>,
    pub destination_rules: Vec<DestinationRule>,
    /// Every service a destination may name, keyed by host.
    pub services: BTreeMap<String, Service>,
    /// Automated releases; each targets a distinct VirtualService of this Config.
    pub rollouts: Vec<Rollout>,
    /// References that could not be resolved, of resources that serve anyway.
    pub unresolved: Vec<UnresolvedRef>,
    /// What the Gateway API status of Gateways and HTTPRoutes says.
    pub gateway_status: GatewayStatus,
    /// Certificate Secrets by `namespace/name`, as servers name them.
    pub secrets: BTreeMap<String, TlsSecret>,
    /// Flagger MetricTemplates by `namespace/name`.
    pub metric_templates: BTreeMap<String, MetricTemplate>,
    /// Flagger AlertProviders by `namespace/name`, their addresses resolved.
    pub alert_providers: BTreeMap<String, AlertProvider>,
    /// JWT checks and access rules (`security.istio.io`), sorted by key.
    pub request_authentications: Vec<RequestAuthentication>,
    pub authorization_policies: Vec<AuthorizationPolicy>,
}

/// An ingress point: the proxies it selects open one listener per server port.
#[derive(Debug, Clone, PartialEq)]
pub struct Gateway {
    pub key: ResourceKey,
    /// Matched against the labels an Envoy declares in its node metadata; empty selects
    /// every proxy.
    pub selector: Labels,
    pub servers: Vec<Server>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Server {
    pub name: Option<String>,
    pub port: u32,
    pub protocol: Protocol,
    /// Hosts this server accepts, as Istio writes them (`*`, `*.example.com`,
    /// `example.com`; a `namespace/` prefix is removed during parsing).
    pub hosts: Vec<String>,
    pub tls: Option<ServerTls>,
    /// An HTTP server whose requests are redirected to HTTPS (Istio's `httpsRedirect`).
    pub https_redirect: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    Http,
    Https,
}

/// The name a virtual service uses for "every proxy that no Gateway selects".
pub const MESH_GATEWAY: &str = "mesh";

/// The listener port every proxy that no Gateway selects gets.
pub const DEFAULT_LISTENER_PORT: u32 = 10000;
