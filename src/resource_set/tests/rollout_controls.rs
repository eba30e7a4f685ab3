//! A Rollout's release controls (`skipAnalysis`, `progressDeadlineSeconds`, `onFailure`)
//! and per-metric `dryRun`: defaults and field errors by path.

use std::time::Duration;

use super::mk_config;
use super::rollout::{error, errors, rollout, BASE, DESTS};
use crate::model::*;

const ANALYSIS: &str = "  analysis:\n    stepWeight: 20\n    metrics:\n      \
                        - {name: request-success-rate, thresholdRange: {min: 99}}\n";

fn read(controls: &str, analysis: &str) -> Rollout {
    let spec = format!("{DESTS}{controls}{analysis}");
    let config = mk_config(&format!("{BASE}{}", rollout("petstore", &spec))).unwrap();
    config.rollouts[0].clone()
}

#[test]
fn controls_default_to_flaggers_behaviour() {
    let ro = read("", ANALYSIS);
    assert_eq!(ro.controls, ReleaseControls::default());
    assert!(!ro.controls.skip_analysis);
    assert_eq!(ro.controls.progress_deadline, Duration::from_secs(600));
    assert_eq!(ro.controls.on_failure, OnFailure::Rollback);
    assert!(!ro.analysis.metrics[0].dry_run);
}

#[test]
fn reads_every_control() {
    let controls = "  skipAnalysis: true\n  progressDeadlineSeconds: 90\n  onFailure: Pause\n";
    let analysis = "  analysis:\n    stepWeight: 20\n    metrics:\n      \
                    - {name: request-success-rate, thresholdRange: {min: 99}, dryRun: true}\n";
    let ro = read(controls, analysis);
    let expected = ReleaseControls {
        skip_analysis: true,
        progress_deadline: Duration::from_secs(90),
        on_failure: OnFailure::Pause,
    };
    assert_eq!(ro.controls, expected);
    assert!(ro.analysis.metrics[0].dry_run);
    assert_eq!(
        read("  onFailure: Rollback\n", ANALYSIS)
            .controls
            .on_failure,
        OnFailure::Rollback
    );
}

#[test]
fn names_bad_controls() {
    let controls = "  skipAnalysis: yes please\n  progressDeadlineSeconds: 0\n  onFailure: Retry\n";
    let analysis = "  analysis:\n    stepWeight: 20\n    metrics:\n      \
                    - {name: request-success-rate, thresholdRange: {min: 99}, dryRun: 1}\n    \
                    skipAnalysis: true\n";
    let found = errors(&[rollout("petstore", &format!("{DESTS}{controls}{analysis}"))]);
    let r = "Rollout default/petstore";
    let mut expected = vec![
        error(r, "spec.analysis.skipAnalysis", "unknown field"),
        error(
            r,
            "spec.analysis.metrics[0].dryRun",
            "must be true or false",
        ),
        error(r, "spec.skipAnalysis", "must be true or false"),
        error(
            r,
            "spec.progressDeadlineSeconds",
            "must be an integer between 1 and 4294967295",
        ),
        error(
            r,
            "spec.onFailure",
            "unknown value \"Retry\" (expected Rollback or Pause)",
        ),
    ];
    let mut found = found;
    found.sort();
    expected.sort();
    assert_eq!(found, expected);
}
