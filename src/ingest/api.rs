//! The API group and versions each kind of document is accepted in.

use crate::model::Kind;

/// An API group and the versions of it accepted, which all have the same meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Api {
    pub group: &'static str,
    pub versions: &'static [&'static str],
}

/// Istio's networking kinds: Gateway, VirtualService, DestinationRule, ServiceEntry.
pub const ISTIO: Api = Api {
    group: "networking.istio.io",
    versions: &["v1", "v1beta1", "v1alpha3"],
};

/// Istio's security kinds: RequestAuthentication, AuthorizationPolicy.
pub const ISTIO_SECURITY: Api = Api {
    group: "security.istio.io",
    versions: &["v1", "v1beta1"],
};

/// The Kubernetes Gateway API kinds: Gateway, HTTPRoute, ReferenceGrant.
pub const GATEWAY_API: Api = Api {
    group: "gateway.networking.k8s.io",
    versions: &["v1", "v1beta1"],
};

/// Flagger's kinds coalmine reads: `MetricTemplate`, `AlertProvider`.
pub const FLAGGER: Api = Api {
    group: "flagger.app",
    versions: &["v1beta1"],
};

/// Kubernetes' core group (`apiVersion: v1`): `Secret`.
pub const CORE: Api = Api {
    group: "",
    versions: &["v1"],
};

/// coalmine's own kinds (`Rollout`).
pub const COALMINE: Api = Api {
    group: "coalmine.dev",
    versions: &["v1alpha1"],
};

/// The one apiVersion of coalmine's own kinds.
pub const COALMINE_API_VERSION: &str = "coalmine.dev/v1alpha1";

/// Every group coalmine reads, in the order errors list them.
pub const ALL: [Api; 6] = [ISTIO, ISTIO_SECURITY, GATEWAY_API, COALMINE, FLAGGER, CORE];

impl Api {
    /// The group a kind's documents are written in.
    pub fn of(kind: Kind) -> Api {
        match kind {
            Kind::Gateway | Kind::VirtualService | Kind::DestinationRule | Kind::ServiceEntry => {
                ISTIO
            }
            Kind::KubernetesGateway | Kind::HttpRoute | Kind::ReferenceGrant | Kind::GrpcRoute => {
                GATEWAY_API
            }
            Kind::Rollout => COALMINE,
            Kind::Secret => CORE,
            Kind::MetricTemplate | Kind::AlertProvider => FLAGGER,
            Kind::RequestAuthentication | Kind::AuthorizationPolicy => ISTIO_SECURITY,
        }
    }

    /// The known group that `api_version` (`group/version`) names, whatever its version.
    pub fn named_by(api_version: &str) -> Option<Api> {
        let group = match api_version.split_once('/') {
            Some((group, _)) => group,
            // The core group has no name: `v1`.
            None => CORE.versions.contains(&api_version).then_some("")?,
        };
        ALL.into_iter().find(|api| api.group == group)
    }

    /// The kinds of this group as documents write them (`kind: ...`).
    pub fn kinds(self) -> Vec<&'static str> {
        Kind::ALL
            .into_iter()
            .filter(|k| Api::of(*k) == self)
            .map(Kind::document_kind)
            .collect()
    }

    /// Every `group/version` accepted, in order.
    pub fn api_versions(self) -> impl Iterator<Item = String> {
        self.versions.iter().map(move |v| match self.group {
            "" => v.to_string(),
            group => format!("{group}/{v}"),
        })
    }

    /// Whether `api_version` is `group/version` with an accepted version.
    pub fn accepts(self, api_version: &str) -> bool {
        if self.group.is_empty() {
            return self.versions.contains(&api_version);
        }
        let version = api_version
            .strip_prefix(self.group)
            .and_then(|rest| rest.strip_prefix('/'));
        version.is_some_and(|v| self.versions.contains(&v))
    }

    /// `group/v1, v1beta1 or v1alpha3`: what an error says is expected.
    pub fn expected(self) -> String {
        let (last, rest) = self.versions.split_last().expect("an API has a version");
        if self.group.is_empty() {
            return self.api_versions().collect::<Vec<_>>().join(" or ");
        }
        match rest {
            [] => format!("{}/{last}", self.group),
            _ => format!("{}/{} or {last}", self.group, rest.join(", ")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_versions_read_as_a_list() {
        assert_eq!(
            ISTIO.expected(),
            "networking.istio.io/v1, v1beta1 or v1alpha3"
        );
        assert_eq!(
            GATEWAY_API.expected(),
            "gateway.networking.k8s.io/v1 or v1beta1"
        );
        assert_eq!(COALMINE.expected(), COALMINE_API_VERSION);
    }

    #[test]
    fn accepts_only_listed_versions_of_its_group() {
        assert!(ISTIO.accepts("networking.istio.io/v1alpha3"));
        assert!(!ISTIO.accepts("networking.istio.io/v2"));
        assert!(!ISTIO.accepts("networking.istio.iov1"));
        assert!(!GATEWAY_API.accepts("networking.istio.io/v1"));
    }

    #[test]
    fn groups_are_found_by_api_version_whatever_the_version() {
        assert_eq!(
            Api::named_by("gateway.networking.k8s.io/v9"),
            Some(GATEWAY_API)
        );
        assert_eq!(Api::named_by("coalmine.dev/v1alpha1"), Some(COALMINE));
        assert_eq!(Api::named_by("networking.istio.io"), None);
        assert_eq!(Api::named_by("apps/v1"), None);
        assert_eq!(
            GATEWAY_API.kinds(),
            ["Gateway", "HTTPRoute", "ReferenceGrant", "GRPCRoute"]
        );
        assert_eq!(
            ISTIO.kinds(),
            [
                "Gateway",
                "VirtualService",
                "DestinationRule",
                "ServiceEntry"
            ]
        );
        assert_eq!(COALMINE.kinds(), ["Rollout"]);
        assert_eq!(
            ISTIO_SECURITY.kinds(),
            ["RequestAuthentication", "AuthorizationPolicy"]
        );
    }
}
