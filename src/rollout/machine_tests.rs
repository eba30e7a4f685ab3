//! The state machine driven by a fake clock: every strategy to the end, failures,
//! ACK gating, exact weights and a restored state. Shared by [`super::control_tests`].

use std::time::Duration;

use super::analysis::MetricResult;
use super::machine::Machine;
use super::state::{Action, Stage, State};
use super::status::Phase;
use super::traffic::virtual_service_tests::mk_config;
use crate::model::Weight;

pub(super) const METRICS: &str =
    "    metrics: [{name: request-success-rate, thresholdRange: {min: 99}}]\n";

pub(super) fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

pub(super) fn pct(p: f64) -> Weight {
    Weight::from_percent(p).unwrap()
}

/// A machine and its fake clock, with the IO layer's side played by hand.
pub(super) struct Run {
    pub(super) m: Machine,
    pub(super) now: Duration,
    revision: u64,
}

impl Run {
    pub(super) fn new(tail: &str) -> Run {
        let rollout = mk_config(tail).rollouts.remove(0);
        Run {
            m: Machine::new(rollout),
            now: secs(1000),
            revision: 10,
        }
    }

    pub(super) fn canary(analysis: &str) -> Run {
        Run::new(&format!("  analysis:\n    interval: 30s\n{analysis}"))
    }

    pub(super) fn start(&mut self) -> Vec<Action> {
        self.m.start(self.now)
    }

    /// Lets `d` pass, then ticks.
    pub(super) fn wait(&mut self, d: Duration) -> Vec<Action> {
        self.now += d;
        self.m.tick(self.now)
    }

    /// Stores the pending traffic change as the next revision.
    pub(super) fn store(&mut self) -> u64 {
        self.revision += 1;
        assert_eq!(self.m.step_applied(self.now, self.revision), vec![]);
        self.revision
    }

    pub(super) fn store_and_ack(&mut self) -> Vec<Action> {
        let revision = self.store();
        self.m.step_acked(self.now, revision)
    }

    pub(super) fn checks(&mut self, value: Option<f64>, samples: u64) -> Vec<Action> {
        let result = MetricResult {
            name: "request-success-rate".into(),
            value,
            samples,
            counted: true,
        };
        self.m.checks_done(self.now, vec![result])
    }

    pub(super) fn healthy(&mut self) -> Vec<Action> {
        self.checks(Some(99.9), 500)
    }

    pub(super) fn phase(&self) -> Phase {
        self.m.state().phase
    }
}

/// The actions other than events.
pub(super) fn effects(actions: &[Action]) -> Vec<Action> {
    actions
        .iter()
        .filter(|a| !matches!(a, Action::Event(_)))
        .cloned()
        .collect()
}

pub(super) fn traffic(weight: Weight) -> Vec<Action> {
    vec![Action::ApplyTraffic {
        canary_weight: weight,
        ab_match: false,
        mirror: false,
    }]
}

