//! The wire form of ADS responses, written straight from each resource's shared,
//! already-encoded bytes.
//!
//! A `DiscoveryResponse` built with prost would copy every resource into a fresh `Any`
//! per stream; here the response's fields are written by hand around the shared bytes,
//! into a buffer of the exact size (see [`super::body`]).

use bytes::BufMut;
use prost::encoding::{encode_key, encode_varint, encoded_len_varint, key_len, string, WireType};

use super::delta::DeltaResponse;
use super::sotw::Response;

/// The identifier Envoy shows as the control plane in its config dump.
pub const CONTROL_PLANE_ID: &str = "coalmine";

// Field numbers of envoy.service.discovery.v3.DiscoveryResponse.
const VERSION_INFO: u32 = 1;
const RESOURCES: u32 = 2;
const TYPE_URL: u32 = 4;
const NONCE: u32 = 5;
const CONTROL_PLANE: u32 = 6;

// Field numbers of envoy.service.discovery.v3.DeltaDiscoveryResponse and Resource.
const DELTA_SYSTEM_VERSION: u32 = 1;
const DELTA_RESOURCES: u32 = 2;
const DELTA_TYPE_URL: u32 = 4;
const DELTA_NONCE: u32 = 5;
const DELTA_REMOVED: u32 = 6;
const DELTA_CONTROL_PLANE: u32 = 7;
const RESOURCE_VERSION: u32 = 1;
const RESOURCE_ANY: u32 = 2;
const RESOURCE_NAME: u32 = 3;

fn encode_control_plane(field: u32, buf: &mut impl BufMut) {
    let id = CONTROL_PLANE_ID.to_string();
    encode_key(field, WireType::LengthDelimited, buf);
    encode_varint(string::encoded_len(1, &id) as u64, buf);
    string::encode(1, &id, buf);
}

/// Writes a Delta response as an encoded `DeltaDiscoveryResponse`, each resource's
/// `Any` straight from its shared bytes.
pub fn encode_delta_response(resp: &DeltaResponse, buf: &mut impl BufMut) {
    string::encode(DELTA_SYSTEM_VERSION, &resp.system_version, buf);
    for r in &resp.resources {
        let body_len = delta_resource_len(r);
        encode_key(DELTA_RESOURCES, WireType::LengthDelimited, buf);
        encode_varint(body_len as u64, buf);
        string::encode(RESOURCE_VERSION, &r.version, buf);
        encode_key(RESOURCE_ANY, WireType::LengthDelimited, buf);
        encode_varint(r.any.len() as u64, buf);
        buf.put_slice(&r.any);
        string::encode(RESOURCE_NAME, &r.name, buf);
    }
    string::encode(DELTA_TYPE_URL, &resp.kind.type_url().to_string(), buf);
    string::encode(DELTA_NONCE, &resp.nonce, buf);
    for name in &resp.removed {
        string::encode(DELTA_REMOVED, name, buf);
    }
    encode_control_plane(DELTA_CONTROL_PLANE, buf);
}

/// Writes a SotW response as an encoded `DiscoveryResponse`.
pub fn encode_response(resp: &Response, buf: &mut impl BufMut) {
    string::encode(VERSION_INFO, &resp.version, buf);
    for r in &resp.resources {
        encode_key(RESOURCES, WireType::LengthDelimited, buf);
        encode_varint(r.any.len() as u64, buf);
        buf.put_slice(&r.any);
    }
    string::encode(TYPE_URL, &resp.kind.type_url().to_string(), buf);
    string::encode(NONCE, &resp.nonce, buf);
    encode_key(CONTROL_PLANE, WireType::LengthDelimited, buf);
    encode_varint(
        string::encoded_len(1, &CONTROL_PLANE_ID.to_string()) as u64,
        buf,
    );
    string::encode(1, &CONTROL_PLANE_ID.to_string(), buf);
}

/// A response that knows its exact encoded size and how to write itself.
pub trait WireResponse: Send + 'static {
    fn encoded_len(&self) -> usize;
    fn encode_raw(&self, buf: &mut Vec<u8>);
}

impl WireResponse for Response {
    fn encoded_len(&self) -> usize {
        response_len(self)
    }
    fn encode_raw(&self, buf: &mut Vec<u8>) {
        encode_response(self, buf)
    }
}

impl WireResponse for DeltaResponse {
    fn encoded_len(&self) -> usize {
        delta_response_len(self)
    }
    fn encode_raw(&self, buf: &mut Vec<u8>) {
        encode_delta_response(self, buf)
    }
}

fn control_plane_len(field: u32) -> usize {
    let inner = string::encoded_len(1, &CONTROL_PLANE_ID.to_string());
    key_len(field) + encoded_len_varint(inner as u64) + inner
}

