//! Make-before-break on one proxy: what a stream may send now, so that the proxy never
//! routes to a cluster it has not warmed and loses no cluster that its routes still use.
//!
//! The rules (the xDS protocol's "eventual consistency considerations" and "resource
//! warming"), kept per stream, so one slow or NACKing proxy holds nobody else:
//! - a cluster new to the proxy is *unwarmed* until the proxy has ACKed the clusters it
//!   came in and, for an EDS cluster, an assignment of it sent after them;
//! - a route configuration that uses an unwarmed cluster is held back (the proxy keeps
//!   the version it has, or gets none yet) until the cluster is warm;
//! - one that uses a cluster absent from the view waits for that cluster up to
//!   [`ABSENT_GRACE`] (Kubernetes events come one object at a time: a route may arrive
//!   before its Service), unless the version the proxy holds already used it or the
//!   proxy holds none;
//! - a cluster the view dropped stays on the proxy (with its assignment) while a route
//!   configuration the proxy holds uses it, and while its listeners or route
//!   configurations are not ACKed (it may still be using the previous ones); one that
//!   routes still use while it is absent from the view goes after [`ABSENT_GRACE`];
//! - an assignment that would go empty while the proxy's routes use its cluster keeps
//!   its endpoints up to [`ABSENT_GRACE`] (a Service deleted before the route moved);
//! - a cluster that changed is re-warmed by Envoy, which waits for its assignment (and
//!   ACKs the clusters only once warming is done): the assignment is sent again right
//!   after the clusters, even when it is the same;
//! - none of this applies to a client that subscribes to clusters by name (gRPC): it
//!   fetches the clusters its routes name and keeps the old ones until they are ready.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use super::held::Held;
use crate::snapshot::{Change, Encoded, TypeKind, View, ViewDiff};

/// How long a route waits for a cluster absent from the view, and how long a dropped
/// cluster that routes still use stays on the proxy.
pub const ABSENT_GRACE: Duration = Duration::from_secs(5);

/// What an unwarmed cluster still waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Needs {
    /// The ACK of the clusters it came in (a cluster without an assignment).
    Clusters,
    /// Those, and the ACK of an assignment sent after them (`sent` once it went out).
    Assignment { sent: bool },
}

/// One stream's warming state.
#[derive(Debug, Clone)]
pub struct Warmth {
    unwarmed: BTreeMap<String, Needs>,
    /// The proxy's first clusters, unwarmed together: tracked as one, not by name (a
    /// new proxy would otherwise list every cluster of the configuration here).
    first: Option<Needs>,
    /// Changed EDS clusters whose assignment must go again (`true` once it went, until
    /// the proxy ACKs it).
    rewarm: BTreeMap<String, bool>,
    /// Per type: every response sent was ACKed (nothing outstanding, no NACK since).
    settled: [bool; TypeKind::COUNT],
    /// Per type: whether anything was sent or answered on this stream yet.
    started: [bool; TypeKind::COUNT],
    /// Absent clusters the last pass waited for, and those given up on.
    waiting: BTreeSet<String>,
    given_up: BTreeSet<String>,
    /// Whether the last pass held anything back.
    holding: bool,
    /// Whether an answer since the last pass may let something held back go.
    progressed: bool,
}

impl Default for Warmth {
    fn default() -> Self {
        Self {
            unwarmed: BTreeMap::new(),
            first: None,
            rewarm: BTreeMap::new(),
            settled: [true; TypeKind::COUNT],
            started: [false; TypeKind::COUNT],
            waiting: BTreeSet::new(),
            given_up: BTreeSet::new(),
            holding: false,
            progressed: false,
        }
    }
}

impl Warmth {
    /// A proxy that reconnected holding other clusters (its first CDS request said so):
    /// it may be using listeners and routes not heard of yet, so no cluster is dropped
    /// before those are ACKed.
    /// Types that already had an exchange on this stream (Envoy's requests after a
    /// reconnect come in any order) are known, and keep what they are.
    pub fn resumed(&mut self) {
        for kind in [TypeKind::Listener, TypeKind::Route] {
            if !self.started[kind.index()] {
                self.settled[kind.index()] = false;
            }
        }
    }

    /// A response of `kind` went out.
    pub fn sent(&mut self, kind: TypeKind) {
        self.started[kind.index()] = true;
        self.settled[kind.index()] = false;
    }

    /// The proxy answered a response of `kind`: `settled` when it ACKed and nothing of
    /// that type is outstanding.
    pub fn answered(&mut self, kind: TypeKind, settled: bool) {
        let routes = matches!(kind, TypeKind::Listener | TypeKind::Route);
        // Routes ACKed may let a kept cluster go.
        self.progressed |= routes && settled && !self.settled[kind.index()];
        self.started[kind.index()] = true;
        self.settled[kind.index()] = settled;
        let (clusters, assignments) = (
            self.settled[TypeKind::Cluster.index()],
            self.settled[TypeKind::Endpoint.index()],
        );
        if assignments {
            self.rewarm.retain(|_, sent| !*sent);
        }
        if clusters {
            let warm = |needs: &Needs| match needs {
                Needs::Clusters => true,
                Needs::Assignment { sent } => *sent && assignments,
            };
            let (unwarmed, first) = (self.unwarmed.len(), self.first.is_some());
            self.unwarmed.retain(|_, needs| !warm(needs));
            self.first = self.first.filter(|needs| !warm(needs));
            // A cluster warmed may let a route held back go.
            self.progressed |= self.unwarmed.len() < unwarmed || first && self.first.is_none();
        }
    }