#[test]
fn canary_with_step_weights_to_succeeded() {
    let mut run = Run::canary(&format!("    stepWeights: [1, 10, 50]\n{METRICS}"));
    assert_eq!(run.phase(), Phase::Initializing);
    assert_eq!(effects(&run.start()), traffic(pct(1.0)));
    assert_eq!(run.phase(), Phase::Progressing);
    for (i, next) in [Some(10.0), Some(50.0), None].into_iter().enumerate() {
        run.store_and_ack();
        assert_eq!(run.wait(secs(29)), vec![], "step {i} held for the interval");
        assert_eq!(run.wait(secs(1)), vec![Action::RunChecks]);
        let actions = effects(&run.healthy());
        match next {
            Some(weight) => assert_eq!(actions, traffic(pct(weight))),
            None => assert_eq!(actions, vec![Action::Finalize]),
        }
    }
    assert_eq!(run.phase(), Phase::Promoting);
    run.store_and_ack();
    let state = run.m.state();
    assert_eq!(state.phase, Phase::Succeeded);
    assert_eq!(state.canary_weight, Weight::FULL);
    assert_eq!(state.iteration, 3);
    let revisions: Vec<Option<u64>> = state.steps.iter().map(|s| s.revision).collect();
    assert_eq!(revisions, vec![Some(11), Some(12), Some(13), Some(14)]);
    assert!(state.steps.iter().all(|s| s.acked_at.is_some()));
    assert_eq!(run.wait(secs(3600)), vec![], "nothing after the end");
    let status = serde_json::to_value(run.m.status()).unwrap();
    assert_eq!(status["phase"], "Succeeded");
    assert_eq!(status["canaryWeight"], 100.0);
    assert_eq!(status["totalIterations"], 3);
    assert_eq!(status["steps"][0]["weight"], 1.0);
    assert_eq!(status["steps"][0]["revision"], 11);
    assert_eq!(status["steps"][3]["kind"], "promote");
    assert_eq!(status["metrics"][0]["verdict"], "pass");
    assert_eq!(status["metrics"][0]["value"], 99.9);
    assert_eq!(status["lastTransitionTime"], "1970-01-01T00:18:10.000Z");
}

