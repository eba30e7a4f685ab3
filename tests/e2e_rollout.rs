//! Canary releases end to end through a real Envoy 1.40, real backends and steady load:
//! the weight rises step by step (each step in Envoy's `/config_dump` before its
//! interval is counted) up to promotion; a v2 that fails a third of its requests is
//! rolled back within threshold × interval, having failed only what its step allowed;
//! a canary without traffic is never promoted; `rollout status --watch` follows a
//! release to its end.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::rollout::{
    assert_gated_on_ack, is_final, last_step, phase, poll, rollout_yaml, split, status, step_kinds,
    steps, time, Seen, Watch, World,
};

const NAME: &str = "release";
const INTERVAL: Duration = Duration::from_secs(2);
const TIMEOUT: Duration = Duration::from_secs(120);

fn kinds(list: &[(&str, f64)]) -> Vec<(String, f64)> {
    list.iter().map(|(k, w)| (k.to_string(), *w)).collect()
}

fn only(version: &str, n: usize) -> BTreeMap<String, usize> {
    BTreeMap::from([(version.to_string(), n)])
}

/// The metric `name` of a status.
fn metric<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["metrics"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("no metric {name} in {status}"))
}

#[test]
fn canary_steps_through_envoy_then_promotes() {
    let w = World::start("ro-canary");
    // Two clients, ~300 requests a second in all: 1 % still gets a few per window.
    let loads = [
        w.load(&[], Duration::from_millis(3)),
        w.load(&[], Duration::from_millis(3)),
    ];
    let analysis = "    interval: 2s
    threshold: 2
    stepWeights: [1, 10, 50]
    metrics:
    - name: request-success-rate
      thresholdRange: {min: 99}
      interval: 4s
      minSamples: 1
";
    let before = w.apply(
        "rollout.yaml",
        &rollout_yaml(NAME, "petstore", "Canary", analysis),
    );
    let mut seen = Seen::default();
    let mut watch = None;
    // Step index → its weight, once Envoy was seen holding it while the status said
    // ACKed (and no later step existed yet).
    let mut in_envoy: BTreeMap<usize, f64> = BTreeMap::new();
    let started = Instant::now();
    let end = poll(
        &w.coalmine,
        NAME,
        &mut seen,
        TIMEOUT,
        |s| {
            if watch.is_none() {
                watch = Some(Watch::start(&w.coalmine, NAME));
            }
            let list = steps(s);
            let Some(last) = list.last() else { return };
            let index = list.len() - 1;
            if last["kind"] != "step" || last["ackedAt"].is_null() || in_envoy.contains_key(&index)
            {
                return;
            }
            let targets = w.weights();
            let again = status(&w.coalmine, NAME).expect("status");
            if steps(&again).len() != list.len() {
                return; // the next step came in between: no proof either way
            }
            let weight = last["weight"].as_f64().expect("weight");
            assert_eq!(
                targets,
                split(weight),
                "status says step {index} ({weight} %) is ACKed, Envoy routes otherwise"
            );
            in_envoy.insert(index, weight);
        },
        is_final,
    );
    let took = started.elapsed();
    assert_eq!(phase(&end), "Succeeded", "statuses:\n{}", seen.summary());
    assert_eq!(
        step_kinds(&end),
        kinds(&[
            ("step", 1.0),
            ("step", 10.0),
            ("step", 50.0),
            ("promote", 100.0)
        ])
    );
    assert_eq!(
        in_envoy,
        BTreeMap::from([(0, 1.0), (1, 10.0), (2, 50.0)]),
        "every step seen in Envoy while ACKed; statuses:\n{}",
        seen.summary()
    );
    assert_gated_on_ack(&seen, INTERVAL);
    // The weight only ever went up, through exactly the planned values.
    let mut weights: Vec<f64> = seen
        .statuses
        .iter()
        .map(|s| s["canaryWeight"].as_f64().expect("canaryWeight"))
        .collect();
    weights.dedup();
    assert_eq!(weights, [1.0, 10.0, 50.0, 100.0], "{}", seen.summary());
    assert!(
        took >= INTERVAL * 3,
        "three steps held {INTERVAL:?} each in {took:?}"
    );
    let sr = metric(&end, "request-success-rate");
    assert_eq!(sr["verdict"], "pass", "{end}");
    assert!(sr["value"].as_f64().expect("value") >= 99.0, "{end}");
    assert!(sr["samples"].as_u64().expect("samples") >= 1, "{end}");
    assert_eq!(
        (end["failedChecks"].as_u64(), end["iteration"].as_u64()),
        (Some(0), Some(3))
    );

    // Promotion is ACKed, so Envoy has it: every request on v2.
    assert_eq!(w.p.targets(&w.envoy), ["v2"]);
    for load in loads {
        let report = load.stop();
        assert_eq!(report.failures(), 0, "load: {report:?}");
        assert!(report.versions.contains_key("v2"), "load: {report:?}");
    }
    assert_eq!(w.send(200, &[]), only("v2", 200));

    // One revision per step, each the revision the status names, all in `history`.
    let step_revisions: Vec<u64> = steps(&end)
        .iter()
        .map(|s| s["revision"].as_u64().expect("step revision"))
        .collect();
    let after: Vec<u64> = w.revisions().into_iter().filter(|r| *r > before).collect();
    assert_eq!(
        after, step_revisions,
        "history after the Rollout was applied"
    );
    assert_eq!(after.len(), 4);

    let (code, out, err) = watch
        .expect("watch started")
        .finish(Duration::from_secs(30));
    assert_eq!(
        code,
        Some(0),
        "--watch exit; stdout:\n{out}\nstderr:\n{err}"
    );
    assert!(out.contains(&format!("rollout {NAME}: Succeeded")), "{out}");
    eprintln!("canary promoted in {took:?}");
}

