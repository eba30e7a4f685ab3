//! TLS termination on gateway servers and the certificates it uses: files on the
//! proxy's disk, or Secrets coalmine serves over SDS.

/// Where a server's certificate and key come from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CertificateSource {
    /// PEM files on the proxy's disk (Istio's `serverCertificate` / `privateKey`).
    Files {
        certificate: String,
        private_key: String,
    },
    /// A Secret, `namespace/name` (Istio's `credentialName`, the Gateway API's
    /// `certificateRefs`), served over SDS.
    Secret(String),
}

/// Where the CA certificates checking client certificates come from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CaSource {
    /// A PEM file on the proxy's disk (`caCertificates`).
    File(String),
    /// A Secret's CA, `namespace/name` of the [`TlsSecret`] holding it.
    Secret(String),
}

/// TLS termination for an HTTPS server.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServerTls {
    pub certificate: CertificateSource,
    /// With a CA, a client must present a certificate it signed (Istio's `MUTUAL`).
    pub client_ca: Option<CaSource>,
    /// For `MUTUAL`: a client certificate must carry one of these names.
    pub subject_alt_names: Vec<String>,
    /// `TLSV1_2`, `TLSV1_3` (Envoy's names: `TLSv1_2`...) when set.
    pub min_version: Option<TlsVersion>,
    pub max_version: Option<TlsVersion>,
    /// OpenSSL cipher names, in order; empty keeps Envoy's defaults.
    pub cipher_suites: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TlsVersion {
    V1_0,
    V1_1,
    V1_2,
    V1_3,
}

impl ServerTls {
    /// TLS from a certificate and key alone, Envoy's defaults otherwise.
    pub fn simple(certificate: CertificateSource) -> Self {
        ServerTls {
            certificate,
            client_ca: None,
            subject_alt_names: Vec::new(),
            min_version: None,
            max_version: None,
            cipher_suites: Vec::new(),
        }
    }

    /// The Secrets (`namespace/name`) this TLS needs served.
    pub fn secrets(&self) -> impl Iterator<Item = &str> {
        let certificate = match &self.certificate {
            CertificateSource::Secret(name) => Some(name.as_str()),
            CertificateSource::Files { .. } => None,
        };
        let ca = match &self.client_ca {
            Some(CaSource::Secret(name)) => Some(name.as_str()),
            _ => None,
        };
        certificate.into_iter().chain(ca)
    }
}

/// A certificate Secret (`v1 Secret`: `kubernetes.io/tls`, or Istio's generic form),
/// its PEM contents checked. Never logged, never shown: the admin API names it with
/// its type and a hash.
#[derive(Clone, PartialEq, Eq)]
pub struct TlsSecret {
    /// `namespace/name`.
    pub name: String,
    /// The certificate chain and its key (`tls.crt` / `tls.key`, or `cert` / `key`);
    /// absent in a CA-only Secret (`<name>-cacert`).
    pub certificate: Option<(String, String)>,
    /// CA certificates (`ca.crt`, or `cacert`).
    pub ca: Option<String>,
}

impl std::fmt::Debug for TlsSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSecret")
            .field("name", &self.name)
            .field(
                "certificate",
                &self.certificate.as_ref().map(|_| "<redacted>"),
            )
            .field("ca", &self.ca.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}