#[test]
fn step_weight_climbs_to_max_weight() {
    let mut run = Run::canary("    stepWeight: 20\n    maxWeight: 50\n");
    assert_eq!(effects(&run.start()), traffic(pct(20.0)));
    let mut weights = vec![];
    loop {
        run.store_and_ack();
        // No metrics and no webhooks: every round passes.
        let actions = effects(&run.wait(secs(30)));
        match actions.as_slice() {
            [Action::ApplyTraffic { canary_weight, .. }] => weights.push(canary_weight.percent()),
            [Action::Finalize] => break,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(weights, vec![40.0, 50.0]);
}

#[test]
fn the_interval_starts_only_after_the_ack() {
    let mut run = Run::canary(&format!("    stepWeights: [5, 50]\n{METRICS}"));
    run.start();
    let revision = run.store();
    assert!(run.m.state().awaiting_ack());
    assert_eq!(run.wait(secs(600)), vec![], "no checks before the ACK");
    run.m.step_acked(run.now, revision);
    assert!(!run.m.state().awaiting_ack());
    assert_eq!(run.m.next_deadline(), Some(run.now + secs(30)));
    assert_eq!(run.wait(secs(29)), vec![]);
    assert_eq!(run.wait(secs(1)), vec![Action::RunChecks]);
    // An ACK of an older revision does not count for a newer step.
    run.healthy();
    let newer = run.store();
    run.m.step_acked(run.now, newer - 1);
    assert!(run.m.state().awaiting_ack());
}

#[test]
fn a_nack_rolls_back_and_fails() {
    let mut run = Run::canary("    stepWeights: [5, 50]\n");
    run.start();
    let revision = run.store();
    let actions = run.m.step_nacked(run.now, revision, "invalid route");
    assert_eq!(effects(&actions), vec![Action::Rollback]);
    assert_eq!(run.phase(), Phase::Failed);
    assert_eq!(run.m.state().canary_weight, Weight::ZERO);
    assert_eq!(
        run.m.state().steps[0].rejected.as_deref(),
        Some("invalid route")
    );
    assert!(run.m.state().message.contains("revision 11 was rejected"));
    // The rollback is recorded as a revision too; its NACK is only reported.
    let rollback = run.store();
    let again = run.m.step_nacked(run.now, rollback, "still bad");
    assert_eq!(effects(&again), vec![]);
}

#[test]
fn failed_checks_up_to_the_threshold_roll_back() {
    let mut run = Run::canary(&format!(
        "    threshold: 2\n    stepWeights: [10, 50]\n{METRICS}"
    ));
    run.start();
    run.store_and_ack();
    run.wait(secs(30));
    assert_eq!(
        effects(&run.checks(Some(80.0), 500)),
        vec![],
        "one failure holds"
    );
    assert_eq!(run.m.state().failed_checks, 1);
    assert_eq!(run.m.state().canary_weight, pct(10.0));
    assert_eq!(run.wait(secs(30)), vec![Action::RunChecks]);
    assert_eq!(
        effects(&run.checks(Some(80.0), 500)),
        vec![Action::Rollback]
    );
    assert_eq!(run.phase(), Phase::Failed);
    assert_eq!(run.m.state().failed_checks, 2);
    assert_eq!(run.m.status().metrics[0].verdict, super::Verdict::Fail);
}

#[test]
fn no_traffic_never_promotes_and_fails_after_the_limit() {
    let metrics = "    metrics:\n      - name: request-success-rate\n        \
                   thresholdRange: {min: 99}\n        inconclusiveLimit: 2\n";
    let mut run = Run::canary(&format!(
        "    threshold: 2\n    stepWeights: [10]\n{metrics}"
    ));
    run.start();
    run.store_and_ack();
    let mut rounds = vec![];
    for _ in 0..4 {
        assert_eq!(run.wait(secs(30)), vec![Action::RunChecks]);
        rounds.push(effects(&run.checks(Some(100.0), 3)));
        assert_eq!(
            run.m.state().iteration,
            0,
            "an inconclusive round is never a pass"
        );
    }
    assert_eq!(rounds, vec![vec![], vec![], vec![], vec![Action::Rollback]]);
    assert_eq!(run.phase(), Phase::Failed);
    assert_eq!(
        run.m.status().metrics[0].verdict,
        super::Verdict::Inconclusive
    );
}

#[test]
fn blue_green_switches_at_once_after_the_iterations() {
    let tail = format!(
        "  strategy: BlueGreen\n  analysis:\n    interval: 1m\n    iterations: 3\n{METRICS}"
    );
    let mut run = Run::new(&tail);
    assert_eq!(effects(&run.start()), traffic(Weight::ZERO));
    run.store_and_ack();
    for i in 0..3 {
        assert_eq!(run.wait(secs(60)), vec![Action::RunChecks]);
        let actions = effects(&run.healthy());
        assert_eq!(actions.is_empty(), i < 2, "round {i}: {actions:?}");
    }
    assert_eq!(run.m.state().canary_weight, Weight::ZERO);
    assert_eq!(run.phase(), Phase::Promoting);
    run.store_and_ack();
    assert_eq!(run.phase(), Phase::Succeeded);
    assert_eq!(run.m.state().steps.len(), 2, "one step, then one switch");
}

#[test]
fn ab_testing_routes_by_match_then_promotes() {
    let tail = "  strategy: ABTesting\n  analysis:\n    interval: 10s\n    iterations: 2\n    \
                match: [{headers: {x-canary: {exact: \"true\"}}}]\n";
    let mut run = Run::new(tail);
    let start = effects(&run.start());
    let ab = Action::ApplyTraffic {
        canary_weight: Weight::ZERO,
        ab_match: true,
        mirror: false,
    };
    assert_eq!(start, vec![ab]);
    run.store_and_ack();
    assert_eq!(effects(&run.wait(secs(10))), vec![]);
    assert_eq!(effects(&run.wait(secs(10))), vec![Action::Finalize]);
    run.store_and_ack();
    assert_eq!(run.phase(), Phase::Succeeded);
    assert!(run.m.status().steps[0].ab_match);
}

#[test]
fn fractional_weights_stay_exact() {
    let mut run = Run::canary("    stepWeights: [0.01, 0.1, 1]\n");
    let mut weights = vec![];
    let mut actions = run.start();
    loop {
        match effects(&actions).as_slice() {
            [Action::ApplyTraffic { canary_weight, .. }] => weights.push(canary_weight.units()),
            [Action::Finalize] => break,
            other => panic!("{other:?}"),
        }
        run.store_and_ack();
        actions = run.wait(secs(30));
    }
    assert_eq!(weights, vec![100, 1_000, 10_000]);
    let status = serde_json::to_value(run.m.status()).unwrap();
    assert_eq!(status["steps"][0]["weight"], 0.01);
    assert_eq!(status["steps"][1]["weight"], 0.1);
}

#[test]
fn state_survives_a_round_trip_and_a_new_leader_carries_on() {
    let mut run = Run::canary(&format!("    stepWeights: [10, 50]\n{METRICS}"));
    run.start();
    run.store_and_ack();
    let json = serde_json::to_string(run.m.state()).unwrap();
    let state: State = serde_json::from_str(&json).unwrap();
    assert_eq!(&state, run.m.state());
    assert!(matches!(state.stage, Stage::Holding { .. }));
    let mut next = Machine::with_state(run.m.rollout().clone(), state);
    assert_eq!(next.tick(run.now + secs(30)), vec![Action::RunChecks]);
}

#[test]
fn a_mirrored_canary_checks_the_mirror_before_the_first_weight() {
    let mut run = Run::canary(&format!(
        "    stepWeight: 20\n    maxWeight: 40\n    mirror: true\n{METRICS}"
    ));
    let mirrored = Action::ApplyTraffic {
        canary_weight: Weight::ZERO,
        ab_match: false,
        mirror: true,
    };
    assert_eq!(effects(&run.start()), vec![mirrored.clone()]);
    assert!(run.m.state().steps[0].mirror);
    run.store_and_ack();
    assert_eq!(effects(&run.wait(secs(30))), vec![Action::RunChecks]);
    // A failing check of the mirrored traffic holds the first weight back.
    assert_eq!(effects(&run.checks(Some(50.0), 500)), vec![]);
    assert_eq!(run.m.state().failed_checks, 1);
    assert_eq!(effects(&run.wait(secs(30))), vec![Action::RunChecks]);
    assert_eq!(effects(&run.healthy()), traffic(pct(20.0)));
    assert!(!run.m.state().steps[1].mirror);
    // The unstored step is retried as it was asked for, mirror included.
    let mut again = Run::canary("    stepWeight: 20\n    maxWeight: 40\n    mirror: true\n");
    again.start();
    assert_eq!(again.m.unstored(), Some(mirrored));
    assert_eq!(run.m.rollout().analysis.total_iterations(), 3);
}

#[test]
fn a_mirrored_blue_green_mirrors_through_every_iteration() {
    let tail = "  strategy: BlueGreen\n  analysis:\n    interval: 10s\n    iterations: 2\n    \
                mirror: true\n";
    let mut run = Run::new(tail);
    let start = effects(&run.start());
    assert_eq!(
        start,
        vec![Action::ApplyTraffic {
            canary_weight: Weight::ZERO,
            ab_match: false,
            mirror: true,
        }]
    );
    run.store_and_ack();
    assert_eq!(effects(&run.wait(secs(10))), vec![]);
    assert_eq!(effects(&run.wait(secs(10))), vec![Action::Finalize]);
}

#[test]
fn step_weight_promotion_promotes_gradually_after_the_analysis() {
    let mut run = Run::canary("    stepWeights: [50]\n    stepWeightPromotion: 20\n");
    assert_eq!(effects(&run.start()), traffic(pct(50.0)));
    run.store_and_ack();
    // The analysis step passes: promotion starts, one ACK-gated step at a time.
    assert_eq!(effects(&run.wait(secs(30))), traffic(pct(70.0)));
    assert_eq!(run.phase(), Phase::Promoting);
    run.store_and_ack();
    assert_eq!(effects(&run.wait(secs(29))), vec![]);
    assert_eq!(effects(&run.wait(secs(1))), traffic(pct(90.0)));
    run.store_and_ack();
    assert_eq!(effects(&run.wait(secs(30))), vec![Action::Finalize]);
    run.store_and_ack();
    assert_eq!(run.phase(), Phase::Succeeded);
    // By hand, promotion is at once.
    let mut run = Run::canary("    stepWeights: [50]\n    stepWeightPromotion: 20\n");
    run.start();
    run.store_and_ack();
    assert_eq!(effects(&run.m.promote(run.now)), vec![Action::Finalize]);
}
