//! `v1 Secret` documents holding certificates into [`TlsSecret`]s: type
//! `kubernetes.io/tls` (`tls.crt`, `tls.key`, optional `ca.crt`) or Istio's generic
//! form (`Opaque`: `tls.crt`/`tls.key`/`ca.crt`, or `cert`/`key`/`cacert`, a CA alone
//! for a `<name>-cacert` Secret), from `data` (base64) and `stringData` (which wins,
//! as Kubernetes merges it). The PEM is parsed; errors name the field, never a value.

use base64::Engine;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::Value;

use super::{Fields, Obj, Report};
use crate::model::{ResourceKey, TlsSecret};

const SECRET: Fields = Fields {
    known: &[
        "apiVersion",
        "kind",
        "metadata",
        "type",
        "data",
        "stringData",
        "immutable",
    ],
    unsupported: &[],
};

/// The key names of each part, in the order they are looked for.
const CERTIFICATE: [&str; 2] = ["tls.crt", "cert"];
const KEY: [&str; 2] = ["tls.key", "key"];
const CA: [&str; 2] = ["ca.crt", "cacert"];

/// Reads a whole Secret document (a Secret has no `spec`); every problem goes to `r`.
pub(crate) fn try_secret(key: &ResourceKey, doc: &Value, r: &mut Report) -> Option<TlsSecret> {
    let secret = Obj::new(r, "", doc, SECRET)?;
    let kind = secret
        .string(r, "type")
        .unwrap_or_else(|| "Opaque".to_string());
    if kind != "kubernetes.io/tls" && kind != "Opaque" {
        let message = format!("{kind:?} is not a certificate Secret (kubernetes.io/tls or Opaque)");
        r.push("type", message);
        return None;
    }
    let data = |name: &str| -> Option<(String, Option<String>)> {
        let at = |map: &str| format!("{map}.{name}");
        if let Some(text) = doc
            .get("stringData")
            .and_then(|m| m.get(name))
            .and_then(Value::as_str)
        {
            return Some((at("stringData"), Some(text.to_string())));
        }
        let encoded = doc.get("data").and_then(|m| m.get(name))?;
        let decoded = encoded
            .as_str()
            .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
            .and_then(|bytes| String::from_utf8(bytes).ok());
        Some((at("data"), decoded))
    };
    let read = |names: [&str; 2], r: &mut Report| -> Option<(String, String)> {
        let (field, value) = names.into_iter().find_map(&data)?;
        match value {
            Some(value) => Some((field, value)),
            None => {
                r.push(field, "is not base64 of UTF-8 text (PEM)");
                None
            }
        }
    };
    let certificate = read(CERTIFICATE, r);
    let private_key = read(KEY, r);
    let ca = read(CA, r);
    if let Some((field, pem)) = &certificate {
        check_certificates(field, pem, r);
    }
    if let Some((field, pem)) = &ca {
        check_certificates(field, pem, r);
    }
    if let Some((field, pem)) = &private_key {
        if PrivateKeyDer::from_pem_slice(pem.as_bytes()).is_err() {
            r.push(field, "holds no PEM private key");
        }
    }
    let pair = match (certificate, private_key) {
        (Some((_, certificate)), Some((_, key))) => Some((certificate, key)),
        (None, None) => None,
        (Some(_), None) => {
            r.push(
                "data",
                format!("{} needs its key ({})", CERTIFICATE[0], KEY[0]),
            );
            None
        }
        (None, Some(_)) => {
            r.push(
                "data",
                format!("{} needs its certificate ({})", KEY[0], CERTIFICATE[0]),
            );
            None
        }
    };
    if pair.is_none() && ca.is_none() {
        let message = format!(
            "holds no certificate: {} and {} (or {}) are required",
            CERTIFICATE[0], KEY[0], CA[0]
        );
        r.push("data", message);
    }
    Some(TlsSecret {
        name: format!("{}/{}", key.namespace, key.name),
        certificate: pair,
        ca: ca.map(|(_, pem)| pem),
    })
}

/// At least one PEM certificate, every one of them readable.
fn check_certificates(field: &str, pem: &str, r: &mut Report) {
    let mut count = 0;
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        if cert.is_err() {
            r.push(field, "holds a certificate that is not valid PEM");
            return;
        }
        count += 1;
    }
    if count == 0 {
        r.push(field, "holds no PEM certificate");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Kind;
    use serde_json::json;

    fn pem_pair() -> (String, String) {
        let cert = rcgen::generate_simple_self_signed(vec!["a.example".into()]).unwrap();
        (cert.cert.pem(), cert.signing_key.serialize_pem())
    }

    fn read(doc: Value) -> (Option<TlsSecret>, Vec<(String, String)>) {
        let key = ResourceKey::new(Kind::Secret, "default", "cert");
        let mut r = Report::new(key.to_string());
        let secret = try_secret(&key, &doc, &mut r);
        let errors = r.errors.into_iter().map(|e| (e.field, e.message)).collect();
        (secret, errors)
    }

    #[test]
    fn reads_tls_secrets_from_data_and_string_data() {
        let (cert, key) = pem_pair();
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let (secret, errors) = read(json!({
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "cert"},
            "type": "kubernetes.io/tls",
            "data": {"tls.crt": b64(&cert), "tls.key": b64(&key)},
            "stringData": {"ca.crt": cert}
        }));
        assert_eq!(errors, vec![]);
        let secret = secret.unwrap();
        assert_eq!(secret.name, "default/cert");
        assert_eq!(secret.certificate, Some((cert.clone(), key)));
        assert_eq!(secret.ca, Some(cert));
        assert!(!format!("{secret:?}").contains("BEGIN"));
    }

    #[test]
    fn a_ca_alone_is_a_cacert_secret() {
        let (cert, _) = pem_pair();
        let (secret, errors) = read(json!({
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "cert-cacert"},
            "stringData": {"cacert": cert}
        }));
        assert_eq!(errors, vec![]);
        assert_eq!(secret.unwrap().certificate, None);
    }

    #[test]
    fn names_bad_fields_without_their_values() {
        let (cert, _) = pem_pair();
        let (_, errors) = read(json!({
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "cert"},
            "data": {"tls.crt": "%%%", "tls.key": "c2VjcmV0"},
            "stringData": {"ca.crt": "not pem"}
        }));
        let fields: Vec<&str> = errors.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            ["data.tls.crt", "stringData.ca.crt", "data.tls.key", "data"]
        );
        assert!(
            errors.iter().all(|(_, m)| !m.contains("secret")),
            "{errors:?}"
        );
        let (_, errors) = read(json!({
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "t"},
            "type": "kubernetes.io/service-account-token", "stringData": {"tls.crt": cert}
        }));
        assert_eq!(errors[0].0, "type");
    }
}
