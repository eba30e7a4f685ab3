//! The tonic edge of ADS: one task per stream that `select!`s between the proxy's
//! requests, new snapshots and shutdown, and writes what [`SotwStream`] returns.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::SystemTime;

use envoy_types::pb::envoy::service::discovery::v3::DiscoveryRequest;
use futures::future::BoxFuture;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::body::Body;
use tonic::server::{Grpc, NamedService};
use tonic::{Request, Status, Streaming};
use tracing::{debug, info, warn};

use super::codec::SotwCodec;
use super::node::NodeInfo;
use super::sotw::{Event, Output, Response, SotwStream};
use crate::ledger::{Ledger, NackRecord, ProxyRecord};
use crate::metrics::Metrics;
use crate::snapshot::{Snapshot, TypeKind};

const SOTW_PATH: &str =
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources";

/// What every stream shares: the current snapshot, the ledger, metrics and the
/// shutdown signal.
#[derive(Debug, Clone)]
pub struct XdsState {
    pub snapshots: watch::Receiver<Arc<Snapshot>>,
    pub shutdown: watch::Receiver<bool>,
    pub ledger: Arc<Ledger>,
    pub metrics: Arc<Metrics>,
}

/// The `AggregatedDiscoveryService` as a tower service, so that responses go through
/// coalmine's own codec.
#[derive(Debug, Clone)]
pub struct AdsService {
    state: XdsState,
}

impl AdsService {
    pub fn new(state: XdsState) -> Self {
        Self { state }
    }
}

impl NamedService for AdsService {
    const NAME: &'static str = "envoy.service.discovery.v3.AggregatedDiscoveryService";
}

impl<B> tower::Service<http::Request<B>> for AdsService
where
    B: http_body::Body + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let state = self.state.clone();
        match req.uri().path() {
            SOTW_PATH => Box::pin(async move {
                let method =
                    tower::service_fn(move |request: Request<Streaming<DiscoveryRequest>>| {
                        let state = state.clone();
                        async move {
                            Ok::<_, Status>(tonic::Response::new(open_sotw(
                                state,
                                request.into_inner(),
                            )))
                        }
                    });
                Ok(Grpc::new(SotwCodec).streaming(method, req).await)
            }),
            _ => Box::pin(async move {
                Ok(Status::unimplemented("coalmine serves StreamAggregatedResources").into_http())
            }),
        }
    }
}

type ResponseStream = ReceiverStream<Result<Response, Status>>;

fn open_sotw(state: XdsState, requests: Streaming<DiscoveryRequest>) -> ResponseStream {
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(run_sotw(state, requests, tx));
    ReceiverStream::new(rx)
}

async fn run_sotw(
    mut state: XdsState,
    mut requests: Streaming<DiscoveryRequest>,
    tx: mpsc::Sender<Result<Response, Status>>,
) {
    let first = match requests.message().await {
        Ok(Some(req)) => req,
        _ => return,
    };
    let node = first.node.as_ref().map(NodeInfo::from_node).unwrap_or_default();
    info!(node = %node.id, cluster = %node.cluster, labels = ?node.labels, "proxy connected");
    let mut snapshot = state.snapshots.borrow_and_update().clone();
    let mut stream = SotwStream::new(snapshot.view_for(&node.labels));
    let id = state.ledger.connect(ProxyRecord::new(node.clone(), snapshot.revision()));
    state.metrics.connected(1);
    let mut out = stream.handle_request(&first);
    loop {
        record(&state, id, &snapshot, &stream, &out);
        if !deliver(&state, &node, &snapshot, out, &tx).await {
            break;
        }
        out = tokio::select! {
            req = requests.message() => match req {
                Ok(Some(req)) => stream.handle_request(&req),
                Ok(None) => break,
                Err(status) => {
                    debug!(node = %node.id, %status, "stream error");
                    break;
                }
            },
            changed = state.snapshots.changed() => {
                if changed.is_err() {
                    break;
                }
                snapshot = state.snapshots.borrow_and_update().clone();
                stream.handle_view(snapshot.view_for(&node.labels))
            },
            _ = stopped(&mut state.shutdown) => {
                let _ = tx.send(Err(Status::unavailable("coalmine is shutting down"))).await;
                break;
            }
        };
    }
    state.ledger.disconnect(id);
    state.metrics.connected(-1);
    info!(node = %node.id, "proxy disconnected");
}

async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Writes the stream's state after a step into the ledger.
fn record(state: &XdsState, id: u64, snapshot: &Snapshot, stream: &SotwStream, out: &Output) {
    let revision = snapshot.revision();
    state.ledger.update(id, |r| {
        r.revision = revision;
        for resp in &out.responses {
            r.types[resp.kind.index()].served_revision = revision;
        }
        for kind in TypeKind::ALL {
            let t = &mut r.types[kind.index()];
            t.served = stream.sent(kind).map(str::to_string);
            t.acked = stream.acked(kind).map(str::to_string);
        }
        for event in &out.events {
            if let Event::Nack { kind, version, message } = event {
                let t = &mut r.types[kind.index()];
                t.nack = Some(NackRecord {
                    version: version.clone(),
                    message: message.clone(),
                    at: SystemTime::now(),
                    revision: t.served_revision,
                });
            }
        }
    });
}

/// Writes the responses, and logs and counts the events; false once the stream is gone.
async fn deliver(
    state: &XdsState,
    node: &NodeInfo,
    snapshot: &Snapshot,
    out: Output,
    tx: &mpsc::Sender<Result<Response, Status>>,
) -> bool {
    for event in &out.events {
        match event {
            Event::Ack { kind, version } => {
                state.metrics.ack(*kind);
                debug!(node = %node.id, %kind, %version, "ACK")
            }
            Event::Nack { kind, version, message } => {
                state.metrics.nack(*kind);
                warn!(node = %node.id, %kind, %version, error = %message, "NACK: proxy rejected config")
            }
        }
    }
    for resp in out.responses {
        let kind = resp.kind;
        debug!(node = %node.id, %kind, version = %resp.version, nonce = %resp.nonce, resources = resp.resources.len(), "push");
        if tx.send(Ok(resp)).await.is_err() {
            return false;
        }
        state.metrics.push(kind, snapshot.created().elapsed());
    }
    true
}
