//! Route resources from the cluster, for `coalmine serve --kubernetes`: the cluster is
//! the source of truth for the document set.
//!
//! kube-runtime watchers over [`DynamicObject`]s, in all namespaces, for each kind of
//! [`watched`]: Istio `networking.istio.io/v1` Gateway, VirtualService,
//! DestinationRule and ServiceEntry; Gateway API `gateway.networking.k8s.io/v1`
//! Gateway and HTTPRoute; coalmine's `coalmine.dev/v1alpha1` Rollout. A kind whose CRD
//! is not installed (404 on list; 403 when RBAC leaves it out) counts as empty and is
//! tried again with the watcher's backoff (up to every 30 s), so installing the CRD
//! later just works.
//!
//! Once every kind has been listed, and after every change (of a resource, or of the
//! discovered services that routes resolve against), the objects are judged
//! ([`super::judge`]: invalid ones are left out, the rest served) and the accepted set
//! replaces the stored one through [`Desired::replace_all`], as one revision when it
//! changed. Routes are judged against every Service seen since start (endpoints
//! aside), so a Service deleted and re-added never takes its routes down with it, and
//! with the namespaces' labels (for `from: Selector` listeners), which go to the store
//! first ([`Desired::set_namespaces`]). Every object's `Accepted` condition goes to the
//! status writer ([`super::status::write`]), which writes only on the leader; a
//! Gateway's `status.addresses` are its `spec.addresses`, else those of the Services
//! fronting it ([`super::Cluster`]), and are rewritten when those change.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{self, BoxStream};
use futures::{FutureExt, StreamExt};
use k8s_openapi::jiff::Timestamp;
use kube::api::DynamicObject;
use kube::core::ApiResource;
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Client};
use serde_json::{json, Value};
use tokio::sync::{oneshot, watch};
use tracing::{debug, info, warn};

use super::gateway_class;
use super::judge::{judge, keep_last_accepted, to_document_value, Judged, ObjectId};
use super::secrets;
use super::status::{self, Verdict, Wanted};
use super::status_patch::status_patch;
use super::{Cluster, Discovery, Services};
use crate::desired::{self, Desired};
use crate::gateway_api::NamespaceLabels;
use crate::resource_set;

/// The most events reduced before a judgement, however many more are waiting.
const MAX_BATCH: usize = 1000;

/// How soon a set that the store refused (the discovered services moved meanwhile) is
/// judged again.
const RETRY: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the kubernetes resource watchers stopped before their first full sync")]
    Stopped,
    #[error("cannot configure the Kubernetes client (in-cluster or KUBECONFIG): {0}")]
    Client(#[from] kube::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The kinds read from the cluster.
pub fn watched() -> Vec<ApiResource> {
    let mk = |group: &str, version: &str, kind: &str, plural: &str| ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: match group {
            "" => version.to_string(),
            _ => format!("{group}/{version}"),
        },
        kind: kind.into(),
        plural: plural.into(),
    };
    let istio = "networking.istio.io";
    let security = "security.istio.io";
    let gateway_api = "gateway.networking.k8s.io";
    vec![
        mk(istio, "v1", "Gateway", "gateways"),
        mk(istio, "v1", "VirtualService", "virtualservices"),
        mk(istio, "v1", "DestinationRule", "destinationrules"),
        mk(istio, "v1", "ServiceEntry", "serviceentries"),
        mk(
            security,
            "v1",
            "RequestAuthentication",
            "requestauthentications",
        ),
        mk(
            security,
            "v1",
            "AuthorizationPolicy",
            "authorizationpolicies",
        ),
        mk(gateway_api, "v1", "Gateway", "gateways"),
        mk(gateway_api, "v1", "HTTPRoute", "httproutes"),
        mk(gateway_api, "v1", "GRPCRoute", "grpcroutes"),
        mk(gateway_api, "v1beta1", "ReferenceGrant", "referencegrants"),
        mk(gateway_api, "v1", "GatewayClass", "gatewayclasses"),
        mk("coalmine.dev", "v1alpha1", "Rollout", "rollouts"),
        mk(
            "flagger.app",
            "v1beta1",
            "MetricTemplate",
            "metrictemplates",
        ),
        mk("flagger.app", "v1beta1", "AlertProvider", "alertproviders"),
        mk("", "v1", "Secret", "secrets"),
    ]
}

