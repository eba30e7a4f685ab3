//! The controller's cluster (`--kubernetes`): the client steps are patched with, this
//! replica's name (its Lease identity), and the release state and status it keeps in
//! each Rollout's `status`. ACK reports are in [`super::acks`], relayed commands in
//! [`super::relay`].

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;
use tracing::{info, warn};

use super::release::Entry;
use crate::desired::Desired;
use crate::k8s::replica_acks::Report;
use crate::k8s::{rollout_status, route_patch};
use crate::model::{ResourceKey, Rollout};

/// How long a step patched into the cluster may take to come back through the
/// watchers as a revision.
const CLUSTER_ECHO: Duration = Duration::from_secs(10);

pub(super) struct Cluster {
    pub(super) client: kube::Client,
    pub(super) identity: String,
    /// What this replica last reported of its proxies' ACKs.
    pub(super) reported: Mutex<Reported>,
}

impl std::fmt::Debug for Cluster {
    // `kube::Client` has no `Debug`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

impl Cluster {
    pub(super) fn new(client: kube::Client, identity: String) -> Cluster {
        Cluster {
            client,
            identity,
            reported: Mutex::default(),
        }
    }

    /// The (spec fingerprint, state) the Rollout's status holds, if any (a failed read
    /// is logged and counts as none).
    pub(super) async fn state(&self, key: &ResourceKey) -> Option<(String, String)> {
        rollout_status::read(&self.client, key)
            .await
            .unwrap_or_else(|e| {
                warn!(rollout = %key, "cannot read the release state from the cluster: {e}");
                None
            })
    }

    /// Writes the release's status (and state) to the Rollout when it changed since
    /// the last write; a failed write is retried on the next tick.
    pub(super) async fn mirror(&self, entry: &mut Entry) {
        let key = entry.machine.rollout().key.clone();
        let state = serde_json::to_string(entry.machine.state()).expect("state serializes");
        let mut patch = rollout_status::to_patch(&entry.machine.status(), &entry.spec, &state);
        if let Some(at) = &entry.request_done {
            patch["status"][rollout_status::REQUEST_DONE_FIELD] = at.clone().into();
        }
        if entry.mirrored.as_ref() == Some(&patch) {
            return;
        }
        match rollout_status::write(&self.client, &key, &patch).await {
            Ok(()) => entry.mirrored = Some(patch),
            Err(e) => warn!(rollout = %key, "cannot write the release status to the cluster: {e}"),
        }
    }

    /// Patches the target's route list in the cluster, then waits for the watchers to
    /// bring it back as a revision (judged like any edit): that revision, or `None`
    /// when the patch failed or the change did not come back in time (logged).
    pub(super) async fn patch_step(
        &self,
        desired: &Desired,
        rollout: &Rollout,
        next: &serde_json::Value,
    ) -> Option<u64> {
        let target = &rollout.target;
        let stored = match route_patch::patch_routes(&self.client, target, next).await {
            Ok(stored) => stored,
            Err(e) => {
                warn!(rollout = %rollout.key, "cannot write the traffic step: {e}");
                return None;
            }
        };
        let field = route_patch::routes_field(target.kind)?;
        let mut published = desired.subscribe();
        let arrived = tokio::time::timeout(CLUSTER_ECHO, async {
            loop {
                let doc = desired.get(target);
                if doc.is_some_and(|d| d.value["spec"][field] == stored) {
                    return desired.published().revision;
                }
                if published.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        })
        .await;
        match arrived {
            Ok(revision) => {
                info!(rollout = %rollout.key, revision, "traffic step patched into {target}");
                Some(revision)
            }
            Err(_) => {
                warn!(rollout = %rollout.key, "{target} was patched but the change was not served within {CLUSTER_ECHO:?} (rejected, or changed since); trying again");
                None
            }
        }
    }
}

/// What this replica last reported per Rollout, and when; and the (revision, ledger
/// generation) it was computed from, so an idle tick costs nothing.
#[derive(Debug, Default)]
pub(super) struct Reported {
    pub(super) inputs: Option<(u64, u64)>,
    pub(super) sent: BTreeMap<ResourceKey, (Report, Instant)>,
}
