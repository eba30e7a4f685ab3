//! The decisions of a release as a pure state machine: inputs are method calls with the
//! current clock (`now`, a [`Duration`] since the UNIX epoch, or any fixed origin in
//! tests); outputs are [`Action`]s for the IO layer. No IO, no sleeping, no tokio.
//!
//! The rules, after Flagger (each is also noted where it is decided):
//! - **Gates first.** `confirm-rollout` webhooks must all answer OK before anything
//!   moves; a refusal holds (retried every interval), never fails. Then `pre-rollout`
//!   webhooks; their failure counts as one failed check (retried every interval).
//! - **Steps, gated on ACK.** Each step is an [`Action::ApplyTraffic`]; the IO layer
//!   stores it as a revision ([`Machine::step_applied`]) and reports when the proxies
//!   that carry the route ACKed it ([`Machine::step_acked`]). Only then does the step's
//!   `interval` start. A NACK of any step ([`Machine::step_nacked`]) fails the release.
//! - **Checks.** When a step has been held for `interval`, one round runs: the metrics
//!   ([`Action::RunChecks`]), `rollout` webhooks (their failure is a failed check) and
//!   `rollback` webhooks (an OK from one rolls back at once, as Flagger's manual
//!   rollback gate). A round passes, fails, or is inconclusive (see
//!   [`super::analysis::assess`]): a pass advances, a failure adds one failed check,
//!   an inconclusive round holds the step for another interval. Never a pass without
//!   enough traffic.
//! - **Strategies.** Canary: one passing round per step weight, up to the last.
//!   BlueGreen: the canary at 0 % of user traffic (reachable by `match` headers when
//!   given) for `iterations` passing rounds. ABTesting: requests that match go to the
//!   canary for `iterations` passing rounds.
//! - **Promotion.** `confirm-promotion` webhooks must answer OK; a refusal holds at the
//!   current weight and keeps checking every interval (failures still count). Then
//!   [`Action::Finalize`]; once ACKed the release is Succeeded, and `post-rollout`
//!   webhooks are called (their result is only reported).
//! - **Failure.** `threshold` failed checks (in all, as Flagger counts them), a NACK, a
//!   `rollback` webhook or an abort: one [`Action::Rollback`] revision, phase Failed,
//!   `post-rollout` webhooks called.
//! - **Release controls** (see [`crate::model::ReleaseControls`]). `skipAnalysis`:
//!   every step is still applied and ACK-gated one after another, but right after its
//!   ACK a round without metrics and without `rollout` webhooks passes it (one round per
//!   step, whatever the strategy's `iterations`); the gates (`confirm-rollout`,
//!   `pre-rollout`, `confirm-promotion`), `rollback` and `post-rollout` webhooks still
//!   run. `progressDeadlineSeconds`: a step or promotion neither ACKed nor rejected
//!   more than that after it was asked for fails the release and rolls back.
//!   `onFailure: Pause`: reaching `threshold` pauses at the current weight instead of
//!   rolling back; `resume` starts the count of failed checks again, `abort` rolls back.
//!   `dryRun` metrics are judged and shown, never counted ([`super::analysis::assess`]).
//! - **By hand.** `pause` holds the current weight (ticks do nothing; a step in flight
//!   is still recorded); `resume` holds the step for a full interval again before its
//!   next check, or retries a pending gate at once; `promote` skips the remaining steps
//!   and gates and finalizes; `abort` rolls back. Each says so in an event when it does
//!   not apply to the current phase.
//! - `event` webhooks are the IO layer's: it sends them every [`Action::Event`].

use std::time::Duration;

use super::analysis::{assess, MetricResult, Outcome};
use super::phase::Phase;
use super::state::{Action, Pending, Stage, State, StepKind, StepRecord};
use crate::model::{OnFailure, Rollout, Strategy, WebhookType, Weight};

/// One release in progress: its Rollout and its state.
#[derive(Debug, Clone, PartialEq)]
pub struct Machine {
    pub(super) rollout: Rollout,
    /// Canary weight of each step: the Canary steps, or one 0 % step for the others.
    plan: Vec<Weight>,
    pub(super) state: State,
}

impl Machine {
    pub fn new(rollout: Rollout) -> Machine {
        Machine::with_state(rollout, State::default())
    }

