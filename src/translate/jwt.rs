//! RequestAuthentications into Envoy's `jwt_authn` HTTP filter: one provider per JWT
//! rule, keys inline or fetched through a cluster made for the `jwksUri`'s host and
//! port, and one requirement for every request: a token any provider accepts, or no
//! token at all (Istio's semantics: a token that fails is a 401, a missing one is
//! left to the AuthorizationPolicies).
//!
//! Every provider writes the verified payload to the filter's dynamic metadata under
//! [`PAYLOAD_KEY`] and clears the route cache, so routes can match claims
//! ([`claim_matcher`]) and RBAC can match principals.

use std::collections::{BTreeMap, HashMap};

use envoy_types::pb::envoy::config::cluster::v3::{
    cluster::{ClusterDiscoveryType, DiscoveryType, DnsLookupFamily},
    Cluster,
};
use envoy_types::pb::envoy::config::core::v3::{
    data_source::Specifier, http_uri::HttpUpstreamType, transport_socket, DataSource, HttpUri,
    TransportSocket,
};
use envoy_types::pb::envoy::config::endpoint::v3::{
    lb_endpoint::HostIdentifier, ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints,
};
use envoy_types::pb::envoy::config::route::v3::{route_match::PathSpecifier, RouteMatch};
use envoy_types::pb::envoy::extensions::filters::http::jwt_authn::v3::{
    jwt_provider::JwksSourceSpecifier, jwt_requirement::RequiresType,
    requirement_rule::RequirementType, JwksAsyncFetch, JwtAuthentication, JwtClaimToHeader,
    JwtHeader, JwtProvider, JwtRequirement, JwtRequirementOrList, RemoteJwks, RequirementRule,
};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    common_tls_context::ValidationContextType, CertificateValidationContext, CommonTlsContext,
    UpstreamTlsContext,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{
    list_matcher,
    metadata_matcher::{path_segment::Segment, PathSegment},
    value_matcher, ListMatcher, MetadataMatcher, OrMatcher, StringMatcher, ValueMatcher,
};
use envoy_types::pb::google::protobuf::{Any, Empty};
use envoy_types::util::pack_any;

use super::listener::to_address;
use super::packed::pack_merged;
use super::to_duration;
use crate::model::{Jwks, JwksUri, JwtRule, RequestAuthentication};

pub(super) const JWT_AUTHN_FILTER: &str = "envoy.filters.http.jwt_authn";

/// The dynamic metadata key (of [`JWT_AUTHN_FILTER`]) holding the verified payload.
pub(super) const PAYLOAD_KEY: &str = "payload";

/// Where the proxy finds CA certificates to check an `https` jwksUri's server (the
/// Debian / Ubuntu / Alpine bundle, which Envoy's images carry).
const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Istio's defaults: how long a fetch may take, and how long fetched keys are kept.
const DEFAULT_FETCH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
const JWKS_CACHE_DURATION: std::time::Duration = std::time::Duration::from_secs(5 * 60);

/// The cluster the keys of `uri` are fetched through.
pub(super) fn jwks_cluster_name(uri: &JwksUri) -> String {
    format!("coalmine|jwks|{}|{}", uri.host, uri.port)
}

/// The `jwt_authn` filter for these RequestAuthentications, with the clusters its
/// remote keys are fetched through; `None` when they have no JWT rule.
pub(super) fn to_jwt_authn(
    policies: &[&RequestAuthentication],
) -> Option<(Any, BTreeMap<String, Cluster>)> {
    let mut providers = Vec::new();
    let mut clusters = BTreeMap::new();
    for policy in policies {
        for (i, rule) in policy.jwt_rules.iter().enumerate() {
            let name = format!("{}/{}/{i}", policy.key.namespace, policy.key.name);
            if let Jwks::Uri(uri) = &rule.jwks {
                clusters
                    .entry(jwks_cluster_name(uri))
                    .or_insert_with(|| to_jwks_cluster(uri));
            }
            providers.push((name, to_provider(rule)));
        }
    }
    if providers.is_empty() {
        return None;
    }
    let mut requirements: Vec<JwtRequirement> = providers
        .iter()
        .map(|(name, _)| JwtRequirement {
            requires_type: Some(RequiresType::ProviderName(name.clone())),
        })
        .collect();
    requirements.push(JwtRequirement {
        requires_type: Some(RequiresType::AllowMissing(Empty {})),
    });
    let base = JwtAuthentication {
        rules: vec![RequirementRule {
            r#match: Some(RouteMatch {
                path_specifier: Some(PathSpecifier::Prefix("/".into())),
                ..Default::default()
            }),
            requirement_type: Some(RequirementType::Requires(JwtRequirement {
                requires_type: Some(RequiresType::RequiresAny(JwtRequirementOrList {
                    requirements,
                })),
            })),
        }],
        bypass_cors_preflight: true,
        ..Default::default()
    };
    let entries = providers
        .into_iter()
        .map(|(name, provider)| {
            let one = JwtAuthentication {
                providers: HashMap::from([(name.clone(), provider)]),
                ..Default::default()
            };
            (name, one)
        })
        .collect();
    Some((pack_merged(base, entries), clusters))
}

