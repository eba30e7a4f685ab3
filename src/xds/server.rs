//! The tonic edge of ADS: one task per stream that `select!`s between the proxy's
//! requests, new snapshots and shutdown, and writes what the stream's state machine
//! ([`SotwStream`] or [`DeltaStream`]) returns.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::SystemTime;

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::discovery::v3::DeltaDiscoveryRequest;
use futures::future::BoxFuture;
use http_body_util::StreamBody;
use tokio::sync::{mpsc, watch};
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::Status;

use super::request::SotwRequest;
use tracing::{debug, info, warn};

use super::body;
use super::codec::WireResponse;
use super::delta::{DeltaOutput, DeltaResponse, DeltaStream};
use super::inbound::Inbound;
use super::sotw::{Event, Output, Response, SotwStream};
use super::warm::ABSENT_GRACE;
use crate::ledger::{Ledger, NackRecord, ProxyRecord, ResourceList};
use crate::listen::{identity, Peer};
use crate::metrics::Metrics;
use crate::node::NodeInfo;
use crate::snapshot::{Snapshot, TypeKind, View};

const SOTW_PATH: &str =
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources";
const DELTA_PATH: &str =
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources";

/// What every stream shares: the current snapshot, the ledger, metrics and the
/// shutdown signal.
#[derive(Debug, Clone)]
pub struct XdsState {
    pub snapshots: watch::Receiver<Arc<Snapshot>>,
    pub shutdown: watch::Receiver<bool>,
    pub ledger: Arc<Ledger>,
    pub metrics: Arc<Metrics>,
    /// The stats proxies push: a proxy's go when its last stream does.
    pub stats: Arc<crate::stats::Stats>,
    /// Proxies present certificates and may claim only the node ids these allow.
    pub mutual_tls: bool,
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
            SOTW_PATH => Box::pin(serve_stream::<SotwStream, _>(state, req)),
            DELTA_PATH => Box::pin(serve_stream::<DeltaStream, _>(state, req)),
            _ => {
                Box::pin(async move { Ok(Status::unimplemented("not an ADS method").into_http()) })
            }
        }
    }
}

/// What the stream loop needs of a protocol's state machine (SotW or Delta).
pub trait StreamProtocol: Send + 'static {
    type Request: prost::Message + Default + Send + 'static;
    type Response: WireResponse;

    /// A stream serving `view`, whose proxy may hold `previous` (the view before).
    fn new(view: Arc<View>, previous: Option<Arc<View>>) -> Self;
    fn node(req: &Self::Request) -> Option<&Node>;
    /// Whether a first request says the client already holds a configuration (it
    /// reconnected): only then is the previous view worth looking up.
    fn resumes(req: &Self::Request) -> bool;
    fn handle_request(&mut self, req: &Self::Request) -> Output<Self::Response>;
    fn handle_view(&mut self, view: Arc<View>) -> Output<Self::Response>;
    fn sent(&self, kind: TypeKind) -> Option<&str>;
    fn acked(&self, kind: TypeKind) -> Option<&str>;
    /// What the proxy holds (or is being sent) of a type, and what it held at its last
    /// ACK: the per-resource truth CSDS answers from.
    fn holds(&self, kind: TypeKind) -> &ResourceList;
    fn acked_holds(&self, kind: TypeKind) -> &ResourceList;
    fn kind_of(resp: &Self::Response) -> TypeKind;
    /// Whether everything of the view was sent (nothing held back for warming).
    fn converged(&self) -> bool;
    /// Whether something waits for a cluster absent from the view.
    fn waiting_absent(&self) -> bool;
    /// [`ABSENT_GRACE`] has passed since the wait began.
    fn absent_expired(&mut self) -> Output<Self::Response>;
}

impl StreamProtocol for SotwStream {
    type Request = SotwRequest;
    type Response = Response;

    fn new(view: Arc<View>, previous: Option<Arc<View>>) -> Self {
        SotwStream::new(view).with_previous(previous)
    }
    fn node(req: &SotwRequest) -> Option<&Node> {
        req.node.as_ref()
    }
    fn resumes(req: &SotwRequest) -> bool {
        !req.version_info.is_empty()
    }
    fn handle_request(&mut self, req: &SotwRequest) -> Output {
        SotwStream::handle_request(self, req)
    }
    fn handle_view(&mut self, view: Arc<View>) -> Output {
        SotwStream::handle_view(self, view)
    }
    fn sent(&self, kind: TypeKind) -> Option<&str> {
        SotwStream::sent(self, kind)
    }
    fn acked(&self, kind: TypeKind) -> Option<&str> {
        SotwStream::acked(self, kind)
    }
    fn holds(&self, kind: TypeKind) -> &ResourceList {
        SotwStream::holds(self, kind)
    }
    fn acked_holds(&self, kind: TypeKind) -> &ResourceList {
        SotwStream::acked_holds(self, kind)
    }
    fn kind_of(resp: &Response) -> TypeKind {
        resp.kind
    }
    fn converged(&self) -> bool {
        SotwStream::converged(self)
    }
    fn waiting_absent(&self) -> bool {
        SotwStream::waiting_absent(self)
    }
    fn absent_expired(&mut self) -> Output {
        SotwStream::absent_expired(self)
    }
}

