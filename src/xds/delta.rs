//! One Delta (incremental) ADS stream as a sans-IO state machine.
//!
//! The rules it keeps (xDS protocol, "Incremental xDS"):
//! - per type, the client's subscription is a wildcard flag plus explicit names; the
//!   first request naming nothing (or naming `*`) subscribes to the wildcard;
//! - `initial_resource_versions` on a (re)connect say what the client already holds,
//!   and nothing it holds at the current version is sent again;
//! - a response carries only resources whose version the client does not hold, and
//!   `removed_resources` for those it holds that are gone;
//! - the first request for a type always gets a response (possibly empty), so the
//!   client can finish initializing; later ones only when something changed or a
//!   name subscribed to does not exist (listed in `removed_resources`);
//! - a request with the nonce of an outstanding response ACKs it, or NACKs it with an
//!   `error_detail`; versions sent are taken as held either way, so a NACK never
//!   triggers a resend: the next response comes when the content changes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use envoy_types::pb::envoy::service::discovery::v3::DeltaDiscoveryRequest;

use super::held::Held;
use super::names::{intern, Names};
use super::sotw::{Event, Output};
use super::warm::Warmth;
use crate::snapshot::{Encoded, ResourceMap, TypeKind, View};

/// Unanswered responses remembered per type; a client that never answers cannot make
/// the stream grow without bound.
const MAX_OUTSTANDING: usize = 64;

/// Resources of one type sorted by name, shared.
type Items = Arc<Vec<Arc<Encoded>>>;

/// A response to write on a Delta stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeltaResponse {
    pub kind: TypeKind,
    /// A hash of every (name, version) the client holds for this type after applying
    /// this response: the type's version, as the ledger reports it.
    pub system_version: String,
    pub nonce: String,
    pub resources: Vec<Arc<Encoded>>,
    pub removed: Vec<String>,
}

#[derive(Debug, Clone, Default)]
struct TypeState {
    started: bool,
    wildcard: bool,
    /// Explicitly subscribed names, shared with streams subscribed to the same set.
    names: Names,
    /// What the client holds (or is being sent).
    held: Held,
    /// Responses not yet ACKed or NACKed: nonce → system version, and the set the
    /// client holds once it applies that response.
    outstanding: BTreeMap<u64, (String, Items)>,
    served: Option<String>,
    acked: Option<String>,
    /// The set whose version is `acked`.
    acked_items: Arc<Vec<Arc<Encoded>>>,
}

/// Everything one Delta ADS stream knows.
#[derive(Debug)]
pub struct DeltaStream {
    view: Arc<View>,
    types: [TypeState; TypeKind::COUNT],
    nonces: u64,
    /// Make-before-break: what the proxy has warmed, and what is held back for it.
    warmth: Warmth,
    /// What the client's class was served before, to recognise what it holds when it
    /// reconnects.
    previous: Option<Arc<View>>,
}

impl DeltaStream {
    pub fn new(view: Arc<View>) -> Self {
        Self {
            view,
            types: Default::default(),
            nonces: 0,
            warmth: Warmth::default(),
            previous: None,
        }
    }

    /// Remembers the view served before `view` (see [`DeltaStream::new`]).
    pub fn with_previous(self, previous: Option<Arc<View>>) -> Self {
        Self { previous, ..self }
    }

    /// Whether the client has been sent everything of its view (nothing held back,
    /// every new cluster warm).
    pub fn converged(&self) -> bool {
        !self.gated() || !self.warmth.busy()
    }

    /// Whether a pass waits for a cluster absent from the view (see
    /// [`super::warm::ABSENT_GRACE`]).
    pub fn waiting_absent(&self) -> bool {
        self.gated() && self.warmth.waiting_absent()
    }

    /// The grace for absent clusters ran out: what was waiting for them goes now.
    pub fn absent_expired(&mut self) -> DeltaOutput {
        self.warmth.give_up_absent();
        let mut out = DeltaOutput::default();
        self.reconcile(&mut out);
        self.share_view_lists();
        out
    }

