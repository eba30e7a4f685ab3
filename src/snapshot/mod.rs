//! Encoded Envoy resources with content-hash versions, shared by every stream.
//!
//! A [`Snapshot`] wraps one validated [`Config`]. Proxies are grouped into classes by
//! the Gateways that select them; each class's [`View`] is translated once, each
//! resource in it encoded once, and the same bytes (`Arc<Encoded>`) are handed to every
//! stream that receives them. Memory therefore grows with the config, not with
//! config × proxies. Nothing here does IO.

mod canonical;
mod diff;
mod kind;
mod view;

pub use diff::{diff, DiffAction};
pub use kind::TypeKind;
pub use view::{digest_of, version_of, Change, ResourceMap, View, ViewDiff};

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
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
        }
    }

    /// Decodes the resource back (for dumps and tests; never on the push path).
    pub fn decode<M: Message + Default>(&self) -> Result<M, prost::DecodeError> {
        let any = Any::decode(self.any.clone())?;
        M::decode(any.value.as_slice())
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
    /// A hash of the whole configuration, for logs and the admin API.
    version: String,
    cache: Mutex<Cache>,
}

#[derive(Debug, Default)]
struct Cache {
    views: HashMap<BTreeSet<ResourceKey>, Arc<View>>,
    /// Every resource encoded for this snapshot, by (type, name, version), so that two
    /// classes with the same resource share its bytes.
    encoded: HashMap<(TypeKind, String, String), Arc<Encoded>>,
}

impl Snapshot {
    pub fn new(config: Arc<Config>, revision: u64) -> Self {
        let version = short_hash(format!("{config:?}").as_bytes());
        Self {
            config,
            revision,
            created: std::time::Instant::now(),
            version,
            cache: Mutex::default(),
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

    pub fn version(&self) -> &str {
        &self.version
    }

    /// The view for a proxy declaring these labels in its node metadata.
    pub fn view_for(&self, labels: &Labels) -> Arc<View> {
        let gateways = translate::select_gateways(&self.config, labels);
        self.view_for_gateways(gateways)
    }

    pub fn view_for_gateways(&self, gateways: BTreeSet<ResourceKey>) -> Arc<View> {
        let mut cache = self.cache.lock().expect("snapshot cache poisoned");
        if let Some(view) = cache.views.get(&gateways) {
            return view.clone();
        }
        let resources = translate::translate(&self.config, &gateways);
        let view = Arc::new(encode_view(&resources, &mut cache.encoded));
        cache.views.insert(gateways, view.clone());
        view
    }
}

fn encode_view(
    resources: &Resources,
    encoded: &mut HashMap<(TypeKind, String, String), Arc<Encoded>>,
) -> View {
    let mut by_type: [ResourceMap; 4] = Default::default();
    let mut put = |kind: TypeKind, name: &str, value: Vec<u8>, canonical: Vec<u8>| {
        let version = short_hash(&canonical);
        let key = (kind, name.to_string(), version.clone());
        let entry = encoded
            .entry(key)
            .or_insert_with(|| {
                let any = Any {
                    type_url: kind.type_url().to_string(),
                    value,
                };
                Arc::new(Encoded::new(
                    name,
                    version,
                    Bytes::from(any.encode_to_vec()),
                ))
            })
            .clone();
        by_type[kind.index()].insert(name.to_string(), entry);
    };
    for (name, r) in &resources.clusters {
        put(
            TypeKind::Cluster,
            name,
            r.encode_to_vec(),
            canonical::cluster(r),
        );
    }
    for (name, r) in &resources.endpoints {
        let bytes = r.encode_to_vec();
        put(TypeKind::Endpoint, name, bytes.clone(), bytes);
    }
    for (name, r) in &resources.listeners {
        put(
            TypeKind::Listener,
            name,
            r.encode_to_vec(),
            canonical::listener(r),
        );
    }
    for (name, r) in &resources.routes {
        put(
            TypeKind::Route,
            name,
            r.encode_to_vec(),
            canonical::route(r),
        );
    }
    View::new(by_type)
}

/// The first 16 hex digits of a SHA-256: short, and collisions are not a concern at
/// the scale of one proxy's resources.
pub fn short_hash(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    hex::encode(&digest[..8])
}
