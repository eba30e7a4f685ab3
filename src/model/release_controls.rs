//! How a release may go besides its analysis: Flagger's `skipAnalysis` and
//! `progressDeadlineSeconds`, and coalmine's `onFailure` (roll back, or pause as Argo
//! users asked). Only the validated shape; the decisions are in [`crate::rollout`].

use std::time::Duration;

/// A Rollout's `spec.skipAnalysis`, `spec.progressDeadlineSeconds` and `spec.onFailure`,
/// defaults filled in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReleaseControls {
    /// Promote without metric checks (and without `rollout` webhooks), still one
    /// ACK-gated step after another; default false.
    pub skip_analysis: bool,
    /// A step (or the promotion) not ACKed within this fails the release; default 600s.
    pub progress_deadline: Duration,
    pub on_failure: OnFailure,
}

impl Default for ReleaseControls {
    fn default() -> Self {
        ReleaseControls {
            skip_analysis: false,
            progress_deadline: Duration::from_secs(600),
            on_failure: OnFailure::Rollback,
        }
    }
}

/// What reaching the failed-check `threshold` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnFailure {
    /// All traffic back to stable; phase Failed (Flagger's behaviour).
    #[default]
    Rollback,
    /// Phase Paused at the current weight until `rollout resume` (which resets the
    /// failed checks) or `rollout abort` (which rolls back).
    Pause,
}