/// The watched resource that documents of `kind` are read from.
pub fn resource_of(kind: crate::model::Kind) -> Option<ApiResource> {
    use crate::model::Kind;
    let (api_version, name) = match kind {
        Kind::Gateway => ("networking.istio.io/v1", "Gateway"),
        Kind::VirtualService => ("networking.istio.io/v1", "VirtualService"),
        Kind::DestinationRule => ("networking.istio.io/v1", "DestinationRule"),
        Kind::ServiceEntry => ("networking.istio.io/v1", "ServiceEntry"),
        Kind::KubernetesGateway => ("gateway.networking.k8s.io/v1", "Gateway"),
        Kind::HttpRoute => ("gateway.networking.k8s.io/v1", "HTTPRoute"),
        Kind::GrpcRoute => ("gateway.networking.k8s.io/v1", "GRPCRoute"),
        Kind::Secret => ("v1", "Secret"),
        Kind::MetricTemplate => ("flagger.app/v1beta1", "MetricTemplate"),
        Kind::AlertProvider => ("flagger.app/v1beta1", "AlertProvider"),
        Kind::ReferenceGrant => ("gateway.networking.k8s.io/v1beta1", "ReferenceGrant"),
        Kind::Rollout => ("coalmine.dev/v1alpha1", "Rollout"),
        Kind::RequestAuthentication => ("security.istio.io/v1", "RequestAuthentication"),
        Kind::AuthorizationPolicy => ("security.istio.io/v1", "AuthorizationPolicy"),
    };
    watched()
        .into_iter()
        .find(|ar| ar.api_version == api_version && ar.kind == name)
}

/// Everything `serve --kubernetes` adds to discovery: the Lease election
/// ([`super::leader`], configured from the environment) and the route resources, with
/// status writes on the leader. Returns once the first set is stored; the receiver
/// says whether this replica leads (for the rollout controller).
pub async fn serve(desired: Arc<Desired>, discovered: Discovery) -> Result<watch::Receiver<bool>> {
    let client = Client::try_default().await?;
    let lease = super::leader::LeaseConfig::from_env();
    info!(identity = %lease.identity, namespace = %lease.namespace, "kubernetes: leader election on Lease {}", lease.name);
    let (leader, _election) = super::leader::spawn(client.clone(), lease);
    info!("kubernetes: waiting for the first sync of the route resources");
    start(client, desired, discovered, leader.clone()).await?;
    Ok(leader)
}

/// Starts the watchers and the status writer (active while `leader` is true), and
/// returns once every kind has been listed and the first set handed to `desired`.
pub async fn start(
    client: Client,
    desired: Arc<Desired>,
    discovered: Discovery,
    leader: watch::Receiver<bool>,
) -> Result<()> {
    let (wanted_tx, wanted_rx) = watch::channel(Vec::new());
    let (synced_tx, synced_rx) = oneshot::channel();
    tokio::spawn(status::write(client.clone(), wanted_rx, leader));
    let sync = Sync {
        desired,
        discovered: discovered.services,
        cluster: discovered.cluster,
        wanted: wanted_tx,
        seen: Services::new(),
        last: None,
        served: BTreeMap::new(),
    };
    tokio::spawn(run(client, sync, synced_tx));
    synced_rx.await.map_err(|_| Error::Stopped)
}

async fn run(client: Client, mut sync: Sync, synced: oneshot::Sender<()>) {
    let kinds = watched();
    let streams: Vec<BoxStream<'static, (usize, watcher::Result<Event<DynamicObject>>)>> = kinds
        .iter()
        .enumerate()
        .map(|(i, ar)| {
            let api = Api::<DynamicObject>::all_with(client.clone(), ar);
            watcher::watcher(api, watcher::Config::default())
                .default_backoff()
                .map(move |e| (i, e))
                .boxed()
        })
        .collect();
    let mut updates = stream::select_all(streams);
    let mut states: Vec<KindState> = kinds.iter().map(|_| KindState::default()).collect();
    let mut synced = Some(synced);
    let mut retry = false;
    loop {
        tokio::select! {
            update = updates.next() => {
                let Some((i, event)) = update else { return };
                states[i].handle(&kinds[i], event);
                for _ in 1..MAX_BATCH {
                    match updates.next().now_or_never() {
                        Some(Some((i, event))) => states[i].handle(&kinds[i], event),
                        _ => break,
                    }
                }
            }
            changed = sync.discovered.changed() => if changed.is_err() { return },
            changed = sync.cluster.changed() => if changed.is_err() { return },
            _ = tokio::time::sleep(RETRY), if retry => {}
        }
        if !states.iter().all(KindState::ready) {
            continue;
        }
        // Judging and the store write block: this worker's other tasks move elsewhere.
        retry = !tokio::task::block_in_place(|| sync.reconcile(&kinds, &states));
        if let Some(synced) = synced.take() {
            info!("kubernetes resources synced");
            let _ = synced.send(());
        }
        if sync.wanted.is_closed() {
            return;
        }
    }
}