    /// Holds apply to a client that subscribes to every cluster (Envoy).
    fn gated(&self) -> bool {
        self.types[TypeKind::Cluster.index()].wildcard
    }

    /// Every started type through the make-before-break gate, in xDS order.
    fn reconcile(&mut self, out: &mut DeltaOutput) {
        self.warmth.start_pass();
        for kind in TypeKind::ALL {
            let state = &self.types[kind.index()];
            // A type held exactly as the view has it has nothing to hold back or keep.
            let whole = state.wildcard
                && state.names.is_empty()
                && kind != TypeKind::Endpoint
                && state.held.digest() == self.view.digest(kind);
            if !state.started || whole {
                continue;
            }
            let (resources, removed) = self.resync(kind);
            if !resources.is_empty() || !removed.is_empty() {
                out.responses.push(self.respond(kind, resources, removed));
            }
        }
    }

    pub fn acked(&self, kind: TypeKind) -> Option<&str> {
        self.types[kind.index()].acked.as_deref()
    }

    pub fn sent(&self, kind: TypeKind) -> Option<&str> {
        self.types[kind.index()].served.as_deref()
    }

    /// What the client holds (or is being sent) of a type, sorted by name.
    pub fn holds(&self, kind: TypeKind) -> &Arc<Vec<Arc<Encoded>>> {
        self.types[kind.index()].held.list()
    }

    /// What the client held of a type when it last ACKed.
    pub fn acked_holds(&self, kind: TypeKind) -> &Arc<Vec<Arc<Encoded>>> {
        &self.types[kind.index()].acked_items
    }

    /// Handles one request; responses come back in [`DeltaOutput::responses`].
    pub fn handle_request(&mut self, req: &DeltaDiscoveryRequest) -> DeltaOutput {
        let mut out = self.take_request(req);
        if self.types.iter().all(|t| t.started) {
            self.previous = None; // every type has said what it holds
        }
        if self.gated() && self.warmth.take_progress() {
            self.reconcile(&mut out);
        }
        self.share_view_lists();
        out
    }

