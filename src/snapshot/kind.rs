//! The five resource types coalmine serves, in the order ADS pushes them.

use std::fmt;

/// Resource types in xDS push order: CDS, EDS, LDS, RDS, then SDS. Envoy asks for a
/// secret by name once a listener names it and keeps that listener warming until the
/// secret arrives, so a secret after its listener never serves a listener without it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TypeKind {
    Cluster,
    Endpoint,
    Listener,
    Route,
    Secret,
}

impl TypeKind {
    /// How many types there are.
    pub const COUNT: usize = 5;

    /// Every type, in push order.
    pub const ALL: [TypeKind; TypeKind::COUNT] = [
        TypeKind::Cluster,
        TypeKind::Endpoint,
        TypeKind::Listener,
        TypeKind::Route,
        TypeKind::Secret,
    ];

    pub fn type_url(self) -> &'static str {
        match self {
            TypeKind::Cluster => "type.googleapis.com/envoy.config.cluster.v3.Cluster",
            TypeKind::Endpoint => {
                "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
            }
            TypeKind::Listener => "type.googleapis.com/envoy.config.listener.v3.Listener",
            TypeKind::Route => "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
            TypeKind::Secret => {
                "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"
            }
        }
    }

    pub fn from_type_url(url: &str) -> Option<TypeKind> {
        TypeKind::ALL.into_iter().find(|k| k.type_url() == url)
    }

    /// The Envoy message name: `Cluster`, `ClusterLoadAssignment`, ...
    pub fn message_name(self) -> &'static str {
        self.type_url().rsplit('.').next().unwrap_or_default()
    }

    /// Short name, as Envoy's stats and coalmine's API use it.
    pub fn short_name(self) -> &'static str {
        match self {
            TypeKind::Cluster => "cds",
            TypeKind::Endpoint => "eds",
            TypeKind::Listener => "lds",
            TypeKind::Route => "rds",
            TypeKind::Secret => "sds",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for TypeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.short_name())
    }
}
