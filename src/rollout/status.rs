//! The status of a Rollout as SPEC section 4 names it, as serde types (camelCase) for
//! `GET /api/v1/rollouts/{namespace}/{name}`, the CLI and the stored document. Built
//! from a [`Machine`]; times are RFC 3339, from the machine's clock read as time since
//! the UNIX epoch.

use std::time::{Duration, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::analysis::Verdict;
use super::machine::Machine;
pub use super::phase::Phase;
use super::state::StepKind;
use crate::model::Strategy;

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutStatus {
    /// Initializing, Progressing, Paused, Promoting, Succeeded or Failed.
    #[schema(value_type = String)]
    pub phase: Phase,
    #[schema(value_type = String)]
    pub strategy: Strategy,
    /// Percent of the route's traffic on the canary (fractional, up to 4 decimals).
    pub canary_weight: f64,
    pub failed_checks: u32,
    /// Failed checks that roll the release back.
    pub threshold: u32,
    /// Passing checks so far.
    pub iteration: u32,
    /// Passing checks from the first step to promotion (for a progress bar).
    pub total_iterations: u32,
    /// Each metric's last value with its verdict.
    pub metrics: Vec<MetricStatus>,
    /// Every traffic change, oldest first, with the revision that holds it.
    pub steps: Vec<StepStatus>,
    pub message: String,
    pub last_transition_time: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricStatus {
    pub name: String,
    /// Null before the first check with data.
    #[schema(required = true)]
    pub value: Option<f64>,
    pub samples: u64,
    /// pass, fail or inconclusive.
    #[schema(value_type = String)]
    pub verdict: Verdict,
    pub checked_at: String,
    /// A dry-run metric (`dryRun`): its verdict is shown, never counted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StepStatus {
    /// step, promote or rollback.
    pub kind: String,
    /// Canary percent this step sets (100 for promote, 0 for rollback).
    pub weight: f64,
    /// A/B: matching requests go to the canary.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ab_match: bool,
    /// Stable traffic is mirrored to the canary.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub mirror: bool,
    /// The stored revision that holds it, once stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<u64>,
    pub applied_at: String,
    /// When the proxies that carry the route ACKed it; the step's interval starts here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acked_at: Option<String>,
    /// A proxy's NACK of it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejected: Option<String>,
}

/// RFC 3339 for a clock reading taken as time since the UNIX epoch.
pub fn rfc3339(at: Duration) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + at).to_string()
}

impl RolloutStatus {
    pub fn from_machine(machine: &Machine) -> RolloutStatus {
        let state = machine.state();
        let analysis = &machine.rollout().analysis;
        RolloutStatus {
            phase: state.phase,
            strategy: machine.rollout().strategy,
            canary_weight: state.canary_weight.percent(),
            failed_checks: state.failed_checks,
            threshold: analysis.threshold,
            iteration: state.iteration,
            total_iterations: analysis.total_iterations(),
            metrics: state
                .metrics
                .iter()
                .map(|m| MetricStatus {
                    name: m.name.clone(),
                    value: m.value,
                    samples: m.samples,
                    verdict: m.verdict,
                    checked_at: rfc3339(m.checked_at),
                    dry_run: m.dry_run,
                })
                .collect(),
            steps: state
                .steps
                .iter()
                .map(|s| StepStatus {
                    kind: match s.kind {
                        StepKind::Traffic => "step",
                        StepKind::Finalize => "promote",
                        StepKind::Rollback => "rollback",
                    }
                    .to_string(),
                    weight: s.weight.percent(),
                    ab_match: s.ab_match,
                    mirror: s.mirror,
                    revision: s.revision,
                    applied_at: rfc3339(s.applied_at),
                    acked_at: s.acked_at.map(rfc3339),
                    rejected: s.rejected.clone(),
                })
                .collect(),
            message: state.message.clone(),
            last_transition_time: rfc3339(state.last_transition),
        }
    }
}

impl Machine {
    /// The release's status as the API shows it.
    pub fn status(&self) -> RolloutStatus {
        RolloutStatus::from_machine(self)
    }
}
