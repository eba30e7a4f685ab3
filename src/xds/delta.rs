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
//!   client can finish initializing; later ones only when something changed;
//! - a request with the nonce of an outstanding response ACKs it, or NACKs it with an
//!   `error_detail`; versions sent are taken as held either way, so a NACK never
//!   triggers a resend: the next response comes when the content changes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use envoy_types::pb::envoy::service::discovery::v3::DeltaDiscoveryRequest;

use super::sotw::{Event, Output};
use crate::snapshot::{short_hash, Encoded, TypeKind, View};

/// Unanswered responses remembered per type; a client that never answers cannot make
/// the stream grow without bound.
const MAX_OUTSTANDING: usize = 64;

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
    names: BTreeSet<String>,
    /// What the client holds: name → version.
    held: BTreeMap<String, String>,
    /// Responses not yet ACKed or NACKed: nonce → system version.
    outstanding: BTreeMap<String, String>,
    served: Option<String>,
    acked: Option<String>,
}

/// Everything one Delta ADS stream knows.
#[derive(Debug)]
pub struct DeltaStream {
    view: Arc<View>,
    types: [TypeState; 4],
    nonces: u64,
}

impl DeltaStream {
    pub fn new(view: Arc<View>) -> Self {
        Self {
            view,
            types: Default::default(),
            nonces: 0,
        }
    }

    pub fn acked(&self, kind: TypeKind) -> Option<&str> {
        self.types[kind.index()].acked.as_deref()
    }

    pub fn sent(&self, kind: TypeKind) -> Option<&str> {
        self.types[kind.index()].served.as_deref()
    }

    /// Handles one request; responses come back in [`DeltaOutput::responses`].
    pub fn handle_request(&mut self, req: &DeltaDiscoveryRequest) -> DeltaOutput {
        let mut out = DeltaOutput::default();
        let Some(kind) = TypeKind::from_type_url(&req.type_url) else {
            return out;
        };
        let state = &mut self.types[kind.index()];
        if !req.response_nonce.is_empty() {
            if let Some(version) = state.outstanding.remove(&req.response_nonce) {
                match &req.error_detail {
                    Some(status) => out.events.push(Event::Nack {
                        kind,
                        version,
                        message: status.message.clone(),
                    }),
                    None => {
                        state.acked = Some(version.clone());
                        out.events.push(Event::Ack { kind, version });
                    }
                }
            }
        }
        let first = !state.started;
        state.started = true;
        if first {
            for (name, version) in &req.initial_resource_versions {
                state.held.insert(name.clone(), version.clone());
            }
        }
        for name in &req.resource_names_subscribe {
            if name == "*" {
                state.wildcard = true;
            } else {
                state.names.insert(name.clone());
            }
        }
        if first && req.resource_names_subscribe.is_empty() {
            state.wildcard = true;
        }
        for name in &req.resource_names_unsubscribe {
            if name == "*" {
                state.wildcard = false;
            } else {
                state.names.remove(name);
            }
        }
        // What the client dropped by unsubscribing, it no longer holds.
        let (wildcard, names) = (state.wildcard, state.names.clone());
        state.held.retain(|n, _| wildcard || names.contains(n));
        if let Some(resp) = self.respond(kind, first) {
            out.responses.push(resp);
        }
        out
    }

    /// Moves the stream to a new view, sending each started type's changes in xDS order.
    pub fn handle_view(&mut self, view: Arc<View>) -> DeltaOutput {
        self.view = view;
        let mut out = DeltaOutput::default();
        for kind in TypeKind::ALL {
            if self.types[kind.index()].started {
                out.responses.extend(self.respond(kind, false));
            }
        }
        out
    }

    /// The response bringing the client up to date for a type, if it needs one (or
    /// always, when `force`).
    fn respond(&mut self, kind: TypeKind, force: bool) -> Option<DeltaResponse> {
        let all = self.view.resources(kind);
        let state = &mut self.types[kind.index()];
        let wanted = |name: &str| state.wildcard || state.names.contains(name);
        let resources: Vec<Arc<Encoded>> = all
            .values()
            .filter(|r| wanted(&r.name) && state.held.get(&r.name) != Some(&r.version))
            .cloned()
            .collect();
        let removed: Vec<String> = state
            .held
            .keys()
            .filter(|n| !all.contains_key(*n))
            .cloned()
            .collect();
        if resources.is_empty() && removed.is_empty() && !force {
            return None;
        }
        for name in &removed {
            state.held.remove(name);
        }
        for r in &resources {
            state.held.insert(r.name.clone(), r.version.clone());
        }
        let mut text = Vec::new();
        for (name, version) in &state.held {
            text.extend_from_slice(name.as_bytes());
            text.push(0);
            text.extend_from_slice(version.as_bytes());
            text.push(0);
        }
        let system_version = short_hash(&text);
        self.nonces += 1;
        let nonce = self.nonces.to_string();
        let state = &mut self.types[kind.index()];
        state
            .outstanding
            .insert(nonce.clone(), system_version.clone());
        if state.outstanding.len() > MAX_OUTSTANDING {
            state.outstanding.pop_first();
        }
        state.served = Some(system_version.clone());
        Some(DeltaResponse {
            kind,
            system_version,
            nonce,
            resources,
            removed,
        })
    }
}

/// The output of one Delta step.
pub type DeltaOutput = Output<DeltaResponse>;

#[cfg(test)]
mod tests;
