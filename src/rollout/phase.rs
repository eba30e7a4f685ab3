//! Where a release is: the phase every other part of a Rollout's state refers to.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Phase {
    /// Created; gates (confirm-rollout, pre-rollout) before the first step.
    Initializing,
    /// Steps are being applied and checked.
    Progressing,
    /// Held by hand at the current weight.
    Paused,
    /// The switch of all traffic to the canary is being applied.
    Promoting,
    Succeeded,
    Failed,
}

impl Phase {
    pub const ALL: [Phase; 6] = [
        Phase::Initializing,
        Phase::Progressing,
        Phase::Paused,
        Phase::Promoting,
        Phase::Succeeded,
        Phase::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Initializing => "Initializing",
            Phase::Progressing => "Progressing",
            Phase::Paused => "Paused",
            Phase::Promoting => "Promoting",
            Phase::Succeeded => "Succeeded",
            Phase::Failed => "Failed",
        }
    }

    /// Succeeded or Failed: nothing more happens.
    pub fn is_final(self) -> bool {
        matches!(self, Phase::Succeeded | Phase::Failed)
    }
}
