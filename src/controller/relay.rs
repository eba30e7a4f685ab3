//! Rollouts on replicas that do not lead (`--kubernetes`): their status read from the
//! Rollout's `status`, where the leader writes it, and operators' commands relayed to
//! the leader through it ([`rollout_status`]), so the REST API and the CLI work
//! against any replica behind a Service.

use std::time::{Duration, Instant};

use k8s_openapi::jiff::Timestamp;
use tracing::{info, warn};

use super::cluster::Cluster;
use super::release::Entry;
use super::{Command, CommandError};
use crate::desired::Desired;
use crate::k8s::rollout_status;
use crate::model::ResourceKey;
use crate::rollout::{Action, RolloutStatus};

/// How long a relayed command may take to be carried out by the leader.
const RELAY_TIMEOUT: Duration = Duration::from_secs(10);

/// How often the leader reads a Rollout's status for relayed commands.
const POLL: Duration = Duration::from_secs(1);

impl Cluster {
    /// The release status the leader wrote in the Rollout's status, if any.
    pub(super) async fn leader_status(
        &self,
        desired: &Desired,
        key: &ResourceKey,
    ) -> Option<RolloutStatus> {
        rollout_exists(desired, key).then_some(())?;
        match rollout_status::read_status(&self.client, key).await {
            Ok(status) => rollout_status::release_status(&status),
            Err(e) => {
                warn!(rollout = %key, "cannot read the release status from the cluster: {e}");
                None
            }
        }
    }

    /// Writes `command` as a request in the Rollout's status and waits for the leader
    /// to record it done; the status then.
    pub(super) async fn relay(
        &self,
        desired: &Desired,
        key: &ResourceKey,
        command: Command,
    ) -> Result<RolloutStatus, CommandError> {
        let not_found = || CommandError::NotFound(key.clone());
        if !rollout_exists(desired, key) {
            return Err(not_found());
        }
        let at = Timestamp::now().to_string();
        let request = rollout_status::request_patch(command.as_str(), &at, &self.identity);
        let unreachable = |e: kube::Error| {
            CommandError::NotTaken(format!(
                "cannot relay {} to the leader: {e}",
                command.as_str()
            ))
        };
        rollout_status::write(&self.client, key, &request)
            .await
            .map_err(unreachable)?;
        let deadline = Instant::now() + RELAY_TIMEOUT;
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let status = rollout_status::read_status(&self.client, key)
                .await
                .map_err(unreachable)?;
            if status[rollout_status::REQUEST_DONE_FIELD].as_str() == Some(at.as_str()) {
                return rollout_status::release_status(&status).ok_or_else(not_found);
            }
            if Instant::now() >= deadline {
                return Err(CommandError::NotTaken(format!(
                    "this replica is not the leader, and the leader did not carry out {} \
                     within {RELAY_TIMEOUT:?} (it stays requested in the Rollout's status)",
                    command.as_str()
                )));
            }
        }
    }

    /// On the leader: carries out a command another replica relayed (read every
    /// [`POLL`]); the actions it leads to.
    pub(super) async fn take_relayed(&self, entry: &mut Entry) -> Vec<Action> {
        let key = &entry.machine.rollout().key.clone();
        if entry.polled.is_some_and(|at| at.elapsed() < POLL) {
            return Vec::new();
        }
        entry.polled = Some(Instant::now());
        let status = match rollout_status::read_status(&self.client, key).await {
            Ok(status) => status,
            Err(e) => {
                warn!(rollout = %key, "cannot read relayed commands: {e}");
                return Vec::new();
            }
        };
        let Some((name, at)) = rollout_status::pending_request(&status) else {
            return Vec::new();
        };
        let actions = match Command::from_name(&name) {
            Some(command) => {
                info!(rollout = %key, command = %name, from = %status["request"]["from"], "relayed command");
                entry.drive(command)
            }
            None => {
                warn!(rollout = %key, "ignoring an unknown relayed command {name:?}");
                Vec::new()
            }
        };
        // Recorded done with the status it leads to once the actions are carried out:
        // the mirror after this tick writes both.
        entry.request_done = Some(at);
        actions
    }
}

fn rollout_exists(desired: &Desired, key: &ResourceKey) -> bool {
    let config = desired.published().config;
    config.rollouts.iter().any(|r| &r.key == key)
}