fn bytes_field_len(field: u32, len: usize) -> usize {
    key_len(field) + encoded_len_varint(len as u64) + len
}

/// The exact size of [`encode_response`]'s output.
pub fn response_len(resp: &Response) -> usize {
    string::encoded_len(VERSION_INFO, &resp.version)
        + resp
            .resources
            .iter()
            .map(|r| bytes_field_len(RESOURCES, r.any.len()))
            .sum::<usize>()
        + string::encoded_len(TYPE_URL, &resp.kind.type_url().to_string())
        + string::encoded_len(NONCE, &resp.nonce)
        + control_plane_len(CONTROL_PLANE)
}

fn delta_resource_len(r: &crate::snapshot::Encoded) -> usize {
    string::encoded_len(RESOURCE_VERSION, &r.version)
        + bytes_field_len(RESOURCE_ANY, r.any.len())
        + string::encoded_len(RESOURCE_NAME, &r.name)
}

/// The exact size of [`encode_delta_response`]'s output.
pub fn delta_response_len(resp: &DeltaResponse) -> usize {
    string::encoded_len(DELTA_SYSTEM_VERSION, &resp.system_version)
        + resp
            .resources
            .iter()
            .map(|r| bytes_field_len(DELTA_RESOURCES, delta_resource_len(r)))
            .sum::<usize>()
        + string::encoded_len(DELTA_TYPE_URL, &resp.kind.type_url().to_string())
        + string::encoded_len(DELTA_NONCE, &resp.nonce)
        + resp
            .removed
            .iter()
            .map(|n| string::encoded_len(DELTA_REMOVED, n))
            .sum::<usize>()
        + control_plane_len(DELTA_CONTROL_PLANE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{Encoded, TypeKind};
    use envoy_types::pb::envoy::config::cluster::v3::Cluster;
    use envoy_types::pb::envoy::service::discovery::v3::DiscoveryResponse;
    use envoy_types::pb::google::protobuf::Any;
    use prost::Message;
    use std::sync::Arc;

    #[test]
    fn hand_written_response_decodes_as_discovery_response() {
        let cluster = Cluster {
            name: "outbound|80|v1|petstore".into(),
            ..Default::default()
        };
        let any = Any {
            type_url: TypeKind::Cluster.type_url().into(),
            value: cluster.encode_to_vec(),
        };
        let resp = Response {
            kind: TypeKind::Cluster,
            version: "abc".into(),
            nonce: "7".into(),
            resources: vec![Arc::new(Encoded::new(
                cluster.name.clone(),
                "v",
                any.encode_to_vec().into(),
            ))],
        };
        let mut buf = Vec::new();
        encode_response(&resp, &mut buf);
        assert_eq!(buf.len(), response_len(&resp));
        let decoded = DiscoveryResponse::decode(buf.as_slice()).unwrap();
        assert_eq!(decoded.version_info, "abc");
        assert_eq!(decoded.nonce, "7");
        assert_eq!(decoded.type_url, TypeKind::Cluster.type_url());
        assert_eq!(decoded.resources, vec![any]);
        assert_eq!(decoded.control_plane.unwrap().identifier, CONTROL_PLANE_ID);
        let back = Cluster::decode(decoded.resources[0].value.as_slice()).unwrap();
        assert_eq!(back, cluster);
    }

    #[test]
    fn hand_written_delta_response_decodes_as_delta_discovery_response() {
        use envoy_types::pb::envoy::service::discovery::v3::DeltaDiscoveryResponse;
        let any = Any {
            type_url: TypeKind::Cluster.type_url().into(),
            value: Cluster {
                name: "c1".into(),
                ..Default::default()
            }
            .encode_to_vec(),
        };
        let resp = DeltaResponse {
            kind: TypeKind::Cluster,
            system_version: "sys".into(),
            nonce: "3".into(),
            resources: vec![Arc::new(Encoded::new(
                "c1",
                "v1",
                any.encode_to_vec().into(),
            ))],
            removed: vec!["old".into()],
        };
        let mut buf = Vec::new();
        encode_delta_response(&resp, &mut buf);
        assert_eq!(buf.len(), delta_response_len(&resp));
        let decoded = DeltaDiscoveryResponse::decode(buf.as_slice()).unwrap();
        assert_eq!(decoded.system_version_info, "sys");
        assert_eq!(decoded.nonce, "3");
        assert_eq!(decoded.type_url, TypeKind::Cluster.type_url());
        assert_eq!(decoded.removed_resources, ["old"]);
        assert_eq!(decoded.resources.len(), 1);
        assert_eq!(decoded.resources[0].name, "c1");
        assert_eq!(decoded.resources[0].version, "v1");
        assert_eq!(decoded.resources[0].resource.as_ref(), Some(&any));
        assert_eq!(decoded.control_plane.unwrap().identifier, CONTROL_PLANE_ID);
    }
}
