//! Resource identity: kind, namespace and name, as errors and the store name them.

use std::fmt;

/// The kinds of resource coalmine reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Gateway,
    VirtualService,
    DestinationRule,
    ServiceEntry,
    Rollout,
    /// Gateway API `gateway.networking.k8s.io` Gateway; named with its group so that it
    /// never reads like Istio's `Gateway`.
    KubernetesGateway,
    /// Gateway API `HTTPRoute`.
    HttpRoute,
    /// Gateway API `ReferenceGrant`: lets routes of other namespaces name Services here.
    ReferenceGrant,
    /// Gateway API `GRPCRoute`: routes by gRPC service and method.
    GrpcRoute,
    /// Kubernetes `v1 Secret` holding a certificate for TLS termination.
    Secret,
    /// Istio `security.istio.io` RequestAuthentication: the JWTs proxies accept.
    RequestAuthentication,
    /// Istio `security.istio.io` AuthorizationPolicy: who may reach what.
    AuthorizationPolicy,
    /// Flagger's `MetricTemplate` (`flagger.app/v1beta1`): a query releases' metrics name.
    MetricTemplate,
    /// Flagger's `AlertProvider` (`flagger.app/v1beta1`): where releases' alerts go.
    AlertProvider,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Gateway => "Gateway",
            Kind::VirtualService => "VirtualService",
            Kind::DestinationRule => "DestinationRule",
            Kind::ServiceEntry => "ServiceEntry",
            Kind::Rollout => "Rollout",
            Kind::KubernetesGateway => "Gateway.gateway.networking.k8s.io",
            Kind::HttpRoute => "HTTPRoute",
            Kind::ReferenceGrant => "ReferenceGrant",
            Kind::GrpcRoute => "GRPCRoute",
            Kind::Secret => "Secret",
            Kind::RequestAuthentication => "RequestAuthentication",
            Kind::AuthorizationPolicy => "AuthorizationPolicy",
            Kind::MetricTemplate => "MetricTemplate",
            Kind::AlertProvider => "AlertProvider",
        }
    }
}

impl Kind {
    /// HTTPRoute or GRPCRoute: attached to listeners and merged by the Gateway API's
    /// precedence, unlike a VirtualService.
    pub fn is_gateway_api_route(self) -> bool {
        matches!(self, Kind::HttpRoute | Kind::GrpcRoute)
    }

    pub const ALL: [Kind; 14] = [
        Kind::Gateway,
        Kind::VirtualService,
        Kind::DestinationRule,
        Kind::ServiceEntry,
        Kind::Rollout,
        Kind::KubernetesGateway,
        Kind::HttpRoute,
        Kind::ReferenceGrant,
        Kind::GrpcRoute,
        Kind::Secret,
        Kind::RequestAuthentication,
        Kind::AuthorizationPolicy,
        Kind::MetricTemplate,
        Kind::AlertProvider,
    ];

    /// The kind as its documents write it (`kind: Gateway` for both gateways; the
    /// apiVersion tells them apart).
    pub fn document_kind(self) -> &'static str {
        match self {
            Kind::KubernetesGateway => "Gateway",
            other => other.as_str(),
        }
    }

    /// A kind as users type it: its name, plural or short name, in any case
    /// (`VirtualService`, `virtualservices`, `vs`). Bare `gateway(s)` / `gw` is Istio's
    /// Gateway; the Gateway API one is `gateway.gateway.networking.k8s.io`,
    /// `gateways.gateway.networking.k8s.io` or `gtw` (kubectl's names for it).
    pub fn from_name(name: &str) -> Option<Kind> {
        let lower = name.to_ascii_lowercase();
        let short = match lower.as_str() {
            "gw" => Some(Kind::Gateway),
            "vs" => Some(Kind::VirtualService),
            "dr" => Some(Kind::DestinationRule),
            "se" => Some(Kind::ServiceEntry),
            "ro" => Some(Kind::Rollout),
            "gtw" | "gateways.gateway.networking.k8s.io" => Some(Kind::KubernetesGateway),
            "refgrant" => Some(Kind::ReferenceGrant),
            "ra" => Some(Kind::RequestAuthentication),
            "ap" => Some(Kind::AuthorizationPolicy),
            _ => None,
        };
        short.or_else(|| {
            Kind::ALL.into_iter().find(|k| {
                let full = k.as_str().to_ascii_lowercase();
                let ies = full.strip_suffix('y').map(|stem| format!("{stem}ies"));
                lower == full || lower == format!("{full}s") || Some(&lower) == ies.as_ref()
            })
        })
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `VirtualService default/web`: how every error and listing names a resource.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ResourceKey {
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
}

impl ResourceKey {
    pub fn new(kind: Kind, namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            kind,
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for ResourceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_as_users_type_them() {
        assert_eq!(
            Kind::from_name("VirtualService"),
            Some(Kind::VirtualService)
        );
        assert_eq!(
            Kind::from_name("virtualservices"),
            Some(Kind::VirtualService)
        );
        assert_eq!(Kind::from_name("vs"), Some(Kind::VirtualService));
        assert_eq!(Kind::from_name("serviceentries"), Some(Kind::ServiceEntry));
        assert_eq!(Kind::from_name("ServiceEntry"), Some(Kind::ServiceEntry));
        assert_eq!(Kind::from_name("gateways"), Some(Kind::Gateway));
        assert_eq!(Kind::from_name("rollouts"), Some(Kind::Rollout));
        assert_eq!(Kind::from_name("Rollout"), Some(Kind::Rollout));
        assert_eq!(Kind::from_name("ro"), Some(Kind::Rollout));
        assert_eq!(Kind::from_name("Pod"), None);
        assert_eq!(Kind::from_name("gtw"), Some(Kind::KubernetesGateway));
        assert_eq!(
            Kind::from_name("Gateway.gateway.networking.k8s.io"),
            Some(Kind::KubernetesGateway)
        );
        assert_eq!(
            Kind::from_name("gateways.gateway.networking.k8s.io"),
            Some(Kind::KubernetesGateway)
        );
        assert_eq!(Kind::from_name("httproutes"), Some(Kind::HttpRoute));
        assert_eq!(Kind::from_name("HTTPRoute"), Some(Kind::HttpRoute));
        assert_eq!(Kind::from_name("grpcroutes"), Some(Kind::GrpcRoute));
        assert_eq!(Kind::from_name("GRPCRoute"), Some(Kind::GrpcRoute));
        assert_eq!(Kind::from_name("gateway"), Some(Kind::Gateway));
        assert_eq!(
            Kind::from_name("requestauthentications"),
            Some(Kind::RequestAuthentication)
        );
        assert_eq!(
            Kind::from_name("AuthorizationPolicies"),
            Some(Kind::AuthorizationPolicy)
        );
    }
}