/// What a judgement needs and remembers.
struct Sync {
    desired: Arc<Desired>,
    discovered: watch::Receiver<Services>,
    /// Namespace labels and Gateway addresses.
    cluster: watch::Receiver<Cluster>,
    wanted: watch::Sender<Vec<Wanted>>,
    /// Every service discovered so far, without endpoints: routes are judged against
    /// these, so a route to a Service that vanished stays accepted (and is served
    /// without endpoints, as `Desired::set_discovered` keeps it) instead of flapping.
    seen: Services,
    /// The last input judged, and its outcome.
    last: Option<(BTreeMap<ObjectId, Value>, Services, NamespaceLabels, Judged)>,
    /// What was last served of each object: a rejected edit keeps it served (see
    /// [`keep_last_accepted`]).
    served: BTreeMap<ObjectId, crate::ingest::Document>,
}

impl Sync {
    /// Judges the objects, hands the accepted set to the store and the statuses to the
    /// writer; false when the store refused the set (judged again after [`RETRY`]).
    fn reconcile(&mut self, kinds: &[ApiResource], states: &[KindState]) -> bool {
        let mut all = Vec::new();
        for (ar, state) in kinds.iter().zip(states) {
            for obj in state.objects.values() {
                let (id, value) = to_object(ar, obj);
                all.push((ar, id, value));
            }
        }
        let (docs, objects) = ours(all);
        for (host, service) in self.discovered.borrow_and_update().iter() {
            let shape = crate::model::Service {
                endpoints: Vec::new(),
                ..service.clone()
            };
            self.seen.insert(host.clone(), shape);
        }
        let services = self.seen.clone();
        let cluster = self.cluster.borrow_and_update().clone();
        let namespaces = cluster.namespaces.clone();
        let (judged, namespaces_moved) = match &self.last {
            Some((d, s, n, judged)) if *d == docs && *s == services && *n == namespaces => {
                (judged.clone(), false)
            }
            last => {
                let mut judged = judge(&docs, &services, &namespaces);
                keep_last_accepted(&mut judged, &self.served, &services, &namespaces);
                (
                    judged,
                    last.as_ref().is_none_or(|(_, _, n, _)| *n != namespaces),
                )
            }
        };
        self.served = judged.accepted.clone();
        self.last = Some((docs, services, namespaces.clone(), judged.clone()));
        if namespaces_moved {
            // The documents judged with these labels replace the stored ones next.
            if let Err(e) = self.desired.set_namespaces(namespaces.clone()) {
                debug!("the stored set does not validate with the new namespace labels: {e}");
            }
        }
        let accepted: Vec<_> = judged.accepted.values().cloned().collect();
        let stored = match self.desired.replace_all(accepted, "kubernetes") {
            Ok(outcome) if outcome.changed.is_empty() => true,
            Ok(outcome) => {
                info!(
                    revision = outcome.revision,
                    changes = outcome.changed.len(),
                    rejected = judged.rejected.len(),
                    "kubernetes resources applied"
                );
                true
            }
            Err(desired::Error::Invalid(errors)) => {
                debug!("kubernetes resources refused by the store, judging again: {errors}");
                self.last = None;
                false
            }
            Err(e) => {
                warn!("cannot store the kubernetes resources, retrying: {e}");
                self.last = None;
                false
            }
        };
        let now = Timestamp::now();
        let accepted: Vec<_> = judged.accepted.values().cloned().collect();
        let config =
            resource_set::build_config_with(&accepted, &self.seen, &namespaces).unwrap_or_default();
        let wanted: Vec<Wanted> = objects
            .into_iter()
            .filter_map(|(ar, id, value)| {
                let errors = judged.rejected.get(&id).map(Vec::as_slice);
                let verdict = Verdict::new(errors);
                let class = gateway_class::is(&id, "GatewayClass");
                let patch = match class {
                    true => gateway_class::class_patch(&value, now)?,
                    false => {
                        let seen = (&config, &cluster);
                        status_patch(&id, &value, &verdict, errors, seen, now)?
                    }
                };
                Some(Wanted {
                    cluster_scoped: class,
                    resource: ar.clone(),
                    resource_version: value["metadata"]["resourceVersion"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    id,
                    verdict,
                    patch,
                })
            })
            .collect();
        self.wanted.send_if_modified(|current| {
            let changed = *current != wanted;
            if changed {
                *current = wanted;
            }
            changed
        });
        stored
    }
}

/// What of the cluster's objects is coalmine's ([`gateway_class`]): the documents to
/// judge, and the objects to write status on (with only coalmine's parentRefs for a
/// route). GatewayClasses are no documents; other controllers' Gateways, and routes
/// whose every parent is one, are left out of both.
#[allow(clippy::type_complexity)]
fn ours(
    all: Vec<(&ApiResource, ObjectId, Value)>,
) -> (
    BTreeMap<ObjectId, Value>,
    Vec<(&ApiResource, ObjectId, Value)>,
) {
    let foreign = gateway_class::foreign_classes(all.iter().map(|(_, id, v)| (id, v)));
    let foreign_gateways: BTreeSet<String> = all
        .iter()
        .filter(|(_, id, v)| {
            gateway_class::is(id, "Gateway") && gateway_class::is_foreign_gateway(v, &foreign)
        })
        .map(|(_, id, _)| format!("{}/{}", id.namespace, id.name))
        .collect();
    let named = secrets::named_by_gateways(
        all.iter()
            .map(|(_, id, v)| (id.kind.as_str(), id.namespace.as_str(), v)),
    );
    let mut docs = BTreeMap::new();
    let mut objects = Vec::new();
    for (ar, id, value) in all {
        if secrets::is_secret(&id.api_version, &id.kind) {
            if named.contains(&format!("{}/{}", id.namespace, id.name)) {
                docs.insert(id.clone(), to_document_value(&id, &value));
            }
            continue;
        }
        let route = gateway_class::is(&id, "HTTPRoute") || gateway_class::is(&id, "GRPCRoute");
        let value = if gateway_class::is(&id, "GatewayClass") {
            objects.push((ar, id, value));
            continue;
        } else if foreign_gateways.contains(&format!("{}/{}", id.namespace, id.name))
            && gateway_class::is(&id, "Gateway")
        {
            continue;
        } else if route && !foreign_gateways.is_empty() {
            let keep = gateway_class::own_parents(&value, &id.namespace, &foreign_gateways);
            if keep.is_empty() {
                continue;
            }
            gateway_class::with_parents(&value, &keep)
        } else {
            value
        };
        docs.insert(id.clone(), to_document_value(&id, &value));
        objects.push((ar, id, value));
    }
    (docs, objects)
}

/// An object as JSON with its `apiVersion` and `kind` (list items may lack them), and
/// its id.
fn to_object(ar: &ApiResource, obj: &DynamicObject) -> (ObjectId, Value) {
    let mut value = serde_json::to_value(obj).unwrap_or_else(|_| json!({}));
    value["apiVersion"] = json!(ar.api_version);
    value["kind"] = json!(ar.kind);
    let id = ObjectId {
        api_version: ar.api_version.clone(),
        kind: ar.kind.clone(),
        namespace: obj
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into()),
        name: obj.metadata.name.clone().unwrap_or_default(),
    };
    (id, value)
}

