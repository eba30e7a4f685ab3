//! The ACK ledger: for every connected proxy, what it was served, what it ACKed and
//! the last NACK with Envoy's error text, per resource type.
//!
//! Streams write their state here after every step; the admin API reads it to list
//! proxies, to say which proxies have applied a revision, and to wait for them.
//!
//! A proxy is a node id: two streams claiming one node id (a reconnect racing the old
//! stream, or replicas sharing an identity) are one proxy with two connections. It
//! serves a revision once every connection does, and a NACK counts only from the
//! stream that received the response it rejects (each stream checks its own nonces).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use tokio::sync::watch;

use crate::node::NodeInfo;
use crate::snapshot::{Encoded, TypeKind};

/// Resources of one type sorted by name, shared with the stream and the snapshot (a
/// pointer each).
pub type ResourceList = Arc<Vec<Arc<Encoded>>>;

/// One type's state on one proxy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TypeRecord {
    /// The version last sent (or found already held on reconnect).
    pub served: Option<String>,
    /// The revision whose content `served` is.
    pub served_revision: u64,
    pub acked: Option<String>,
    pub nack: Option<NackRecord>,
    /// What the proxy holds or is being sent (the set whose version is `served`).
    pub resources: ResourceList,
    /// What the proxy held when it last ACKed (the set whose version is `acked`).
    pub acked_resources: ResourceList,
}

impl TypeRecord {
    /// Whether the proxy holds what it was served.
    pub fn in_sync(&self) -> bool {
        self.served.is_none() || self.served == self.acked
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NackRecord {
    /// The version the proxy rejected.
    pub version: String,
    pub message: String,
    pub at: SystemTime,
    /// The revision whose content the proxy rejected.
    pub revision: u64,
}

/// One connected proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyRecord {
    pub node: NodeInfo,
    pub connected_since: SystemTime,
    /// The revision of the configuration this stream serves.
    pub revision: u64,
    /// Indexed in [`TypeKind::ALL`] order.
    pub types: [TypeRecord; TypeKind::COUNT],
    /// Whether the stream holds something of its view back until the proxy has warmed
    /// what it uses (make-before-break): the proxy does not serve the revision yet.
    pub holding: bool,
    /// Streams of this node id that this record stands for (1 for one stream).
    pub connections: usize,
}

impl ProxyRecord {
    pub fn new(node: NodeInfo, revision: u64) -> Self {
        Self {
            node,
            connected_since: SystemTime::now(),
            revision,
            types: Default::default(),
            holding: false,
            connections: 1,
        }
    }

    /// Folds another stream of the same node id in: the proxy is as far as its least
    /// advanced connection, and keeps the latest NACK of each type.
    fn merge(&mut self, other: &ProxyRecord) {
        self.connections += other.connections;
        self.connected_since = self.connected_since.min(other.connected_since);
        self.revision = self.revision.min(other.revision);
        self.holding |= other.holding;
        for (mine, theirs) in self.types.iter_mut().zip(&other.types) {
            let nack = match (mine.nack.take(), &theirs.nack) {
                (Some(a), Some(b)) if b.at > a.at => Some(b.clone()),
                (Some(a), _) => Some(a),
                (None, b) => b.clone(),
            };
            if mine.in_sync() && !theirs.in_sync() {
                *mine = theirs.clone();
            }
            mine.nack = nack;
        }
    }

    pub fn get(&self, kind: TypeKind) -> &TypeRecord {
        &self.types[kind.index()]
    }

    /// Where this proxy stands on a revision.
    pub fn status_of(&self, revision: u64) -> ProxyStatus {
        let nack = self
            .types
            .iter()
            .filter_map(|t| t.nack.as_ref())
            .find(|n| n.revision == revision);
        if let Some(nack) = nack {
            return ProxyStatus::Rejected(nack.message.clone());
        }
        if self.revision >= revision && self.in_sync() {
            ProxyStatus::Acked
        } else {
            ProxyStatus::Pending
        }
    }

