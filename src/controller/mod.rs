//! The rollout controller: drives every Rollout's [`Machine`](crate::rollout::Machine) with real IO.
//!
//! It keeps one machine per Rollout of the published config, ticks them, and carries
//! out their actions: traffic steps become revisions of the target VirtualService or
//! HTTPRoute (through [`Desired`], so they show in `history`; under `--kubernetes` the
//! route is patched in the cluster and the step is the revision that the watchers make
//! of it), a step counts as taken once every
//! proxy carrying the route has ACKed it (from the [`Ledger`]), checks read Envoy's own
//! stats ([`Stats`]) or Prometheus, and webhooks are called as Flagger calls them.
//! Each machine's state is saved in the store after every step, so a restart carries
//! on; under `--kubernetes` it also goes, with the status, into the Rollout's `status`
//! in the cluster, which a new leader on another replica resumes from. Work happens only while `leader` is true.
//!
//! Where steps and states go (store or cluster) is one `Sink` (`sink.rs`), chosen at
//! construction. Each release has its own work lock, held across its IO, so its ticks
//! and commands never interleave; the map of releases is locked only for lookups and
//! swaps, and status readers clone a snapshot, so they never wait for a release's IO
//! (see `tick.rs`). Store calls run on the blocking pool (`saved.rs`).

mod acks;
mod alert;
mod cluster;
mod execute;
pub mod prometheus;
mod relay;
mod release;
mod saved;
mod sink;
#[cfg(test)]
mod tests;
mod tick;
pub mod webhook;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{watch, OwnedMutexGuard};

use crate::desired::{Desired, Published};
use crate::ledger::Ledger;
use crate::model::ResourceKey;
use crate::rollout::RolloutStatus;
use crate::stats::Stats;
use cluster::Cluster;
use release::{Entry, Release};
use sink::Sink;

/// How often machines are ticked and step ACKs looked for.
const TICK: Duration = Duration::from_millis(250);

/// A command from an operator (REST or CLI).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Promote,
    Abort,
    Pause,
    Resume,
}

/// Why a command was not carried out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("{0} not found")]
    NotFound(ResourceKey),
    /// Relayed to the leader through the cluster, which did not take it in time.
    #[error("{0}")]
    NotTaken(String),
}

impl Command {
    pub fn as_str(self) -> &'static str {
        match self {
            Command::Promote => "promote",
            Command::Abort => "abort",
            Command::Pause => "pause",
            Command::Resume => "resume",
        }
    }

    pub fn from_name(name: &str) -> Option<Command> {
        match name {
            "promote" => Some(Command::Promote),
            "abort" => Some(Command::Abort),
            "pause" => Some(Command::Pause),
            "resume" => Some(Command::Resume),
            _ => None,
        }
    }
}

#[derive(Debug)]
pub struct Controller {
    desired: Arc<Desired>,
    ledger: Arc<Ledger>,
    stats: Arc<Stats>,
    http: reqwest::Client,
    /// Where steps, states and statuses are written: chosen once, here.
    sink: Sink,
    /// One release per Rollout; locked only to look one up or swap one, never across
    /// IO (see [`tick`]).
    releases: std::sync::Mutex<BTreeMap<ResourceKey, Arc<Release>>>,
}

impl Controller {
    pub fn new(desired: Arc<Desired>, ledger: Arc<Ledger>, stats: Arc<Stats>) -> Controller {
        Controller {
            desired,
            ledger,
            stats,
            http: reqwest::Client::new(),
            sink: Sink::Store,
            releases: std::sync::Mutex::default(),
        }
    }

    /// Writes traffic steps into the cluster (`serve --kubernetes`) instead of the
    /// store, and reports this replica's ACKs there as `identity`.
    pub fn with_cluster(self, client: kube::Client, identity: String) -> Controller {
        Controller {
            sink: Sink::Cluster(Box::new(Cluster::new(client, identity))),
            ..self
        }
    }

    /// A release's status, if that Rollout exists: from its machine on the leader (a
    /// snapshot: never waiting for the release's IO), else (`--kubernetes`) as the
    /// leader wrote it in the Rollout's status.
    pub async fn status(&self, key: &ResourceKey) -> Option<RolloutStatus> {
        let release = self.releases().get(key).cloned();
        match release {
            Some(release) => Some(release.status()),
            None => self.sink.leader_status(&self.desired, key).await,
        }
    }

    /// Drives a release by hand: on the leader at once (after the release's work in
    /// flight), else (`--kubernetes`) relayed to the leader through the Rollout's
    /// status.
    pub async fn command(
        &self,
        key: &ResourceKey,
        command: Command,
    ) -> Result<RolloutStatus, CommandError> {
        let Some((release, mut entry)) = self.work_on(key).await else {
            return self.sink.relay(&self.desired, key, command).await;
        };
        let actions = entry.drive(command);
        self.carry_out(&mut entry, actions).await;
        self.record(&release, &mut entry, true).await;
        Ok(entry.machine.status())
    }

    /// Runs until the published channel closes.
    pub async fn run(
        self: Arc<Self>,
        mut published: watch::Receiver<Published>,
        leader: watch::Receiver<bool>,
    ) {
        loop {
            self.sink.report_acks(&self.desired, &self.ledger).await;
            if *leader.borrow() {
                let config = published.borrow_and_update().config.clone();
                self.sync(&config.rollouts).await;
                self.step().await;
            }
            tokio::select! {
                changed = published.changed() => if changed.is_err() { return },
                _ = tokio::time::sleep(TICK) => {}
            }
        }
    }

    /// The current release of `key` with its work locked (after the work in flight),
    /// if there is one.
    async fn work_on(&self, key: &ResourceKey) -> Option<(Arc<Release>, OwnedMutexGuard<Entry>)> {
        loop {
            let release = self.releases().get(key).cloned()?;
            let entry = release.work().await;
            if !entry.retired {
                return Some((release, entry));
            }
            // Replaced or removed while we waited: look again.
        }
    }

    /// The map of releases, held only for a lookup or a swap.
    fn releases(&self) -> std::sync::MutexGuard<'_, BTreeMap<ResourceKey, Arc<Release>>> {
        self.releases
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The machines' clock: time since the UNIX epoch, so saved states stay meaningful
/// after a restart.
pub fn clock() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}
