//! What one class of proxies is served, with what every stream needs to move from one
//! view to the next in time proportional to what changed: an order-independent digest
//! per type, and the changes since an earlier view, computed once and shared.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use super::{Encoded, TypeKind};

/// Resources by name, for one type.
pub type ResourceMap = BTreeMap<String, Arc<Encoded>>;

/// One resource that differs between two views: its new state, `None` when removed.
#[derive(Debug, Clone)]
pub struct Change {
    pub name: String,
    pub now: Option<Arc<Encoded>>,
    /// Whether the older view had a resource of this name.
    pub before: bool,
    /// Whether the new state uses a cluster the older view does not have (see
    /// [`Encoded::uses`]), which a proxy cannot have warmed yet, or one whose
    /// assignment in the new view is empty.
    pub uses_new: bool,
}

/// The changes between two views, per type (indexed in [`TypeKind::ALL`] order).
pub type ViewDiff = [Vec<Change>; TypeKind::COUNT];

/// How many earlier views a view remembers its changes from. Streams move together,
/// so one or two is the common case; a slow stream beyond that computes its own.
const DIFFS_KEPT: usize = 8;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Everything one class of proxies is served, per type.
#[derive(Debug)]
pub struct View {
    id: u64,
    by_type: [ResourceMap; TypeKind::COUNT],
    /// Each type's resources sorted by name, as one list that streams holding exactly
    /// these share.
    items: [Arc<Vec<Arc<Encoded>>>; TypeKind::COUNT],
    digests: [u128; TypeKind::COUNT],
    /// Every cluster a listener or route configuration of this view uses.
    used: std::collections::BTreeSet<String>,
    diffs: Mutex<VecDeque<(u64, Arc<ViewDiff>)>>,
}

impl Default for View {
    fn default() -> Self {
        View::new(Default::default())
    }
}

impl View {
    /// A view from resources per type, indexed in [`TypeKind::ALL`] order.
    pub fn new(by_type: [ResourceMap; TypeKind::COUNT]) -> Self {
        let digests = by_type
            .each_ref()
            .map(|m| m.values().fold(0u128, |d, r| d ^ r.digest));
        let items = by_type
            .each_ref()
            .map(|m| Arc::new(m.values().cloned().collect()));
        let used = [TypeKind::Listener, TypeKind::Route]
            .iter()
            .flat_map(|k| by_type[k.index()].values())
            .flat_map(|r| r.uses.iter().cloned())
            .collect();
        Self {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            by_type,
            items,
            digests,
            used,
            diffs: Mutex::default(),
        }
    }

    /// A copy of the resource maps (pointers to the shared resources), to build the
    /// next view from.
    pub fn to_maps(&self) -> [ResourceMap; TypeKind::COUNT] {
        self.by_type.clone()
    }

    pub fn resources(&self, kind: TypeKind) -> &ResourceMap {
        &self.by_type[kind.index()]
    }

    /// The digest of every resource of a type (see [`digest_of`]).
    /// The resources of a type sorted by name, shared.
    pub fn items(&self, kind: TypeKind) -> &Arc<Vec<Arc<Encoded>>> {
        &self.items[kind.index()]
    }

    pub fn digest(&self, kind: TypeKind) -> u128 {
        self.digests[kind.index()]
    }

    /// Whether this view's cluster of that name has an assignment with no endpoint to
    /// take traffic.
    pub fn is_empty(&self, cluster: &str) -> bool {
        let Some(c) = self.by_type[TypeKind::Cluster.index()].get(cluster) else {
            return false;
        };
        let assignments = &self.by_type[TypeKind::Endpoint.index()];
        c.uses
            .first()
            .and_then(|name| assignments.get(name))
            .is_some_and(|a| a.empty)
    }

    /// Whether a listener or route configuration of this view uses the cluster.
    pub fn uses(&self, cluster: &str) -> bool {
        self.used.contains(cluster)
    }

