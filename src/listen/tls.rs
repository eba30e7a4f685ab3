//! TLS server configurations from PEM files: a certificate chain and key, and for
//! mutual TLS the CA that client certificates must chain to.

use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

/// Where a port's TLS material is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
    /// Client certificates are required and must chain to this CA.
    pub client_ca: Option<std::path::PathBuf>,
}

/// The server configuration, offering HTTP/2 (and HTTP/1.1 where `http1` is set) by ALPN.
pub fn server_config(files: &TlsFiles, http1: bool) -> anyhow::Result<Arc<ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?;
    let builder = match &files.client_ca {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for cert in certificates(ca)? {
                roots
                    .add(cert)
                    .with_context(|| format!("{}: not a usable CA certificate", ca.display()))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .with_context(|| format!("{}: cannot verify clients with it", ca.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .with_context(|| format!("{}: no PEM private key", files.key.display()))?;
    let mut config = builder
        .with_single_cert(certificates(&files.cert)?, key)
        .with_context(|| {
            format!(
                "{} and {}: the certificate and key do not form a usable pair",
                files.cert.display(),
                files.key.display()
            )
        })?;
    config.alpn_protocols = match http1 {
        true => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
        false => vec![b"h2".to_vec()],
    };
    Ok(Arc::new(config))
}

fn certificates(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{}: not PEM certificates", path.display()))?;
    if certs.is_empty() {
        bail!("{}: holds no PEM certificate", path.display());
    }
    Ok(certs)
}
