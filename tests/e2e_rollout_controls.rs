//! Release controls end to end through a real Envoy 1.40, real backends and steady
//! load: a canary that fails a third of its requests, judged only by a `dryRun`
//! metric, is shown failing in status and still promoted step by step on ACKs.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::rollout::{
    assert_gated_on_ack, is_final, phase, poll, rollout_yaml, step_kinds, Seen, World,
};

const NAME: &str = "release";
const INTERVAL: Duration = Duration::from_secs(2);
const TIMEOUT: Duration = Duration::from_secs(120);

/// The dry-run metric of a status, if it was checked yet.
fn dry_run_metric(status: &Value) -> Option<&Value> {
    status["metrics"]
        .as_array()?
        .iter()
        .find(|m| m["name"] == "request-success-rate")
}

#[test]
fn a_failing_dry_run_metric_is_shown_and_the_canary_still_promotes() {
    let w = World::start("ro-dryrun");
    w.p.v2.set_failure_rate(0.33);
    let load = w.load(&[], Duration::from_millis(5));
    let analysis = "    interval: 2s
    threshold: 1
    stepWeights: [10, 50]
    metrics:
    - name: request-success-rate
      thresholdRange: {min: 99}
      interval: 2s
      minSamples: 1
      dryRun: true
";
    w.apply(
        "rollout.yaml",
        &rollout_yaml(NAME, "petstore", "Canary", analysis),
    );
    let mut seen = Seen::default();
    let end = poll(&w.coalmine, NAME, &mut seen, TIMEOUT, |_| {}, is_final);
    assert_eq!(phase(&end), "Succeeded", "statuses:\n{}", seen.summary());
    assert_eq!(end["failedChecks"], 0, "{end}");
    let kinds: Vec<(String, f64)> = [("step", 10.0), ("step", 50.0), ("promote", 100.0)]
        .iter()
        .map(|(k, w)| (k.to_string(), *w))
        .collect();
    assert_eq!(step_kinds(&end), kinds);
    assert_gated_on_ack(&seen, INTERVAL);
    // The metric was judged (and failed) while the release went on.
    let failed = seen
        .statuses
        .iter()
        .filter_map(dry_run_metric)
        .find(|m| m["verdict"] == "fail" && m["dryRun"] == true);
    let failed = failed.unwrap_or_else(|| panic!("no failing dry run shown:\n{}", seen.summary()));
    assert!(failed["value"].as_f64().expect("value") < 99.0, "{failed}");
    w.wait_targets(&["v2"]);
    let report = load.stop();
    assert!(report.versions.contains_key("v2"), "load: {report:?}");
}
