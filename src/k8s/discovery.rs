//! The IO edge of Kubernetes discovery: kube-runtime watchers for Services,
//! EndpointSlices (`discovery.k8s.io/v1`), Pods (metadata only) and Namespaces, in all
//! namespaces, reduced into an [`Index`], whose services map, and what the Gateway API
//! reads of the cluster ([`Cluster`]: namespace labels, Gateway addresses), are each
//! published through a `watch` channel whenever they change.
//!
//! Restarts: a watcher that relists (its first start, a `410 Gone`, a lost connection)
//! buffers the listed objects and replaces its kind in the index only at `InitDone`,
//! so a relist never shows a half-empty index; nothing is published while a kind
//! relists, and a relist that finds what was already known publishes nothing.
//! A burst of events already waiting is reduced as one batch and published once.

use std::collections::BTreeMap;

use futures::stream::{self, BoxStream};
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::{Namespace, Pod, Service as K8sService};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::core::PartialObjectMeta;
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Client};
use tokio::sync::{oneshot, watch};
use tracing::{debug, info, warn};

use super::index::{Cluster, Index, Indexed};
use crate::model::Service;

/// Discovered services by host (`name.namespace.svc.cluster.local`).
pub type Services = BTreeMap<String, Service>;

/// The most events reduced before a publish, however many more are waiting.
const MAX_BATCH: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the kubernetes watchers stopped before their first full sync")]
    Stopped,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What discovery publishes.
#[derive(Debug, Clone)]
pub struct Discovery {
    pub services: watch::Receiver<Services>,
    pub cluster: watch::Receiver<Cluster>,
}

/// Starts the watchers and returns once Services, EndpointSlices, Pods and Namespaces
/// have each been listed once: the receivers hold what that first full list gave and
/// every later change. The watchers run until every services receiver is dropped.
pub async fn discover(client: Client) -> Result<Discovery> {
    let (tx, services) = watch::channel(Services::new());
    let (cluster_tx, cluster) = watch::channel(Cluster::default());
    let (synced_tx, synced_rx) = oneshot::channel();
    tokio::spawn(run(client, (tx, cluster_tx), synced_tx));
    synced_rx.await.map_err(|_| Error::Stopped)?;
    Ok(Discovery { services, cluster })
}

/// Calls `sink` with the services map after every change published on `rx`.
pub async fn follow<F: std::future::Future<Output = ()>>(
    mut rx: watch::Receiver<Services>,
    mut sink: impl FnMut(Services) -> F,
) {
    while rx.changed().await.is_ok() {
        let services = rx.borrow_and_update().clone();
        sink(services).await;
    }
}

enum Update {
    Service(Box<watcher::Result<Event<K8sService>>>),
    Slice(watcher::Result<Event<EndpointSlice>>),
    Pod(watcher::Result<Event<PartialObjectMeta<Pod>>>),
    Namespace(watcher::Result<Event<Namespace>>),
}

async fn run(
    client: Client,
    (tx, cluster_tx): (watch::Sender<Services>, watch::Sender<Cluster>),
    synced: oneshot::Sender<()>,
) {
    let config = watcher::Config::default;
    let services = watcher::watcher(Api::<K8sService>::all(client.clone()), config());
    let slices = watcher::watcher(Api::<EndpointSlice>::all(client.clone()), config());
    let pods = watcher::watcher(Api::<PartialObjectMeta<Pod>>::all(client.clone()), config());
    let namespaces = watcher::watcher(Api::<Namespace>::all(client), config());
    let streams: Vec<BoxStream<'static, Update>> = vec![
        services
            .default_backoff()
            .map(|e| Update::Service(Box::new(e)))
            .boxed(),
        slices.default_backoff().map(Update::Slice).boxed(),
        pods.default_backoff().map(Update::Pod).boxed(),
        namespaces.default_backoff().map(Update::Namespace).boxed(),
    ];
    let mut updates = stream::select_all(streams);
    let mut state = State::default();
    let mut synced = Some(synced);
    while let Some(first) = updates.next().await {
        state.handle(first);
        for _ in 1..MAX_BATCH {
            match updates.next().now_or_never() {
                Some(Some(update)) => state.handle(update),
                _ => break,
            }
        }
        if !state.ready() {
            continue;
        }
        let next = state.index.services();
        let changed = tx.send_if_modified(|current| {
            let changed = *current != next;
            if changed {
                *current = next;
            }
            changed
        });
        if changed {
            debug!(services = tx.borrow().len(), "kubernetes services changed");
        }
        let cluster = state.index.cluster();
        cluster_tx.send_if_modified(|current| {
            let changed = *current != cluster;
            if changed {
                *current = cluster;
            }
            changed
        });
        if let Some(synced) = synced.take() {
            info!(services = tx.borrow().len(), "kubernetes discovery synced");
            let _ = synced.send(());
        }
        if tx.is_closed() {
            break;
        }
    }
}

#[derive(Default)]
struct State {
    index: Index,
    services: Relist<K8sService>,
    slices: Relist<EndpointSlice>,
    pods: Relist<PartialObjectMeta<Pod>>,
    namespaces: Relist<Namespace>,
}

impl State {
    fn handle(&mut self, update: Update) {
        match update {
            Update::Service(e) => self.services.handle(&mut self.index, *e, "Service"),
            Update::Slice(e) => self.slices.handle(&mut self.index, e, "EndpointSlice"),
            Update::Pod(e) => self.pods.handle(&mut self.index, e, "Pod"),
            // Namespace labels only serve `from: Selector`: without RBAC to read
            // Namespaces (an older rbac.yaml), discovery goes on without them.
            Update::Namespace(Err(e)) if super::resources::is_absent(&e) => {
                if !self.namespaces.synced {
                    warn!(
                        "cannot list Namespaces ({e}); allowedRoutes from: Selector sees only \
                         kubernetes.io/metadata.name"
                    );
                    self.namespaces.synced = true;
                }
            }
            Update::Namespace(e) => self.namespaces.handle(&mut self.index, e, "Namespace"),
        }
    }

    /// Every kind listed at least once, and none in the middle of a relist.
    fn ready(&self) -> bool {
        self.services.ready() && self.slices.ready() && self.pods.ready() && self.namespaces.ready()
    }
}

/// One kind's watcher state: the objects of a relist in progress, and whether the
/// kind was ever fully listed.
struct Relist<K> {
    buffer: Option<Vec<K>>,
    synced: bool,
}

impl<K> Default for Relist<K> {
    fn default() -> Self {
        Relist {
            buffer: None,
            synced: false,
        }
    }
}

impl<K: Indexed> Relist<K> {
    fn handle(&mut self, index: &mut Index, event: watcher::Result<Event<K>>, kind: &str) {
        let event = match event {
            Ok(event) => event,
            Err(e) => {
                warn!(kind, "kubernetes watch failed, retrying: {e}");
                return;
            }
        };
        match event {
            Event::Init => self.buffer = Some(Vec::new()),
            Event::InitApply(obj) => self.buffer.get_or_insert_with(Vec::new).push(obj),
            Event::InitDone => {
                let listed = self.buffer.take().unwrap_or_default();
                debug!(kind, objects = listed.len(), "kubernetes relist done");
                index.replace(&listed);
                self.synced = true;
            }
            Event::Apply(obj) => index.apply(&obj),
            Event::Delete(obj) => index.delete(&obj),
        }
    }

    fn ready(&self) -> bool {
        self.synced && self.buffer.is_none()
    }
}
