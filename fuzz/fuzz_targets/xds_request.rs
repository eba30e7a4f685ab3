//! Fuzz target: bytes as the requests of one ADS stream, decoded as the server does
//! (`SotwRequest`, or `DeltaDiscoveryRequest`) and fed through the sans-IO SotW or
//! Delta state machine over a small fixed configuration, as `xds::server` runs it:
//! the first request's node picks the view, later steps bring requests, replies to
//! the responses sent, new snapshots and the absent-cluster grace running out.
//!
//! Input: a first byte whose low bit picks the protocol (0 SotW, 1 Delta), then steps
//! of one op byte each: `op % 4` 0: a request, a `u16` little-endian length and that
//! many bytes; 1: an ACK (a NACK when `op >= 128`) of an unanswered response picked by
//! `op / 4`; 2: the next snapshot; 3: the grace for absent clusters runs out.
//!
//! Checks, beyond never panicking: a `DiscoveryRequest` that prost decodes reads the
//! same as a `SotwRequest`, and every response encodes to exactly its stated length
//! and decodes as its protobuf message.
#![no_main]

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use coalmine::ingest::parse_documents;
use coalmine::resource_set::build_config;
use coalmine::snapshot::{Snapshot, TypeKind};
use coalmine::xds::codec::WireResponse;
use coalmine::xds::delta::{DeltaResponse, DeltaStream};
use coalmine::xds::server::StreamProtocol;
use coalmine::xds::{NodeInfo, Response, SotwRequest, SotwStream};
use coalmine_fuzz::take_len;
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use envoy_types::pb::google::rpc::Status;
use libfuzzer_sys::fuzz_target;
use prost::Message;

/// Two configurations: a Gateway and a mesh route splitting petstore 90/10 over two
/// subsets, then 50/50 with a third service routed by path.
fn config(weight: u32, extra: bool) -> String {
    let mut out = format!(
        "apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: gw}}
spec:
  selector: {{app: gw}}
  servers:
  - port: {{number: 8080, name: http, protocol: HTTP}}
    hosts: [\"*\"]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: petstore}}
spec:
  hosts: [petstore]
  ports: [{{number: 80, name: http, protocol: HTTP}}]
  resolution: STATIC
  endpoints:
  - {{address: 10.0.0.1, ports: {{http: 8081}}, labels: {{version: v1}}}}
  - {{address: 10.0.0.2, ports: {{http: 8082}}, labels: {{version: v2}}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: petstore}}
spec:
  host: petstore
  subsets:
  - {{name: v1, labels: {{version: v1}}}}
  - {{name: v2, labels: {{version: v2}}}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: petstore}}
spec:
  hosts: [\"*\", petstore]
  gateways: [gw, mesh]
  http:
{}  - route:
    - destination: {{host: petstore, subset: v1}}
      weight: {}
    - destination: {{host: petstore, subset: v2}}
      weight: {}
",
        if extra {
            "  - match: [{uri: {prefix: /other}}]\n    route:\n    - destination: {host: other}\n"
        } else {
            ""
        },
        100 - weight,
        weight
    );
    if extra {
        out.push_str(
            "---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: other}
spec:
  hosts: [other]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints:
  - {address: 10.0.1.1}
",
        );
    }
    out
}

/// Revisions 1 (90/10), 2 (50/50 and a new service) and 3 (back to 90/10), each built
/// from the one before as the server builds them.
fn snapshots() -> &'static [Arc<Snapshot>; 3] {
    static SNAPSHOTS: OnceLock<[Arc<Snapshot>; 3]> = OnceLock::new();
    SNAPSHOTS.get_or_init(|| {
        let config = |w, extra| {
            let docs = parse_documents(&config(w, extra)).expect("the fixture parses");
            Arc::new(build_config(&docs, &BTreeMap::new()).expect("the fixture is valid"))
        };
        let one = Arc::new(Snapshot::new(config(10, false), 1));
        let two = Arc::new(Snapshot::next(&one, config(50, true), 2));
        let three = Arc::new(Snapshot::next(&two, config(10, false), 3));
        [one, two, three]
    })
}

/// What the target needs of a protocol beyond what the server uses.
trait Fuzzed: StreamProtocol + Sized {
    fn decode(frame: &[u8]) -> Option<Self::Request>;
    fn type_url(req: &Self::Request) -> &str;
    /// The client's ACK (or NACK) of `resp`; `last` is its last request of that type.
    fn reply(resp: &Self::Response, last: Option<&Self::Request>, nack: bool) -> Self::Request;
    /// Checks that `resp` decodes as what it claims to be.
    fn check_wire(resp: &Self::Response, wire: &[u8]);
}

fn nack_status(nack: bool) -> Option<Status> {
    nack.then(|| Status {
        code: 3,
        message: "rejected".into(),
        details: vec![],
    })
}

impl Fuzzed for SotwStream {
    fn decode(frame: &[u8]) -> Option<SotwRequest> {
        let ours = SotwRequest::decode(Bytes::copy_from_slice(frame));
        if let Ok(theirs) = DiscoveryRequest::decode(frame) {
            let ours = ours.as_ref().expect("what prost reads, SotwRequest reads");
            assert_eq!(
                *ours,
                SotwRequest::from(theirs),
                "SotwRequest reads otherwise"
            );
        }
        ours.ok()
    }

