//! Encoded Envoy resources with content-hash versions, shared by every stream.
//!
//! A [`Snapshot`] wraps one validated [`Config`]. Clients are grouped into classes
//! ([`ViewClass`]): Envoy proxies by the Gateways that select them, proxyless gRPC
//! clients in one class of their own; each class's [`View`] is translated once, each
//! resource in it encoded once, and the same bytes (`Arc<Encoded>`) are handed to every
//! stream that receives them. Memory therefore grows with the config, not with
//! config × proxies. Nothing here does IO.

mod canonical;
mod class;
mod diff;
mod incremental;
mod kind;
mod uses;
mod view;

pub use class::ViewClass;
pub use diff::{diff, DiffAction};
pub use kind::TypeKind;
pub use view::{digest_of, version_of, Change, ResourceMap, View, ViewDiff};

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use envoy_types::pb::envoy::config::listener::v3::Listener;
use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;
use envoy_types::pb::google::protobuf::Any;
use prost::Message;
use sha2::{Digest, Sha256};

use crate::model::{Config, Labels, ResourceKey};
use crate::translate::{self, Resources};

/// One Envoy resource, encoded once as a `google.protobuf.Any`.
#[derive(Debug, PartialEq, Eq)]
pub struct Encoded {
    pub name: String,
    /// A hash of the resource's canonical encoding: equal content, equal version, in
    /// every process.
    pub version: String,
    /// The encoded `Any` (type URL and value), written as is into every response.
    pub any: Bytes,
    /// This resource's share of a set digest (see [`digest_of`]).
    pub digest: u128,
    /// What must be warm on a proxy before it may hold this resource: for a route
    /// configuration the clusters it sends to, for an EDS cluster its assignment.
    pub uses: Box<[String]>,
    /// For an assignment: no endpoint of it can take traffic (none, or none healthy).
    pub empty: bool,
}

impl Encoded {
    pub fn new(name: impl Into<String>, version: impl Into<String>, any: Bytes) -> Encoded {
        let (name, version) = (name.into(), version.into());
        let digest = digest_of(&name, &version);
        Encoded {
            name,
            version,
            any,
            digest,
            uses: Box::default(),
            empty: false,
        }
    }

    /// The same resource, declaring what it uses (see [`Encoded::uses`]).
    pub fn with_uses(self, uses: Box<[String]>) -> Encoded {
        Encoded { uses, ..self }
    }

    /// The same assignment, saying whether it has no endpoint to take traffic.
    pub fn with_empty(self, empty: bool) -> Encoded {
        Encoded { empty, ..self }
    }
}

/// One validated configuration and the views derived from it, built on demand.
#[derive(Debug)]
pub struct Snapshot {
    config: Arc<Config>,
    /// The stored revision this configuration is (0 before any).
    revision: u64,
    /// When it was published, for push latency.
    created: std::time::Instant,
    cache: Mutex<Cache>,
    /// The previous snapshot's views and what changed since, to build views from.
    base: Option<Base>,
    /// The previous configuration and its views, for proxies that still hold it.
    previous: Option<Previous>,
}

#[derive(Debug)]
struct Previous {
    config: Arc<Config>,
    views: Mutex<HashMap<ViewClass, Arc<View>>>,
}

#[derive(Debug)]
struct Base {
    views: HashMap<ViewClass, Arc<View>>,
    delta: incremental::Delta,
}

#[derive(Debug, Default)]
struct Cache {
    views: HashMap<ViewClass, Arc<View>>,
    /// Every resource encoded for this snapshot, so that two classes with the same
    /// resource share its bytes.
    encoded: EncodedCache,
}

impl Snapshot {
    pub fn new(config: Arc<Config>, revision: u64) -> Self {
        Self {
            config,
            revision,
            created: std::time::Instant::now(),
            base: None,
            previous: None,
            cache: Mutex::default(),
        }
    }

    /// The snapshot of `config` for a process that starts fresh while proxies may
    /// still hold `previous` (the revision before): its views are translated when a
    /// proxy's versions need them.
    pub fn after(previous: Arc<Config>, config: Arc<Config>, revision: u64) -> Self {
        Snapshot {
            previous: Some(Previous {
                config: previous,
                views: Mutex::default(),
            }),
            ..Snapshot::new(config, revision)
        }
    }

    /// The view an Envoy declaring these labels was served before this snapshot.
    pub fn previous_view_for(&self, labels: &Labels) -> Option<Arc<View>> {
        let config = &self.previous.as_ref()?.config;
        let class = ViewClass::Envoy(translate::select_gateways(config, labels));
        self.previous_view(&class)
    }

