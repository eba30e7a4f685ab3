//! One pass of the make-before-break gate over a stream's types: what the proxy may
//! hold of each now (see the parent module for the rules).

use std::sync::Arc;

use super::Warmth;
use crate::snapshot::{Encoded, TypeKind, View};
use crate::xds::held::Held;

impl Warmth {
    /// Starts a pass over every type (in xDS order, through [`Warmth::gate`]).
    pub fn start_pass(&mut self) {
        self.holding = false;
        self.waiting.clear();
    }

    /// What the proxy may hold of `kind` now, from `wanted` (the subscription's share
    /// of the view, sorted by name) and what it holds (`held`, every type; clusters
    /// already passed through this gate for this pass). Sorted by name.
    pub fn gate(
        &mut self,
        kind: TypeKind,
        wanted: Vec<Arc<Encoded>>,
        view: &View,
        held: [&Held; TypeKind::COUNT],
        subscribed: &dyn Fn(&str) -> bool,
    ) -> Vec<Arc<Encoded>> {
        match kind {
            TypeKind::Cluster => self.keep_clusters(wanted, view, held),
            TypeKind::Endpoint => self.keep_assignments(wanted, view, held, subscribed),
            TypeKind::Listener | TypeKind::Route => self.hold_unwarmed(kind, wanted, view, held),
            // Envoy keeps a listener warming until the secrets it names arrive, and asks
            // for them by name: a secret is never held back nor needs keeping.
            TypeKind::Secret => wanted,
        }
    }

    /// Adds the held clusters that the view dropped but that must stay.
    fn keep_clusters(
        &mut self,
        wanted: Vec<Arc<Encoded>>,
        view: &View,
        held: [&Held; TypeKind::COUNT],
    ) -> Vec<Arc<Encoded>> {
        let clusters = view.resources(TypeKind::Cluster);
        let mut kept = Vec::new();
        for cluster in held[TypeKind::Cluster.index()].items() {
            if clusters.contains_key(&cluster.name) || self.given_up.contains(&cluster.name) {
                continue;
            }
            let used = in_use(held, &cluster.name);
            if !used && self.routes_settled() {
                continue;
            }
            if used && view.uses(&cluster.name) {
                self.waiting.insert(cluster.name.clone());
            }
            kept.push(cluster.clone());
        }
        merge(wanted, kept, &mut self.holding)
    }

    /// Adds the held assignments of the clusters kept (those the proxy holds that the
    /// view does not have), where still subscribed to.
    fn keep_assignments(
        &mut self,
        wanted: Vec<Arc<Encoded>>,
        view: &View,
        held: [&Held; TypeKind::COUNT],
        subscribed: &dyn Fn(&str) -> bool,
    ) -> Vec<Arc<Encoded>> {
        let clusters = view.resources(TypeKind::Cluster);
        let kept: Vec<Arc<Encoded>> = held[TypeKind::Cluster.index()]
            .items()
            .iter()
            .filter(|c| !clusters.contains_key(&c.name))
            // A cluster known only by name and version (a reconnecting client's
            // claim) is taken to warm with the assignment of its name.
            .flat_map(|c| {
                if c.uses.is_empty() {
                    std::slice::from_ref(&c.name)
                } else {
                    &c.uses
                }
            })
            .filter(|name| {
                subscribed(name) && !view.resources(TypeKind::Endpoint).contains_key(*name)
            })
            .filter_map(|name| held[TypeKind::Endpoint.index()].get(name).cloned())
            .collect();
        let wanted = self.keep_emptied(wanted, held);
        merge(wanted, kept, &mut self.holding)
    }

    /// Keeps, for up to [`ABSENT_GRACE`](super::ABSENT_GRACE), the endpoints of an assignment that would go
    /// empty while routes the proxy holds use its cluster (a Kubernetes Service deleted
    /// before the route leaves it): its cluster is then as good as absent.
    fn keep_emptied(
        &mut self,
        wanted: Vec<Arc<Encoded>>,
        held: [&Held; TypeKind::COUNT],
    ) -> Vec<Arc<Encoded>> {
        let on_proxy = held[TypeKind::Endpoint.index()];
        wanted
            .into_iter()
            .map(|w| {
                if !w.empty {
                    self.given_up.remove(&w.name);
                }
                let before = on_proxy.get(&w.name).filter(|b| !b.empty);
                match before {
                    Some(b)
                        if w.empty && !self.given_up.contains(&w.name) && in_use(held, &w.name) =>
                    {
                        self.waiting.insert(w.name.clone());
                        self.holding = true;
                        b.clone()
                    }
                    _ => w,
                }
            })
            .collect()
    }

    /// Keeps the held version of each listener or route configuration that uses a
    /// cluster the proxy has not warmed.
    fn hold_unwarmed(
        &mut self,
        kind: TypeKind,
        wanted: Vec<Arc<Encoded>>,
        view: &View,
        held: [&Held; TypeKind::COUNT],
    ) -> Vec<Arc<Encoded>> {
        let clusters = view.resources(TypeKind::Cluster);
        let on_proxy = held[TypeKind::Cluster.index()];
        let mut out = Vec::with_capacity(wanted.len());
        for w in wanted {
            let before = held[kind.index()].get(&w.name);
            if before.is_some_and(|b| b.version == w.version) {
                out.push(w);
                continue;
            }
            let mut ready = true;
            for c in w.uses.iter() {
                let warm = on_proxy.get(c).is_some()
                    && self.first.is_none()
                    && !self.unwarmed.contains_key(c);
                // A cluster with no endpoint yet (a Service before its EndpointSlice)
                // is waited for like an absent one, when traffic would move to it.
                let moving = before.is_some_and(|b| !b.uses.iter().any(|u| u == c));
                if warm && moving && view.is_empty(c) && !self.given_up.contains(c) {
                    self.waiting.insert(c.clone());
                    ready = false;
                    continue;
                }
                if warm {
                    continue;
                }
                if clusters.contains_key(c) {
                    ready = false;
                } else {
                    let moot = self.given_up.contains(c)
                        || before.is_none_or(|b| b.uses.iter().any(|u| u == c));
                    if !moot {
                        self.waiting.insert(c.clone());
                        ready = false;
                    }
                }
            }
            if ready {
                out.push(w);
            } else {
                self.holding = true;
                out.extend(before.cloned());
            }
        }
        out
    }
}

/// Whether a listener or route configuration the proxy holds uses the cluster.
fn in_use(held: [&Held; TypeKind::COUNT], cluster: &str) -> bool {
    [TypeKind::Listener, TypeKind::Route]
        .iter()
        .flat_map(|k| held[k.index()].items())
        .any(|r| r.uses.iter().any(|u| u == cluster))
}

/// `wanted` with `kept` added (sorted by name); notes that something was kept.
fn merge(
    mut wanted: Vec<Arc<Encoded>>,
    kept: Vec<Arc<Encoded>>,
    holding: &mut bool,
) -> Vec<Arc<Encoded>> {
    if kept.is_empty() {
        return wanted;
    }
    *holding = true;
    wanted.extend(kept);
    wanted.sort_by(|a, b| a.name.cmp(&b.name));
    wanted
}