    fn type_url(req: &SotwRequest) -> &str {
        &req.type_url
    }

    fn reply(resp: &Response, last: Option<&SotwRequest>, nack: bool) -> SotwRequest {
        let last = last.cloned().unwrap_or_default();
        SotwRequest {
            version_info: match nack {
                true => last.version_info,
                false => resp.version.clone(),
            },
            node: None,
            type_url: resp.kind.type_url().into(),
            response_nonce: resp.nonce.clone(),
            error_detail: nack_status(nack),
            ..last
        }
    }

    fn check_wire(resp: &Response, wire: &[u8]) {
        let decoded = DiscoveryResponse::decode(wire).expect("a response decodes");
        assert_eq!(decoded.nonce, resp.nonce);
        assert_eq!(decoded.resources.len(), resp.resources.len());
    }
}

impl Fuzzed for DeltaStream {
    fn decode(frame: &[u8]) -> Option<DeltaDiscoveryRequest> {
        DeltaDiscoveryRequest::decode(frame).ok()
    }

    fn type_url(req: &DeltaDiscoveryRequest) -> &str {
        &req.type_url
    }

    fn reply(
        resp: &DeltaResponse,
        _last: Option<&DeltaDiscoveryRequest>,
        nack: bool,
    ) -> DeltaDiscoveryRequest {
        DeltaDiscoveryRequest {
            type_url: resp.kind.type_url().into(),
            response_nonce: resp.nonce.clone(),
            error_detail: nack_status(nack),
            ..Default::default()
        }
    }

    fn check_wire(resp: &DeltaResponse, wire: &[u8]) {
        let decoded = DeltaDiscoveryResponse::decode(wire).expect("a response decodes");
        assert_eq!(decoded.nonce, resp.nonce);
        assert_eq!(decoded.removed_resources, resp.removed);
    }
}

/// Reads the next request frame, or `None` once the input runs out or a request
/// does not decode (the server ends the stream then).
fn request<P: Fuzzed>(data: &mut &[u8]) -> Option<P::Request> {
    let (len, rest) = take_len(data)?;
    let (frame, rest) = rest.split_at(len.min(rest.len()));
    *data = rest;
    P::decode(frame)
}

/// Writes each response as the server would, and keeps it for a later reply.
fn deliver<P: Fuzzed>(out: Vec<P::Response>, pending: &mut Vec<P::Response>) {
    for resp in out {
        let mut wire = Vec::new();
        resp.encode_raw(&mut wire);
        assert_eq!(wire.len(), resp.encoded_len(), "a response's stated length");
        P::check_wire(&resp, &wire);
        pending.push(resp);
    }
}

fn run<P: Fuzzed>(mut data: &[u8]) {
    let Some(first) = request::<P>(&mut data) else {
        return;
    };
    let snapshots = snapshots();
    let mut current = 0;
    let node = P::node(&first).map(NodeInfo::from_node).unwrap_or_default();
    let previous = P::resumes(&first)
        .then(|| node.previous_view_of(&snapshots[current]))
        .flatten();
    let mut stream = P::new(node.view_of(&snapshots[current]), previous);
    let mut pending = Vec::new();
    let mut last: [Option<P::Request>; 4] = Default::default();
    let out = stream.handle_request(&first);
    deliver::<P>(out.responses, &mut pending);
    remember::<P>(&mut last, first);
    while let Some((&op, rest)) = data.split_first() {
        data = rest;
        let out = match op % 4 {
            0 => {
                let Some(req) = request::<P>(&mut data) else {
                    return;
                };
                let out = stream.handle_request(&req);
                remember::<P>(&mut last, req);
                out
            }
            1 if !pending.is_empty() => {
                let resp = pending.remove(usize::from(op / 4) % pending.len());
                let kind = P::kind_of(&resp);
                let reply = P::reply(&resp, last[slot(kind)].as_ref(), op >= 128);
                let out = stream.handle_request(&reply);
                remember::<P>(&mut last, reply);
                out
            }
            2 => {
                current = (current + 1) % snapshots.len();
                stream.handle_view(node.view_of(&snapshots[current]))
            }
            3 if stream.waiting_absent() => stream.absent_expired(),
            _ => continue,
        };
        deliver::<P>(out.responses, &mut pending);
        for kind in TypeKind::ALL {
            let _ = (stream.sent(kind), stream.acked(kind), stream.converged());
        }
    }
}

/// Where `kind` is kept in a per-type array.
fn slot(kind: TypeKind) -> usize {
    TypeKind::ALL
        .iter()
        .position(|k| *k == kind)
        .expect("every kind is listed")
}

/// Keeps a client's last request per type, to repeat its names in an ACK.
fn remember<P: Fuzzed>(last: &mut [Option<P::Request>; 4], req: P::Request) {
    if let Some(kind) = TypeKind::from_type_url(P::type_url(&req)) {
        last[slot(kind)] = Some(req);
    }
}

fuzz_target!(|data: &[u8]| {
    match data.split_first() {
        Some((mode, rest)) if mode % 2 == 0 => run::<SotwStream>(rest),
        Some((_, rest)) => run::<DeltaStream>(rest),
        None => {}
    }
});
