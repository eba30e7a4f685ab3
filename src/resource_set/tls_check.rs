//! Secrets against the servers that name them: every `credentialName` (and Gateway
//! API `certificateRefs`) is a defined Secret with a certificate; a MUTUAL server's CA
//! is its Secret's `ca.crt`, else the `<name>-cacert` Secret's, as Istio reads them.

use std::collections::{BTreeMap, BTreeSet};

use crate::ingest::FieldError;
use crate::model::{CaSource, CertificateSource, Gateway, Kind, TlsSecret};

/// Checks and resolves the Secrets of every server, returning them by name.
pub(super) fn check_tls(
    gateways: &mut [Gateway],
    secrets: Vec<TlsSecret>,
    broken: &BTreeSet<String>,
    errors: &mut Vec<FieldError>,
) -> BTreeMap<String, TlsSecret> {
    let secrets: BTreeMap<String, TlsSecret> =
        secrets.into_iter().map(|s| (s.name.clone(), s)).collect();
    // A Gateway API listener's certificate was resolved with its listener (an
    // unresolved one leaves only that listener unserved, as the Gateway API says).
    let istio = gateways.iter_mut().filter(|g| g.key.kind == Kind::Gateway);
    for gateway in istio {
        let resource = gateway.key.to_string();
        for (i, server) in gateway.servers.iter_mut().enumerate() {
            let Some(tls) = &mut server.tls else {
                continue;
            };
            let field = |name: &str| format!("spec.servers[{i}].tls.{name}");
            let mut fail = |field: String, message: String| {
                errors.push(FieldError {
                    resource: resource.clone(),
                    field,
                    message,
                    reason: None,
                });
            };
            if let CertificateSource::Secret(name) = &tls.certificate {
                match secrets.get(name) {
                    Some(s) if s.certificate.is_some() => {}
                    Some(_) => fail(
                        field("credentialName"),
                        format!("Secret {name} holds no certificate and key (tls.crt, tls.key)"),
                    ),
                    None if broken.contains(name) => {}
                    None => fail(
                        field("credentialName"),
                        format!("Secret {name} is not defined"),
                    ),
                }
            }
            if let Some(CaSource::Secret(name)) = &mut tls.client_ca {
                let own = secrets.get(name.as_str()).filter(|s| s.ca.is_some());
                let cacert = format!("{name}-cacert");
                if own.is_none() {
                    if secrets.get(&cacert).is_some_and(|s| s.ca.is_some()) {
                        *name = cacert;
                    } else if !broken.contains(&cacert) {
                        fail(
                            field("mode"),
                            format!(
                                "MUTUAL needs a CA: ca.crt in Secret {name}, or a Secret {cacert}"
                            ),
                        );
                    }
                }
            }
        }
    }
    secrets
}
