//! Who a proxy is: node id, cluster and labels, from the first request's `Node`.

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::google::protobuf::value::Kind;

use crate::model::Labels;

/// The node metadata key under which a proxy declares its labels.
pub const LABELS_KEY: &str = "labels";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeInfo {
    pub id: String,
    pub cluster: String,
    pub labels: Labels,
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
        }
    }
}