    /// Whether something held back may go since the last pass (then the stream makes
    /// one); the answers that cannot release anything cost no pass.
    pub fn take_progress(&mut self) -> bool {
        std::mem::take(&mut self.progressed) && self.busy()
    }

    /// The first clusters go out to a proxy that held none.
    fn first_sent<'a>(&mut self, mut clusters: impl Iterator<Item = &'a Arc<Encoded>>) {
        let eds = clusters.any(|c| !c.uses.is_empty());
        self.first = Some(match eds {
            true => Needs::Assignment { sent: false },
            false => Needs::Clusters,
        });
    }

    /// A cluster went out: `new` when the proxy did not hold one of its name.
    fn cluster_sent(&mut self, cluster: &Encoded, new: bool) {
        self.given_up.remove(&cluster.name);
        let eds = !cluster.uses.is_empty();
        if new {
            let needs = if eds {
                Needs::Assignment { sent: false }
            } else {
                Needs::Clusters
            };
            self.unwarmed.insert(cluster.name.clone(), needs);
        } else if eds {
            self.rewarm.insert(cluster.name.clone(), false);
        }
    }

    /// Notes the clusters and assignments about to go out from a view's changes (those
    /// subscribed to), while `held` is still what the proxy had.
    pub fn note_changes<'a>(
        &mut self,
        kind: TypeKind,
        held: &Held,
        changes: impl Iterator<Item = &'a Change>,
    ) {
        if kind == TypeKind::Cluster && held.items().is_empty() {
            return self.first_sent(changes.filter_map(|c| c.now.as_ref()));
        }
        for change in changes {
            let Some(r) = &change.now else { continue };
            match kind {
                TypeKind::Cluster => self.cluster_sent(r, held.get(&change.name).is_none()),
                TypeKind::Endpoint => self.assignment_sent(&change.name),
                _ => {}
            }
        }
    }

    /// Notes the clusters and assignments in `fresh`, about to go out to a proxy that
    /// held `before`.
    pub fn note_fresh(&mut self, kind: TypeKind, before: &Held, fresh: &[Arc<Encoded>]) {
        if kind == TypeKind::Cluster && before.items().is_empty() && !fresh.is_empty() {
            return self.first_sent(fresh.iter());
        }
        for r in fresh {
            match kind {
                TypeKind::Cluster => self.cluster_sent(r, before.get(&r.name).is_none()),
                TypeKind::Endpoint => self.assignment_sent(&r.name),
                _ => {}
            }
        }
    }

    /// An assignment went out.
    fn assignment_sent(&mut self, name: &str) {
        if let Some(Needs::Assignment { sent }) = self.unwarmed.get_mut(name) {
            *sent = true;
        }
        if let Some(Needs::Assignment { sent }) = &mut self.first {
            *sent = true;
        }
        if let Some(sent) = self.rewarm.get_mut(name) {
            *sent = true;
        }
    }

    /// Changed clusters whose assignment is due again. It goes right after the clusters,
    /// on the same stream: Envoy defers its CDS ACK until warming is done, and has
    /// registered the warming cluster's interest in its assignment by the time it reads
    /// the next message.
    pub fn rewarm_due(&self) -> Vec<String> {
        let due = self.rewarm.iter().filter(|(_, sent)| !**sent);
        due.map(|(name, _)| name.clone()).collect()
    }

    /// Whether anything is still in flight: an unwarmed cluster, an assignment to
    /// re-send, or something held back or kept by the last pass.
    pub fn busy(&self) -> bool {
        self.holding || self.first.is_some() || !self.unwarmed.is_empty() || !self.rewarm.is_empty()
    }

    /// Whether a pass is waiting for a cluster absent from the view.
    pub fn waiting_absent(&self) -> bool {
        !self.waiting.is_empty()
    }

    /// [`ABSENT_GRACE`] ran out: stop waiting for the absent clusters waited for.
    pub fn give_up_absent(&mut self) {
        self.given_up.append(&mut self.waiting);
    }

    /// Whether the view's changes can go out as they are, with nothing to hold back
    /// or add: everything the stream was sent is warm, no changed route uses a
    /// cluster the previous view lacked, no EDS cluster changed, and a dropped cluster
    /// is used by no route of either view (the proxy holds the old routes until it
    /// ACKs the new).
    pub fn open_for(&self, old: &View, view: &View, changes: &ViewDiff) -> bool {
        if self.busy() {
            return false;
        }
        // An assignment going empty under a route (named as its cluster, as coalmine
        // names them) may have to stay (see `keep_emptied`).
        let emptied = changes[TypeKind::Endpoint.index()].iter().any(|c| {
            c.now.as_ref().is_some_and(|r| r.empty) && (old.uses(&c.name) || view.uses(&c.name))
        });
        if emptied {
            return false;
        }
        let routes_new = [TypeKind::Listener, TypeKind::Route]
            .iter()
            .flat_map(|k| &changes[k.index()])
            .any(|c| c.now.is_some() && c.uses_new);
        let clusters = &changes[TypeKind::Cluster.index()];
        // A changed EDS cluster needs its assignment again (see `rewarm_due`).
        let rewarms = clusters
            .iter()
            .any(|c| c.before && c.now.as_ref().is_some_and(|r| !r.uses.is_empty()));
        let mut dropped = clusters.iter().filter(|c| c.now.is_none());
        !routes_new
            && !rewarms
            && dropped.all(|c| self.routes_settled() && !old.uses(&c.name) && !view.uses(&c.name))
    }

    fn routes_settled(&self) -> bool {
        self.settled[TypeKind::Listener.index()] && self.settled[TypeKind::Route.index()]
    }
}

#[cfg(test)]
pub mod fixtures;
mod gate;
