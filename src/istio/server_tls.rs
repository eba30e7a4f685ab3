//! A Gateway server's `tls` block into a [`ServerTls`] (HTTPS) or an `httpsRedirect`
//! flag (HTTP): `mode` SIMPLE or MUTUAL, the certificate from `credentialName` (a
//! Secret of the Gateway's namespace, served over SDS) or from files on the proxy,
//! protocol versions, cipher suites and, for MUTUAL, the client CA and
//! `subjectAltNames`.

use serde_json::Value;

use crate::ingest::{Fields, Obj, Report};
use crate::model::{CaSource, CertificateSource, ServerTls, TlsVersion};

const TLS: Fields = Fields {
    known: &[
        "mode",
        "serverCertificate",
        "privateKey",
        "caCertificates",
        "credentialName",
        "httpsRedirect",
        "subjectAltNames",
        "minProtocolVersion",
        "maxProtocolVersion",
        "cipherSuites",
    ],
    unsupported: &[
        "credentialNames",
        "verifyCertificateSpki",
        "verifyCertificateHash",
        "caCrl",
        "tlsCertificates",
    ],
};

/// What a server's `tls` block says: TLS termination (HTTPS) or a redirect (HTTP).
pub(super) enum Tls {
    Terminate(ServerTls),
    Redirect,
}

/// Reads `tls` of an HTTPS server (`https` true) or an HTTP one.
pub(super) fn try_tls(
    path: &str,
    value: &Value,
    namespace: &str,
    https: bool,
    r: &mut Report,
) -> Option<Tls> {
    let tls = Obj::new(r, path, value, TLS)?;
    let redirect = tls.boolean(r, "httpsRedirect").unwrap_or(false);
    if !https {
        let others: Vec<&str> = TLS
            .known
            .iter()
            .copied()
            .filter(|k| *k != "httpsRedirect" && tls.has(k))
            .collect();
        for field in others {
            r.push(tls.at(field), "only an HTTPS server terminates TLS");
        }
        return redirect.then_some(Tls::Redirect);
    }
    if redirect {
        r.push(tls.at("httpsRedirect"), "only for an HTTP server");
    }
    let mutual = match tls.string(r, "mode").as_deref() {
        Some("SIMPLE") => false,
        Some("MUTUAL") => true,
        None => {
            r.push(tls.at("mode"), "required (SIMPLE or MUTUAL)");
            false
        }
        Some("PASSTHROUGH" | "AUTO_PASSTHROUGH") => {
            let message = "is not supported: coalmine terminates TLS and routes HTTP \
                           (SIMPLE or MUTUAL); passing TLS through needs TLS routes";
            r.push(tls.at("mode"), message);
            false
        }
        Some(mode) => {
            let message = format!("mode {mode:?} is not supported (SIMPLE or MUTUAL)");
            r.push(tls.at("mode"), message);
            false
        }
    };
    let credential = tls.string(r, "credentialName").filter(|s| !s.is_empty());
    let files = (tls.has("serverCertificate") || tls.has("privateKey")).then(|| {
        (
            tls.string(r, "serverCertificate"),
            tls.string(r, "privateKey"),
        )
    });
    let certificate = match (credential, files) {
        (Some(name), None) => Some(CertificateSource::Secret(format!("{namespace}/{name}"))),
        (None, Some((Some(certificate), Some(private_key)))) => Some(CertificateSource::Files {
            certificate,
            private_key,
        }),
        (None, Some((certificate, _))) => {
            let missing = if certificate.is_none() {
                "serverCertificate"
            } else {
                "privateKey"
            };
            r.push(tls.at(missing), "required with the other file");
            None
        }
        (Some(_), Some(_)) => {
            let message = "either credentialName or serverCertificate/privateKey, not both";
            r.push(tls.at("credentialName"), message);
            None
        }
        (None, None) => {
            let message = "required: the Secret with the certificate (or serverCertificate and \
                           privateKey files)";
            r.push(tls.at("credentialName"), message);
            None
        }
    };
    let ca_file = tls.string(r, "caCertificates").filter(|s| !s.is_empty());
    let client_ca = match (mutual, &certificate, ca_file) {
        (true, _, Some(file)) => Some(CaSource::File(file)),
        // The Secret's own `ca.crt`, else `<name>-cacert` (resolved with the set).
        (true, Some(CertificateSource::Secret(name)), None) => Some(CaSource::Secret(name.clone())),
        (true, _, None) => {
            let message = "required for MUTUAL with certificate files";
            r.push(tls.at("caCertificates"), message);
            None
        }
        (false, _, Some(_)) => {
            r.push(tls.at("caCertificates"), "only for mode MUTUAL");
            None
        }
        (false, _, None) => None,
    };
    let subject_alt_names = tls.strings(r, "subjectAltNames");
    if !mutual && !subject_alt_names.is_empty() {
        r.push(tls.at("subjectAltNames"), "only for mode MUTUAL");
    }
    let min_version = try_version(tls, "minProtocolVersion", r);
    let max_version = try_version(tls, "maxProtocolVersion", r);
    if let (Some(min), Some(max)) = (min_version, max_version) {
        if min > max {
            r.push(tls.at("minProtocolVersion"), "is above maxProtocolVersion");
        }
    }
    Some(Tls::Terminate(ServerTls {
        certificate: certificate?,
        client_ca,
        subject_alt_names,
        min_version,
        max_version,
        cipher_suites: tls.strings(r, "cipherSuites"),
    }))
}

/// `TLS_AUTO` (none), `TLSV1_0` ... `TLSV1_3`.
fn try_version(tls: Obj<'_, '_>, key: &str, r: &mut Report) -> Option<TlsVersion> {
    match tls.string(r, key)?.as_str() {
        "TLS_AUTO" => None,
        "TLSV1_0" => Some(TlsVersion::V1_0),
        "TLSV1_1" => Some(TlsVersion::V1_1),
        "TLSV1_2" => Some(TlsVersion::V1_2),
        "TLSV1_3" => Some(TlsVersion::V1_3),
        other => {
            let message = format!("{other:?} is not a TLS version (TLS_AUTO, TLSV1_0 ... TLSV1_3)");
            r.push(tls.at(key), message);
            None
        }
    }
}
