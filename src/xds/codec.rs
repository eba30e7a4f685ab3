//! The gRPC codec of the ADS stream: decodes requests with prost, and writes responses
//! straight from each resource's shared, already-encoded bytes.
//!
//! A `DiscoveryResponse` built with prost would copy every resource into a fresh
//! `Any` per stream; here the response's fields are written by hand around the shared
//! `Bytes`, so the only per-stream copy is the write into the HTTP/2 buffer.

use bytes::BufMut;
use envoy_types::pb::envoy::service::discovery::v3::DiscoveryRequest;
use prost::encoding::{encode_key, encode_varint, string, WireType};
use tonic::codec::{Codec, EncodeBuf, Encoder};
use tonic::Status;
use tonic_prost::ProstDecoder;

use super::sotw::Response;

/// The identifier Envoy shows as the control plane in its config dump.
pub const CONTROL_PLANE_ID: &str = "coalmine";

// Field numbers of envoy.service.discovery.v3.DiscoveryResponse.
const VERSION_INFO: u32 = 1;
const RESOURCES: u32 = 2;
const TYPE_URL: u32 = 4;
const NONCE: u32 = 5;
const CONTROL_PLANE: u32 = 6;

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

#[derive(Debug, Clone, Copy, Default)]
pub struct SotwCodec;

#[derive(Debug, Clone, Copy, Default)]
pub struct SotwEncoder;

impl Encoder for SotwEncoder {
    type Item = Response;
    type Error = Status;

    fn encode(&mut self, item: Response, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        encode_response(&item, dst);
        Ok(())
    }
}

impl Codec for SotwCodec {
    type Encode = Response;
    type Decode = DiscoveryRequest;
    type Encoder = SotwEncoder;
    type Decoder = ProstDecoder<DiscoveryRequest>;

    fn encoder(&mut self) -> SotwEncoder {
        SotwEncoder
    }

    fn decoder(&mut self) -> ProstDecoder<DiscoveryRequest> {
        ProstDecoder::default()
    }
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
            resources: vec![Arc::new(Encoded {
                name: cluster.name.clone(),
                version: "v".into(),
                any: any.encode_to_vec().into(),
            })],
        };
        let mut buf = Vec::new();
        encode_response(&resp, &mut buf);
        let decoded = DiscoveryResponse::decode(buf.as_slice()).unwrap();
        assert_eq!(decoded.version_info, "abc");
        assert_eq!(decoded.nonce, "7");
        assert_eq!(decoded.type_url, TypeKind::Cluster.type_url());
        assert_eq!(decoded.resources, vec![any]);
        assert_eq!(decoded.control_plane.unwrap().identifier, CONTROL_PLANE_ID);
        let back = Cluster::decode(decoded.resources[0].value.as_slice()).unwrap();
        assert_eq!(back, cluster);
    }
}