/// One kind's objects, the relist in progress, and whether it was listed (or found
/// absent) at least once.
#[derive(Default)]
struct KindState {
    objects: BTreeMap<(String, String), DynamicObject>,
    buffer: Option<BTreeMap<(String, String), DynamicObject>>,
    synced: bool,
    absent: bool,
}

fn key_of(obj: &DynamicObject) -> (String, String) {
    let meta = &obj.metadata;
    (
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

impl KindState {
    fn handle(&mut self, ar: &ApiResource, event: watcher::Result<Event<DynamicObject>>) {
        let kind = format!("{} ({})", ar.kind, ar.api_version);
        let event = match event {
            Ok(event) => event,
            Err(e) if is_absent(&e) => {
                if !self.absent {
                    info!(%kind, "CRD not installed (or not readable): skipped, tried again later");
                }
                self.absent = true;
                self.objects.clear();
                self.buffer = None;
                self.synced = true;
                return;
            }
            Err(e) => {
                warn!(%kind, "kubernetes watch failed, retrying: {e}");
                return;
            }
        };
        if self.absent {
            info!(%kind, "CRD found: reading its resources");
            self.absent = false;
        }
        match event {
            Event::Init => self.buffer = Some(BTreeMap::new()),
            Event::InitApply(obj) => {
                let buffer = self.buffer.get_or_insert_with(BTreeMap::new);
                buffer.insert(key_of(&obj), obj);
            }
            Event::InitDone => {
                self.objects = self.buffer.take().unwrap_or_default();
                self.synced = true;
            }
            Event::Apply(obj) => {
                self.objects.insert(key_of(&obj), obj);
            }
            Event::Delete(obj) => {
                self.objects.remove(&key_of(&obj));
            }
        }
    }

    fn ready(&self) -> bool {
        self.synced && self.buffer.is_none()
    }
}

/// A list or watch that failed because the resource is not served (no CRD: 404) or
/// not ours to read (403).
pub(super) fn is_absent(e: &watcher::Error) -> bool {
    let client_error = match e {
        watcher::Error::InitialListFailed(e)
        | watcher::Error::WatchStartFailed(e)
        | watcher::Error::WatchFailed(e) => e,
        watcher::Error::WatchError(status) => return matches!(status.code, 403 | 404),
        watcher::Error::NoResourceVersion => return false,
    };
    matches!(client_error, kube::Error::Api(status) if matches!(status.code, 403 | 404))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watches_every_route_kind() {
        let kinds: Vec<String> = watched()
            .iter()
            .map(|ar| format!("{}/{}", ar.api_version, ar.plural))
            .collect();
        assert_eq!(
            kinds,
            [
                "networking.istio.io/v1/gateways",
                "networking.istio.io/v1/virtualservices",
                "networking.istio.io/v1/destinationrules",
                "networking.istio.io/v1/serviceentries",
                "security.istio.io/v1/requestauthentications",
                "security.istio.io/v1/authorizationpolicies",
                "gateway.networking.k8s.io/v1/gateways",
                "gateway.networking.k8s.io/v1/httproutes",
                "gateway.networking.k8s.io/v1/grpcroutes",
                "gateway.networking.k8s.io/v1beta1/referencegrants",
                "gateway.networking.k8s.io/v1/gatewayclasses",
                "coalmine.dev/v1alpha1/rollouts",
                "flagger.app/v1beta1/metrictemplates",
                "flagger.app/v1beta1/alertproviders",
                "v1/secrets",
            ]
        );
    }

    #[test]
    fn every_kind_has_its_watched_resource() {
        for kind in crate::model::Kind::ALL {
            let ar = resource_of(kind).unwrap_or_else(|| panic!("{kind:?}"));
            let name = kind.as_str().split('.').next().unwrap();
            assert_eq!(ar.kind, name, "{kind:?}");
        }
        let route = resource_of(crate::model::Kind::HttpRoute).unwrap();
        assert_eq!(route.plural, "httproutes");
    }

    #[test]
    fn an_absent_crd_counts_as_listed_and_empty() {
        let status = kube::core::Status {
            code: 404,
            ..Default::default()
        };
        let absent = watcher::Error::InitialListFailed(kube::Error::Api(Box::new(status)));
        assert!(is_absent(&absent));
        let mut state = KindState::default();
        state.handle(&watched()[0], Err(absent));
        assert!(state.ready() && state.objects.is_empty());
        let other = kube::core::Status {
            code: 500,
            ..Default::default()
        };
        let failed = watcher::Error::InitialListFailed(kube::Error::Api(Box::new(other)));
        assert!(!is_absent(&failed));
    }
}