    pub fn in_sync(&self) -> bool {
        !self.holding && self.types.iter().all(TypeRecord::in_sync)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyStatus {
    Acked,
    Pending,
    /// The proxy NACKed the revision, with its error text.
    Rejected(String),
}

/// Every connected proxy, by stream id.
#[derive(Debug)]
pub struct Ledger {
    proxies: Mutex<BTreeMap<u64, ProxyRecord>>,
    /// Open streams per node id: what may report stats (see [`Ledger::has_node`]).
    nodes: Mutex<std::collections::HashMap<String, usize>>,
    next_id: Mutex<u64>,
    /// Bumped on every change, so waiters wake without polling.
    changes: watch::Sender<u64>,
}

impl Default for Ledger {
    fn default() -> Self {
        Self {
            proxies: Mutex::default(),
            nodes: Mutex::default(),
            next_id: Mutex::new(0),
            changes: watch::channel(0).0,
        }
    }
}

impl Ledger {
    /// Registers a new stream and returns its id.
    pub fn connect(&self, record: ProxyRecord) -> u64 {
        let id = {
            let mut next = self.next_id.lock().expect("ledger poisoned");
            *next += 1;
            *next
        };
        *self
            .nodes
            .lock()
            .expect("ledger poisoned")
            .entry(record.node.id.clone())
            .or_default() += 1;
        self.proxies
            .lock()
            .expect("ledger poisoned")
            .insert(id, record);
        self.notify();
        id
    }

    /// Whether a proxy of this node id has an ADS stream open.
    pub fn has_node(&self, node: &str) -> bool {
        self.nodes
            .lock()
            .expect("ledger poisoned")
            .contains_key(node)
    }

    /// Applies `update` to a stream's record; it returns whether it changed anything.
    pub fn update(&self, id: u64, update: impl FnOnce(&mut ProxyRecord) -> bool) {
        let changed = match self.proxies.lock().expect("ledger poisoned").get_mut(&id) {
            Some(record) => update(record),
            None => false,
        };
        // Waiters wake only for a real change: most stream steps change nothing here.
        if changed {
            self.notify();
        }
    }

    /// Forgets a stream; true when it was its node id's last.
    pub fn disconnect(&self, id: u64) -> bool {
        let removed = self.proxies.lock().expect("ledger poisoned").remove(&id);
        self.notify();
        let Some(record) = removed else {
            return false;
        };
        let mut nodes = self.nodes.lock().expect("ledger poisoned");
        let count = nodes.entry(record.node.id.clone()).or_default();
        *count = count.saturating_sub(1);
        let last = *count == 0;
        if last {
            nodes.remove(&record.node.id);
        }
        last
    }

    /// Every connected proxy, one per node id (its streams merged, see
    /// [`ProxyRecord::connections`]), ordered by node id.
    pub fn proxies(&self) -> Vec<ProxyRecord> {
        let mut all: Vec<ProxyRecord> = self
            .proxies
            .lock()
            .expect("ledger poisoned")
            .values()
            .cloned()
            .collect();
        all.sort_by(|a, b| {
            a.node
                .id
                .cmp(&b.node.id)
                .then(a.connected_since.cmp(&b.connected_since))
        });
        let mut proxies: Vec<ProxyRecord> = Vec::with_capacity(all.len());
        for record in all {
            match proxies.last_mut() {
                Some(last) if last.node.id == record.node.id => last.merge(&record),
                _ => proxies.push(record),
            }
        }
        proxies
    }

    /// A receiver that changes whenever any proxy's record does.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn notify(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mk_record(revision: u64, served: &str, acked: &str) -> ProxyRecord {
        let mut r = ProxyRecord::new(
            NodeInfo {
                id: "gw-1".into(),
                ..Default::default()
            },
            revision,
        );
        r.types[0].served = Some(served.into());
        r.types[0].acked = Some(acked.into());
        r
    }

    #[test]
    fn acked_once_on_the_revision_and_in_sync() {
        assert_eq!(mk_record(3, "a", "a").status_of(3), ProxyStatus::Acked);
        assert_eq!(mk_record(4, "a", "a").status_of(3), ProxyStatus::Acked);
        assert_eq!(mk_record(3, "b", "a").status_of(3), ProxyStatus::Pending);
        assert_eq!(mk_record(2, "a", "a").status_of(3), ProxyStatus::Pending);
    }

    #[test]
    fn nack_of_the_revision_is_reported_with_its_text() {
        let mut r = mk_record(3, "b", "a");
        r.types[0].nack = Some(NackRecord {
            version: "b".into(),
            message: "invalid route".into(),
            at: SystemTime::now(),
            revision: 3,
        });
        assert_eq!(
            r.status_of(3),
            ProxyStatus::Rejected("invalid route".into())
        );
        // A later revision that fixes it is acked; the rejected one stays rejected.
        let mut fixed = r.clone();
        fixed.revision = 4;
        fixed.types[0].served = Some("c".into());
        fixed.types[0].acked = Some("c".into());
        assert_eq!(fixed.status_of(4), ProxyStatus::Acked);
        assert_eq!(
            fixed.status_of(3),
            ProxyStatus::Rejected("invalid route".into())
        );
    }

    #[test]
    fn a_proxy_serves_a_revision_once_every_connection_does() {
        let ledger = Ledger::default();
        let done = ledger.connect(mk_record(3, "a", "a"));
        let behind = ledger.connect(mk_record(3, "b", "a"));
        assert_eq!(ledger.proxies()[0].status_of(3), ProxyStatus::Pending);
        ledger.update(behind, |r| {
            r.types[0].acked = Some("b".into());
            true
        });
        assert_eq!(ledger.proxies()[0].status_of(3), ProxyStatus::Acked);
        ledger.update(done, |r| {
            r.types[1].nack = Some(NackRecord {
                version: "x".into(),
                message: "bad listener".into(),
                at: SystemTime::now(),
                revision: 3,
            });
            true
        });
        assert_eq!(
            ledger.proxies()[0].status_of(3),
            ProxyStatus::Rejected("bad listener".into())
        );
    }

    #[test]
    fn ledger_lists_and_forgets_proxies() {
        let ledger = Ledger::default();
        let mut rx = ledger.subscribe();
        let id = ledger.connect(mk_record(1, "a", "a"));
        assert!(rx.has_changed().unwrap());
        rx.borrow_and_update();
        ledger.update(id, |r| {
            r.revision = 2;
            true
        });
        assert!(rx.has_changed().unwrap());
        assert_eq!(ledger.proxies()[0].revision, 2);
        let again = ledger.connect(mk_record(1, "a", "a"));
        assert!(ledger.has_node("gw-1"));
        let proxies = ledger.proxies();
        assert_eq!(proxies.len(), 1, "one node id is one proxy");
        assert_eq!(proxies[0].connections, 2);
        assert_eq!(
            proxies[0].revision, 1,
            "as far as its least advanced stream"
        );
        assert!(!ledger.disconnect(id), "another stream of gw-1 is open");
        assert!(ledger.has_node("gw-1"));
        assert!(ledger.disconnect(again));
        assert!(!ledger.has_node("gw-1"));
        assert!(ledger.proxies().is_empty());
    }
}
