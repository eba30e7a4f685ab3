//! The machine's hand controls (pause, resume, promote, abort) in each phase, and its
//! webhook gates, driven by a fake clock.

use super::machine_tests::{effects, pct, secs, traffic, Run, METRICS};
use super::state::Action;
use super::status::Phase;
use crate::model::WebhookType;

#[test]
fn abort_mid_way_rolls_back_once() {
    let mut run = Run::canary("    stepWeights: [10, 20, 50]\n");
    run.start();
    run.store_and_ack();
    run.wait(secs(30));
    run.store_and_ack();
    assert_eq!(run.m.state().canary_weight, pct(20.0));
    assert_eq!(effects(&run.m.abort(run.now)), vec![Action::Rollback]);
    assert_eq!(run.phase(), Phase::Failed);
    assert_eq!(effects(&run.m.abort(run.now)), vec![], "already over");
    assert_eq!(effects(&run.m.promote(run.now)), vec![]);
    assert_eq!(run.wait(secs(600)), vec![]);
}

#[test]
fn pause_holds_and_resume_waits_a_full_interval() {
    let mut run = Run::canary(&format!("    stepWeights: [10, 50]\n{METRICS}"));
    run.start();
    run.store_and_ack();
    run.wait(secs(20));
    run.m.pause(run.now);
    assert_eq!(run.phase(), Phase::Paused);
    assert_eq!(run.m.next_deadline(), None);
    assert_eq!(run.wait(secs(600)), vec![], "ticks do nothing while paused");
    assert_eq!(
        effects(&run.m.pause(run.now)),
        vec![],
        "pausing twice is harmless"
    );
    run.m.resume(run.now);
    assert_eq!(run.phase(), Phase::Progressing);
    assert_eq!(run.wait(secs(29)), vec![]);
    assert_eq!(run.wait(secs(1)), vec![Action::RunChecks]);
    // A pause during a round drops it; resume runs a fresh one an interval later.
    run.m.pause(run.now);
    assert_eq!(
        effects(&run.healthy()),
        vec![],
        "results of a dropped round are ignored"
    );
    run.m.resume(run.now);
    assert_eq!(run.wait(secs(30)), vec![Action::RunChecks]);
    assert_eq!(effects(&run.healthy()), traffic(pct(50.0)));
    assert_eq!(effects(&run.m.resume(run.now)), vec![], "not paused");
}

#[test]
fn pause_in_each_phase() {
    // Initializing, before start: start waits for the resume.
    let mut run = Run::canary("    stepWeights: [10]\n");
    run.m.pause(run.now);
    assert_eq!(effects(&run.start()), vec![]);
    assert_eq!(effects(&run.m.resume(run.now)), traffic(pct(10.0)));
    // Progressing with a step in flight: its ACK is recorded while paused.
    run.m.pause(run.now);
    run.store_and_ack();
    assert!(run.m.state().steps[0].acked_at.is_some());
    assert_eq!(run.wait(secs(60)), vec![]);
    run.m.resume(run.now);
    assert_eq!(effects(&run.wait(secs(30))), vec![Action::Finalize]);
    // Promoting and after: pause is refused.
    assert_eq!(effects(&run.m.pause(run.now)), vec![]);
    assert_eq!(run.phase(), Phase::Promoting);
    run.store_and_ack();
    run.m.pause(run.now);
    assert_eq!(run.phase(), Phase::Succeeded);
}

#[test]
fn promote_by_hand_skips_the_remaining_steps_even_when_paused() {
    let mut run = Run::canary("    stepWeights: [1, 10, 50]\n");
    run.start();
    run.store_and_ack();
    run.m.pause(run.now);
    assert_eq!(effects(&run.m.promote(run.now)), vec![Action::Finalize]);
    assert_eq!(run.phase(), Phase::Promoting);
    assert_eq!(
        effects(&run.m.promote(run.now)),
        vec![],
        "already promoting"
    );
    run.store_and_ack();
    assert_eq!(run.phase(), Phase::Succeeded);
}

const HOOKS: &str = concat!(
    "    webhooks:\n",
    "      - {name: ok, type: confirm-rollout, url: http://gate/}\n",
    "      - {name: pre, type: pre-rollout, url: http://pre/}\n",
    "      - {name: load, type: rollout, url: http://load/}\n",
    "      - {name: promo, type: confirm-promotion, url: http://promo/}\n",
    "      - {name: post, type: post-rollout, url: http://post/}\n",
);

fn hook(kind: WebhookType) -> Vec<Action> {
    vec![Action::CallWebhooks(kind)]
}