    /// The view a class was served before this snapshot, when it is known.
    pub fn previous_view(&self, class: &ViewClass) -> Option<Arc<View>> {
        let previous = self.previous.as_ref()?;
        let mut views = previous.views.lock().expect("previous views poisoned");
        if let Some(view) = views.get(class) {
            return Some(view.clone());
        }
        let resources = class.translate(&previous.config);
        let view = Arc::new(encode_view(&resources, &mut EncodedCache::default()));
        views.insert(class.clone(), view.clone());
        Some(view)
    }

    /// The snapshot after `prev`: views are built from `prev`'s, re-translating only
    /// what the change between the two configurations can have touched.
    pub fn next(prev: &Snapshot, config: Arc<Config>, revision: u64) -> Self {
        let views = prev
            .cache
            .lock()
            .expect("snapshot cache poisoned")
            .views
            .clone();
        let delta = incremental::classify(&prev.config, &config);
        Snapshot {
            previous: Some(Previous {
                config: prev.config.clone(),
                views: Mutex::new(views.clone()),
            }),
            base: Some(Base { views, delta }),
            ..Snapshot::new(config, revision)
        }
    }

    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }

    pub fn revision(&self) -> u64 {
        self.revision
    }

    pub fn created(&self) -> std::time::Instant {
        self.created
    }

    /// The view for an Envoy declaring these labels in its node metadata.
    pub fn view_for(&self, labels: &Labels) -> Arc<View> {
        let gateways = translate::select_gateways(&self.config, labels);
        self.view_for_gateways(gateways)
    }

    pub fn view_for_gateways(&self, gateways: BTreeSet<ResourceKey>) -> Arc<View> {
        self.view_for_class(ViewClass::Envoy(gateways))
    }

    /// The view of proxyless gRPC clients.
    pub fn grpc_view(&self) -> Arc<View> {
        self.view_for_class(ViewClass::Grpc)
    }

    pub fn view_for_class(&self, class: ViewClass) -> Arc<View> {
        let mut cache = self.cache.lock().expect("snapshot cache poisoned");
        if let Some(view) = cache.views.get(&class) {
            return view.clone();
        }
        let previous = self
            .base
            .as_ref()
            .and_then(|b| b.views.get(&class).map(|v| (v, &b.delta)));
        let view = match previous {
            Some((prev, delta)) => self.rebuild(prev, delta, &class, &mut cache.encoded),
            None => None,
        };
        let view = view.unwrap_or_else(|| {
            let resources = class.translate(&self.config);
            Arc::new(encode_view(&resources, &mut cache.encoded))
        });
        cache.views.insert(class, view.clone());
        view
    }

    /// A class's view from its previous one, or `None` when the change needs a full
    /// translation.
    fn rebuild(
        &self,
        prev: &Arc<View>,
        delta: &incremental::Delta,
        class: &ViewClass,
        encoded: &mut EncodedCache,
    ) -> Option<Arc<View>> {
        use incremental::Delta;
        match delta {
            Delta::Same => Some(prev.clone()),
            Delta::Endpoints(hosts) => {
                let mut maps = prev.to_maps();
                let affected: Vec<String> = maps[TypeKind::Cluster.index()]
                    .keys()
                    .filter(|name| {
                        incremental::destination_of(name).is_some_and(|d| hosts.contains(&d.host))
                    })
                    .cloned()
                    .collect();
                for name in affected {
                    let destination = incremental::destination_of(&name)?;
                    let (cluster, cla) = class.translate_destination(&self.config, &destination);
                    // A cluster that gains or loses its assignment changed kind (a
                    // gRPC DNS cluster whose subset went empty): translate in full.
                    let has_cla = maps[TypeKind::Endpoint.index()].contains_key(&name);
                    if has_cla != cla.is_some() {
                        return None;
                    }
                    match cla {
                        Some(cla) => {
                            let parts = endpoint_parts(&cla);
                            let r = encode_one(TypeKind::Endpoint, &name, parts, encoded);
                            keep_or_replace(&mut maps[TypeKind::Endpoint.index()], name, r);
                        }
                        None => {
                            let parts = cluster_parts(&cluster);
                            let r = encode_one(TypeKind::Cluster, &name, parts, encoded);
                            keep_or_replace(&mut maps[TypeKind::Cluster.index()], name, r);
                        }
                    }
                }
                Some(Arc::new(View::new(maps)))
            }
            Delta::Routes => {
                let routed = class.translate_routes(&self.config);
                let mut maps = prev.to_maps();
                let mut clusters: BTreeSet<String> = routed
                    .destinations
                    .iter()
                    .map(translate::cluster_name)
                    .collect();
                clusters.extend(routed.clusters.keys().cloned());
                if !clusters.iter().eq(maps[TypeKind::Cluster.index()].keys()) {
                    return None;
                }
                if !routed
                    .secrets
                    .iter()
                    .eq(maps[TypeKind::Secret.index()].keys())
                {
                    return None;
                }
                let listeners = routed.listeners.iter().map(|(n, l)| {
                    (
                        n,
                        encode_one(TypeKind::Listener, n, listener_parts(l), encoded),
                    )
                });
                let listeners: Vec<_> = listeners.collect();
                let routes: Vec<_> = routed
                    .routes
                    .iter()
                    .map(|(n, r)| (n, encode_one(TypeKind::Route, n, route_parts(r), encoded)))
                    .collect();
                for (kind, fresh) in [(TypeKind::Listener, listeners), (TypeKind::Route, routes)] {
                    let old = std::mem::take(&mut maps[kind.index()]);
                    let map = &mut maps[kind.index()];
                    for (name, r) in fresh {
                        match old.get(name) {
                            Some(o) if o.version == r.version => {
                                map.insert(name.clone(), o.clone())
                            }
                            _ => map.insert(name.clone(), r),
                        };
                    }
                }
                Some(Arc::new(View::new(maps)))
            }
            Delta::Other => None,
        }
    }
}

