//! One simulated Envoy over State-of-the-World ADS, and what both protocols share:
//! its node, its own HTTP/2 connection, and the check of EDS/RDS responses against
//! the changes being measured.
//!
//! The order is Envoy's: CDS (wildcard), then EDS for the clusters' service names,
//! then LDS (wildcard) once EDS has answered, then RDS for the listeners' route
//! configurations. Every response is ACKed with its version and nonce.

use std::sync::Arc;
use std::time::Duration;

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use envoy_types::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
use envoy_types::pb::google::protobuf::{value::Kind, Struct, Value};
use prost::Message;
use tokio::sync::{mpsc, OwnedSemaphorePermit};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint};

use super::names::{self, hash_of, NameCache, Names, Source};
use super::tracker::{Change, Seen, Tracker};
use coalmine::snapshot::TypeKind;

/// What every client of one run shares.
#[derive(Debug)]
pub struct Context {
    pub xds_url: String,
    pub tracker: Arc<Tracker>,
    pub names: NameCache,
    pub labels: Vec<(String, String)>,
}

/// Opens this client's own connection: one HTTP/2 connection per simulated proxy.
pub async fn connect(url: &str) -> Result<Channel, tonic::transport::Error> {
    Endpoint::from_shared(url.to_string())?
        .connect_timeout(Duration::from_secs(30))
        .tcp_nodelay(true)
        .connect()
        .await
}

pub fn ads_client(channel: Channel) -> AggregatedDiscoveryServiceClient<Channel> {
    AggregatedDiscoveryServiceClient::new(channel).max_decoding_message_size(usize::MAX)
}

pub fn node(ctx: &Context, index: usize) -> Node {
    let fields = ctx
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), string_value(v)))
        .collect();
    let labels = Value {
        kind: Some(Kind::StructValue(Struct { fields })),
    };
    Node {
        id: format!("loadgen-{index}"),
        cluster: "loadgen".into(),
        metadata: Some(Struct {
            fields: [("labels".to_string(), labels)].into_iter().collect(),
        }),
        ..Default::default()
    }
}

fn string_value(v: &str) -> Value {
    Value {
        kind: Some(Kind::StringValue(v.to_string())),
    }
}

/// Changes measured in one EDS or RDS response that this stream has not seen yet;
/// they count once the response is ACKed.
pub fn changes_shown<'a>(
    tracker: &Tracker,
    seen: &Seen,
    resources: impl Iterator<Item = (Option<&'a str>, &'a [u8])>,
) -> Vec<Arc<Change>> {
    let mut shown = Vec::new();
    if !tracker.has_active() {
        return shown;
    }
    for (name, bytes) in resources {
        let Some(name) = name.or_else(|| names::peek_name(bytes)) else {
            continue;
        };
        for change in tracker.active_for(name) {
            if !seen.contains(change.id) && names::shows(bytes, &change.expect) {
                tracker.shown(&change);
                shown.push(change);
            }
        }
    }
    shown
}

pub fn record_acked(tracker: &Tracker, seen: &mut Seen, shown: Vec<Arc<Change>>) {
    for change in shown {
        seen.insert(change.id);
        tracker.acked(&change);
    }
}

#[derive(Debug, Default)]
struct TypeState {
    version: String,
    nonce: String,
    requested: bool,
    acked: bool,
}

/// Runs one SotW stream until it ends or fails.
pub async fn run_sotw(
    ctx: Arc<Context>,
    index: usize,
    permit: OwnedSemaphorePermit,
) -> anyhow::Result<()> {
    let mut permit = Some(permit);
    let channel = connect(&ctx.xds_url).await?;
    let (tx, rx) = mpsc::channel::<DiscoveryRequest>(8);
    let mut states: [TypeState; TypeKind::COUNT] = Default::default();
    tx.send(request(
        TypeKind::Cluster,
        Some(node(&ctx, index)),
        &[],
        &states[0],
    ))
    .await?;
    states[0].requested = true;
    let mut inbound = ads_client(channel)
        .stream_aggregated_resources(ReceiverStream::new(rx))
        .await?
        .into_inner();
    let mut clusters = ctx.names.empty();
    let mut listeners = ctx.names.empty();
    let mut seen = Seen::default();
    let mut ready = false;
    while let Some(resp) = inbound.message().await? {
        let tracker = &ctx.tracker;
        tracker.bytes.fetch_add(
            resp.encoded_len() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        let Some(kind) = TypeKind::from_type_url(&resp.type_url) else {
            continue;
        };
        let mut shown = Vec::new();
        let mut follow_up = None;
        match kind {
            TypeKind::Cluster | TypeKind::Listener => {
                let (set, source, next) = match kind {
                    TypeKind::Cluster => (&mut clusters, Source::Clusters, TypeKind::Endpoint),
                    _ => (&mut listeners, Source::Listeners, TypeKind::Route),
                };
                let new = learn(&ctx.names, source, set, &resp);
                if new.subs != set.subs || !states[slot(next)].requested {
                    follow_up = Some((next, new.clone()));
                }
                *set = new;
            }
            TypeKind::Endpoint | TypeKind::Route | TypeKind::Secret => {
                let resources = resp.resources.iter().map(|a| (None, a.value.as_slice()));
                shown = changes_shown(tracker, &seen, resources);
            }
        }
        let state = &mut states[slot(kind)];
        state.version = resp.version_info.clone();
        state.nonce = resp.nonce.clone();
        let subs = match kind {
            TypeKind::Endpoint => clusters.subs.as_slice(),
            TypeKind::Route => listeners.subs.as_slice(),
            _ => &[],
        };
        tx.send(request(kind, None, subs, state)).await?;
        state.acked = true;
        record_acked(tracker, &mut seen, shown);
        if let Some((next, set)) = follow_up {
            let next_state = &mut states[slot(next)];
            next_state.requested = true;
            tx.send(request(next, None, &set.subs, next_state)).await?;
        }
        if kind == TypeKind::Endpoint && !states[slot(TypeKind::Listener)].requested {
            let lds = &mut states[slot(TypeKind::Listener)];
            lds.requested = true;
            tx.send(request(TypeKind::Listener, None, &[], lds)).await?;
        }
        // Ready once every type a proxy without TLS asks for is ACKed (no secrets).
        let needed = |i: &usize| *i != slot(TypeKind::Secret);
        if !ready && (0..states.len()).filter(needed).all(|i| states[i].acked) {
            ready = true;
            tracker.mark_ready();
            drop(permit.take());
        }
    }
    Ok(())
}

fn learn(
    cache: &NameCache,
    source: Source,
    old: &Arc<Names>,
    resp: &DiscoveryResponse,
) -> Arc<Names> {
    let key = hash_of([&resp.version_info]);
    let added = resp.resources.iter().map(|a| a.value.as_slice());
    cache.transition(source, old, true, key, added, &[])
}

fn request(
    kind: TypeKind,
    node: Option<Node>,
    names: &[String],
    state: &TypeState,
) -> DiscoveryRequest {
    DiscoveryRequest {
        version_info: state.version.clone(),
        node,
        resource_names: names.to_vec(),
        type_url: kind.type_url().to_string(),
        response_nonce: state.nonce.clone(),
        ..Default::default()
    }
}

/// A type's slot in a per-type array: its place in push order (what coalmine's
/// crate-private `TypeKind::index` is).
pub fn slot(kind: TypeKind) -> usize {
    kind as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_follow_push_order() {
        for (i, kind) in TypeKind::ALL.into_iter().enumerate() {
            assert_eq!(slot(kind), i);
        }
    }
}
