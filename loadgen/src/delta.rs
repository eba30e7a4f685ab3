//! One simulated Envoy over Delta (incremental) ADS.
//!
//! CDS and LDS are wildcard subscriptions; EDS and RDS subscribe and unsubscribe by
//! name as the clusters and listeners come and go. Every response is ACKed with its
//! nonce, as Envoy does.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse,
};
use prost::Message;
use tokio::sync::{mpsc, OwnedSemaphorePermit};
use tokio_stream::wrappers::ReceiverStream;

use super::client::{ads_client, changes_shown, connect, node, record_acked, slot, Context};
use super::names::{hash_of, NameCache, Names, Source};
use super::tracker::Seen;
use coalmine::snapshot::TypeKind;

/// Runs one Delta stream until it ends or fails.
pub async fn run_delta(
    ctx: Arc<Context>,
    index: usize,
    permit: OwnedSemaphorePermit,
) -> anyhow::Result<()> {
    let mut permit = Some(permit);
    let channel = connect(&ctx.xds_url).await?;
    let (tx, rx) = mpsc::channel::<DeltaDiscoveryRequest>(8);
    tx.send(subscribe(
        TypeKind::Cluster,
        Some(node(&ctx, index)),
        &[],
        &[],
    ))
    .await?;
    let mut inbound = ads_client(channel)
        .delta_aggregated_resources(ReceiverStream::new(rx))
        .await?
        .into_inner();
    let mut clusters = ctx.names.empty();
    let mut listeners = ctx.names.empty();
    let mut requested = [true, false, false, false, false];
    let mut acked = [false; TypeKind::COUNT];
    let mut seen = Seen::default();
    let mut ready = false;
    while let Some(resp) = inbound.message().await? {
        let tracker = &ctx.tracker;
        tracker
            .bytes
            .fetch_add(resp.encoded_len() as u64, Ordering::Relaxed);
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
                if new.subs != set.subs || !requested[slot(next)] {
                    let (sub, unsub) = diff(&set.subs, &new.subs);
                    follow_up = Some(subscribe(next, None, &sub, &unsub));
                }
                *set = new;
            }
            TypeKind::Endpoint | TypeKind::Route | TypeKind::Secret => {
                let resources = resp.resources.iter().filter_map(|r| {
                    let any = r.resource.as_ref()?;
                    Some((Some(r.name.as_str()), any.value.as_slice()))
                });
                shown = changes_shown(tracker, &seen, resources);
            }
        }
        tx.send(ack(kind, &resp.nonce)).await?;
        acked[slot(kind)] = true;
        record_acked(tracker, &mut seen, shown);
        if let Some(req) = follow_up {
            let next = TypeKind::from_type_url(&req.type_url).unwrap_or(kind);
            requested[slot(next)] = true;
            tx.send(req).await?;
        }
        if kind == TypeKind::Endpoint && !requested[slot(TypeKind::Listener)] {
            requested[slot(TypeKind::Listener)] = true;
            tx.send(subscribe(TypeKind::Listener, None, &[], &[]))
                .await?;
        }
        // Ready once every type a proxy without TLS asks for is ACKed (no secrets).
        let needed = |i: &usize| *i != slot(TypeKind::Secret);
        if !ready && (0..acked.len()).filter(needed).all(|i| acked[i]) {
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
    resp: &DeltaDiscoveryResponse,
) -> Arc<Names> {
    let key = hash_of(
        resp.resources
            .iter()
            .map(|r| (&r.name, &r.version))
            .chain(resp.removed_resources.iter().map(|n| (n, n))),
    );
    let added = resp
        .resources
        .iter()
        .filter_map(|r| r.resource.as_ref().map(|a| a.value.as_slice()));
    cache.transition(source, old, false, key, added, &resp.removed_resources)
}

/// Names in `new` and not in `old`, and the other way round (both sorted).
fn diff(old: &[String], new: &[String]) -> (Vec<String>, Vec<String>) {
    let added = new
        .iter()
        .filter(|n| old.binary_search(n).is_err())
        .cloned()
        .collect();
    let removed = old
        .iter()
        .filter(|n| new.binary_search(n).is_err())
        .cloned()
        .collect();
    (added, removed)
}

fn subscribe(
    kind: TypeKind,
    node: Option<Node>,
    names: &[String],
    unsubscribe: &[String],
) -> DeltaDiscoveryRequest {
    DeltaDiscoveryRequest {
        node,
        type_url: kind.type_url().to_string(),
        resource_names_subscribe: names.to_vec(),
        resource_names_unsubscribe: unsubscribe.to_vec(),
        ..Default::default()
    }
}

fn ack(kind: TypeKind, nonce: &str) -> DeltaDiscoveryRequest {
    DeltaDiscoveryRequest {
        type_url: kind.type_url().to_string(),
        response_nonce: nonce.to_string(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_names_both_ways() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let (add, rm) = diff(&s(&["a", "b"]), &s(&["b", "c"]));
        assert_eq!(add, s(&["c"]));
        assert_eq!(rm, s(&["a"]));
    }
}
