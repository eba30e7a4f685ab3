//! The release controls driven by a fake clock: `skipAnalysis`, `progressDeadlineSeconds`,
//! per-metric `dryRun` and `onFailure: Pause`.

use super::machine_tests::{effects, pct, secs, traffic, Run, METRICS};
use super::state::Action;
use super::status::Phase;
use super::Verdict;
use crate::model::{WebhookType, Weight};

const HOOKS: &str = "    webhooks:\n      \
                     - {name: smoke, type: pre-rollout, url: 'http://hooks/pre'}\n      \
                     - {name: load, type: rollout, url: 'http://hooks/load'}\n      \
                     - {name: done, type: post-rollout, url: 'http://hooks/post'}\n";

#[test]
fn skip_analysis_promotes_step_by_step_on_acks_without_checks() {
    let mut run = Run::new(&format!(
        "  skipAnalysis: true\n  analysis:\n    interval: 30s\n    \
         stepWeights: [10, 50]\n{METRICS}{HOOKS}"
    ));
    // Gates still run.
    let pre = Action::CallWebhooks(WebhookType::PreRollout);
    assert_eq!(effects(&run.start()), vec![pre]);
    let first = run.m.webhook_done(run.now, WebhookType::PreRollout, true);
    assert_eq!(effects(&first), traffic(pct(10.0)));
    // Each step still waits for its ACK...
    let revision = run.store();
    assert_eq!(run.wait(secs(120)), vec![], "nothing before the ACK");
    // ...then the next one follows at once: no metrics, no rollout webhooks.
    let next = run.m.step_acked(run.now, revision);
    assert_eq!(effects(&next), traffic(pct(50.0)));
    assert_eq!(effects(&run.store_and_ack()), vec![Action::Finalize]);
    let post = Action::CallWebhooks(WebhookType::PostRollout);
    assert_eq!(effects(&run.store_and_ack()), vec![post]);
    assert_eq!(run.phase(), Phase::Succeeded);
    let state = run.m.state();
    assert_eq!(state.iteration, 2);
    assert!(state.metrics.is_empty(), "no metric was checked");
    assert!(state.steps.iter().all(|s| s.acked_at.is_some()));
}

#[test]
fn skip_analysis_needs_one_round_whatever_the_iterations() {
    let mut run =
        Run::new("  strategy: BlueGreen\n  skipAnalysis: true\n  analysis:\n    iterations: 5\n");
    assert_eq!(effects(&run.start()), traffic(Weight::ZERO));
    assert_eq!(effects(&run.store_and_ack()), vec![Action::Finalize]);
}

#[test]
fn a_step_not_acked_by_the_progress_deadline_rolls_back() {
    let tail = "  progressDeadlineSeconds: 60\n  analysis:\n    interval: 30s\n    \
                stepWeights: [10, 50]\n";
    let mut run = Run::new(tail);
    run.start();
    let applied = run.now;
    run.store();
    assert_eq!(run.m.next_deadline(), Some(applied + secs(60)));
    assert_eq!(run.wait(secs(60)), vec![], "within the deadline");
    assert_eq!(effects(&run.wait(secs(1))), vec![Action::Rollback]);
    assert_eq!(run.phase(), Phase::Failed);
    assert_eq!(
        run.m.state().message,
        "revision 11 (canary weight 10%) was not ACKed within progressDeadlineSeconds (60s); \
         rolling back"
    );
    // The rollback is not held to the deadline.
    run.store();
    assert_eq!(run.wait(secs(3600)), vec![]);
}

#[test]
fn the_progress_deadline_defaults_to_600s_and_covers_the_promotion() {
    let mut run = Run::canary("    stepWeights: [10]\n");
    run.start();
    run.store_and_ack();
    assert_eq!(effects(&run.wait(secs(30))), vec![Action::Finalize]);
    run.store();
    assert_eq!(run.wait(secs(600)), vec![]);
    assert_eq!(effects(&run.wait(secs(1))), vec![Action::Rollback]);
    assert!(run
        .m
        .state()
        .message
        .starts_with("the promotion was not ACKed within progressDeadlineSeconds (600s)"));
}

#[test]
fn a_failing_dry_run_metric_is_shown_and_never_holds_the_release() {
    let metrics = "    metrics:\n      - name: request-success-rate\n        \
                   thresholdRange: {min: 99}\n        dryRun: true\n";
    let mut run = Run::canary(&format!(
        "    threshold: 1\n    stepWeights: [10, 50]\n{metrics}"
    ));
    run.start();
    run.store_and_ack();
    run.wait(secs(30));
    assert_eq!(effects(&run.checks(Some(50.0), 500)), traffic(pct(50.0)));
    assert_eq!(run.m.state().failed_checks, 0);
    let status = serde_json::to_value(run.m.status()).unwrap();
    assert_eq!(status["metrics"][0]["verdict"], "fail");
    assert_eq!(status["metrics"][0]["dryRun"], true);
    // Nor does an inconclusive one (too few samples) hold it.
    run.store_and_ack();
    run.wait(secs(30));
    assert_eq!(effects(&run.checks(Some(100.0), 1)), vec![Action::Finalize]);
    assert_eq!(run.m.status().metrics[0].verdict, Verdict::Inconclusive);
}

#[test]
fn on_failure_pause_holds_at_the_weight_then_resume_counts_afresh() {
    let tail = format!(
        "  onFailure: Pause\n  analysis:\n    interval: 30s\n    threshold: 2\n    \
         stepWeights: [10, 50]\n{METRICS}"
    );
    let mut run = Run::new(&tail);
    run.start();
    run.store_and_ack();
    for _ in 0..2 {
        assert_eq!(run.wait(secs(30)), vec![Action::RunChecks]);
        assert_eq!(effects(&run.checks(Some(80.0), 500)), vec![]);
    }
    assert_eq!(run.phase(), Phase::Paused);
    assert_eq!(run.m.state().canary_weight, pct(10.0));
    assert_eq!(run.m.state().failed_checks, 2);
    assert!(
        run.m
            .state()
            .message
            .starts_with("2 failed checks, paused at 10%"),
        "{}",
        run.m.state().message
    );
    assert_eq!(run.wait(secs(3600)), vec![], "held until told");
    run.m.resume(run.now);
    assert_eq!(run.phase(), Phase::Progressing);
    assert_eq!(run.m.state().failed_checks, 0);
    assert_eq!(run.wait(secs(30)), vec![Action::RunChecks]);
    assert_eq!(
        effects(&run.checks(Some(80.0), 500)),
        vec![],
        "one failure of two"
    );
    assert_eq!(run.phase(), Phase::Progressing);
    run.wait(secs(30));
    assert_eq!(effects(&run.healthy()), traffic(pct(50.0)));
}

#[test]
fn on_failure_pause_then_abort_rolls_back() {
    let tail = format!(
        "  onFailure: Pause\n  analysis:\n    interval: 30s\n    threshold: 1\n    \
         stepWeights: [10, 50]\n{METRICS}"
    );
    let mut run = Run::new(&tail);
    run.start();
    run.store_and_ack();
    run.wait(secs(30));
    run.checks(Some(80.0), 500);
    assert_eq!(run.phase(), Phase::Paused);
    assert_eq!(effects(&run.m.abort(run.now)), vec![Action::Rollback]);
    assert_eq!(run.phase(), Phase::Failed);
}
