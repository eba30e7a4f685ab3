//! BlueGreen and ABTesting releases end to end through a real Envoy 1.40 with real
//! backends and load (requests with `x-canary: true` reach the canary during the
//! iterations, the others stable, then an atomic switch), and driving a release by hand
//! with the CLI: abort mid-way, pause and resume, promote.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;
use support::rollout::{
    assert_gated_on_ack, is_final, last_step, phase, poll, rollout_yaml, split, status, step_kinds,
    steps, time, wait, Seen, World,
};
use support::scenario::{expect_code, stderr, stdout};
use support::traffic::LoadReport;

const NAME: &str = "release";
const INTERVAL: Duration = Duration::from_secs(2);
const TIMEOUT: Duration = Duration::from_secs(120);
const CANARY: (&str, &str) = ("x-canary", "true");

fn only(version: &str, n: usize) -> BTreeMap<String, usize> {
    BTreeMap::from([(version.to_string(), n)])
}

fn kinds(list: &[(&str, f64)]) -> Vec<(String, f64)> {
    list.iter().map(|(k, w)| (k.to_string(), *w)).collect()
}

/// A BlueGreen or ABTesting release of three iterations where requests with
/// `x-canary: true` reach v2, analysed on that test traffic.
fn header_release(strategy: &str, prefix: &str) {
    let w = World::start(prefix);
    let plain = w.load(&[], Duration::from_millis(5));
    let tagged = w.load(&[CANARY], Duration::from_millis(5));
    let analysis = "    interval: 2s
    threshold: 2
    iterations: 3
    match:
    - headers: {x-canary: {exact: \"true\"}}
    metrics:
    - name: request-success-rate
      thresholdRange: {min: 99}
      interval: 2s
      minSamples: 5
";
    w.apply(
        "rollout.yaml",
        &rollout_yaml(NAME, "petstore", strategy, analysis),
    );
    let mut seen = Seen::default();
    // The plain load's counts taken before each status was fetched: while that status
    // has no promotion yet, no plain request may have reached v2.
    let mut before: LoadReport = plain.report();
    let mut checked_split = false;
    let end = poll(
        &w.coalmine,
        NAME,
        &mut seen,
        TIMEOUT,
        |s| {
            let promoted = steps(s).iter().any(|st| st["kind"] == "promote");
            if !promoted {
                assert_eq!(s["canaryWeight"].as_f64(), Some(0.0), "{s}");
                assert_eq!(
                    before.versions.get("v2"),
                    None,
                    "user traffic reached v2 before the switch: {s}"
                );
                let last = last_step(s);
                let held = last.is_some_and(|l| !l["ackedAt"].is_null());
                if held && !checked_split && phase(s) == "Progressing" {
                    // Envoy has the A/B step: by header, v2; without, v1.
                    assert_eq!(w.send(20, &[CANARY]), only("v2", 20), "{s}");
                    assert_eq!(w.send(20, &[]), only("v1", 20), "{s}");
                    checked_split = true;
                }
            }
            before = plain.report();
        },
        is_final,
    );
    assert_eq!(phase(&end), "Succeeded", "statuses:\n{}", seen.summary());
    assert!(
        checked_split,
        "never saw the A/B step held: {}",
        seen.summary()
    );
    assert_eq!(
        step_kinds(&end),
        kinds(&[("step", 0.0), ("promote", 100.0)]),
        "one A/B step, then one atomic switch"
    );
    assert_eq!(steps(&end)[0]["abMatch"], true, "{end}");
    assert_eq!(
        (end["iteration"].as_u64(), end["totalIterations"].as_u64()),
        (Some(3), Some(3))
    );
    assert_gated_on_ack(&seen, INTERVAL);
    let sr = &end["metrics"][0];
    assert_eq!(sr["verdict"], "pass", "{end}");
    assert!(sr["samples"].as_u64().unwrap_or(0) >= 5, "{end}");
    // The three iterations took three intervals, at the least.
    let list = steps(&end);
    let acked = time(&list[0]["ackedAt"]).expect("ACKed");
    let switched = time(&list[1]["appliedAt"]).expect("appliedAt");
    assert!(switched.duration_since(acked).expect("after") >= INTERVAL * 3);

    // After the switch: everyone on v2, no A/B route left.
    assert_eq!(w.p.targets(&w.envoy), ["v2"]);
    assert_eq!(w.weights().len(), 1, "{:?}", w.weights());
    let (plain, tagged) = (plain.stop(), tagged.stop());
    for report in [&plain, &tagged] {
        assert_eq!(report.failures(), 0, "{report:?}");
    }
    assert!(
        tagged.versions.get("v2").copied().unwrap_or(0) > 0,
        "{tagged:?}"
    );
    assert!(
        plain.versions.get("v1").copied().unwrap_or(0) > 0,
        "{plain:?}"
    );
    assert_eq!(w.send(200, &[]), only("v2", 200));
    assert_eq!(w.send(50, &[CANARY]), only("v2", 50));
}

#[test]
fn blue_green_switches_atomically() {
    header_release("BlueGreen", "ro-bg");
}

#[test]
fn ab_testing_sends_matching_requests_then_promotes() {
    header_release("ABTesting", "ro-ab");
}

/// A healthy Canary of five steps (10 % to 50 %) under load, for driving by hand.
fn five_steps(prefix: &str) -> (World, support::Load) {
    let w = World::start(prefix);
    let load = w.load(&[], Duration::from_millis(5));
    let analysis = "    interval: 2s
    threshold: 2
    stepWeights: [10, 20, 30, 40, 50]
    metrics:
    - name: request-success-rate
      thresholdRange: {min: 99}
      interval: 2s
      minSamples: 1
";
    w.apply(
        "rollout.yaml",
        &rollout_yaml(NAME, "petstore", "Canary", analysis),
    );
    (w, load)
}

/// Whether the newest step is a traffic step of at least `percent`, ACKed.
fn held_at(s: &Value, percent: f64) -> bool {
    last_step(s).is_some_and(|l| {
        l["kind"] == "step" && !l["ackedAt"].is_null() && l["weight"].as_f64() >= Some(percent)
    })
}

#[test]
fn abort_mid_way_sends_everything_back_to_stable() {
    let (w, load) = five_steps("ro-abort");
    let mut seen = Seen::default();
    wait(&w.coalmine, NAME, &mut seen, TIMEOUT, |s| held_at(s, 20.0));
    let out = w.rollout_cli(&["abort", NAME]);
    expect_code(&out, 0, "rollout abort");
    assert!(
        stdout(&out).contains(&format!("rollout {NAME}: Failed")),
        "{}",
        stdout(&out)
    );

    let end = status(&w.coalmine, NAME).expect("status");
    seen.push(&end);
    assert_eq!(phase(&end), "Failed", "{end}");
    assert_eq!(end["canaryWeight"].as_f64(), Some(0.0));
    let kinds_now = step_kinds(&end);
    assert_eq!(
        kinds_now.last(),
        Some(&("rollback".to_string(), 0.0)),
        "{end}"
    );
    assert!(
        end["message"].as_str().unwrap_or("").contains("abort"),
        "{end}"
    );
    // Envoy and every request back on v1.
    w.wait_targets(&["v1"]);
    assert_eq!(w.send(200, &[]), only("v1", 200));
    let report = load.stop();
    assert_eq!(report.failures(), 0, "{report:?}");

    // `rollout status` prints the phase, and exits 1 for a failed release.
    let out = w.rollout_cli(&["status", NAME]);
    expect_code(&out, 1, "rollout status of a failed release");
    assert!(
        stdout(&out).contains(&format!("rollout {NAME}: Failed")),
        "{}",
        stdout(&out)
    );
    assert!(stderr(&out).contains("rollout failed"), "{}", stderr(&out));
    // Nothing moves any more; a second abort changes nothing.
    expect_code(&w.rollout_cli(&["abort", NAME]), 0, "second abort");
    let after = status(&w.coalmine, NAME).expect("status");
    assert_eq!(
        (phase(&after), step_kinds(&after)),
        (phase(&end), step_kinds(&end))
    );
    assert_gated_on_ack(&seen, INTERVAL);

    // Envoy has ACKed the rollback revision (it routes all to v1 above), so the status
    // must say so: SPEC "the revision that each step was applied as", each step's
    // `ackedAt` once the proxies that carry the route ACKed it.
    let rollback = last_step(&after).expect("rollback");
    let revision = rollback["revision"].as_u64().expect("rollback revision");
    let acked = support::poll_until(Duration::from_secs(20), || {
        let s = status(&w.coalmine, NAME).expect("status");
        !last_step(&s).expect("rollback")["ackedAt"].is_null()
    });
    assert!(
        acked,
        "the rollback step (revision {revision}) never shows ackedAt although Envoy \
         routes by it; status: {}\nproxies: {}",
        status(&w.coalmine, NAME).expect("status"),
        stdout(&w.coalmine.cli(&["proxies", "-o", "json"]))
    );
}

#[test]
fn pause_holds_the_weight_and_resume_carries_on() {
    let (w, load) = five_steps("ro-pause");
    let mut seen = Seen::default();
    wait(&w.coalmine, NAME, &mut seen, TIMEOUT, |s| held_at(s, 10.0));
    let out = w.rollout_cli(&["pause", NAME]);
    expect_code(&out, 0, "rollout pause");
    let paused = status(&w.coalmine, NAME).expect("status");
    assert_eq!(phase(&paused), "Paused", "{paused}");
    let weight = paused["canaryWeight"].as_f64().expect("weight");
    let count = steps(&paused).len();

    // Three intervals paused: the weight, the steps and Envoy's routes stay.
    let until = Instant::now() + INTERVAL * 3 + Duration::from_millis(500);
    poll(
        &w.coalmine,
        NAME,
        &mut seen,
        TIMEOUT,
        |s| {
            assert_eq!(phase(s), "Paused", "{s}");
            assert_eq!(s["canaryWeight"].as_f64(), Some(weight), "{s}");
            assert_eq!(steps(s).len(), count, "{s}");
        },
        |_| Instant::now() >= until,
    );
    assert_eq!(w.weights(), split(weight));

    let resumed_at = SystemTime::now();
    let out = w.rollout_cli(&["resume", NAME]);
    expect_code(&out, 0, "rollout resume");
    let next = wait(&w.coalmine, NAME, &mut seen, TIMEOUT, |s| {
        held_at(s, weight + 10.0)
    });
    assert_eq!(phase(&next), "Progressing", "{next}");
    // A full interval is held again after resume before the next step.
    let applied = time(&steps(&next)[count]["appliedAt"]).expect("appliedAt");
    let waited = applied.duration_since(resumed_at).unwrap_or_default();
    assert!(
        waited >= INTERVAL - Duration::from_millis(100),
        "next step {waited:?} after resume"
    );
    assert_eq!(w.weights(), split(weight + 10.0));
    assert_gated_on_ack(&seen, INTERVAL);

    // Promote by hand: the remaining steps are skipped.
    let out = w.rollout_cli(&["promote", NAME]);
    expect_code(&out, 0, "rollout promote");
    let end = wait(&w.coalmine, NAME, &mut seen, TIMEOUT, is_final);
    assert_eq!(phase(&end), "Succeeded", "{}", seen.summary());
    let kinds_now = step_kinds(&end);
    assert_eq!(kinds_now.last(), Some(&("promote".to_string(), 100.0)));
    assert!(kinds_now
        .iter()
        .all(|(_, w)| *w <= weight + 10.0 || *w == 100.0 || *w == weight + 20.0));
    w.wait_outcomes(&[], &["v2"]);
    assert_eq!(w.p.targets(&w.envoy), ["v2"]);
    assert_eq!(w.send(200, &[]), only("v2", 200));
    let report = load.stop();
    assert_eq!(report.failures(), 0, "{report:?}");
    let out = w.rollout_cli(&["status", NAME]);
    expect_code(&out, 0, "rollout status of a promoted release");
    assert!(
        stdout(&out).contains(&format!("rollout {NAME}: Succeeded")),
        "{}",
        stdout(&out)
    );
}