impl StreamProtocol for DeltaStream {
    type Request = DeltaDiscoveryRequest;
    type Response = DeltaResponse;

    fn new(view: Arc<View>, previous: Option<Arc<View>>) -> Self {
        DeltaStream::new(view).with_previous(previous)
    }
    fn node(req: &DeltaDiscoveryRequest) -> Option<&Node> {
        req.node.as_ref()
    }
    fn resumes(req: &DeltaDiscoveryRequest) -> bool {
        !req.initial_resource_versions.is_empty()
    }
    fn handle_request(&mut self, req: &DeltaDiscoveryRequest) -> DeltaOutput {
        DeltaStream::handle_request(self, req)
    }
    fn handle_view(&mut self, view: Arc<View>) -> DeltaOutput {
        DeltaStream::handle_view(self, view)
    }
    fn sent(&self, kind: TypeKind) -> Option<&str> {
        DeltaStream::sent(self, kind)
    }
    fn acked(&self, kind: TypeKind) -> Option<&str> {
        DeltaStream::acked(self, kind)
    }
    fn holds(&self, kind: TypeKind) -> &ResourceList {
        DeltaStream::holds(self, kind)
    }
    fn acked_holds(&self, kind: TypeKind) -> &ResourceList {
        DeltaStream::acked_holds(self, kind)
    }
    fn kind_of(resp: &DeltaResponse) -> TypeKind {
        resp.kind
    }
    fn converged(&self) -> bool {
        DeltaStream::converged(self)
    }
    fn waiting_absent(&self) -> bool {
        DeltaStream::waiting_absent(self)
    }
    fn absent_expired(&mut self) -> DeltaOutput {
        DeltaStream::absent_expired(self)
    }
}

/// Largest request accepted from a proxy (a subscription to every resource of a big
/// config stays far below it).
const MAX_REQUEST_BYTES: usize = 16 * 1024 * 1024;

/// Answers one ADS call: requests are read by [`Inbound`]; responses
/// go out as a plain HTTP body of exact-size messages (see [`super::body`]).
async fn serve_stream<P, B>(
    state: XdsState,
    req: http::Request<B>,
) -> Result<http::Response<Body>, Infallible>
where
    P: StreamProtocol,
    B: http_body::Body + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send + 'static,
{
    let encoding = req
        .headers()
        .get("grpc-encoding")
        .and_then(|v| v.to_str().ok());
    if encoding.is_some_and(|e| e != "identity") {
        return Ok(
            Status::unimplemented("coalmine does not accept compressed requests").into_http(),
        );
    }
    let peer = req.extensions().get::<Peer>().cloned();
    let requests = Inbound::<P::Request>::new(req.into_body(), MAX_REQUEST_BYTES);
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(run_stream::<P>(state, peer, requests, tx));
    let body = Body::new(StreamBody::new(body::frames(rx)));
    let response = http::Response::builder()
        .header(http::header::CONTENT_TYPE, "application/grpc")
        .body(body)
        .expect("a valid response");
    Ok(response)
}

async fn run_stream<P: StreamProtocol>(
    mut state: XdsState,
    peer: Option<Peer>,
    mut requests: Inbound<P::Request>,
    tx: mpsc::Sender<Result<P::Response, Status>>,
) {
    let first = match requests.message().await {
        Ok(Some(req)) => req,
        Ok(None) => return,
        Err(status) => return refuse(&state, "", status, &tx).await,
    };
    let node = P::node(&first).map(NodeInfo::from_node).unwrap_or_default();
    if let Err(why) = identity::check(state.mutual_tls, peer.as_ref(), &node.id) {
        let addr = peer
            .as_ref()
            .map(|p| p.addr.to_string())
            .unwrap_or_default();
        warn!(node = %node.id, %addr, "ADS stream refused: {why}");
        state.metrics.identity_refused();
        let _ = tx.send(Err(Status::permission_denied(why))).await;
        return;
    }
    info!(
        node = %node.id,
        cluster = %node.cluster,
        labels = ?node.labels,
        client = ?node.client,
        user_agent = %node.user_agent,
        "proxy connected"
    );
    let mut snapshot = state.snapshots.borrow_and_update().clone();
    let previous = P::resumes(&first)
        .then(|| node.previous_view_of(&snapshot))
        .flatten();
    let mut stream = P::new(node.view_of(&snapshot), previous);
    let id = state
        .ledger
        .connect(ProxyRecord::new(node.clone(), snapshot.revision()));
    state.metrics.connected(1);
    let mut out = stream.handle_request(&first);
    // Armed while the stream waits for a cluster absent from its view.
    let mut grace: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
    loop {
        record::<P>(&state, id, &snapshot, &stream, &out);
        if !deliver::<P>(&state, &node, &snapshot, out, &tx).await {
            break;
        }
        match (stream.waiting_absent(), grace.is_some()) {
            (true, false) => grace = Some(Box::pin(tokio::time::sleep(ABSENT_GRACE))),
            (false, true) => grace = None,
            _ => {}
        }
        out = tokio::select! {
            _ = async { grace.as_mut().expect("armed").await }, if grace.is_some() => {
                grace = None;
                debug!(node = %node.id, "absent clusters not waited for any longer");
                stream.absent_expired()
            },
            req = requests.message() => match req {
                Ok(Some(req)) => stream.handle_request(&req),
                Ok(None) => break,
                Err(status) => {
                    refuse(&state, &node.id, status, &tx).await;
                    break;
                }
            },
            changed = state.snapshots.changed() => {
                if changed.is_err() {
                    break;
                }
                snapshot = state.snapshots.borrow_and_update().clone();
                stream.handle_view(node.view_of(&snapshot))
            },
            _ = stopped(&mut state.shutdown) => {
                let _ = tx.send(Err(Status::unavailable("coalmine is shutting down"))).await;
                break;
            }
        };
    }
    if state.ledger.disconnect(id) {
        state.stats.forget(&node.id);
        state.metrics.stats_recorded(0, state.stats.series());
    }
    state.metrics.connected(-1);
    info!(node = %node.id, "proxy disconnected");
}

