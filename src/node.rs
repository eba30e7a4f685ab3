//! Who a client is: node id, cluster, labels and kind (an Envoy proxy or a proxyless
//! gRPC client), from the first request's `Node`, and so which view it is served.

use std::sync::Arc;

use bytes::Bytes;
use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::google::protobuf::value::Kind;
use prost::Message;

use crate::model::Labels;
use crate::snapshot::{Snapshot, View};

/// The node metadata key under which a proxy declares its labels.
pub const LABELS_KEY: &str = "labels";

/// The node metadata key (Istio's) whose value `grpc` marks a proxyless gRPC client.
pub const GENERATOR_KEY: &str = "GENERATOR";

/// The client feature every gRPC xDS client declares (and Envoy does not).
const GRPC_CLIENT_FEATURE: &str = "envoy.lb.does_not_support_overprovisioning";

/// What kind of xDS client a node is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Client {
    #[default]
    Envoy,
    /// gRPC's built-in xDS support (`xds:///` targets): served API listeners.
    Grpc,
}

impl Client {
    pub fn as_str(self) -> &'static str {
        match self {
            Client::Envoy => "envoy",
            Client::Grpc => "grpc",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeInfo {
    pub id: String,
    pub cluster: String,
    pub labels: Labels,
    pub client: Client,
    /// `user_agent_name` and version as the node sent them (`envoy 1.40.0`,
    /// `gRPC Python 1.85.1`, ...).
    pub user_agent: String,
    /// The node as the client reported it (id, cluster, metadata, locality, user
    /// agent; not the long extension and feature lists), encoded, for CSDS.
    pub reported: Bytes,
}

impl NodeInfo {
    /// Reads id, cluster and the `labels` struct of the node metadata. Label values that
    /// are not strings are written as their JSON-ish text (numbers, booleans).
    pub fn from_node(node: &Node) -> NodeInfo {
        let mut labels = Labels::new();
        let fields = node
            .metadata
            .as_ref()
            .and_then(|m| m.fields.get(LABELS_KEY))
            .and_then(|v| match &v.kind {
                Some(Kind::StructValue(s)) => Some(&s.fields),
                _ => None,
            });
        if let Some(fields) = fields {
            for (key, value) in fields {
                let text = match &value.kind {
                    Some(Kind::StringValue(s)) => s.clone(),
                    Some(Kind::NumberValue(n)) => n.to_string(),
                    Some(Kind::BoolValue(b)) => b.to_string(),
                    _ => continue,
                };
                labels.insert(key.clone(), text);
            }
        }
        NodeInfo {
            id: node.id.clone(),
            cluster: node.cluster.clone(),
            labels,
            client: classify(node),
            user_agent: user_agent(node),
            reported: Bytes::from(reported(node).encode_to_vec()),
        }
    }

    /// The node as the client reported it (see [`NodeInfo::reported`]); a node from
    /// a fixture without one is its id and cluster.
    pub fn to_reported(&self) -> Node {
        match Node::decode(self.reported.as_ref()) {
            Ok(node) if !self.reported.is_empty() => node,
            _ => Node {
                id: self.id.clone(),
                cluster: self.cluster.clone(),
                ..Default::default()
            },
        }
    }

    /// The view this client is served: gRPC clients share one; an Envoy gets its
    /// Gateways' class.
    pub fn view_of(&self, snapshot: &Snapshot) -> Arc<View> {
        match self.client {
            Client::Grpc => snapshot.grpc_view(),
            Client::Envoy => snapshot.view_for(&self.labels),
        }
    }

    /// What this client was served before the snapshot, when it is known.
    pub fn previous_view_of(&self, snapshot: &Snapshot) -> Option<Arc<View>> {
        match self.client {
            Client::Grpc => snapshot.previous_view(&crate::snapshot::ViewClass::Grpc),
            Client::Envoy => snapshot.previous_view_for(&self.labels),
        }
    }
}

/// A gRPC client says so in its user agent (`gRPC Go`, `gRPC Java`, `gRPC C-core`,
/// `gRPC Python`, ...), with Istio's `GENERATOR: grpc` metadata, or, when its agent is
/// not `envoy`, with the client feature every gRPC declares; anything else is served as
/// an Envoy.
fn classify(node: &Node) -> Client {
    let generator = node
        .metadata
        .as_ref()
        .and_then(|m| m.fields.get(GENERATOR_KEY))
        .and_then(|v| match &v.kind {
            Some(Kind::StringValue(s)) => Some(s.as_str()),
            _ => None,
        });
    let grpc_agent = node
        .user_agent_name
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("grpc"));
    let envoy_agent = node.user_agent_name.eq_ignore_ascii_case("envoy");
    let grpc_feature = !envoy_agent
        && node
            .client_features
            .iter()
            .any(|f| f == GRPC_CLIENT_FEATURE);
    if generator.is_some_and(|g| g.eq_ignore_ascii_case("grpc")) || grpc_agent || grpc_feature {
        Client::Grpc
    } else {
        Client::Envoy
    }
}

/// What CSDS answers of a node: all it said but the extension and feature lists
/// (hundreds of entries from every Envoy, and not configuration).
fn reported(node: &Node) -> Node {
    Node {
        id: node.id.clone(),
        cluster: node.cluster.clone(),
        metadata: node.metadata.clone(),
        dynamic_parameters: node.dynamic_parameters.clone(),
        locality: node.locality.clone(),
        user_agent_name: node.user_agent_name.clone(),
        user_agent_version_type: node.user_agent_version_type.clone(),
        ..Default::default()
    }
}

fn user_agent(node: &Node) -> String {
    use envoy_types::pb::envoy::config::core::v3::node::UserAgentVersionType;
    let version = match &node.user_agent_version_type {
        Some(UserAgentVersionType::UserAgentVersion(v)) => v.clone(),
        Some(UserAgentVersionType::UserAgentBuildVersion(b)) => b
            .version
            .as_ref()
            .map(|v| format!("{}.{}.{}", v.major_number, v.minor_number, v.patch))
            .unwrap_or_default(),
        None => String::new(),
    };
    [node.user_agent_name.as_str(), version.as_str()]
        .iter()
        .filter(|s| !s.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::envoy::config::core::v3::node::UserAgentVersionType;
    use envoy_types::pb::google::protobuf::{Struct, Value};

    fn mk_node(agent: &str, features: &[&str], metadata: &[(&str, &str)]) -> Node {
        let fields = metadata
            .iter()
            .map(|(k, v)| {
                let value = Value {
                    kind: Some(Kind::StringValue(v.to_string())),
                };
                (k.to_string(), value)
            })
            .collect();
        Node {
            id: "n".into(),
            user_agent_name: agent.into(),
            user_agent_version_type: Some(UserAgentVersionType::UserAgentVersion("1.2.3".into())),
            client_features: features.iter().map(|f| f.to_string()).collect(),
            metadata: Some(Struct { fields }),
            ..Default::default()
        }
    }

    fn client(node: &Node) -> Client {
        NodeInfo::from_node(node).client
    }

    #[test]
    fn grpc_clients_are_known_by_agent_feature_or_generator() {
        for agent in [
            "gRPC Python",
            "gRPC Go",
            "gRPC Java",
            "gRPC C-core",
            "grpc-go",
        ] {
            assert_eq!(client(&mk_node(agent, &[], &[])), Client::Grpc, "{agent}");
        }
        let feature = mk_node("", &[GRPC_CLIENT_FEATURE], &[]);
        assert_eq!(client(&feature), Client::Grpc);
        let istio = mk_node("my-client", &[], &[(GENERATOR_KEY, "grpc")]);
        assert_eq!(client(&istio), Client::Grpc);
    }

    #[test]
    fn everything_else_is_an_envoy() {
        let envoy = mk_node("envoy", &[GRPC_CLIENT_FEATURE], &[]);
        assert_eq!(client(&envoy), Client::Envoy);
        assert_eq!(client(&Node::default()), Client::Envoy);
        let sidecar = mk_node("envoy", &[], &[(GENERATOR_KEY, "envoy")]);
        assert_eq!(client(&sidecar), Client::Envoy);
        assert_eq!(NodeInfo::from_node(&envoy).user_agent, "envoy 1.2.3");
    }
}
