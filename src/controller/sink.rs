//! Where a release is written, chosen once when the controller is built: the store
//! alone, or (`--kubernetes`) the cluster, which then also carries each release's state
//! and status, every replica's ACK report and the commands relayed to the leader.
//! Every "store or cluster" choice of the controller is one `match` here.

use std::sync::Arc;

use super::cluster::Cluster;
use super::release::Entry;
use super::{saved, Command, CommandError};
use crate::desired::Desired;
use crate::ingest::Document;
use crate::ledger::{Ledger, ProxyStatus};
use crate::model::{ResourceKey, Rollout};
use crate::rollout::{Action, RolloutStatus};

#[derive(Debug)]
pub(super) enum Sink {
    /// Steps are revisions of the store; nothing is shared with other replicas.
    Store,
    /// Steps are patched into the cluster, the source of truth.
    Cluster(Box<Cluster>),
}

impl Sink {
    /// The (spec fingerprint, state) of a release as the cluster holds it, which
    /// another replica may have led since (none with the store alone).
    pub(super) async fn cluster_state(&self, key: &ResourceKey) -> Option<(String, String)> {
        match self {
            Sink::Store => None,
            Sink::Cluster(cluster) => cluster.state(key).await,
        }
    }

    /// Writes the route a traffic step asks for (`next`, a rewrite of `doc`): the
    /// revision that carries it, or `None` when it was not written (logged).
    pub(super) async fn write_step(
        &self,
        desired: &Arc<Desired>,
        rollout: &Rollout,
        doc: Document,
        next: serde_json::Value,
    ) -> Option<u64> {
        match self {
            Sink::Store => {
                saved::apply_step(desired, rollout, Document { value: next, ..doc }).await
            }
            Sink::Cluster(cluster) => cluster.patch_step(desired, rollout, &next).await,
        }
    }

    /// Writes the release's status (and state) where other replicas read it.
    pub(super) async fn mirror(&self, entry: &mut Entry) {
        match self {
            Sink::Store => {}
            Sink::Cluster(cluster) => cluster.mirror(entry).await,
        }
    }

    /// Where the proxies of the other live replicas stand on `target` as this replica
    /// holds it (Acked when there are none). `release_age` is how long ago the release
    /// applied its first step.
    pub(super) async fn others_acked(
        &self,
        desired: &Desired,
        target: &ResourceKey,
        release_age: std::time::Duration,
    ) -> ProxyStatus {
        match self {
            Sink::Store => ProxyStatus::Acked,
            Sink::Cluster(cluster) => cluster.others_acked(desired, target, release_age).await,
        }
    }

    /// Reports this replica's ACKs for the leader (on every replica).
    pub(super) async fn report_acks(&self, desired: &Desired, ledger: &Ledger) {
        match self {
            Sink::Store => {}
            Sink::Cluster(cluster) => cluster.report_acks(desired, ledger).await,
        }
    }

    /// A release's status on a replica that does not drive it: as the leader wrote it.
    pub(super) async fn leader_status(
        &self,
        desired: &Desired,
        key: &ResourceKey,
    ) -> Option<RolloutStatus> {
        match self {
            Sink::Store => None,
            Sink::Cluster(cluster) => cluster.leader_status(desired, key).await,
        }
    }

    /// A command for a release this replica does not drive: relayed to the leader.
    pub(super) async fn relay(
        &self,
        desired: &Desired,
        key: &ResourceKey,
        command: Command,
    ) -> Result<RolloutStatus, CommandError> {
        match self {
            Sink::Store => Err(CommandError::NotFound(key.clone())),
            Sink::Cluster(cluster) => cluster.relay(desired, key, command).await,
        }
    }

    /// On the leader: a command another replica relayed, carried out on the machine;
    /// the actions it leads to.
    pub(super) async fn take_relayed(&self, entry: &mut Entry) -> Vec<Action> {
        match self {
            Sink::Store => Vec::new(),
            Sink::Cluster(cluster) => cluster.take_relayed(entry).await,
        }
    }
}