#[test]
fn failing_canary_rolls_back_within_threshold() {
    let w = World::start("ro-fail");
    w.p.v2.set_failure_rate(0.33);
    let load = w.load(&[], Duration::from_millis(5));
    let load_start = Instant::now();
    let analysis = "    interval: 2s
    threshold: 2
    stepWeights: [10, 30, 50]
    metrics:
    - name: request-success-rate
      thresholdRange: {min: 99}
      interval: 2s
";
    w.apply(
        "rollout.yaml",
        &rollout_yaml(NAME, "petstore", "Canary", analysis),
    );
    let mut seen = Seen::default();
    let end = poll(&w.coalmine, NAME, &mut seen, TIMEOUT, |_| {}, is_final);
    assert_eq!(phase(&end), "Failed", "statuses:\n{}", seen.summary());
    assert_eq!(end["failedChecks"], 2, "{end}");
    assert_eq!(end["canaryWeight"].as_f64(), Some(0.0), "{end}");
    assert_eq!(
        step_kinds(&end),
        kinds(&[("step", 10.0), ("rollback", 0.0)])
    );
    // No status ever showed more than the first step.
    for s in &seen.statuses {
        for (kind, weight) in step_kinds(s) {
            assert!(kind != "step" || weight == 10.0, "{}", seen.summary());
        }
    }
    assert_gated_on_ack(&seen, INTERVAL);
    let sr = metric(&end, "request-success-rate");
    assert_eq!(sr["verdict"], "fail", "{end}");
    let value = sr["value"].as_f64().expect("value");
    assert!((50.0..90.0).contains(&value), "about 67 % succeed: {end}");

    // Failed within threshold × interval of the first step's ACK (plus slack for a
    // check that found too few samples, and the tick).
    let list = steps(&end);
    let acked = time(&list[0]["ackedAt"]).expect("first step ACKed");
    let failed = time(&end["lastTransitionTime"]).expect("lastTransitionTime");
    let to_fail = failed.duration_since(acked).expect("failed after the ACK");
    assert!(
        to_fail >= INTERVAL * 2 && to_fail <= INTERVAL * 2 + Duration::from_secs(5),
        "failed {to_fail:?} after the first step's ACK; statuses:\n{}",
        seen.summary()
    );

    // All back on v1, in Envoy and for the traffic.
    w.wait_targets(&["v1"]);
    let rolled_back = time(&last_step(&end).expect("rollback")["appliedAt"]).expect("appliedAt");
    let report = load.stop();
    let elapsed = load_start.elapsed().as_secs_f64();
    assert_eq!(w.send(200, &[]), only("v1", 200));

    // What v2 failed is bounded by what its one 10 % step allowed: the load's rate ×
    // the time the step was live × 10 % × a third (×2, +10 for noise).
    let live = rolled_back
        .duration_since(time(&list[0]["appliedAt"]).expect("appliedAt"))
        .expect("rollback after the step")
        .as_secs_f64()
        + 1.0;
    let rate = report.total as f64 / elapsed;
    let bound = rate * live * 0.10 * 0.33 * 2.0 + 10.0;
    let v2_errors = report.errors.get("error:500").copied().unwrap_or(0);
    let others: usize = report.errors.values().sum::<usize>() - v2_errors;
    assert_eq!(others, 0, "only v2's 500s: {report:?}");
    assert!(v2_errors > 0, "the canary got traffic: {report:?}");
    assert!(
        (v2_errors as f64) <= bound,
        "{v2_errors} requests failed by v2, over the bound {bound:.0} \
         ({rate:.0}/s × {live:.1} s × 10 % × 33 % × 2 + 10): {report:?}"
    );
    let v2_hits = w.p.v2.hits() as f64;
    assert!(
        v2_hits <= rate * live * 0.10 * 2.0 + 20.0,
        "v2 saw {v2_hits} requests at 10 % for {live:.1} s of {rate:.0}/s"
    );
    eprintln!(
        "failed {to_fail:?} after the first ACK; v2 failed {v2_errors} of {} requests \
         (bound {bound:.0})",
        report.total
    );
}

