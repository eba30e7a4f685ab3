//! `coalmine serve`'s flags for TLS, client identity and connection limits on both
//! ports, turned into [`ListenOptions`].

use std::path::PathBuf;
use std::time::Duration;

use crate::listen::tls::TlsFiles;
use crate::listen::{Limits, ListenOptions};

#[derive(Debug, Clone, clap::Args)]
pub struct ListenArgs {
    /// PEM certificate chain for xDS over TLS.
    #[arg(long, env = "COALMINE_XDS_TLS_CERT", requires = "xds_tls_key")]
    pub xds_tls_cert: Option<PathBuf>,
    /// PEM private key of --xds-tls-cert.
    #[arg(long, env = "COALMINE_XDS_TLS_KEY", requires = "xds_tls_cert")]
    pub xds_tls_key: Option<PathBuf>,
    /// PEM CA bundle: proxies must present a certificate it signed (mutual TLS), and
    /// may claim only the node ids their certificate's names allow (see README).
    #[arg(long, env = "COALMINE_XDS_CLIENT_CA", requires = "xds_tls_cert")]
    pub xds_client_ca: Option<PathBuf>,
    /// Serve xDS on a non-loopback address without client certificates (any client
    /// may then claim any node id).
    #[arg(long, env = "COALMINE_INSECURE_XDS")]
    pub insecure_xds: bool,
    /// PEM certificate chain for the admin API over TLS (HTTPS).
    #[arg(long, env = "COALMINE_ADMIN_TLS_CERT", requires = "admin_tls_key")]
    pub admin_tls_cert: Option<PathBuf>,
    /// PEM private key of --admin-tls-cert.
    #[arg(long, env = "COALMINE_ADMIN_TLS_KEY", requires = "admin_tls_cert")]
    pub admin_tls_key: Option<PathBuf>,
    /// How long a new connection has for its TLS handshake and its first bytes (the
    /// HTTP/2 preface, a request's headers) before it is closed.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub handshake_timeout: Duration,
    /// How long an open connection may stay silent before it is closed. Live proxies
    /// answer the keepalive pings; keep it above the longest admin `?wait=` (5m).
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    pub idle_timeout: Duration,
    /// Open connections on the xDS port; more are closed as they arrive.
    #[arg(long, default_value_t = 16_384)]
    pub max_connections: usize,
    /// Open connections on the admin port; more are closed as they arrive.
    #[arg(long, default_value_t = 512)]
    pub admin_max_connections: usize,
    /// HTTP/2 streams open at once on one connection (both ports).
    #[arg(long, default_value_t = 100)]
    pub max_streams_per_connection: u32,
    /// Interval of HTTP/2 keepalive pings on both ports.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub keepalive_interval: Duration,
    /// A connection that does not answer a keepalive ping within this is closed.
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    pub keepalive_timeout: Duration,
}

impl ListenArgs {
    pub fn options(self) -> ListenOptions {
        let tls = |cert: Option<PathBuf>, key: Option<PathBuf>, client_ca| {
            Some(TlsFiles {
                cert: cert?,
                key: key?,
                client_ca,
            })
        };
        let limits = |max_connections| Limits {
            max_connections,
            handshake_timeout: self.handshake_timeout,
            idle_timeout: self.idle_timeout,
        };
        ListenOptions {
            xds_tls: tls(self.xds_tls_cert, self.xds_tls_key, self.xds_client_ca),
            admin_tls: tls(self.admin_tls_cert, self.admin_tls_key, None),
            insecure_xds: self.insecure_xds,
            xds: limits(self.max_connections),
            admin: limits(self.admin_max_connections),
            max_streams: self.max_streams_per_connection,
            keepalive_interval: self.keepalive_interval,
            keepalive_timeout: self.keepalive_timeout,
        }
    }
}
