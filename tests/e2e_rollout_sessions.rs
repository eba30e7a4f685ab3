//! Sticky canaries and mirroring end to end, through a real Envoy 1.40 and real
//! backends: with `sessionAffinity` every user stays on the side they first landed on
//! across every step, and the cookies stop mattering after promotion; with `mirror`
//! the canary receives copies of stable traffic (and is judged on them by the built-in
//! metrics) while every response comes from stable, before any weight shifts.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use support::rollout::{
    is_final, phase, poll, rollout_yaml, status, step_kinds, steps, Seen, World,
};
use support::traffic::{get, Response};

const NAME: &str = "release";
const TIMEOUT: Duration = Duration::from_secs(120);
const HOST: &str = support::rollout::HOST;

/// One user: the cookie the release gave them and the version that answered first.
struct User {
    cookie: String,
    version: String,
}

/// The `name=value` of a response's `Set-Cookie`, if it has one.
fn set_cookie(r: &Response) -> Option<String> {
    let header = r.header("set-cookie")?;
    Some(
        header
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_string(),
    )
}

fn request(w: &World, headers: &[(&str, &str)]) -> Response {
    let r = get(w.p.gw.port, HOST, "/", headers).expect("request through Envoy");
    assert_eq!(r.status, 200, "{r:?}");
    r
}

#[test]
fn sticky_sessions_keep_every_cookie_on_its_side_across_every_step() {
    let w = World::start("ro-sticky");
    let analysis = "    interval: 2s
    stepWeights: [20, 50, 80]
    sessionAffinity:
      cookieName: flagger-cookie
      maxAge: 3600
";
    w.apply(
        "rollout.yaml",
        &rollout_yaml(NAME, "petstore", "Canary", analysis),
    );
    let mut users: Vec<User> = Vec::new();
    // Per step weight seen held: rounds of checks, and pinned requests checked.
    let mut per_step: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut seen = Seen::default();
    let end = poll(
        &w.coalmine,
        NAME,
        &mut seen,
        TIMEOUT,
        |s| {
            let held = steps(s).last().is_some_and(|l| {
                l["kind"] == "step" && !l["ackedAt"].is_null() && phase(s) == "Progressing"
            });
            if !held {
                return;
            }
            let weight = s["canaryWeight"].to_string();
            let rounds = per_step.get(&weight).map_or(0, |c| c.0);
            if rounds >= 3 {
                return;
            }
            // New users arrive at each step and get a cookie for where they land.
            for _ in 0..10 {
                let r = request(&w, &[]);
                let version = r.outcome();
                let cookie =
                    set_cookie(&r).unwrap_or_else(|| panic!("no cookie at {weight}: {r:?}"));
                let expected = if version == "v2" {
                    "flagger-cookie="
                } else {
                    "flagger-cookie-primary="
                };
                assert!(cookie.starts_with(expected), "{version} set {cookie}");
                users.push(User { cookie, version });
            }
            // Everyone who holds a cookie is answered by their side.
            let mut moved = Vec::new();
            for user in &users {
                let r = request(&w, &[("cookie", &format!("session=1; {}", user.cookie))]);
                if r.outcome() != user.version {
                    moved.push(format!("{} -> {}", user.cookie, r.outcome()));
                }
            }
            // A promotion that came during the round ends the pinning: not counted.
            let now = status(&w.coalmine, NAME).expect("status");
            if steps(&now).iter().any(|st| st["kind"] != "step") {
                return;
            }
            let counts = per_step.entry(weight.clone()).or_default();
            counts.0 += 1;
            counts.1 += users.len();
            assert!(
                moved.is_empty(),
                "at {weight} % cookies changed sides: {moved:?}"
            );
        },
        is_final,
    );
    assert_eq!(phase(&end), "Succeeded", "statuses:\n{}", seen.summary());
    assert_eq!(
        per_step.keys().cloned().collect::<BTreeSet<_>>(),
        ["20.0", "50.0", "80.0"].map(String::from).into(),
        "every step was held and checked: {}",
        seen.summary()
    );
    let checked: usize = per_step.values().map(|(_, n)| n).sum();
    assert!(checked >= 60, "only {checked} pinned requests checked");
    let sides: BTreeSet<&str> = users.iter().map(|u| u.version.as_str()).collect();
    assert_eq!(
        sides,
        BTreeSet::from(["v1", "v2"]),
        "users landed on both sides"
    );
    // Promoted: everyone on v2, cookies or not, and the release sets no more cookies.
    w.wait_targets(&["v2"]);
    for user in &users {
        let r = request(&w, &[("cookie", &user.cookie)]);
        assert_eq!(r.outcome(), "v2");
        assert_eq!(set_cookie(&r), None, "{r:?}");
    }
    assert_eq!(set_cookie(&request(&w, &[])), None);
}

