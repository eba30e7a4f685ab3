//! An HTTPS client for tests (rustls): connects to 127.0.0.1 with a chosen SNI name,
//! trusting one CA, with or without a client certificate; keeps its connection for
//! several HTTP/1.1 requests, and says which certificate the server presented.

use std::io::{self, BufReader, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use super::http::{read_body, read_head};

pub struct TlsConn {
    stream: BufReader<StreamOwned<ClientConnection, TcpStream>>,
}

/// A TLS connection to `127.0.0.1:port` asking for `sni`, checked against `ca_pem`.
pub fn connect(
    port: u16,
    sni: &str,
    ca_pem: &str,
    client: Option<(&str, &str)>,
) -> io::Result<TlsConn> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots
            .add(cert.map_err(io::Error::other)?)
            .map_err(io::Error::other)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_root_certificates(roots);
    let config = match client {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let chain: Vec<CertificateDer<'static>> =
                CertificateDer::pem_slice_iter(cert.as_bytes())
                    .collect::<Result<_, _>>()
                    .map_err(io::Error::other)?;
            let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).map_err(io::Error::other)?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(io::Error::other)?
        }
    };
    let name = ServerName::try_from(sni.to_string()).map_err(io::Error::other)?;
    let conn = ClientConnection::new(Arc::new(config), name).map_err(io::Error::other)?;
    let tcp = TcpStream::connect(("127.0.0.1", port))?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut stream = StreamOwned::new(conn, tcp);
    // Drive the handshake now, so that a refusal shows here.
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock)?;
    }
    Ok(TlsConn {
        stream: BufReader::new(stream),
    })
}

impl TlsConn {
    /// `GET path` with `Host: host` on this connection: (status, body).
    pub fn get(&mut self, host: &str, path: &str) -> io::Result<(u16, String)> {
        let request = format!("GET {path} HTTP/1.1\r\nhost: {host}\r\n\r\n");
        let inner = self.stream.get_mut();
        inner.write_all(request.as_bytes())?;
        inner.flush()?;
        let (start, headers) = read_head(&mut self.stream)?
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "closed"))?;
        let status = start
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| io::Error::other(format!("bad status line {start:?}")))?;
        let body = read_body(&mut self.stream, &headers, false)?;
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }

    /// The DER of the certificate the server presented (its leaf).
    pub fn peer_certificate(&self) -> Vec<u8> {
        let conn = &self.stream.get_ref().conn;
        let chain = conn.peer_certificates().unwrap_or_default();
        chain.first().map(|c| c.to_vec()).unwrap_or_default()
    }
}

/// The DER of the first certificate of a PEM file's text.
pub fn der_of(pem: &str) -> Vec<u8> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()
        .expect("a certificate")
        .expect("valid PEM")
        .to_vec()
}