    /// Carries on from a stored state (another leader's, or before a restart).
    pub fn with_state(rollout: Rollout, state: State) -> Machine {
        let plan = match rollout.strategy {
            // Never empty for a validated Rollout; hold at 0 % should one be.
            Strategy::Canary if rollout.analysis.steps.is_empty() => vec![Weight::ZERO],
            // Flagger: with `mirror`, a first step at 0 % mirrors before weight shifts.
            Strategy::Canary if rollout.analysis.mirror.is_some() => {
                let mut plan = vec![Weight::ZERO];
                plan.extend(rollout.analysis.steps.iter().copied());
                plan
            }
            Strategy::Canary => rollout.analysis.steps.clone(),
            Strategy::BlueGreen | Strategy::ABTesting => vec![Weight::ZERO],
        };
        Machine {
            rollout,
            plan,
            state,
        }
    }

    pub fn rollout(&self) -> &Rollout {
        &self.rollout
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    /// When `tick` next has something to do, if anything (not while paused).
    pub fn next_deadline(&self) -> Option<Duration> {
        match self.state.stage {
            _ if self.state.phase == Phase::Paused => None,
            Stage::Retry { at, .. } | Stage::Holding { at } => Some(at),
            Stage::Applying => self.ack_deadline(),
            _ => None,
        }
    }

    /// Whether A/B `match` routing is part of every traffic step: always for ABTesting,
    /// for BlueGreen when `match` is given (test traffic), never for Canary.
    fn ab_match(&self) -> bool {
        match self.rollout.strategy {
            Strategy::Canary => false,
            Strategy::BlueGreen => !self.rollout.analysis.matches.is_empty(),
            Strategy::ABTesting => true,
        }
    }

    /// Whether step `index` mirrors stable traffic to the canary: a Canary's first
    /// (0 %) step, and a BlueGreen's only one, when `mirror` is on.
    fn mirror_at(&self, index: usize) -> bool {
        self.rollout.analysis.mirror.is_some()
            && match self.rollout.strategy {
                Strategy::Canary => index == 0,
                Strategy::BlueGreen => true,
                Strategy::ABTesting => false,
            }
    }

    fn passes_needed(&self) -> u32 {
        match self.rollout.strategy {
            _ if self.rollout.controls.skip_analysis => 1,
            Strategy::Canary => 1,
            Strategy::BlueGreen | Strategy::ABTesting => self.rollout.analysis.iterations,
        }
    }

    pub(super) fn interval(&self) -> Duration {
        self.rollout.analysis.interval
    }

    pub(super) fn set_phase(&mut self, phase: Phase, now: Duration) {
        if self.state.phase != phase {
            self.state.phase = phase;
            self.state.last_transition = now;
        }
    }

    pub(super) fn event(&mut self, out: &mut Vec<Action>, message: String) {
        self.state.message = message.clone();
        out.push(Action::Event(message));
    }

    /// Begins the release (once; later calls do nothing).
    pub fn start(&mut self, now: Duration) -> Vec<Action> {
        let mut out = Vec::new();
        if self.state.stage != Stage::Idle {
            return out;
        }
        self.state.last_transition = now;
        let what = format!(
            "{} of {} started: from {} to {}",
            self.rollout.strategy,
            self.rollout.target,
            describe(&self.rollout.stable),
            describe(&self.rollout.canary)
        );
        self.event(&mut out, what);
        if self.state.phase == Phase::Paused {
            self.state.stage = Stage::Retry {
                hook: WebhookType::ConfirmRollout,
                at: now,
            };
        } else {
            self.gate(WebhookType::ConfirmRollout, now, &mut out);
        }
        out
    }

    /// Calls the gate's webhooks, or passes it when there are none.
    fn gate(&mut self, hook: WebhookType, now: Duration, out: &mut Vec<Action>) {
        if self.rollout.analysis.has_webhooks(hook) {
            self.state.stage = Stage::Calling { hook };
            out.push(Action::CallWebhooks(hook));
        } else {
            self.gate_passed(hook, now, out);
        }
    }

    fn gate_passed(&mut self, hook: WebhookType, now: Duration, out: &mut Vec<Action>) {
        match hook {
            WebhookType::ConfirmRollout => self.gate(WebhookType::PreRollout, now, out),
            WebhookType::PreRollout => self.apply_step(0, now, out),
            WebhookType::ConfirmPromotion => self.finalize(now, "promoting".into(), out),
            _ => {}
        }
    }

    /// The webhooks of `hook` answered: `ok` when every one of them did with 2xx (for
    /// `rollback` webhooks: when one asks to roll back).
    pub fn webhook_done(&mut self, now: Duration, hook: WebhookType, ok: bool) -> Vec<Action> {
        let mut out = Vec::new();
        let interval = self.interval();
        match &mut self.state.stage {
            Stage::Calling { hook: h } if *h == hook => match hook {
                _ if ok => self.gate_passed(hook, now, &mut out),
                // Flagger: a confirm-rollout refusal holds, never fails.
                WebhookType::ConfirmRollout => {
                    self.state.stage = Stage::Retry {
                        hook,
                        at: now + interval,
                    };
                    self.event(&mut out, "waiting for confirm-rollout approval".into());
                }
                // Flagger: a confirm-promotion refusal holds at the current weight while
                // the analysis goes on.
                WebhookType::ConfirmPromotion => {
                    self.state.stage = Stage::Holding { at: now + interval };
                    self.event(&mut out, "waiting for confirm-promotion approval".into());
                }
                // Flagger: a pre-rollout failure counts as a failed check.
                _ => {
                    if !self.fail_check(now, "pre-rollout webhook failed".into(), &mut out) {
                        self.state.stage = Stage::Retry {
                            hook,
                            at: now + interval,
                        };
                    }
                }
            },
            Stage::Checking(p) if hook == WebhookType::Rollout && p.rollout_hooks => {
                p.rollout_hooks = false;
                p.hook_failed |= !ok;
                self.finish_checks(now, &mut out);
            }
            Stage::Checking(p) if hook == WebhookType::Rollback && p.rollback_hooks => {
                p.rollback_hooks = false;
                p.rollback_requested |= ok;
                self.finish_checks(now, &mut out);
            }
            _ if hook == WebhookType::PostRollout && !ok => {
                out.push(Action::Event("post-rollout webhook failed".into()));
            }
            _ => {}
        }
        out
    }

    /// Counts one failed check; rolls back at `threshold`. Returns whether it did.
    fn fail_check(&mut self, now: Duration, reason: String, out: &mut Vec<Action>) -> bool {
        self.state.failed_checks += 1;
        let (failed, threshold) = (self.state.failed_checks, self.rollout.analysis.threshold);
        self.event(
            out,
            format!("check failed ({failed}/{threshold}): {reason}"),
        );
        if failed < threshold {
            return false;
        }
        match self.rollout.controls.on_failure {
            OnFailure::Rollback => {
                let why = format!("{failed} failed checks, rolling back (last: {reason})");
                self.rollback(now, why, out);
                true
            }
            // The caller sets the stage as for any failed check; resume carries on.
            OnFailure::Pause => {
                let phase = self.state.phase;
                self.state.paused_from = Some(phase);
                self.set_phase(Phase::Paused, now);
                let weight = self.state.canary_weight;
                let why = format!(
                    "{failed} failed checks, paused at {weight} (onFailure: Pause; resume \
                     carries on, abort rolls back; last: {reason})"
                );
                self.event(out, why);
                false
            }
        }
    }

    /// Runs what is due: a gate to retry, or a round of checks.
    pub fn tick(&mut self, now: Duration) -> Vec<Action> {
        let mut out = Vec::new();
        if self.state.phase == Phase::Paused {
            return out;
        }
        match self.state.stage {
            Stage::Retry { hook, at } if now >= at => self.gate(hook, now, &mut out),
            // A gradual promotion's step is held for an interval, then the next.
            Stage::Holding { at } if now >= at && self.state.phase == Phase::Promoting => {
                self.finalize(now, "promoting".into(), &mut out)
            }
            Stage::Holding { at } if now >= at => self.start_checks(now, &mut out),
            Stage::Applying if self.ack_deadline().is_some_and(|d| now > d) => {
                self.progress_deadline_passed(now, &mut out);
            }
            _ => {}
        }
        out
    }

    /// When the newest step, promotion included, is late: `progressDeadlineSeconds`
    /// after it was asked for, while it is neither ACKed nor rejected.
    fn ack_deadline(&self) -> Option<std::time::Duration> {
        let last = self.state.steps.last()?;
        let pending = last.acked_at.is_none() && last.rejected.is_none();
        let deadline = self.rollout.controls.progress_deadline;
        (pending && last.kind != StepKind::Rollback).then_some(last.applied_at + deadline)
    }

    fn progress_deadline_passed(&mut self, now: Duration, out: &mut Vec<Action>) {
        let Some(last) = self.state.steps.last() else {
            return;
        };
        let what = match (last.kind, last.revision) {
            (StepKind::Finalize, _) => "the promotion".to_string(),
            (_, Some(revision)) => format!("revision {revision} (canary weight {})", last.weight),
            (_, None) => format!("the step to canary weight {} (never stored)", last.weight),
        };
        let secs = self.rollout.controls.progress_deadline.as_secs();
        let why =
            format!("{what} was not ACKed within progressDeadlineSeconds ({secs}s); rolling back");
        self.rollback(now, why, out);
    }

    fn start_checks(&mut self, now: Duration, out: &mut Vec<Action>) {
        let analysis = &self.rollout.analysis;
        let skip = self.rollout.controls.skip_analysis;
        let pending = Pending {
            metrics: !skip && !analysis.metrics.is_empty(),
            rollout_hooks: !skip && analysis.has_webhooks(WebhookType::Rollout),
            rollback_hooks: analysis.has_webhooks(WebhookType::Rollback),
            ..Pending::default()
        };
        if pending.metrics {
            out.push(Action::RunChecks);
        }
        if pending.rollout_hooks {
            out.push(Action::CallWebhooks(WebhookType::Rollout));
        }
        if pending.rollback_hooks {
            out.push(Action::CallWebhooks(WebhookType::Rollback));
        }
        self.state.stage = Stage::Checking(pending);
        self.finish_checks(now, out);
    }

    /// The metric values of the round that `RunChecks` started (ignored otherwise).
    pub fn checks_done(&mut self, now: Duration, results: Vec<MetricResult>) -> Vec<Action> {
        let mut out = Vec::new();
        if let Stage::Checking(p) = &mut self.state.stage {
            if p.metrics {
                p.metrics = false;
                p.results = results;
                self.finish_checks(now, &mut out);
            }
        }
        out
    }

    /// Decides the round once nothing is pending.
    fn finish_checks(&mut self, now: Duration, out: &mut Vec<Action>) {
        let Stage::Checking(p) = &self.state.stage else {
            return;
        };
        if p.metrics || p.rollout_hooks || p.rollback_hooks {
            return;
        }
        let p = p.clone();
        if p.rollback_requested {
            self.rollback(now, "a rollback webhook asked to roll back".into(), out);
            return;
        }
        // skipAnalysis: no metric is checked, so none is judged.
        let metrics = match self.rollout.controls.skip_analysis {
            true => &[][..],
            false => &self.rollout.analysis.metrics[..],
        };
        let (mut outcome, checks) = assess(metrics, &p.results, &mut self.state.inconclusive, now);
        if !checks.is_empty() {
            let weight = self.state.canary_weight;
            let listed: Vec<String> = checks.iter().map(ToString::to_string).collect();
            out.push(Action::Event(format!(
                "checks at {weight}: {}",
                listed.join("; ")
            )));
            self.state.metrics = checks;
        }
        if p.hook_failed {
            outcome = match outcome {
                Outcome::Fail(reason) => Outcome::Fail(format!("rollout webhook failed; {reason}")),
                _ => Outcome::Fail("rollout webhook failed".into()),
            };
        }
        let hold = Stage::Holding {
            at: now + self.interval(),
        };
        match outcome {
            Outcome::Pass => {
                self.state.iteration += 1;
                self.state.step_passes += 1;
                if self.state.step_passes < self.passes_needed() {
                    self.state.stage = hold;
                } else if self.state.step + 1 < self.plan.len() {
                    self.apply_step(self.state.step + 1, now, out);
                } else {
                    self.gate(WebhookType::ConfirmPromotion, now, out);
                }
            }
            Outcome::Fail(reason) => {
                if !self.fail_check(now, reason, out) {
                    self.state.stage = hold;
                }
            }
            Outcome::Inconclusive(reason) => {
                self.event(out, format!("inconclusive, holding: {reason}"));
                self.state.stage = hold;
            }
        }
    }

    fn record(&mut self, kind: StepKind, weight: Weight, now: Duration) {
        let traffic = kind == StepKind::Traffic;
        self.state.steps.push(StepRecord {
            kind,
            weight,
            ab_match: traffic && self.ab_match(),
            mirror: traffic && self.mirror_at(self.state.step),
            applied_at: now,
            revision: None,
            acked_at: None,
            rejected: None,
        });
    }

    fn apply_step(&mut self, index: usize, now: Duration, out: &mut Vec<Action>) {
        let weight = self.plan[index];
        self.state.step = index;
        self.state.step_passes = 0;
        self.state.canary_weight = weight;
        self.set_phase(Phase::Progressing, now);
        self.record(StepKind::Traffic, weight, now);
        self.state.stage = Stage::Applying;
        let ab_match = self.ab_match();
        let mirror = self.mirror_at(index);
        out.push(Action::ApplyTraffic {
            canary_weight: weight,
            ab_match,
            mirror,
        });
        let n = self.plan.len();
        let what = match self.rollout.strategy {
            Strategy::Canary if mirror => {
                format!(
                    "step {}/{n}: stable traffic mirrored to the canary",
                    index + 1
                )
            }
            Strategy::Canary => format!("step {}/{n}: canary weight {weight}", index + 1),
            Strategy::BlueGreen if mirror => "canary with mirrored traffic only".into(),
            Strategy::BlueGreen if ab_match => "canary reachable by match only".into(),
            Strategy::BlueGreen => "canary with no user traffic".into(),
            Strategy::ABTesting => "requests that match go to the canary".into(),
        };
        self.event(out, what);
    }

    /// Promotes: with `stepWeightPromotion`, first one more traffic step of that much
    /// (ACK-gated and held for an interval, without checks, as Flagger's promotion
    /// steps), until the next would reach 100 %; then [`Machine::finalize_now`].
    pub(super) fn finalize(&mut self, now: Duration, reason: String, out: &mut Vec<Action>) {
        let step = self.rollout.analysis.step_weight_promotion;
        let next = step.map(|s| self.state.canary_weight.units() + s.units());
        match next {
            Some(next) if next < Weight::FULL.units() => {
                let weight = Weight::from_units(next);
                self.set_phase(Phase::Promoting, now);
                self.state.canary_weight = weight;
                self.record(StepKind::Traffic, weight, now);
                self.state.stage = Stage::Applying;
                out.push(Action::ApplyTraffic {
                    canary_weight: weight,
                    ab_match: false,
                    mirror: false,
                });
                self.event(out, format!("{reason}: canary weight {weight}"));
            }
            _ => self.finalize_now(now, reason, out),
        }
    }

    /// All traffic to the canary in one revision.
    pub(super) fn finalize_now(&mut self, now: Duration, reason: String, out: &mut Vec<Action>) {
        self.set_phase(Phase::Promoting, now);
        self.state.paused_from = None;
        self.record(StepKind::Finalize, Weight::FULL, now);
        self.state.stage = Stage::Applying;
        out.push(Action::Finalize);
        self.event(out, reason);
    }

    pub(super) fn rollback(&mut self, now: Duration, reason: String, out: &mut Vec<Action>) {
        self.set_phase(Phase::Failed, now);
        self.state.paused_from = None;
        self.state.canary_weight = Weight::ZERO;
        self.record(StepKind::Rollback, Weight::ZERO, now);
        self.state.stage = Stage::Done;
        out.push(Action::Rollback);
        if self.rollout.analysis.has_webhooks(WebhookType::PostRollout) {
            out.push(Action::CallWebhooks(WebhookType::PostRollout));
        }
        self.event(out, reason);
    }
}

pub(super) fn describe(d: &crate::model::Destination) -> String {
    match &d.subset {
        Some(subset) => format!("{} subset {subset}", d.host),
        None => d.host.clone(),
    }
}