/// Puts `r` in the map unless the resource there has the same version already: then
/// the previous shared bytes stay.
fn keep_or_replace(map: &mut ResourceMap, name: String, r: Arc<Encoded>) {
    if map.get(&name).is_none_or(|old| old.version != r.version) {
        map.insert(name, r);
    }
}

/// A resource's encoding, its canonical bytes (hashed for its version) and what it
/// uses (see [`Encoded::uses`]).
type Parts = (Vec<u8>, Vec<u8>, Box<[String]>);

fn cluster_parts(c: &Cluster) -> Parts {
    (
        c.encode_to_vec(),
        canonical::cluster(c),
        uses::of_cluster(c),
    )
}

fn endpoint_parts(e: &ClusterLoadAssignment) -> Parts {
    let bytes = e.encode_to_vec();
    (bytes.clone(), bytes, Box::default())
}

fn listener_parts(l: &Listener) -> Parts {
    (
        l.encode_to_vec(),
        canonical::listener(l),
        uses::of_listener(l),
    )
}

fn route_parts(r: &RouteConfiguration) -> Parts {
    (r.encode_to_vec(), canonical::route(r), uses::of_route(r))
}

/// Every resource encoded for a snapshot, by (type, name, version).
type EncodedCache = HashMap<(TypeKind, String, String), Arc<Encoded>>;

/// Encodes one resource once per snapshot: its version is the hash of its canonical
/// bytes, and the same (type, name, version) gets the same shared bytes.
fn encode_one(
    kind: TypeKind,
    name: &str,
    (value, canonical, uses): Parts,
    encoded: &mut EncodedCache,
) -> Arc<Encoded> {
    let version = short_hash(&canonical);
    encoded
        .entry((kind, name.to_string(), version.clone()))
        .or_insert_with(|| {
            let empty = kind == TypeKind::Endpoint && uses::serves_nothing(&value);
            let any = Any {
                type_url: kind.type_url().to_string(),
                value,
            };
            let bytes = Bytes::from(any.encode_to_vec());
            let e = Encoded::new(name, version, bytes).with_uses(uses);
            Arc::new(e.with_empty(empty))
        })
        .clone()
}

fn encode_view(resources: &Resources, encoded: &mut EncodedCache) -> View {
    let mut by_type: [ResourceMap; TypeKind::COUNT] = Default::default();
    for (name, r) in &resources.clusters {
        let e = encode_one(TypeKind::Cluster, name, cluster_parts(r), encoded);
        by_type[TypeKind::Cluster.index()].insert(name.clone(), e);
    }
    for (name, r) in &resources.endpoints {
        let e = encode_one(TypeKind::Endpoint, name, endpoint_parts(r), encoded);
        by_type[TypeKind::Endpoint.index()].insert(name.clone(), e);
    }
    for (name, r) in &resources.listeners {
        let e = encode_one(TypeKind::Listener, name, listener_parts(r), encoded);
        by_type[TypeKind::Listener.index()].insert(name.clone(), e);
    }
    for (name, r) in &resources.routes {
        let e = encode_one(TypeKind::Route, name, route_parts(r), encoded);
        by_type[TypeKind::Route.index()].insert(name.clone(), e);
    }
    for (name, r) in &resources.secrets {
        let bytes = r.encode_to_vec();
        let e = encode_one(
            TypeKind::Secret,
            name,
            (bytes.clone(), bytes, Box::default()),
            encoded,
        );
        by_type[TypeKind::Secret.index()].insert(name.clone(), e);
    }
    View::new(by_type)
}

/// The first 16 hex digits of a SHA-256: short, and collisions are not a concern at
/// the scale of one proxy's resources.
pub fn short_hash(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    hex::encode(&digest[..8])
}