#[test]
fn webhook_gates_hold_or_fail_as_flagger_does() {
    let mut run = Run::canary(&format!("    threshold: 3\n    stepWeights: [50]\n{HOOKS}"));
    assert_eq!(effects(&run.start()), hook(WebhookType::ConfirmRollout));
    // confirm-rollout says no: hold, ask again an interval later; never a failure.
    assert_eq!(
        effects(
            &run.m
                .webhook_done(run.now, WebhookType::ConfirmRollout, false)
        ),
        vec![]
    );
    assert_eq!(run.m.state().failed_checks, 0);
    assert_eq!(
        effects(&run.wait(secs(30))),
        hook(WebhookType::ConfirmRollout)
    );
    let yes = run
        .m
        .webhook_done(run.now, WebhookType::ConfirmRollout, true);
    assert_eq!(effects(&yes), hook(WebhookType::PreRollout));
    // pre-rollout fails: one failed check, retried an interval later.
    run.m.webhook_done(run.now, WebhookType::PreRollout, false);
    assert_eq!(run.m.state().failed_checks, 1);
    assert_eq!(effects(&run.wait(secs(30))), hook(WebhookType::PreRollout));
    let pre = run.m.webhook_done(run.now, WebhookType::PreRollout, true);
    assert_eq!(effects(&pre), traffic(pct(50.0)));
    run.store_and_ack();
    // A failing rollout webhook is a failed check.
    assert_eq!(effects(&run.wait(secs(30))), hook(WebhookType::Rollout));
    run.m.webhook_done(run.now, WebhookType::Rollout, false);
    assert_eq!(run.m.state().failed_checks, 2);
    assert_eq!(effects(&run.wait(secs(30))), hook(WebhookType::Rollout));
    let passed = run.m.webhook_done(run.now, WebhookType::Rollout, true);
    assert_eq!(effects(&passed), hook(WebhookType::ConfirmPromotion));
    // confirm-promotion says no: hold at the weight, keep checking every interval.
    run.m
        .webhook_done(run.now, WebhookType::ConfirmPromotion, false);
    assert_eq!(run.phase(), Phase::Progressing);
    assert_eq!(effects(&run.wait(secs(30))), hook(WebhookType::Rollout));
    let again = run.m.webhook_done(run.now, WebhookType::Rollout, true);
    assert_eq!(effects(&again), hook(WebhookType::ConfirmPromotion));
    let go = run
        .m
        .webhook_done(run.now, WebhookType::ConfirmPromotion, true);
    assert_eq!(effects(&go), vec![Action::Finalize]);
    let done = run.store_and_ack();
    assert_eq!(effects(&done), hook(WebhookType::PostRollout));
    assert_eq!(run.phase(), Phase::Succeeded);
}

#[test]
fn a_rollback_webhook_that_answers_ok_rolls_back() {
    let hooks = "    webhooks: [{name: stop, type: rollback, url: http://stop/}]\n";
    let mut run = Run::canary(&format!("    stepWeights: [10, 50]\n{METRICS}{hooks}"));
    run.start();
    run.store_and_ack();
    let round = run.wait(secs(30));
    assert_eq!(
        round,
        vec![
            Action::RunChecks,
            Action::CallWebhooks(WebhookType::Rollback)
        ]
    );
    assert_eq!(
        effects(&run.healthy()),
        vec![],
        "the round waits for every part"
    );
    let stop = run.m.webhook_done(run.now, WebhookType::Rollback, true);
    assert_eq!(effects(&stop), vec![Action::Rollback]);
    assert_eq!(run.phase(), Phase::Failed);
}

#[test]
fn a_pause_during_a_gate_asks_again_on_resume() {
    let gate = "    webhooks: [{name: ok, type: confirm-rollout, url: 'http://gate/'}]\n";
    let mut run = Run::canary(&format!("    stepWeights: [10]\n{gate}"));
    assert_eq!(effects(&run.start()), hook(WebhookType::ConfirmRollout));
    run.m.pause(run.now);
    assert_eq!(run.phase(), Phase::Paused);
    // The answer of the dropped call is ignored.
    let late = run
        .m
        .webhook_done(run.now, WebhookType::ConfirmRollout, true);
    assert_eq!(effects(&late), vec![]);
    assert_eq!(
        effects(&run.m.resume(run.now)),
        hook(WebhookType::ConfirmRollout)
    );
    assert_eq!(run.phase(), Phase::Initializing);
    let yes = run
        .m
        .webhook_done(run.now, WebhookType::ConfirmRollout, true);
    assert_eq!(effects(&yes), traffic(pct(10.0)));
    // Failed: pause and resume do nothing.
    run.m.abort(run.now);
    assert_eq!(effects(&run.m.pause(run.now)), vec![]);
    assert_eq!(effects(&run.m.resume(run.now)), vec![]);
    assert_eq!(run.phase(), Phase::Failed);
}

#[test]
fn a_step_that_could_not_be_stored_is_asked_for_again() {
    let mut run = Run::canary("    stepWeights: [10, 50]\n");
    assert_eq!(run.m.unstored(), None, "nothing asked for yet");
    assert_eq!(effects(&run.start()), traffic(pct(10.0)));
    // The write failed: the same step is still wanted, as often as asked.
    assert_eq!(run.m.unstored(), Some(traffic(pct(10.0)).remove(0)));
    assert_eq!(run.m.unstored(), Some(traffic(pct(10.0)).remove(0)));
    run.store_and_ack();
    assert_eq!(run.m.unstored(), None);
    // An abort while its rollback cannot be written: the rollback is wanted again.
    assert_eq!(effects(&run.m.abort(run.now)), vec![Action::Rollback]);
    assert_eq!(run.m.unstored(), Some(Action::Rollback));
    run.store();
    assert_eq!(run.m.unstored(), None);
    assert_eq!(run.phase(), Phase::Failed);
}
