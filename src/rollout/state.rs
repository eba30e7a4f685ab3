//! The state of a release as the machine keeps it, and the actions it asks for; all
//! plain data, serializable so that another leader (or a restart) can carry on.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::analysis::{MetricCheck, MetricResult};
use super::phase::Phase;
use crate::model::{WebhookType, Weight};

/// What the IO layer must do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Rewrite the target route ([`super::traffic::virtual_service::set_weight`]), store it as one
    /// revision and report it with [`super::Machine::step_applied`].
    ApplyTraffic {
        canary_weight: Weight,
        ab_match: bool,
        /// Copy the analysis' `mirrorWeight` of the stable's traffic to the canary.
        mirror: bool,
    },
    /// Measure every metric; report with [`super::Machine::checks_done`].
    RunChecks,
    /// Call every webhook of this type; report with [`super::Machine::webhook_done`], `ok`
    /// only when all of them answered 2xx (within their timeouts and retries).
    CallWebhooks(WebhookType),
    /// All traffic of the route to the canary's destination ([`super::traffic::virtual_service::finalize`]),
    /// as one revision reported with `step_applied`.
    Finalize,
    /// All traffic back to stable ([`super::traffic::virtual_service::rollback`]), as one revision
    /// reported with `step_applied`.
    Rollback,
    /// Something to log, record and send to `event` webhooks.
    Event(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StepKind {
    Traffic,
    Finalize,
    Rollback,
}

/// A traffic change the machine asked for, and what became of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    pub kind: StepKind,
    /// Canary weight it sets (full for Finalize, zero for Rollback).
    #[serde(with = "weight_units")]
    pub weight: Weight,
    pub ab_match: bool,
    /// Whether the step mirrors stable traffic to the canary.
    #[serde(default)]
    pub mirror: bool,
    pub applied_at: Duration,
    pub revision: Option<u64>,
    pub acked_at: Option<Duration>,
    pub rejected: Option<String>,
}

/// Where in the flow the release is, and what it waits for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Stage {
    /// Not started.
    Idle,
    /// Webhooks of a gate called; waiting for `webhook_done`.
    Calling { hook: WebhookType },
    /// A gate to call again at `at`.
    Retry { hook: WebhookType, at: Duration },
    /// The newest step is being stored and ACKed.
    Applying,
    /// The step is live; its next round of checks is due at `at`.
    Holding { at: Duration },
    /// A round of checks is running.
    Checking(Pending),
    /// Succeeded or Failed.
    Done,
}

/// What a running round of checks still waits for, and what it has heard.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Pending {
    pub metrics: bool,
    pub rollout_hooks: bool,
    pub rollback_hooks: bool,
    pub hook_failed: bool,
    pub rollback_requested: bool,
    pub results: Vec<MetricResult>,
}

/// Everything the machine knows; serializable so that a new leader can carry on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub phase: Phase,
    /// The phase a pause interrupted.
    pub paused_from: Option<Phase>,
    pub stage: Stage,
    #[serde(with = "weight_units")]
    pub canary_weight: Weight,
    /// Index of the current step in the plan.
    pub step: usize,
    /// Passing rounds at the current step.
    pub step_passes: u32,
    /// Passing rounds in all.
    pub iteration: u32,
    pub failed_checks: u32,
    /// Inconclusive rounds in a row, per metric.
    pub inconclusive: BTreeMap<String, u32>,
    pub steps: Vec<StepRecord>,
    /// Each metric's last check.
    pub metrics: Vec<MetricCheck>,
    pub message: String,
    pub last_transition: Duration,
}

impl Default for State {
    fn default() -> Self {
        State {
            phase: Phase::Initializing,
            paused_from: None,
            stage: Stage::Idle,
            canary_weight: Weight::ZERO,
            step: 0,
            step_passes: 0,
            iteration: 0,
            failed_checks: 0,
            inconclusive: BTreeMap::new(),
            steps: Vec::new(),
            metrics: Vec::new(),
            message: String::new(),
            last_transition: Duration::ZERO,
        }
    }
}

impl State {
    /// Whether the newest step (a traffic step, a promotion or a rollback) is stored
    /// but neither ACKed nor rejected yet.
    pub fn awaiting_ack(&self) -> bool {
        self.steps
            .last()
            .is_some_and(|s| s.revision.is_some() && s.acked_at.is_none() && s.rejected.is_none())
    }
}

/// Weights in state as their integer units (millionths), exact.
mod weight_units {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::model::Weight;

    pub fn serialize<S: Serializer>(w: &Weight, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u32(w.units())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Weight, D::Error> {
        u32::deserialize(d).map(Weight::from_units)
    }
}