    /// What changed from `old` to this view, computed once per pair and shared by
    /// every stream making the same move.
    pub fn changes_since(&self, old: &View) -> Arc<ViewDiff> {
        let mut diffs = self.diffs.lock().expect("view diffs poisoned");
        if let Some((_, d)) = diffs.iter().find(|(id, _)| *id == old.id) {
            return d.clone();
        }
        let clusters = old.resources(TypeKind::Cluster);
        let unready = |c: &str| !clusters.contains_key(c) || self.is_empty(c);
        let diff = Arc::new(
            TypeKind::ALL.map(|kind| changes(old.resources(kind), self.resources(kind), &unready)),
        );
        diffs.push_back((old.id, diff.clone()));
        if diffs.len() > DIFFS_KEPT {
            diffs.pop_front();
        }
        diff
    }
}

/// The changes of one type; `unready` says which clusters count for
/// [`Change::uses_new`].
fn changes(old: &ResourceMap, new: &ResourceMap, unready: &dyn Fn(&str) -> bool) -> Vec<Change> {
    let mut out = Vec::new();
    for (name, r) in new {
        let before = old.get(name);
        if before.is_none_or(|o| o.version != r.version) {
            out.push(Change {
                name: name.clone(),
                now: Some(r.clone()),
                before: before.is_some(),
                uses_new: r.uses.iter().any(|c| unready(c)),
            });
        }
    }
    for name in old.keys().filter(|n| !new.contains_key(*n)) {
        out.push(Change {
            name: name.clone(),
            now: None,
            before: true,
            uses_new: false,
        });
    }
    out
}

/// A resource's contribution to a set digest: a hash of its name and version. Set
/// digests are the XOR of their members', so adding or removing one costs O(1) and
/// equal sets have equal digests in every process.
pub fn digest_of(name: &str, version: &str) -> u128 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([0]);
    h.update(version.as_bytes());
    let bytes = h.finalize();
    u128::from_be_bytes(bytes[..16].try_into().expect("16 bytes"))
}

/// A set digest as the version string xDS carries.
pub fn version_of(digest: u128) -> String {
    format!("{:016x}", (digest >> 64) as u64 ^ digest as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mk(name: &str, version: &str) -> Arc<Encoded> {
        Arc::new(Encoded::new(name, version, Default::default()))
    }

    fn mk_view(items: &[(&str, &str)]) -> View {
        let map: ResourceMap = items
            .iter()
            .map(|(n, v)| (n.to_string(), mk(n, v)))
            .collect();
        View::new([
            map,
            ResourceMap::new(),
            ResourceMap::new(),
            ResourceMap::new(),
            ResourceMap::new(),
        ])
    }

    #[test]
    fn digests_are_order_independent_and_content_bound() {
        let a = mk_view(&[("a", "1"), ("b", "1")]);
        let b = mk_view(&[("b", "1"), ("a", "1")]);
        let c = mk_view(&[("a", "1"), ("b", "2")]);
        assert_eq!(a.digest(TypeKind::Cluster), b.digest(TypeKind::Cluster));
        assert_ne!(a.digest(TypeKind::Cluster), c.digest(TypeKind::Cluster));
        assert_eq!(a.digest(TypeKind::Route), 0);
    }

    #[test]
    fn changes_are_computed_once_and_shared() {
        let old = mk_view(&[("a", "1"), ("b", "1"), ("c", "1")]);
        let new = mk_view(&[("a", "1"), ("b", "2"), ("d", "1")]);
        let d1 = new.changes_since(&old);
        let d2 = new.changes_since(&old);
        assert!(Arc::ptr_eq(&d1, &d2));
        let names: Vec<(&str, bool)> = d1[0]
            .iter()
            .map(|c| (c.name.as_str(), c.now.is_some()))
            .collect();
        assert_eq!(names, [("b", true), ("d", true), ("c", false)]);
        assert!(d1[1].is_empty());
    }
}