#[test]
fn a_mirrored_canary_gets_copies_and_is_judged_on_them_before_any_weight() {
    let w = World::start("ro-mirror");
    let analysis = "    interval: 2s
    threshold: 2
    stepWeights: [50]
    mirror: true
    mirrorWeight: 100
    metrics:
    - name: request-success-rate
      thresholdRange: {min: 99}
      interval: 2s
      minSamples: 5
";
    let load = w.load(&[], Duration::from_millis(10));
    w.apply(
        "rollout.yaml",
        &rollout_yaml(NAME, "petstore", "Canary", analysis),
    );
    let mut seen = Seen::default();
    // The load's counts taken before each status was fetched: while that status has
    // only the mirrored step, no user response may have come from v2.
    let mut before = load.report();
    let mut mirrored_hits = 0;
    let end = poll(
        &w.coalmine,
        NAME,
        &mut seen,
        TIMEOUT,
        |s| {
            let list = steps(s);
            if list.len() == 1 && list[0]["mirror"] == true {
                assert_eq!(before.versions.get("v2"), None, "a user saw v2: {s}");
                if !list[0]["ackedAt"].is_null() {
                    mirrored_hits = w.p.v2.hits();
                }
            }
            before = load.report();
        },
        is_final,
    );
    assert_eq!(phase(&end), "Succeeded", "statuses:\n{}", seen.summary());
    assert_eq!(
        step_kinds(&end),
        [("step", 0.0), ("step", 50.0), ("promote", 100.0)].map(|(k, w)| (k.to_string(), w)),
    );
    assert_eq!(steps(&end)[0]["mirror"], true, "{end}");
    assert!(steps(&end)[1].get("mirror").is_none(), "{end}");
    assert!(
        mirrored_hits > 0,
        "v2 received no copies while mirrored: {}",
        seen.summary()
    );
    // The copies reached v2 as Envoy marks shadows: the host with `-shadow`.
    let shadows = w.p.v2.received();
    let shadow = shadows.iter().find(|r| {
        r.headers
            .get("host")
            .is_some_and(|h| h.ends_with("-shadow"))
    });
    assert!(
        shadow.is_some(),
        "no shadow request among {}",
        shadows.len()
    );
    // The check that let the first weight in (the newest one when that step appears)
    // judged the canary at 0 %, on the mirrored traffic alone.
    let stepped = seen.statuses.iter().find(|s| steps(s).len() >= 2);
    let stepped = stepped.unwrap_or_else(|| panic!("no weighted step:\n{}", seen.summary()));
    let check = &stepped["metrics"][0];
    assert_eq!(check["verdict"], "pass", "{stepped}");
    assert!(check["samples"].as_u64().unwrap_or(0) >= 5, "{stepped}");
    let report = load.stop();
    assert_eq!(report.failures(), 0, "{report:?}");
    w.wait_targets(&["v2"]);
    // The release as Prometheus series on /metrics.
    let text = w.coalmine.admin_get("/metrics").body;
    let l = format!("namespace=\"default\",name=\"{NAME}\"");
    for line in [
        format!("coalmine_rollout_phase{{{l},phase=\"Succeeded\"}} 1"),
        format!("coalmine_rollout_phase{{{l},phase=\"Progressing\"}} 0"),
        format!("coalmine_rollout_canary_weight{{{l}}} 100"),
        format!("coalmine_rollout_steps_total{{{l},kind=\"step\"}} 2"),
        format!("coalmine_rollout_steps_total{{{l},kind=\"promote\"}} 1"),
        format!("coalmine_rollout_metric_verdict{{{l},metric=\"request-success-rate\",verdict=\"pass\"}} 1"),
    ] {
        assert!(text.lines().any(|t| t == line), "no {line} in /metrics:\n{text}");
    }
}
