//! What the IO layer and the user report or ask between rounds: a step stored, ACKed
//! or NACKed; promote, abort, pause and resume. The rules are in [`super::machine`].

use std::time::Duration;

use super::machine::{describe, Machine};
use super::state::{Action, Stage, StepKind};
use super::status::Phase;
use crate::model::{WebhookType, Weight};

impl Machine {
    /// The newest traffic change, not stored until now, was stored as `revision`.
    pub fn step_applied(&mut self, _now: Duration, revision: u64) -> Vec<Action> {
        if let Some(step) = self.state.steps.last_mut().filter(|s| s.revision.is_none()) {
            step.revision = Some(revision);
        }
        Vec::new()
    }

    /// The traffic action of the newest step when it is not stored yet (writing it
    /// failed: the IO layer tries again), else `None`. An older step that was never
    /// stored is superseded by the newer one and is not retried.
    pub fn unstored(&self) -> Option<Action> {
        let last = self.state.steps.last()?;
        if last.revision.is_some() || last.rejected.is_some() {
            return None;
        }
        Some(match last.kind {
            StepKind::Traffic => Action::ApplyTraffic {
                canary_weight: last.weight,
                ab_match: last.ab_match,
                mirror: last.mirror,
            },
            StepKind::Finalize => Action::Finalize,
            StepKind::Rollback => Action::Rollback,
        })
    }

    /// The proxies that carry the route ACKed `revision` (and so every step stored at
    /// or before it). The newest step's interval starts now.
    pub fn step_acked(&mut self, now: Duration, revision: u64) -> Vec<Action> {
        let mut out = Vec::new();
        for step in &mut self.state.steps {
            let covered = step.revision.is_some_and(|r| r <= revision);
            if covered && step.acked_at.is_none() && step.rejected.is_none() {
                step.acked_at = Some(now);
            }
        }
        let Some(last) = self.state.steps.last() else {
            return out;
        };
        if self.state.stage != Stage::Applying || last.acked_at.is_none() {
            return out;
        }
        match last.kind {
            // skipAnalysis: the step's round (without metrics) runs at once.
            StepKind::Traffic if self.rollout.controls.skip_analysis => {
                self.state.stage = Stage::Holding { at: now };
                let what = format!("revision {revision} ACKed at {}", last.weight);
                self.event(&mut out, what);
                out.extend(self.tick(now));
            }
            StepKind::Traffic => {
                self.state.stage = Stage::Holding {
                    at: now + self.interval(),
                };
                let what = format!("revision {revision} ACKed: holding {}", last.weight);
                self.event(&mut out, what);
            }
            StepKind::Finalize => {
                self.set_phase(Phase::Succeeded, now);
                self.state.stage = Stage::Done;
                self.state.canary_weight = Weight::FULL;
                if self.rollout.analysis.has_webhooks(WebhookType::PostRollout) {
                    out.push(Action::CallWebhooks(WebhookType::PostRollout));
                }
                let what = format!(
                    "promoted: {} now serves all traffic",
                    describe(&self.rollout.canary)
                );
                self.event(&mut out, what);
            }
            StepKind::Rollback => {}
        }
        out
    }

    /// A proxy rejected `revision`. A rejected step (or promotion) fails the release
    /// and rolls back; a rejected rollback is only reported.
    pub fn step_nacked(&mut self, now: Duration, revision: u64, message: &str) -> Vec<Action> {
        let mut out = Vec::new();
        let Some(step) = self
            .state
            .steps
            .iter_mut()
            .find(|s| s.revision == Some(revision))
        else {
            return out;
        };
        step.rejected = Some(message.to_string());
        let reason = format!("revision {revision} was rejected: {message}");
        if step.kind == StepKind::Rollback || self.state.phase.is_final() {
            self.event(&mut out, reason);
        } else {
            self.rollback(now, format!("{reason}; rolling back"), &mut out);
        }
        out
    }

    /// Skips the remaining steps and gates: all traffic to the canary.
    pub fn promote(&mut self, now: Duration) -> Vec<Action> {
        let mut out = Vec::new();
        match self.state.phase {
            Phase::Succeeded | Phase::Failed | Phase::Promoting => {
                let what = format!("nothing to promote: {}", self.state.phase);
                out.push(Action::Event(what));
            }
            _ => self.finalize_now(now, "promoted by hand".into(), &mut out),
        }
        out
    }

    /// Rolls back now.
    pub fn abort(&mut self, now: Duration) -> Vec<Action> {
        let mut out = Vec::new();
        if self.state.phase.is_final() {
            let what = format!("nothing to abort: {}", self.state.phase);
            out.push(Action::Event(what));
        } else {
            self.rollback(now, "aborted by hand".into(), &mut out);
        }
        out
    }

    /// Holds the current weight until `resume`; only while Initializing or Progressing.
    pub fn pause(&mut self, now: Duration) -> Vec<Action> {
        let mut out = Vec::new();
        let phase = self.state.phase;
        if !matches!(phase, Phase::Initializing | Phase::Progressing) {
            out.push(Action::Event(format!("cannot pause: {phase}")));
            return out;
        }
        self.state.paused_from = Some(phase);
        self.set_phase(Phase::Paused, now);
        // A gate or round in flight is dropped; resume runs it again.
        self.state.stage = match &self.state.stage {
            Stage::Calling { hook } => Stage::Retry {
                hook: *hook,
                at: now,
            },
            Stage::Checking(_) => Stage::Holding { at: now },
            other => other.clone(),
        };
        let what = format!("paused at {}", self.state.canary_weight);
        self.event(&mut out, what);
        out
    }

    /// Carries on after a pause: a held step waits a full interval before its next
    /// check; a pending gate is retried at once. After a pause on failure
    /// (`onFailure: Pause`) the failed checks count from 0 again.
    pub fn resume(&mut self, now: Duration) -> Vec<Action> {
        let mut out = Vec::new();
        let Some(phase) = self.state.paused_from.take() else {
            out.push(Action::Event(format!("not paused: {}", self.state.phase)));
            return out;
        };
        self.set_phase(phase, now);
        if self.state.failed_checks >= self.rollout.analysis.threshold {
            self.state.failed_checks = 0;
        }
        match &mut self.state.stage {
            Stage::Holding { at } => *at = now + self.rollout.analysis.interval,
            Stage::Retry { at, .. } => *at = now,
            _ => {}
        }
        self.event(&mut out, "resumed".into());
        out.extend(self.tick(now));
        out
    }
}
