//! The rollout controller: drives every Rollout's [`Machine`] with real IO.
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

mod acks;
mod cluster;
mod execute;
pub mod prometheus;
mod relay;
mod saved;
mod sink;
pub mod webhook;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{watch, Mutex};

use crate::desired::{Desired, Published};
use crate::ledger::Ledger;
use crate::model::{ResourceKey, Rollout};
use crate::rollout::{Machine, RolloutStatus};
use crate::stats::Stats;
use cluster::Cluster;
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
struct Entry {
    machine: Machine,
    /// A fingerprint of the Rollout's spec: a changed spec starts a new release.
    spec: String,
    /// Under `--kubernetes`: the status last written to the Rollout in the cluster.
    mirrored: Option<serde_json::Value>,
    /// Under `--kubernetes`: when the Rollout's status was last read for commands
    /// relayed by other replicas.
    polled: Option<std::time::Instant>,
    /// Under `--kubernetes`: the `at` of the last relayed command carried out.
    request_done: Option<String>,
}

impl Entry {
    fn new(machine: Machine, spec: String) -> Entry {
        Entry {
            machine,
            spec,
            mirrored: None,
            polled: None,
            request_done: None,
        }
    }

    /// Applies an operator's command to the machine; the actions to carry out.
    fn drive(&mut self, command: Command) -> Vec<crate::rollout::Action> {
        let now = clock();
        match command {
            Command::Promote => self.machine.promote(now),
            Command::Abort => self.machine.abort(now),
            Command::Pause => self.machine.pause(now),
            Command::Resume => self.machine.resume(now),
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
    machines: Mutex<BTreeMap<ResourceKey, Entry>>,
}

impl Controller {
    pub fn new(desired: Arc<Desired>, ledger: Arc<Ledger>, stats: Arc<Stats>) -> Controller {
        Controller {
            desired,
            ledger,
            stats,
            http: reqwest::Client::new(),
            sink: Sink::Store,
            machines: Mutex::default(),
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

    /// A release's status, if that Rollout exists: from its machine on the leader,
    /// else (`--kubernetes`) as the leader wrote it in the Rollout's status.
    pub async fn status(&self, key: &ResourceKey) -> Option<RolloutStatus> {
        let status = self
            .machines
            .lock()
            .await
            .get(key)
            .map(|e| e.machine.status());
        match status {
            Some(status) => Some(status),
            None => self.sink.leader_status(&self.desired, key).await,
        }
    }

    /// Drives a release by hand: on the leader at once, else (`--kubernetes`) relayed
    /// to the leader through the Rollout's status.
    pub async fn command(
        &self,
        key: &ResourceKey,
        command: Command,
    ) -> Result<RolloutStatus, CommandError> {
        let mut machines = self.machines.lock().await;
        let Some(entry) = machines.get_mut(key) else {
            drop(machines);
            return self.sink.relay(&self.desired, key, command).await;
        };
        let actions = entry.drive(command);
        self.carry_out(entry, actions).await;
        self.save(key, entry).await;
        self.sink.mirror(entry).await;
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

    /// One machine per Rollout: new ones start (or resume from a saved state), removed
    /// ones are forgotten, changed ones start over.
    async fn sync(&self, rollouts: &[Rollout]) {
        let mut machines = self.machines.lock().await;
        machines.retain(|key, _| rollouts.iter().any(|r| &r.key == key));
        let specs: Vec<String> = rollouts
            .iter()
            .map(|r| crate::snapshot::short_hash(format!("{r:?}").as_bytes()))
            .collect();
        let starting = rollouts
            .iter()
            .zip(&specs)
            .any(|(r, spec)| machines.get(&r.key).is_none_or(|e| &e.spec != spec));
        if !starting {
            return; // every release runs on its current spec: nothing to read
        }
        let saved = saved::rollouts(&self.desired).await;
        for (rollout, spec) in rollouts.iter().zip(specs) {
            if machines.get(&rollout.key).is_some_and(|e| e.spec == spec) {
                continue;
            }
            // The cluster's copy first: another replica may have led the release since.
            let in_cluster = self.sink.cluster_state(&rollout.key).await;
            let resumed = in_cluster
                .as_ref()
                .or_else(|| saved.get(&rollout.key.to_string()))
                .filter(|(s, _)| *s == spec)
                .and_then(|(_, state)| serde_json::from_str(state).ok());
            let machine = match resumed {
                Some(state) => Machine::with_state(rollout.clone(), state),
                None => Machine::new(rollout.clone()),
            };
            let mut entry = Entry::new(machine, spec);
            let actions = entry.machine.start(clock());
            self.carry_out(&mut entry, actions).await;
            self.save(&rollout.key, &entry).await;
            self.sink.mirror(&mut entry).await;
            machines.insert(rollout.key.clone(), entry);
        }
    }

    /// Ticks every machine, and reports step ACKs and NACKs.
    async fn step(&self) {
        let mut machines = self.machines.lock().await;
        for (key, entry) in machines.iter_mut() {
            let before = entry.machine.state().clone();
            let now = clock();
            // A step whose write failed is written again (first, as it was due first).
            let mut actions: Vec<_> = entry.machine.unstored().into_iter().collect();
            actions.extend(self.check_ack(entry, now).await);
            actions.extend(self.sink.take_relayed(entry).await);
            actions.extend(entry.machine.tick(now));
            self.carry_out(entry, actions).await;
            if *entry.machine.state() != before {
                self.save(key, entry).await;
            }
            self.sink.mirror(entry).await;
        }
    }

    async fn save(&self, key: &ResourceKey, entry: &Entry) {
        let state = serde_json::to_string(entry.machine.state()).expect("state serializes");
        saved::save(&self.desired, key, &entry.spec, state).await;
    }
}

/// The machines' clock: time since the UNIX epoch, so saved states stay meaningful
/// after a restart.
pub fn clock() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}
