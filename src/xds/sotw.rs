//! One State-of-the-World ADS stream as a sans-IO state machine.
//!
//! The rules it keeps (xDS protocol, "ACK/NACK and resource type instance version"):
//! - the first request for a type subscribes to it: wildcard when it names nothing or
//!   names `*`, else the names given;
//! - a request whose nonce is not the last one sent for its type is stale and ignored;
//! - a request carrying the last nonce ACKs it, or NACKs it when it has an
//!   `error_detail`; either way it may change the subscription;
//! - after a NACK nothing is re-sent until the content for that proxy changes, so a
//!   rejected config never loops: the proxy keeps its last ACKed version;
//! - a new view is pushed type by type in the order CDS, EDS, LDS, RDS, and a type is
//!   sent only when its content (hence its version) differs from what was last sent;
//! - on reconnect, a proxy that already holds the current version (its request's
//!   `version_info`) is not sent it again;
//! - a subscription by name (gRPC's, for every type) gets only the named resources
//!   that exist; listeners and clusters are answered after every change of names, so
//!   a name missing from the answer does not exist.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::request::SotwRequest;

use super::held::Held;
use super::names::{intern, Names};
use super::warm::Warmth;
use crate::snapshot::{Encoded, TypeKind, View};

/// A response to write on the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub kind: TypeKind,
    pub version: String,
    pub nonce: String,
    pub resources: Vec<Arc<Encoded>>,
}

/// What happened on the stream, for the ledger and the logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Ack {
        kind: TypeKind,
        version: String,
    },
    Nack {
        kind: TypeKind,
        /// The version the proxy rejected.
        version: String,
        message: String,
    },
}

/// The output of one step: responses to write (in order) and events to record.
#[derive(Debug, PartialEq, Eq)]
pub struct Output<R = Response> {
    pub responses: Vec<R>,
    pub events: Vec<Event>,
}

