//! What every simulated proxy reports back to the driver: readiness, bytes received,
//! and, per change, how many streams have ACKed it and when the last one did.
//!
//! Shared by all clients through one `Arc`, so the per-client cost is a few words.
//! Nothing here talks to the network.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// What a change is expected to make visible in one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// A ClusterLoadAssignment holding an endpoint on at least this port (each
    /// endpoint change moves one endpoint to a new, higher port).
    PortAtLeast(u32),
    /// A RouteConfiguration whose weighted cluster `cluster` carries at least this
    /// weight (in Envoy's millionths).
    WeightAtLeast { cluster: String, weight: u32 },
}

/// One change the driver applied.
#[derive(Debug)]
pub struct Change {
    pub id: usize,
    /// The Envoy resource the change shows up in (CLA or route configuration name).
    pub resource: String,
    pub expect: Expect,
    /// Nanoseconds since [`Tracker::base`] at which the apply answered 200.
    pub accepted_ns: AtomicU64,
    /// Nanoseconds since [`Tracker::base`] at which the first stream received a
    /// response showing the change.
    pub first_shown_ns: AtomicU64,
    /// Streams that have ACKed a response showing the change.
    pub acked: AtomicUsize,
    /// Nanoseconds since [`Tracker::base`] of the latest such ACK.
    pub last_ack_ns: AtomicU64,
    /// `Tracker::bytes` when the apply answered.
    pub bytes_at_accept: AtomicU64,
}

/// Everything the clients share with the driver.
#[derive(Debug)]
pub struct Tracker {
    pub base: Instant,
    pub streams: usize,
    /// Encoded size of every response received, summed over all streams.
    pub bytes: AtomicU64,
    /// Streams that have ACKed CDS, EDS, LDS and RDS at least once.
    pub ready: AtomicUsize,
    pub ready_last_ns: AtomicU64,
    /// Streams that ended with an error.
    pub failed: AtomicUsize,
    pub first_error: Mutex<Option<String>>,
    /// Changes not yet ACKed by every live stream, by resource name.
    active: RwLock<HashMap<String, Vec<Arc<Change>>>>,
    all: Mutex<Vec<Arc<Change>>>,
}

impl Tracker {
    pub fn new(streams: usize) -> Arc<Self> {
        Arc::new(Self {
            base: Instant::now(),
            streams,
            bytes: AtomicU64::new(0),
            ready: AtomicUsize::new(0),
            ready_last_ns: AtomicU64::new(0),
            failed: AtomicUsize::new(0),
            first_error: Mutex::new(None),
            active: RwLock::default(),
            all: Mutex::default(),
        })
    }

    pub fn now_ns(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }

    pub fn mark_ready(&self) {
        self.ready_last_ns
            .fetch_max(self.now_ns(), Ordering::Relaxed);
        self.ready.fetch_add(1, Ordering::Relaxed);
    }

    pub fn mark_failed(&self, error: String) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first_error.lock().expect("tracker poisoned");
        first.get_or_insert(error);
    }

    /// Registers a change before it is applied, so that no early push is missed.
    pub fn register(&self, resource: String, expect: Expect) -> Arc<Change> {
        let mut all = self.all.lock().expect("tracker poisoned");
        let change = Arc::new(Change {
            id: all.len(),
            resource: resource.clone(),
            expect,
            accepted_ns: AtomicU64::new(u64::MAX),
            first_shown_ns: AtomicU64::new(u64::MAX),
            acked: AtomicUsize::new(0),
            last_ack_ns: AtomicU64::new(0),
            bytes_at_accept: AtomicU64::new(0),
        });
        all.push(change.clone());
        let mut active = self.active.write().expect("tracker poisoned");
        active.entry(resource).or_default().push(change.clone());
        change
    }

    pub fn accepted(&self, change: &Change) {
        change
            .bytes_at_accept
            .store(self.bytes.load(Ordering::Relaxed), Ordering::Relaxed);
        change.accepted_ns.store(self.now_ns(), Ordering::Relaxed);
    }

    /// The unfinished changes that show up in `resource` (cheap when there are none).
    pub fn active_for(&self, resource: &str) -> Vec<Arc<Change>> {
        let active = self.active.read().expect("tracker poisoned");
        if active.is_empty() {
            return Vec::new();
        }
        active.get(resource).cloned().unwrap_or_default()
    }

    pub fn has_active(&self) -> bool {
        !self.active.read().expect("tracker poisoned").is_empty()
    }

    /// One stream received a response showing `change`.
    pub fn shown(&self, change: &Change) {
        change
            .first_shown_ns
            .fetch_min(self.now_ns(), Ordering::Relaxed);
    }

    /// One stream ACKed a response showing `change`.
    pub fn acked(&self, change: &Change) {
        change
            .last_ack_ns
            .fetch_max(self.now_ns(), Ordering::Relaxed);
        let acked = change.acked.fetch_add(1, Ordering::Relaxed) + 1;
        if acked >= self.streams {
            self.retire(change);
        }
    }

    fn retire(&self, change: &Change) {
        let mut active = self.active.write().expect("tracker poisoned");
        if let Some(list) = active.get_mut(&change.resource) {
            list.retain(|c| c.id != change.id);
            if list.is_empty() {
                active.remove(&change.resource);
            }
        }
    }

    /// Whether every live stream has ACKed the change.
    pub fn is_converged(&self, change: &Change) -> bool {
        let live = self.streams - self.failed.load(Ordering::Relaxed);
        change.acked.load(Ordering::Relaxed) >= live
    }

    pub fn changes(&self) -> Vec<Arc<Change>> {
        self.all.lock().expect("tracker poisoned").clone()
    }
}

impl Change {
    /// From the apply's answer to the last stream's ACK (zero when an ACK came first).
    pub fn converge_time(&self) -> Duration {
        let accepted = self.accepted_ns.load(Ordering::Relaxed);
        let last = self.last_ack_ns.load(Ordering::Relaxed);
        Duration::from_nanos(last.saturating_sub(accepted))
    }
}

/// Per-stream record of the changes it has ACKed: one bit per change.
#[derive(Debug, Default)]
pub struct Seen(Vec<u64>);

impl Seen {
    pub fn contains(&self, id: usize) -> bool {
        self.0
            .get(id / 64)
            .is_some_and(|w| w & (1 << (id % 64)) != 0)
    }

    pub fn insert(&mut self, id: usize) {
        if self.0.len() <= id / 64 {
            self.0.resize(id / 64 + 1, 0);
        }
        self.0[id / 64] |= 1 << (id % 64);
    }
}