/// Ends a stream whose request could not be read: an invalid one (undecodable,
/// oversized, compressed) gets its status and text, and is logged and counted; a
/// broken connection just ends.
async fn refuse<R>(
    state: &XdsState,
    node: &str,
    status: Status,
    tx: &mpsc::Sender<Result<R, Status>>,
) {
    use tonic::Code;
    match status.code() {
        Code::InvalidArgument | Code::ResourceExhausted | Code::Unimplemented => {
            warn!(node, code = ?status.code(), error = status.message(), "invalid ADS request: stream ended");
            state.metrics.rejected();
            let _ = tx.send(Err(status)).await;
        }
        _ => debug!(node, %status, "stream error"),
    }
}

async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Writes the stream's state after a step into the ledger.
fn record<P: StreamProtocol>(
    state: &XdsState,
    id: u64,
    snapshot: &Snapshot,
    stream: &P,
    out: &Output<P::Response>,
) {
    let revision = snapshot.revision();
    state.ledger.update(id, |r| {
        let mut changed = r.revision != revision
            || !out.responses.is_empty()
            || !out.events.is_empty()
            || r.holding == stream.converged();
        r.revision = revision;
        r.holding = !stream.converged();
        for resp in &out.responses {
            r.types[P::kind_of(resp).index()].served_revision = revision;
        }
        for kind in TypeKind::ALL {
            let t = &mut r.types[kind.index()];
            if t.served.as_deref() != stream.sent(kind) {
                t.served = stream.sent(kind).map(str::to_string);
                changed = true;
            }
            if t.acked.as_deref() != stream.acked(kind) {
                t.acked = stream.acked(kind).map(str::to_string);
                changed = true;
            }
            // Lists only: they change with the versions above, which notify.
            if !Arc::ptr_eq(&t.resources, stream.holds(kind)) {
                t.resources = stream.holds(kind).clone();
            }
            if !Arc::ptr_eq(&t.acked_resources, stream.acked_holds(kind)) {
                t.acked_resources = stream.acked_holds(kind).clone();
            }
        }
        for event in &out.events {
            if let Event::Nack {
                kind,
                version,
                message,
            } = event
            {
                let t = &mut r.types[kind.index()];
                t.nack = Some(NackRecord {
                    version: version.clone(),
                    message: message.clone(),
                    at: SystemTime::now(),
                    revision: t.served_revision,
                });
            }
        }
        changed
    });
}

/// Writes the responses, and logs and counts the events; false once the stream is gone.
async fn deliver<P: StreamProtocol>(
    state: &XdsState,
    node: &NodeInfo,
    snapshot: &Snapshot,
    out: Output<P::Response>,
    tx: &mpsc::Sender<Result<P::Response, Status>>,
) -> bool {
    for event in &out.events {
        match event {
            Event::Ack { kind, version } => {
                state.metrics.ack(*kind);
                debug!(node = %node.id, %kind, %version, "ACK")
            }
            Event::Nack {
                kind,
                version,
                message,
            } => {
                state.metrics.nack(*kind);
                warn!(node = %node.id, %kind, %version, error = %message, "NACK: proxy rejected config")
            }
        }
    }
    for resp in out.responses {
        let kind = P::kind_of(&resp);
        debug!(node = %node.id, %kind, "push");
        if tx.send(Ok(resp)).await.is_err() {
            return false;
        }
        state.metrics.push(kind, snapshot.created().elapsed());
    }
    true
}
