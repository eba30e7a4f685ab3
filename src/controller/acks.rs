//! Whether a step in flight is ACKed: by every proxy of this replica's ledger that
//! carries the target route, and, under `--kubernetes`, by those of every other live
//! replica (their reports in the Rollout's status, see [`replica_acks`]). Every replica
//! writes its own report; only the leader reads them.

use std::time::{Duration, Instant};

use k8s_openapi::jiff::Timestamp;
use tracing::warn;

use super::cluster::Cluster;
use super::release::Entry;
use super::Controller;
use crate::desired::Desired;
use crate::k8s::replica_acks::{self, Report, HEARTBEAT};
use crate::k8s::rollout_status;
use crate::k8s::route_patch::routes_field;
use crate::ledger::{Ledger, ProxyStatus};
use crate::model::{Config, ResourceKey};
use crate::rollout::Action;
use crate::translate::{reaches, select_gateways};

impl Controller {
    /// Reports the ACK (or NACK) of the step in flight, once every proxy that carries
    /// the target route has taken (or one has rejected) its revision.
    pub(super) async fn check_ack(&self, entry: &mut Entry, now: Duration) -> Vec<Action> {
        let state = entry.machine.state();
        if !state.awaiting_ack() {
            return Vec::new();
        }
        let Some(revision) = state.steps.last().and_then(|s| s.revision) else {
            return Vec::new();
        };
        let target = entry.machine.rollout().target.clone();
        let config = self.desired.published().config;
        let mut status = local_ack(&self.ledger, &config, &target, revision);
        if status == ProxyStatus::Acked {
            let started = state.steps.first().map_or(now, |s| s.applied_at);
            let release_age = now.saturating_sub(started);
            status = self
                .sink
                .others_acked(&self.desired, &target, release_age)
                .await;
        }
        match status {
            ProxyStatus::Acked => entry.machine.step_acked(now, revision),
            ProxyStatus::Pending => Vec::new(),
            ProxyStatus::Rejected(message) => {
                let message = format!("revision {revision} rejected by {message}");
                entry.machine.step_nacked(now, revision, &message)
            }
        }
    }
}

/// Where this replica's proxies that carry `target` stand on `revision`.
fn local_ack(ledger: &Ledger, config: &Config, target: &ResourceKey, revision: u64) -> ProxyStatus {
    let mut out = ProxyStatus::Acked;
    for proxy in ledger.proxies() {
        let gateways = select_gateways(config, &proxy.node.labels);
        if !reaches(config, target, &gateways) {
            continue;
        }
        match proxy.status_of(revision) {
            ProxyStatus::Acked => {}
            ProxyStatus::Pending => out = ProxyStatus::Pending,
            ProxyStatus::Rejected(message) => {
                return ProxyStatus::Rejected(format!("{}: {message}", proxy.node.id));
            }
        }
    }
    out
}

impl Cluster {
    /// What the other live replicas report of `target` as this replica holds it. A new
    /// release has no reports yet: until one [`HEARTBEAT`] after its first step (when
    /// every live replica has reported it), "no other replica" is not taken for "none
    /// that has to ACK", so a follower's proxies are waited for.
    pub(super) async fn others_acked(
        &self,
        desired: &Desired,
        target: &ResourceKey,
        release_age: Duration,
    ) -> ProxyStatus {
        let Some(route) = route_hash(desired, target) else {
            return ProxyStatus::Pending;
        };
        let Some(rollout) = rollout_of(desired, target) else {
            return ProxyStatus::Pending;
        };
        match rollout_status::read_status(&self.client, &rollout).await {
            Ok(status) => {
                let now = Timestamp::now();
                let alone = !replica_acks::any_other(&status, &self.identity, now);
                if alone && release_age < HEARTBEAT {
                    return ProxyStatus::Pending;
                }
                replica_acks::others(&status, &self.identity, &route, now)
            }
            Err(e) => {
                warn!(rollout = %rollout, "cannot read the other replicas' ACKs: {e}");
                ProxyStatus::Pending
            }
        }
    }

    /// On every replica: writes, per Rollout, whether this replica's proxies ACKed its
    /// target route as it now stands (when that changed, or every [`HEARTBEAT`]).
    pub(super) async fn report_acks(&self, desired: &Desired, ledger: &Ledger) {
        let published = desired.published();
        let rollouts = &published.config.rollouts;
        let mut reported = self.reported.lock().await;
        reported
            .sent
            .retain(|key, _| rollouts.iter().any(|r| &r.key == key));
        // Nothing to say unless the config or a proxy's state moved, a heartbeat is
        // due, or a report is missing (a failed write).
        let inputs = (published.revision, *ledger.subscribe().borrow());
        let due = reported.sent.len() != rollouts.len()
            || reported
                .sent
                .values()
                .any(|(_, at)| at.elapsed() >= HEARTBEAT);
        if reported.inputs == Some(inputs) && !due {
            return;
        }
        reported.inputs = Some(inputs);
        for rollout in rollouts {
            let Some(route) = route_hash(desired, &rollout.target) else {
                continue;
            };
            let local = local_ack(
                ledger,
                &published.config,
                &rollout.target,
                published.revision,
            );
            let report = Report::new(route, &local);
            let due = match reported.sent.get(&rollout.key) {
                Some((last, at)) => *last != report || at.elapsed() >= HEARTBEAT,
                None => true,
            };
            if !due {
                continue;
            }
            let written =
                replica_acks::write(&self.client, &rollout.key, &self.identity, &report).await;
            match written {
                Ok(()) => {
                    reported
                        .sent
                        .insert(rollout.key.clone(), (report, Instant::now()));
                }
                Err(e) => warn!(rollout = %rollout.key, "cannot report this replica's ACKs: {e}"),
            }
        }
    }
}

/// The hash of `target`'s route list as this replica holds it.
fn route_hash(desired: &Desired, target: &ResourceKey) -> Option<String> {
    let field = routes_field(target.kind)?;
    let doc = desired.get(target)?;
    Some(replica_acks::route_hash(&doc.value["spec"][field]))
}

/// The Rollout whose target is `target`.
fn rollout_of(desired: &Desired, target: &ResourceKey) -> Option<ResourceKey> {
    let config = desired.published().config;
    let rollout = config.rollouts.iter().find(|r| &r.target == target)?;
    Some(rollout.key.clone())
}
