//! Who a client certificate says its holder is, and which node ids that lets it claim.
//!
//! The rule (also in the README): a certificate's DNS names and URIs (its subject
//! alternative names; the subject's CN is ignored, as by TLS itself) are its identities.
//! - a DNS name `edge-1.gw.example` allows node id `edge-1.gw.example`; a wildcard
//!   `*.gw.example` allows any `LABEL.gw.example` whose first label has no dot;
//! - a URI (a SPIFFE ID `spiffe://TRUST-DOMAIN/PATH`, or any other) allows node id
//!   equal to the whole URI and to its last path segment:
//!   `spiffe://example.org/gateway/edge-1` allows `edge-1`, and Istio's
//!   `spiffe://cluster.local/ns/NS/sa/SA` allows `SA`.
//!
//! Several proxies may share one identity (the replicas of a Deployment with one
//! certificate); they then share a node id and appear as one proxy with several
//! connections.

use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

/// The names a client certificate carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    pub dns: Vec<String>,
    pub uris: Vec<String>,
}

impl Identity {
    /// The identities of a DER certificate; `None` when it does not parse (rustls has
    /// already verified it, so that does not happen for a connected client).
    pub fn of_certificate(der: &[u8]) -> Option<Identity> {
        let (_, cert) = X509Certificate::from_der(der).ok()?;
        let mut identity = Identity::default();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    GeneralName::DNSName(dns) => identity.dns.push(dns.to_ascii_lowercase()),
                    GeneralName::URI(uri) => identity.uris.push(uri.to_string()),
                    _ => {}
                }
            }
        }
        Some(identity)
    }

    /// Whether a client with this identity may claim `node_id`.
    pub fn allows(&self, node_id: &str) -> bool {
        if node_id.is_empty() {
            return false;
        }
        let lower = node_id.to_ascii_lowercase();
        let dns = self.dns.iter().any(|name| match name.strip_prefix("*.") {
            Some(domain) => lower
                .split_once('.')
                .is_some_and(|(label, rest)| !label.is_empty() && rest == domain),
            None => *name == lower,
        });
        dns || self.uris.iter().any(|uri| {
            uri == node_id || last_segment(uri).is_some_and(|segment| segment == node_id)
        })
    }

    /// For messages: `dns:a, uri:spiffe://...`.
    pub fn describe(&self) -> String {
        let names: Vec<String> = (self.dns.iter().map(|d| format!("dns:{d}")))
            .chain(self.uris.iter().map(|u| format!("uri:{u}")))
            .collect();
        match names.is_empty() {
            true => "no subject alternative names".into(),
            false => names.join(", "),
        }
    }
}

/// Whether the client on `peer` may claim `node_id`: always without mutual TLS;
/// under it, only the node ids its certificate allows. The error says why, for the
/// gRPC status and the log.
pub fn check(mutual_tls: bool, peer: Option<&super::Peer>, node_id: &str) -> Result<(), String> {
    if !mutual_tls {
        return Ok(());
    }
    match peer.and_then(|p| p.identity.as_deref()) {
        Some(identity) if identity.allows(node_id) => Ok(()),
        Some(identity) => Err(format!(
            "node id {node_id:?} is not allowed by the client certificate ({})",
            identity.describe()
        )),
        None => Err("no client certificate identity".into()),
    }
}

/// The last non-empty path segment of a URI with a path (`scheme://authority/a/b` → `b`).
fn last_segment(uri: &str) -> Option<&str> {
    let (_, rest) = uri.split_once("://")?;
    let (_, path) = rest.split_once('/')?;
    path.rsplit('/').find(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(dns: &[&str], uris: &[&str]) -> Identity {
        Identity {
            dns: dns.iter().map(|s| s.to_string()).collect(),
            uris: uris.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn dns_names_allow_themselves_and_wildcards_one_label() {
        let i = id(&["edge-1.gw.example", "*.pool.example"], &[]);
        assert!(i.allows("edge-1.gw.example"));
        assert!(i.allows("EDGE-1.gw.example"));
        assert!(i.allows("a.pool.example"));
        assert!(!i.allows("a.b.pool.example"));
        assert!(!i.allows("pool.example"));
        assert!(!i.allows(".pool.example"));
        assert!(!i.allows("edge-2.gw.example"));
        assert!(!i.allows(""));
    }

    #[test]
    fn uris_allow_themselves_and_their_last_segment() {
        let i = id(&[], &["spiffe://cluster.local/ns/edge/sa/gateway"]);
        assert!(i.allows("gateway"));
        assert!(i.allows("spiffe://cluster.local/ns/edge/sa/gateway"));
        assert!(!i.allows("edge"));
        assert!(!i.allows("cluster.local"));
        let bare = id(&[], &["spiffe://example.org"]);
        assert!(!bare.allows("example.org"));
    }

    #[test]
    fn names_are_read_from_a_real_certificate() {
        let mut params =
            rcgen::CertificateParams::new(vec!["edge-1.gw.example".to_string()]).unwrap();
        params.subject_alt_names.push(rcgen::SanType::URI(
            rcgen::string::Ia5String::try_from("spiffe://example.org/gw/edge-1").unwrap(),
        ));
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let identity = Identity::of_certificate(cert.der()).unwrap();
        assert_eq!(identity.dns, ["edge-1.gw.example"]);
        assert_eq!(identity.uris, ["spiffe://example.org/gw/edge-1"]);
        assert!(identity.allows("edge-1"));
        assert_eq!(
            identity.describe(),
            "dns:edge-1.gw.example, uri:spiffe://example.org/gw/edge-1"
        );
    }
}
