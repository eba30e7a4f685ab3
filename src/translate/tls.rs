//! TLS termination: a server's [`ServerTls`] as Envoy's downstream TLS transport
//! socket (certificates from files, or from SDS secrets over ADS), and the SDS
//! `Secret` resources for the certificates and CAs the listeners name.
//!
//! Secret names: `secret/<namespace>/<name>` for a certificate and its key,
//! `secret/<namespace>/<name>/ca` for a CA.

use std::collections::{BTreeMap, BTreeSet};

use envoy_types::pb::envoy::config::core::v3::{
    data_source::Specifier, transport_socket, DataSource, TransportSocket,
};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    common_tls_context::{CombinedCertificateValidationContext, ValidationContextType},
    secret,
    subject_alt_name_matcher::SanType,
    tls_parameters::TlsProtocol,
    CertificateValidationContext, CommonTlsContext, DownstreamTlsContext, SdsSecretConfig, Secret,
    SubjectAltNameMatcher, TlsCertificate, TlsParameters,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{string_matcher::MatchPattern, StringMatcher};
use envoy_types::pb::google::protobuf::BoolValue;
use envoy_types::util::pack_any;

use super::ads_config_source;
use crate::model::{CaSource, CertificateSource, Config, ServerTls, TlsVersion};

/// The SDS name of a certificate Secret (`namespace/name`).
pub(super) fn certificate_secret_name(secret: &str) -> String {
    format!("secret/{secret}")
}

/// The SDS name of a Secret's CA.
pub(super) fn ca_secret_name(secret: &str) -> String {
    format!("secret/{secret}/ca")
}

/// The SDS names a server's TLS needs.
pub(super) fn secret_names(tls: &ServerTls) -> Vec<String> {
    let mut out = Vec::new();
    if let CertificateSource::Secret(name) = &tls.certificate {
        out.push(certificate_secret_name(name));
    }
    if let Some(CaSource::Secret(name)) = &tls.client_ca {
        out.push(ca_secret_name(name));
    }
    out
}

/// The Secret resources named `names`, from the config's Secrets (the set was checked:
/// each exists with what it is named for).
pub(super) fn to_secrets(config: &Config, names: &BTreeSet<String>) -> BTreeMap<String, Secret> {
    let mut out = BTreeMap::new();
    for name in names {
        let Some(rest) = name.strip_prefix("secret/") else {
            continue;
        };
        let (source, ca) = match rest.strip_suffix("/ca") {
            Some(source) => (source, true),
            None => (rest, false),
        };
        let Some(secret) = config.secrets.get(source) else {
            continue;
        };
        let inline = |pem: &str| DataSource {
            specifier: Some(Specifier::InlineString(pem.to_string())),
            ..Default::default()
        };
        let kind = match (ca, &secret.certificate, &secret.ca) {
            (false, Some((certificate, key)), _) => secret::Type::TlsCertificate(TlsCertificate {
                certificate_chain: Some(inline(certificate)),
                private_key: Some(inline(key)),
                ..Default::default()
            }),
            (true, _, Some(ca)) => secret::Type::ValidationContext(CertificateValidationContext {
                trusted_ca: Some(inline(ca)),
                ..Default::default()
            }),
            _ => continue,
        };
        out.insert(
            name.clone(),
            Secret {
                name: name.clone(),
                r#type: Some(kind),
            },
        );
    }
    out
}

fn sds(name: String) -> SdsSecretConfig {
    SdsSecretConfig {
        name,
        sds_config: Some(ads_config_source()),
    }
}

fn to_tls_protocol(version: Option<TlsVersion>) -> i32 {
    let protocol = match version {
        None => TlsProtocol::TlsAuto,
        Some(TlsVersion::V1_0) => TlsProtocol::TlSv10,
        Some(TlsVersion::V1_1) => TlsProtocol::TlSv11,
        Some(TlsVersion::V1_2) => TlsProtocol::TlSv12,
        Some(TlsVersion::V1_3) => TlsProtocol::TlSv13,
    };
    protocol as i32
}

/// The downstream TLS transport socket of a server: its certificate (files or SDS),
/// ALPN h2 and http/1.1, protocol versions and ciphers, and for MUTUAL a required
/// client certificate checked against the CA (and the subject alt names).
pub(super) fn to_transport_socket(tls: &ServerTls) -> TransportSocket {
    let file = |path: &String| DataSource {
        specifier: Some(Specifier::Filename(path.clone())),
        ..Default::default()
    };
    let mut common = CommonTlsContext {
        alpn_protocols: vec!["h2".into(), "http/1.1".into()],
        ..Default::default()
    };
    match &tls.certificate {
        CertificateSource::Files {
            certificate,
            private_key,
        } => {
            common.tls_certificates = vec![TlsCertificate {
                certificate_chain: Some(file(certificate)),
                private_key: Some(file(private_key)),
                ..Default::default()
            }];
        }
        CertificateSource::Secret(name) => {
            common.tls_certificate_sds_secret_configs = vec![sds(certificate_secret_name(name))];
        }
    }
    let has_params =
        tls.min_version.is_some() || tls.max_version.is_some() || !tls.cipher_suites.is_empty();
    if has_params {
        common.tls_params = Some(TlsParameters {
            tls_minimum_protocol_version: to_tls_protocol(tls.min_version),
            tls_maximum_protocol_version: to_tls_protocol(tls.max_version),
            cipher_suites: tls.cipher_suites.clone(),
            ..Default::default()
        });
    }
    let names = tls
        .subject_alt_names
        .iter()
        .map(|name| SubjectAltNameMatcher {
            san_type: SanType::Dns as i32,
            matcher: Some(StringMatcher {
                match_pattern: Some(MatchPattern::Exact(name.clone())),
                ..Default::default()
            }),
            ..Default::default()
        })
        .collect::<Vec<_>>();
    common.validation_context_type = match &tls.client_ca {
        None => None,
        Some(CaSource::File(path)) => Some(ValidationContextType::ValidationContext(
            CertificateValidationContext {
                trusted_ca: Some(file(path)),
                match_typed_subject_alt_names: names,
                ..Default::default()
            },
        )),
        Some(CaSource::Secret(name)) => Some(ValidationContextType::CombinedValidationContext(
            CombinedCertificateValidationContext {
                default_validation_context: Some(CertificateValidationContext {
                    match_typed_subject_alt_names: names,
                    ..Default::default()
                }),
                validation_context_sds_secret_config: Some(sds(ca_secret_name(name))),
                ..Default::default()
            },
        )),
    };
    let context = DownstreamTlsContext {
        common_tls_context: Some(common),
        require_client_certificate: tls.client_ca.as_ref().map(|_| BoolValue { value: true }),
        ..Default::default()
    };
    TransportSocket {
        name: "envoy.transport_sockets.tls".into(),
        config_type: Some(transport_socket::ConfigType::TypedConfig(pack_any(context))),
    }
}
