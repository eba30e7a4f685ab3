//! The JSON shapes of the admin API: what clients rely on (SPEC section 3).

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::desired::Change;
use crate::ledger::{ProxyRecord, ProxyStatus};
use crate::snapshot::TypeKind;

/// RFC 3339 with milliseconds, UTC.
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// The answer to an apply, delete or restore.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApplyResponse {
    /// The revision now current (unchanged when nothing changed).
    pub revision: u64,
    /// Resource by resource, what changed.
    pub changed: Vec<Change>,
    /// With `?wait=`: where the connected proxies stand on the revision.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<RevisionStatus>,
}

/// The answer to a dry run: the Envoy-level diff, and what would change resource by
/// resource.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DryRunResponse {
    /// The current revision (a dry run makes none).
    pub revision: u64,
    #[serde(rename = "dryRun")]
    pub dry_run: bool,
    /// Envoy resources that would be added, changed or removed, and for which proxies.
    pub changed: Vec<EnvoyChange>,
    /// The stored resources that would be created, configured or deleted.
    pub resources: Vec<Change>,
}

#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
pub struct EnvoyChange {
    /// `Cluster`, `ClusterLoadAssignment`, `Listener` or `RouteConfiguration`.
    #[serde(rename = "type")]
    pub type_name: String,
    pub name: String,
    /// `added`, `changed` or `removed`.
    pub action: String,
    /// Node ids of the connected proxies it reaches.
    pub proxies: Vec<String>,
    /// The gateways that select the proxy class (empty: proxies no Gateway selects).
    pub gateways: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RevisionList {
    pub revisions: Vec<RevisionEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RevisionEntry {
    pub revision: u64,
    /// RFC 3339.
    pub created: String,
    pub summary: String,
}

/// Where the connected proxies stand on one revision.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RevisionStatus {
    pub revision: u64,
    /// Connected proxies.
    pub proxies: usize,
    /// How many of them have ACKed the revision (or a later one).
    pub acked: usize,
    /// Node ids still applying it.
    pub pending: Vec<String>,
    /// Proxies that NACKed it, with Envoy's error text.
    pub rejected: Vec<Rejection>,
}

impl RevisionStatus {
    pub fn of(revision: u64, proxies: &[ProxyRecord]) -> Self {
        let mut status = RevisionStatus {
            revision,
            proxies: proxies.len(),
            ..Default::default()
        };
        for p in proxies {
            match p.status_of(revision) {
                ProxyStatus::Acked => status.acked += 1,
                ProxyStatus::Pending => status.pending.push(p.node.id.clone()),
                ProxyStatus::Rejected(_) => {
                    for kind in TypeKind::ALL {
                        if let Some(n) =
                            p.get(kind).nack.as_ref().filter(|n| n.revision == revision)
                        {
                            status.rejected.push(Rejection {
                                node: p.node.id.clone(),
                                type_name: kind.short_name().to_string(),
                                version: n.version.clone(),
                                message: n.message.clone(),
                                at: rfc3339(n.at),
                            });
                        }
                    }
                }
            }
        }
        status
    }

    /// Every connected proxy has ACKed.
    pub fn complete(&self) -> bool {
        self.acked == self.proxies
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Rejection {
    pub node: String,
    /// `cds`, `eds`, `lds` or `rds`.
    #[serde(rename = "type")]
    pub type_name: String,
    pub version: String,
    pub message: String,
    pub at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProxyList {
    pub proxies: Vec<ProxyView>,
}

/// One connected proxy and its ledger.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProxyView {
    pub node: String,
    pub cluster: String,
    pub labels: BTreeMap<String, String>,
    /// `envoy`, or `grpc` for a proxyless gRPC client.
    pub client: String,
    /// The node's `user_agent_name` and version.
    #[serde(rename = "userAgent")]
    pub user_agent: String,
    #[serde(rename = "connectedSince")]
    pub connected_since: String,
    /// The revision this proxy's stream serves.
    pub revision: u64,
    /// Whether part of that revision is held back until the proxy has warmed the
    /// clusters it uses (make-before-break): the proxy does not serve it all yet.
    pub warming: bool,
    /// By type (`cds`, `eds`, `lds`, `rds`).
    pub types: BTreeMap<String, TypeView>,
    /// Open ADS streams of this node id (one proxy may reconnect, or several replicas
    /// may share one identity); the states above are its least advanced stream's.
    pub connections: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TypeView {
    /// The version last sent (null before any).
    #[schema(required = true)]
    pub served: Option<String>,
    /// The version last ACKed (null before any).
    #[schema(required = true)]
    pub acked: Option<String>,
    /// Served but not (yet) ACKed.
    pub pending: bool,
    #[serde(rename = "lastNack")]
    #[schema(required = true)]
    pub last_nack: Option<NackView>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NackView {
    pub version: String,
    pub message: String,
    pub at: String,
    pub revision: u64,
}

impl From<&ProxyRecord> for ProxyView {
    fn from(p: &ProxyRecord) -> Self {
        let types = TypeKind::ALL
            .into_iter()
            .map(|kind| {
                let t = p.get(kind);
                let view = TypeView {
                    served: t.served.clone(),
                    acked: t.acked.clone(),
                    pending: !t.in_sync(),
                    last_nack: t.nack.as_ref().map(|n| NackView {
                        version: n.version.clone(),
                        message: n.message.clone(),
                        at: rfc3339(n.at),
                        revision: n.revision,
                    }),
                };
                (kind.short_name().to_string(), view)
            })
            .collect();
        ProxyView {
            node: p.node.id.clone(),
            cluster: p.node.cluster.clone(),
            labels: p.node.labels.clone(),
            client: p.node.client.as_str().to_string(),
            user_agent: p.node.user_agent.clone(),
            connected_since: rfc3339(p.connected_since),
            revision: p.revision,
            warming: p.holding,
            types,
            connections: p.connections,
        }
    }
}