impl<R> Default for Output<R> {
    fn default() -> Self {
        Self {
            responses: Vec::new(),
            events: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Subscription {
    Wildcard,
    Names(Names),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Sent {
    version: String,
    /// Empty when nothing was written because the proxy already held this version.
    nonce: String,
    /// The set the proxy holds once it applies this response.
    items: Arc<Vec<Arc<Encoded>>>,
}

#[derive(Debug, Clone, Default)]
struct TypeState {
    subscription: Option<Subscription>,
    /// What the proxy holds (or is being sent): the subscription's share of the view.
    held: Held,
    sent: Option<Sent>,
    acked: Option<String>,
    /// The set whose version is `acked`.
    acked_items: Arc<Vec<Arc<Encoded>>>,
    nack: Option<(String, String)>,
}

/// Everything one SotW ADS stream knows.
#[derive(Debug)]
pub struct SotwStream {
    view: Arc<View>,
    types: [TypeState; TypeKind::COUNT],
    nonces: u64,
    /// Make-before-break: what the proxy has warmed, and what is held back for it.
    warmth: Warmth,
    /// What the proxy's class was served before, to recognise what it holds when it
    /// reconnects.
    previous: Option<Arc<View>>,
}

impl SotwStream {
    pub fn new(view: Arc<View>) -> Self {
        Self {
            view,
            types: Default::default(),
            nonces: 0,
            warmth: Warmth::default(),
            previous: None,
        }
    }

    /// Remembers the view served before `view` (see [`SotwStream::new`]).
    pub fn with_previous(self, previous: Option<Arc<View>>) -> Self {
        Self { previous, ..self }
    }

    /// Whether the proxy has been sent everything of its view (nothing held back,
    /// every new cluster warm).
    pub fn converged(&self) -> bool {
        !self.gated() || !self.warmth.busy()
    }

    /// Whether a pass waits for a cluster absent from the view (see
    /// [`super::warm::ABSENT_GRACE`]); the caller calls [`SotwStream::absent_expired`]
    /// once that long has passed.
    pub fn waiting_absent(&self) -> bool {
        self.gated() && self.warmth.waiting_absent()
    }

    /// The grace for absent clusters ran out: what was waiting for them goes now.
    pub fn absent_expired(&mut self) -> Output {
        self.warmth.give_up_absent();
        let mut out = Output::default();
        self.reconcile(&mut out);
        self.share_view_lists();
        out
    }

    /// Holds apply to a proxy that subscribes to every cluster (Envoy).
    fn gated(&self) -> bool {
        matches!(
            self.types[TypeKind::Cluster.index()].subscription,
            Some(Subscription::Wildcard)
        )
    }

    /// Every type through the make-before-break gate, in xDS order.
    fn reconcile(&mut self, out: &mut Output) {
        self.warmth.start_pass();
        for kind in TypeKind::ALL {
            let state = &self.types[kind.index()];
            // A type held exactly as the view has it has nothing to hold back or keep.
            let whole = matches!(state.subscription, Some(Subscription::Wildcard))
                && kind != TypeKind::Endpoint
                && state.held.digest() == self.view.digest(kind);
            if state.subscription.is_none() || whole {
                continue;
            }
            let (fresh, dropped) = self.resync(kind);
            out.responses
                .extend(self.respond_changes(kind, fresh, dropped));
        }
    }

    /// The version last ACKed for a type, if any.
    pub fn acked(&self, kind: TypeKind) -> Option<&str> {
        self.types[kind.index()].acked.as_deref()
    }

    /// What the proxy holds (or is being sent) of a type, sorted by name.
    pub fn holds(&self, kind: TypeKind) -> &Arc<Vec<Arc<Encoded>>> {
        self.types[kind.index()].held.list()
    }

    /// What the proxy held of a type when it last ACKed.
    pub fn acked_holds(&self, kind: TypeKind) -> &Arc<Vec<Arc<Encoded>>> {
        &self.types[kind.index()].acked_items
    }

    /// The version last sent (or found already held) for a type, if any.
    pub fn sent(&self, kind: TypeKind) -> Option<&str> {
        self.types[kind.index()]
            .sent
            .as_ref()
            .map(|s| s.version.as_str())
    }

    /// The last NACK for a type: the rejected version and the proxy's error text.
    pub fn last_nack(&self, kind: TypeKind) -> Option<(&str, &str)> {
        self.types[kind.index()]
            .nack
            .as_ref()
            .map(|(v, m)| (v.as_str(), m.as_str()))
    }

    /// Handles one request from the proxy. Requests for types coalmine does not serve
    /// are ignored.
    pub fn handle_request(&mut self, req: &SotwRequest) -> Output {
        let mut out = self.take_request(req);
        if self.types.iter().all(|t| t.subscription.is_some()) {
            self.previous = None; // every type has said what it holds
        }
        if self.gated() && self.warmth.take_progress() {
            self.reconcile(&mut out);
        }
        self.share_view_lists();
        out
    }

    fn take_request(&mut self, req: &SotwRequest) -> Output {
        let mut out = Output::default();
        let Some(kind) = TypeKind::from_type_url(&req.type_url) else {
            return out;
        };
        let state = &mut self.types[kind.index()];

        // A nonce this stream never sent (a proxy reconnecting with the last one of its
        // previous stream) also starts the subscription.
        if req.response_nonce.is_empty() || state.subscription.is_none() {
            let subscription = subscription_of(req, state.subscription.as_ref());
            // A first request for this type on this stream, possibly from a proxy that
            // reconnected and already holds a version.
            state.subscription = Some(subscription);
            state.held = Held::default();
            if !req.version_info.is_empty() && req.version_info != self.current_version(kind) {
                // A proxy that reconnected holding another configuration: from the
                // previous one when its version says so.
                if let Some(held) = self.recall(kind, &req.version_info) {
                    self.types[kind.index()].held = held;
                }
                if kind == TypeKind::Cluster {
                    self.warmth.resumed();
                }
            }
            self.resync(kind);
            let state = &mut self.types[kind.index()];
            let version = state.held.version();
            if !req.version_info.is_empty() && req.version_info == version {
                state.sent = Some(Sent {
                    version: version.clone(),
                    nonce: String::new(),
                    items: state.held.list().clone(),
                });
                state.acked = Some(version.clone());
                state.acked_items = state.held.list().clone();
                self.warmth.answered(kind, true);
                out.events.push(Event::Ack { kind, version });
            } else {
                let all = state.held.items().to_vec();
                out.responses.push(self.respond(kind, all));
            }
            return out;
        }

        let Some(sent) = state.sent.clone() else {
            return out;
        };
        if sent.nonce != req.response_nonce {
            return out; // stale: a newer response is on its way to the proxy
        }
        match &req.error_detail {
            Some(status) => {
                state.nack = Some((sent.version.clone(), status.message.clone()));
                self.warmth.answered(kind, false);
                out.events.push(Event::Nack {
                    kind,
                    version: sent.version.clone(),
                    message: status.message.clone(),
                });
            }
            None => {
                state.acked = Some(req.version_info.clone());
                state.acked_items = sent.items.clone();
                self.warmth.answered(kind, true);
                out.events.push(Event::Ack {
                    kind,
                    version: req.version_info.clone(),
                });
            }
        }
        let state = &mut self.types[kind.index()];
        // Only a changed subscription can change what the proxy should hold.
        // An ACK repeats the whole subscription (thousands of names for EDS); building
        // a new set is only worth it when it differs.
        if !names_unchanged(req, state.subscription.as_ref()) {
            let subscription = subscription_of(req, state.subscription.as_ref());
            state.subscription = Some(subscription);
            let (fresh, dropped) = self.resync(kind);
            if is_partial(kind) {
                out.responses
                    .extend(self.respond_changes(kind, fresh, dropped));
            } else {
                // Listeners and clusters go whole after any change of names, so a
                // client that named one that does not exist (gRPC subscribes by name)
                // learns it at once from a response without it.
                let all = self.types[kind.index()].held.items().to_vec();
                out.responses.push(self.respond(kind, all));
            }
        }
        out
    }

    /// Moves the stream to a new view, pushing every subscribed type whose content
    /// changed, in xDS order. The work is proportional to what changed: the view's
    /// changes since the stream's last one are computed once for every stream.
    pub fn handle_view(&mut self, view: Arc<View>) -> Output {
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

    fn take_view(&mut self, view: Arc<View>) -> Output {
        let changes = view.changes_since(&self.view);
        let old = std::mem::replace(&mut self.view, view);
        let mut out = Output::default();
        let gated = self.gated();
        if gated && !self.warmth.open_for(&old, &self.view, &changes) {
            self.reconcile(&mut out);
            return out;
        }
        for kind in TypeKind::ALL {
            let state = &mut self.types[kind.index()];
            let Some(subscription) = &state.subscription else {
                continue;
            };
            if gated {
                let subscribed = changes[kind.index()]
                    .iter()
                    .filter(|c| subscription.contains(&c.name));
                self.warmth.note_changes(kind, &state.held, subscribed);
            }
            let new = (self.view.items(kind), self.view.digest(kind));
            let followed =
                state
                    .held
                    .follow_view(old.digest(kind), new, &changes[kind.index()], |name| {
                        subscription.contains(name)
                    });
            if let Some((fresh, removed)) = followed {
                let dropped = !removed.is_empty();
                out.responses
                    .extend(self.respond_changes(kind, fresh, dropped));
                continue;
            }
            let (mut fresh, mut dropped) = (Vec::new(), false);
            for change in changes[kind.index()]
                .iter()
                .filter(|c| subscription.contains(&c.name))
            {
                match &change.now {
                    Some(r) => {
                        if state.held.put(r.clone()) {
                            fresh.push(r.clone());
                        }
                    }
                    None => dropped |= state.held.remove(&change.name),
                }
            }
            out.responses
                .extend(self.respond_changes(kind, fresh, dropped));
        }
        out
    }

    /// The version of a type's share of the view, as the subscription selects it.
    fn current_version(&self, kind: TypeKind) -> String {
        let mut held = Held::default();
        held.replace(self.wanted(kind));
        held.version()
    }

    /// What a reconnecting proxy holds of a type, when `version` is that of the
    /// subscription's share of the previous view, or of that view's leftovers beside
    /// the current one (a change that was in flight: new resources sent, old ones kept).
    fn recall(&self, kind: TypeKind, version: &str) -> Option<Held> {
        let previous = self.previous.as_ref()?;
        let before = self.share(previous, kind);
        let mut both = self.share(&self.view, kind);
        both.extend(
            before
                .iter()
                .filter(|r| !self.view.resources(kind).contains_key(&r.name))
                .cloned(),
        );
        both.sort_by(|a, b| a.name.cmp(&b.name));
        [before, both].into_iter().find_map(|items| {
            let mut held = Held::default();
            held.replace(items);
            (held.version() == version).then_some(held)
        })
    }

    /// What the subscription selects from the view, sorted by name.
    fn wanted(&self, kind: TypeKind) -> Vec<Arc<Encoded>> {
        self.share(&self.view, kind)
    }

    /// What the subscription selects from `view`, sorted by name.
    fn share(&self, view: &View, kind: TypeKind) -> Vec<Arc<Encoded>> {
        let all = view.resources(kind);
        match &self.types[kind.index()].subscription {
            None => Vec::new(),
            Some(Subscription::Wildcard) => all.values().cloned().collect(),
            Some(Subscription::Names(names)) => {
                names.iter().filter_map(|n| all.get(n).cloned()).collect()
            }
        }
    }

    /// Makes the held set of a type what the subscription selects from the view,
    /// through the make-before-break gate; returns what is new or changed (with the
    /// assignments of re-warming clusters), and whether anything was dropped.
    fn resync(&mut self, kind: TypeKind) -> (Vec<Arc<Encoded>>, bool) {
        let mut wanted = self.wanted(kind);
        let gated = self.gated();
        if gated {
            let [c, e, l, r, s] = &self.types;
            let subscription = self.types[kind.index()].subscription.as_ref();
            let subscribed = |n: &str| subscription.is_some_and(|s| s.contains(n));
            let held = [&c.held, &e.held, &l.held, &r.held, &s.held];
            wanted = self
                .warmth
                .gate(kind, wanted, &self.view, held, &subscribed);
        }
        let before = self.types[kind.index()].held.clone();
        let (mut fresh, dropped) = self.types[kind.index()].held.replace(wanted);
        if gated {
            if kind == TypeKind::Endpoint {
                let held = &self.types[kind.index()].held;
                for name in self.warmth.rewarm_due() {
                    match held.get(&name) {
                        Some(r) if !fresh.iter().any(|f| f.name == name) => fresh.push(r.clone()),
                        _ => {}
                    }
                }
            }
            self.warmth.note_fresh(kind, &before, &fresh);
        }
        (fresh, dropped)
    }

    /// The response after the held set changed, if one is due. Listeners and clusters
    /// go whole (the xDS "state of the world" types) whenever anything changed; route
    /// configurations and endpoints go as only the new or changed ones (Envoy keeps
    /// the others), and not at all when there are none.
    fn respond_changes(
        &mut self,
        kind: TypeKind,
        fresh: Vec<Arc<Encoded>>,
        dropped: bool,
    ) -> Option<Response> {
        let resources = if is_partial(kind) {
            if fresh.is_empty() {
                return None;
            }
            fresh
        } else {
            if fresh.is_empty() && !dropped {
                return None;
            }
            self.types[kind.index()].held.items().to_vec()
        };
        Some(self.respond(kind, resources))
    }

    fn respond(&mut self, kind: TypeKind, resources: Vec<Arc<Encoded>>) -> Response {
        self.warmth.sent(kind);
        self.nonces += 1;
        let nonce = self.nonces.to_string();
        let state = &mut self.types[kind.index()];
        let version = state.held.version();
        state.sent = Some(Sent {
            version: version.clone(),
            nonce: nonce.clone(),
            items: state.held.list().clone(),
        });
        Response {
            kind,
            version,
            nonce,
            resources,
        }
    }
}

/// Route configurations, endpoints and secrets may go as only what changed; clusters and
/// listeners always go whole.
fn is_partial(kind: TypeKind) -> bool {
    matches!(
        kind,
        TypeKind::Endpoint | TypeKind::Route | TypeKind::Secret
    )
}

impl Subscription {
    fn contains(&self, name: &str) -> bool {
        match self {
            Subscription::Wildcard => true,
            Subscription::Names(names) => names.contains(name),
        }
    }
}

/// Whether a request names exactly the current subscription (checked without building
/// a set).
fn names_unchanged(req: &SotwRequest, current: Option<&Subscription>) -> bool {
    match current {
        None => false,
        Some(Subscription::Wildcard) => {
            req.resource_names.is_empty() || req.resource_names.iter().all(|n| n == "*")
        }
        Some(Subscription::Names(names)) => {
            // Envoy sends its names sorted: one pass against the (sorted) set decides,
            // without a lookup per name. Any other order takes the lookups.
            req.resource_names.len() == names.len()
                && (req
                    .resource_names
                    .iter()
                    .zip(names.iter())
                    .all(|(a, b)| a == b.as_bytes())
                    || req.names().all(|n| names.contains(n)))
        }
    }
}

/// A request naming nothing keeps a wildcard subscription (or starts one, when it is the
/// first for its type: the legacy wildcard that Envoy uses for CDS and LDS).
fn subscription_of(req: &SotwRequest, current: Option<&Subscription>) -> Subscription {
    let names: BTreeSet<String> = req.names().map(str::to_string).collect();
    let keeps_wildcard = matches!(current, None | Some(Subscription::Wildcard));
    if names.contains("*") || (names.is_empty() && keeps_wildcard) {
        Subscription::Wildcard
    } else {
        Subscription::Names(intern(names))
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod warm_tests;