#[test]
fn canary_without_traffic_is_inconclusive_and_never_promotes() {
    let w = World::start("ro-quiet");
    // Defaults: minSamples 10, inconclusiveLimit 3.
    let analysis = "    interval: 2s
    threshold: 2
    stepWeights: [10, 50]
    metrics:
    - name: request-success-rate
      thresholdRange: {min: 99}
      interval: 2s
";
    w.apply(
        "rollout.yaml",
        &rollout_yaml(NAME, "petstore", "Canary", analysis),
    );
    let mut seen = Seen::default();
    let mut saw_one_failed = false;
    let end = poll(
        &w.coalmine,
        NAME,
        &mut seen,
        TIMEOUT,
        |s| {
            assert_ne!(phase(s), "Succeeded", "{}", seen_summary(s));
            assert_ne!(phase(s), "Promoting", "{}", seen_summary(s));
            assert!(s["canaryWeight"].as_f64().expect("weight") <= 10.0, "{s}");
            assert_eq!(s["iteration"], 0, "no check may pass: {s}");
            for m in s["metrics"].as_array().into_iter().flatten() {
                assert_eq!(m["verdict"], "inconclusive", "{s}");
                assert_eq!(m["samples"], 0, "{s}");
                assert!(m["value"].is_null(), "{s}");
            }
            saw_one_failed |= s["failedChecks"] == 1;
        },
        is_final,
    );
    assert_eq!(phase(&end), "Failed", "statuses:\n{}", seen.summary());
    assert!(saw_one_failed, "{}", seen.summary());
    assert_eq!(end["failedChecks"], 2, "{end}");
    assert_eq!(
        step_kinds(&end),
        kinds(&[("step", 10.0), ("rollback", 0.0)])
    );
    let message = end["message"].as_str().unwrap_or("");
    assert!(message.contains("inconclusive"), "{message}");
    // threshold (2) × inconclusiveLimit (3) rounds of one interval each, at the least.
    let list = steps(&end);
    let acked = time(&list[0]["ackedAt"]).expect("ACKed");
    let failed = time(&end["lastTransitionTime"]).expect("lastTransitionTime");
    let took = failed.duration_since(acked).expect("after the ACK");
    assert!(
        took >= INTERVAL * 6 && took <= INTERVAL * 6 + Duration::from_secs(5),
        "failed {took:?} after the first ACK; statuses:\n{}",
        seen.summary()
    );
    w.wait_targets(&["v1"]);
    assert_eq!(w.send(100, &[]), only("v1", 100));
}

fn seen_summary(s: &Value) -> String {
    let mut one = Seen::default();
    one.push(s);
    one.summary()
}