    fn take_request(&mut self, req: &DeltaDiscoveryRequest) -> DeltaOutput {
        let mut out = DeltaOutput::default();
        let Some(kind) = TypeKind::from_type_url(&req.type_url) else {
            return out;
        };
        let state = &mut self.types[kind.index()];
        if !req.response_nonce.is_empty() {
            let nonce = req.response_nonce.parse::<u64>().ok();
            if let Some((version, items)) = nonce.and_then(|n| state.outstanding.remove(&n)) {
                match &req.error_detail {
                    Some(status) => {
                        self.warmth.answered(kind, false);
                        out.events.push(Event::Nack {
                            kind,
                            version,
                            message: status.message.clone(),
                        })
                    }
                    None => {
                        state.acked = Some(version.clone());
                        state.acked_items = items;
                        self.warmth.answered(kind, state.outstanding.is_empty());
                        out.events.push(Event::Ack { kind, version });
                    }
                }
            }
        }
        let first = !state.started;
        state.started = true;
        if first && !req.initial_resource_versions.is_empty() {
            // A client that reconnected: what it says it holds. Where this view or the
            // previous one has that very version, its resource (with what it uses)
            // stands for it.
            let views = std::iter::once(&self.view).chain(self.previous.as_ref());
            let views: Vec<&ResourceMap> = views.map(|v| v.resources(kind)).collect();
            for (name, version) in &req.initial_resource_versions {
                let known = views
                    .iter()
                    .find_map(|all| all.get(name).filter(|r| &r.version == version))
                    .cloned();
                state.held.put(known.unwrap_or_else(|| {
                    Arc::new(Encoded::new(
                        name.clone(),
                        version.clone(),
                        Default::default(),
                    ))
                }));
            }
            if kind == TypeKind::Cluster {
                self.warmth.resumed();
            }
        }
        let changes_names = req
            .resource_names_subscribe
            .iter()
            .chain(&req.resource_names_unsubscribe)
            .any(|n| n != "*");
        let mut names = if changes_names {
            (*state.names).clone()
        } else {
            BTreeSet::new()
        };
        for name in &req.resource_names_subscribe {
            if name == "*" {
                state.wildcard = true;
            } else {
                names.insert(name.clone());
            }
        }
        if first && req.resource_names_subscribe.is_empty() {
            state.wildcard = true;
        }
        for name in &req.resource_names_unsubscribe {
            if name == "*" {
                state.wildcard = false;
            } else {
                names.remove(name);
                // The client drops what it unsubscribes from.
                state.held.remove(name);
            }
        }
        if changes_names {
            state.names = intern(names);
        }
        if !state.wildcard && req.resource_names_unsubscribe.iter().any(|n| n == "*") {
            let names = state.names.clone();
            let dropped: Vec<String> = state
                .held
                .items()
                .iter()
                .filter(|r| !names.contains(&r.name))
                .map(|r| r.name.clone())
                .collect();
            for name in dropped {
                state.held.remove(&name);
            }
        }
        // A plain ACK or NACK changes nothing the client should hold: only a first
        // request or a change of subscription is worth comparing the view against
        // everything the client holds (thousands of names).
        let subscription_changed = first
            || !req.resource_names_subscribe.is_empty()
            || !req.resource_names_unsubscribe.is_empty();
        if !subscription_changed {
            return out;
        }
        let (resources, mut removed) = self.resync(kind);
        // A name subscribed to that does not exist is reported removed, so the client
        // knows at once instead of waiting for its does-not-exist timer.
        let held = &self.types[kind.index()].held;
        let missing = req
            .resource_names_subscribe
            .iter()
            .filter(|n| *n != "*" && held.get(n).is_none() && !removed.contains(*n));
        removed.extend(missing.cloned().collect::<BTreeSet<_>>());
        if first || !resources.is_empty() || !removed.is_empty() {
            out.responses.push(self.respond(kind, resources, removed));
        }
        out
    }

    /// Moves the stream to a new view, sending each started type's changes in xDS
    /// order; the work is proportional to what changed (the view's changes since the
    /// stream's last one are computed once for every stream).
    pub fn handle_view(&mut self, view: Arc<View>) -> DeltaOutput {
        let out = self.take_view(view);
        self.share_view_lists();
        out
    }

    /// Each type held exactly as the view serves it points at the view's list.
    fn share_view_lists(&mut self) {
        for kind in TypeKind::ALL {
            let (items, digest) = (self.view.items(kind), self.view.digest(kind));
            self.types[kind.index()].held.share(items, digest);
        }
    }

    fn take_view(&mut self, view: Arc<View>) -> DeltaOutput {
        let changes = view.changes_since(&self.view);
        let old = std::mem::replace(&mut self.view, view);
        let mut out = DeltaOutput::default();
        let gated = self.gated();
        if gated && !self.warmth.open_for(&old, &self.view, &changes) {
            self.reconcile(&mut out);
            return out;
        }
        for kind in TypeKind::ALL {
            let state = &mut self.types[kind.index()];
            if !state.started {
                continue;
            }
            if gated {
                let (wildcard, names) = (state.wildcard, &state.names);
                let subscribed = changes[kind.index()]
                    .iter()
                    .filter(|c| wildcard || names.contains(&c.name));
                self.warmth.note_changes(kind, &state.held, subscribed);
            }
            let new = (self.view.items(kind), self.view.digest(kind));
            let (wildcard, names) = (state.wildcard, &state.names);
            let followed =
                state
                    .held
                    .follow_view(old.digest(kind), new, &changes[kind.index()], |name| {
                        wildcard || names.contains(name)
                    });
            if let Some((resources, removed)) = followed {
                if !resources.is_empty() || !removed.is_empty() {
                    out.responses.push(self.respond(kind, resources, removed));
                }
                continue;
            }
            let (mut resources, mut removed) = (Vec::new(), Vec::new());
            for change in &changes[kind.index()] {
                if !(state.wildcard || state.names.contains(&change.name)) {
                    continue;
                }
                match &change.now {
                    Some(r) => {
                        if state.held.put(r.clone()) {
                            resources.push(r.clone());
                        }
                    }
                    None => {
                        if state.held.remove(&change.name) {
                            removed.push(change.name.clone());
                        }
                    }
                }
            }
            if !resources.is_empty() || !removed.is_empty() {
                out.responses.push(self.respond(kind, resources, removed));
            }
        }
        out
    }

