//! The SotW request as coalmine decodes it: `DiscoveryRequest`'s fields, with the
//! resource names kept as slices of the received message instead of one `String` each.
//! An ACK of an EDS subscription repeats every name (thousands), so decoding names
//! without an allocation apiece is most of what an ACK costs.

use bytes::Bytes;
use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::discovery::v3::DiscoveryRequest;
use envoy_types::pb::google::rpc::Status;

/// `envoy.service.discovery.v3.DiscoveryRequest` on the wire (field 7,
/// `resource_locators`, is not read). Names that are not UTF-8 never match a resource.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SotwRequest {
    #[prost(string, tag = "1")]
    pub version_info: String,
    #[prost(message, optional, tag = "2")]
    pub node: Option<Node>,
    #[prost(bytes = "bytes", repeated, tag = "3")]
    pub resource_names: Vec<Bytes>,
    #[prost(string, tag = "4")]
    pub type_url: String,
    #[prost(string, tag = "5")]
    pub response_nonce: String,
    #[prost(message, optional, tag = "6")]
    pub error_detail: Option<Status>,
}

impl SotwRequest {
    /// The resource names, as text.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.resource_names
            .iter()
            .map(|n| std::str::from_utf8(n).unwrap_or("\u{fffd}"))
    }
}

impl From<DiscoveryRequest> for SotwRequest {
    fn from(r: DiscoveryRequest) -> SotwRequest {
        SotwRequest {
            version_info: r.version_info,
            node: r.node,
            resource_names: r.resource_names.into_iter().map(Bytes::from).collect(),
            type_url: r.type_url,
            response_nonce: r.response_nonce,
            error_detail: r.error_detail,
        }
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    #[test]
    fn decodes_what_envoy_encodes() {
        let envoy = DiscoveryRequest {
            version_info: "v1".into(),
            node: Some(Node {
                id: "n".into(),
                ..Default::default()
            }),
            resource_names: vec!["outbound|80|v1|a".into(), "b".into()],
            type_url: "t".into(),
            response_nonce: "3".into(),
            error_detail: Some(Status {
                code: 3,
                message: "bad".into(),
                details: vec![],
            }),
            resource_locators: vec![Default::default()],
        };
        let wire = Bytes::from(envoy.encode_to_vec());
        let ours = SotwRequest::decode(wire).unwrap();
        assert_eq!(ours.names().collect::<Vec<_>>(), ["outbound|80|v1|a", "b"]);
        let converted = SotwRequest::from(DiscoveryRequest {
            resource_locators: vec![],
            ..envoy
        });
        assert_eq!(ours, converted);
    }
}