fn to_provider(rule: &JwtRule) -> JwtProvider {
    let jwks = match &rule.jwks {
        Jwks::Inline(text) => JwksSourceSpecifier::LocalJwks(DataSource {
            specifier: Some(Specifier::InlineString(text.clone())),
            ..Default::default()
        }),
        Jwks::Uri(uri) => JwksSourceSpecifier::RemoteJwks(RemoteJwks {
            http_uri: Some(HttpUri {
                uri: uri.uri.clone(),
                timeout: Some(to_duration(rule.timeout.unwrap_or(DEFAULT_FETCH_TIMEOUT))),
                http_upstream_type: Some(HttpUpstreamType::Cluster(jwks_cluster_name(uri))),
            }),
            cache_duration: Some(to_duration(JWKS_CACHE_DURATION)),
            async_fetch: Some(JwksAsyncFetch::default()),
            ..Default::default()
        }),
    };
    JwtProvider {
        issuer: rule.issuer.clone(),
        audiences: rule.audiences.clone(),
        forward: rule.forward_original_token,
        from_headers: rule
            .from_headers
            .iter()
            .map(|h| JwtHeader {
                name: h.name.clone(),
                value_prefix: h.prefix.clone(),
            })
            .collect(),
        from_params: rule.from_params.clone(),
        from_cookies: rule.from_cookies.clone(),
        forward_payload_header: rule.output_payload_to_header.clone().unwrap_or_default(),
        payload_in_metadata: PAYLOAD_KEY.into(),
        claim_to_headers: rule
            .output_claim_to_headers
            .iter()
            .map(|c| JwtClaimToHeader {
                header_name: c.header.clone(),
                claim_name: c.claim.clone(),
                ..Default::default()
            })
            .collect(),
        clear_route_cache: true,
        jwks_source_specifier: Some(jwks),
        ..Default::default()
    }
}

/// STATIC for an IP address, STRICT_DNS for a name; TLS with the host as SNI for
/// `https`.
fn to_jwks_cluster(uri: &JwksUri) -> Cluster {
    let name = jwks_cluster_name(uri);
    let is_ip = uri.host.parse::<std::net::IpAddr>().is_ok();
    let discovery = if is_ip {
        DiscoveryType::Static
    } else {
        DiscoveryType::StrictDns
    };
    let endpoint = LbEndpoint {
        host_identifier: Some(HostIdentifier::Endpoint(Endpoint {
            address: Some(to_address(&uri.host, uri.port)),
            ..Default::default()
        })),
        ..Default::default()
    };
    Cluster {
        name: name.clone(),
        connect_timeout: Some(to_duration(DEFAULT_FETCH_TIMEOUT)),
        cluster_discovery_type: Some(ClusterDiscoveryType::Type(discovery as i32)),
        dns_lookup_family: DnsLookupFamily::V4Preferred as i32,
        load_assignment: Some(ClusterLoadAssignment {
            cluster_name: name,
            endpoints: vec![LocalityLbEndpoints {
                lb_endpoints: vec![endpoint],
                ..Default::default()
            }],
            ..Default::default()
        }),
        transport_socket: uri.tls.then(|| to_upstream_tls(&uri.host)),
        ..Default::default()
    }
}

fn to_upstream_tls(host: &str) -> TransportSocket {
    let context = UpstreamTlsContext {
        sni: host.to_string(),
        common_tls_context: Some(CommonTlsContext {
            validation_context_type: Some(ValidationContextType::ValidationContext(
                CertificateValidationContext {
                    trusted_ca: Some(DataSource {
                        specifier: Some(Specifier::Filename(SYSTEM_CA_BUNDLE.into())),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            )),
            ..Default::default()
        }),
        ..Default::default()
    };
    TransportSocket {
        name: "envoy.transport_sockets.tls".into(),
        config_type: Some(transport_socket::ConfigType::TypedConfig(pack_any(context))),
    }
}

/// A matcher of the verified payload's value at `claim` (one name per level).
pub(super) fn claim_matcher(claim: &[String], value: ValueMatcher) -> MetadataMatcher {
    let key = |k: &str| PathSegment {
        segment: Some(Segment::Key(k.to_string())),
    };
    let mut path = vec![key(PAYLOAD_KEY)];
    path.extend(claim.iter().map(|c| key(c)));
    MetadataMatcher {
        filter: JWT_AUTHN_FILTER.into(),
        path,
        value: Some(value),
        invert: false,
    }
}

/// A string claim matching `m`, or a list claim with an item matching it (`groups`).
pub(super) fn string_or_item(m: StringMatcher) -> ValueMatcher {
    let string = ValueMatcher {
        match_pattern: Some(value_matcher::MatchPattern::StringMatch(m)),
    };
    let item = ValueMatcher {
        match_pattern: Some(value_matcher::MatchPattern::ListMatch(Box::new(
            ListMatcher {
                match_pattern: Some(list_matcher::MatchPattern::OneOf(Box::new(string.clone()))),
            },
        ))),
    };
    ValueMatcher {
        match_pattern: Some(value_matcher::MatchPattern::OrMatch(OrMatcher {
            value_matchers: vec![string, item],
        })),
    }
}

/// Any value at all.
pub(super) fn present() -> ValueMatcher {
    ValueMatcher {
        match_pattern: Some(value_matcher::MatchPattern::PresentMatch(true)),
    }
}