    /// Brings what the client holds of a type to what it subscribes to in the view,
    /// through the make-before-break gate; returns the resources to send (with the
    /// assignments of re-warming clusters) and the names to remove.
    fn resync(&mut self, kind: TypeKind) -> (Vec<Arc<Encoded>>, Vec<String>) {
        let all = self.view.resources(kind);
        let state = &self.types[kind.index()];
        let mut wanted: Vec<Arc<Encoded>> = if state.wildcard {
            all.values().cloned().collect()
        } else {
            state
                .names
                .iter()
                .filter_map(|n| all.get(n).cloned())
                .collect()
        };
        let gated = self.gated();
        let subscribed = |name: &str| state.wildcard || state.names.contains(name);
        if gated {
            let [c, e, l, r, s] = &self.types;
            let held = [&c.held, &e.held, &l.held, &r.held, &s.held];
            wanted = self
                .warmth
                .gate(kind, wanted, &self.view, held, &subscribed);
        }
        let is_wanted = |name: &str| {
            wanted
                .binary_search_by(|w| w.name.as_str().cmp(name))
                .is_ok()
        };
        let removed: Vec<String> = state
            .held
            .items()
            .iter()
            .filter(|h| subscribed(&h.name) && !is_wanted(&h.name))
            .map(|h| h.name.clone())
            .collect();
        let mut resources: Vec<Arc<Encoded>> = wanted
            .iter()
            .filter(|r| {
                state
                    .held
                    .get(&r.name)
                    .is_none_or(|h| h.version != r.version)
            })
            .cloned()
            .collect();
        if gated && kind == TypeKind::Endpoint {
            for name in self.warmth.rewarm_due() {
                match wanted.iter().find(|w| w.name == name) {
                    Some(r) if !resources.iter().any(|f| f.name == name) => {
                        resources.push(r.clone())
                    }
                    _ => {}
                }
            }
        }
        let state = &mut self.types[kind.index()];
        let before = state.held.clone();
        for name in &removed {
            state.held.remove(name);
        }
        for r in &resources {
            state.held.put(r.clone());
        }
        if gated {
            self.warmth.note_fresh(kind, &before, &resources);
        }
        (resources, removed)
    }

    fn respond(
        &mut self,
        kind: TypeKind,
        resources: Vec<Arc<Encoded>>,
        removed: Vec<String>,
    ) -> DeltaResponse {
        self.warmth.sent(kind);
        self.nonces += 1;
        let nonce = self.nonces;
        let state = &mut self.types[kind.index()];
        let system_version = state.held.version();
        let items = state.held.list().clone();
        state
            .outstanding
            .insert(nonce, (system_version.clone(), items));
        if state.outstanding.len() > MAX_OUTSTANDING {
            state.outstanding.pop_first();
        }
        state.served = Some(system_version.clone());
        DeltaResponse {
            kind,
            system_version,
            nonce: nonce.to_string(),
            resources,
            removed,
        }
    }
}

/// The output of one Delta step.
pub type DeltaOutput = Output<DeltaResponse>;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod warm_tests;
