//! One release as the controller holds it. Its work (the machine, and what was written
//! of it) sits behind an async mutex that a tick or a command holds for the whole of
//! its IO, so two never interleave; its status is a snapshot beside it, which readers
//! clone without ever waiting for that work.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{watch, Mutex, OwnedMutexGuard};

use super::{clock, Command};
use crate::rollout::{Action, Machine, RolloutStatus};

#[derive(Debug)]
pub(super) struct Release {
    /// The spec fingerprint it runs on (also in its [`Entry`]; here to be read without
    /// waiting for the work).
    pub(super) spec: String,
    work: Arc<Mutex<Entry>>,
    status: watch::Receiver<RolloutStatus>,
}

impl Release {
    /// A release of `machine`, and its work already locked for the one who starts it.
    pub(super) fn new(machine: Machine, spec: String) -> (Arc<Release>, OwnedMutexGuard<Entry>) {
        let (shown, status) = watch::channel(machine.status());
        let entry = Entry {
            machine,
            spec: spec.clone(),
            mirrored: None,
            polled: None,
            request_done: None,
            retired: false,
            shown,
        };
        let work = Arc::new(Mutex::new(entry));
        let guard = work
            .clone()
            .try_lock_owned()
            .expect("a new release is free");
        (Arc::new(Release { spec, work, status }), guard)
    }

    /// The status as of the last decision, without waiting for work in flight.
    pub(super) fn status(&self) -> RolloutStatus {
        self.status.borrow().clone()
    }

    /// Its work, once the work in flight (if any) is done.
    pub(super) async fn work(&self) -> OwnedMutexGuard<Entry> {
        self.work.clone().lock_owned().await
    }

    /// Its work, unless some is in flight.
    pub(super) fn try_work(&self) -> Option<OwnedMutexGuard<Entry>> {
        self.work.clone().try_lock_owned().ok()
    }

    /// Ends the release (removed, or replaced by a new one): waits for the work in
    /// flight, and makes sure no more is done.
    pub(super) async fn retire(&self) {
        self.work().await.retired = true;
    }
}

#[derive(Debug)]
pub(super) struct Entry {
    pub(super) machine: Machine,
    /// A fingerprint of the Rollout's spec: a changed spec starts a new release.
    pub(super) spec: String,
    /// Under `--kubernetes`: the status last written to the Rollout in the cluster.
    pub(super) mirrored: Option<serde_json::Value>,
    /// Under `--kubernetes`: when the Rollout's status was last read for commands
    /// relayed by other replicas.
    pub(super) polled: Option<Instant>,
    /// Under `--kubernetes`: the `at` of the last relayed command carried out.
    pub(super) request_done: Option<String>,
    /// The release was removed or replaced: nothing more is done or written for it.
    pub(super) retired: bool,
    shown: watch::Sender<RolloutStatus>,
}

impl Entry {
    /// Applies an operator's command to the machine; the actions to carry out.
    pub(super) fn drive(&mut self, command: Command) -> Vec<Action> {
        let now = clock();
        match command {
            Command::Promote => self.machine.promote(now),
            Command::Abort => self.machine.abort(now),
            Command::Pause => self.machine.pause(now),
            Command::Resume => self.machine.resume(now),
        }
    }

    /// Shows the machine's status to readers (when it changed).
    pub(super) fn publish(&self) {
        let status = self.machine.status();
        self.shown.send_if_modified(|shown| {
            let changed = *shown != status;
            if changed {
                *shown = status;
            }
            changed
        });
    }
}
