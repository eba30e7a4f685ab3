//! A release under `coalmine serve --kubernetes` (the real binary and kube-rs client
//! against the in-process fake API server, a real Envoy): each traffic step is patched
//! into the VirtualService in the cluster, the source of truth, and comes back through
//! the watchers as a revision; so a later, unrelated change in the cluster keeps the
//! release's traffic instead of undoing it. The release's status is in the Rollout's
//! `status` (what `kubectl get rollouts` shows), and when the leader is killed mid-way
//! the other replica takes over and carries the release on from there. A step waits
//! for the ACK of an Envoy connected to another replica than the leader, and the other
//! replica reports the release's status and relays commands to the leader.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use support::fake_apiserver::FakeApiServer;
use support::rollout::{is_final, phase, rollout_yaml, step_kinds, Seen, HOST};
use support::scenario::{expect_code, Petstore};
use support::traffic::{send, wait_for_outcomes};
use support::{config::service_entry, start_envoy_for, Backend};
use tempfile::TempDir;

const WAIT: Duration = Duration::from_secs(30);
const VIRTUAL_SERVICES: &str = "apis/networking.istio.io/v1/virtualservices";
const ROLLOUTS: &str = "apis/coalmine.dev/v1alpha1/rollouts";

/// A fake cluster holding the two-version petstore (its VirtualService all on v1),
/// and a folder for kubeconfigs.
fn cluster(prefix: &str) -> (FakeApiServer, TempDir, Petstore) {
    let api = FakeApiServer::start();
    let p = Petstore::new(prefix);
    api.apply_yaml(&p.yaml(&[("v1", 100)]));
    (api, TempDir::new().expect("tempdir"), p)
}

/// Creates the Canary Rollout `release` of VirtualService `petstore` from v1 to v2.
fn start_release(api: &FakeApiServer, analysis: &str) {
    api.apply_yaml(&rollout_yaml("release", "petstore", "Canary", analysis));
}

/// `(subset, weight)` of each destination of the first route of the VirtualService
/// `petstore` as the cluster holds it.
fn cluster_route(api: &FakeApiServer) -> Vec<(String, u64)> {
    let vs = api
        .get(VIRTUAL_SERVICES, "default", "petstore")
        .expect("the VirtualService");
    let routes = vs["spec"]["http"][0]["route"].as_array().cloned();
    routes
        .unwrap_or_default()
        .iter()
        .map(|r| {
            let subset = r["destination"]["subset"].as_str().unwrap_or("?");
            (subset.to_string(), r["weight"].as_u64().unwrap_or(100))
        })
        .collect()
}

/// Polls the release `release` through `coalmine` until it ends (returned), recording
/// every distinct state of the cluster's VirtualService route into `in_cluster`.
fn follow_to_end(
    api: &FakeApiServer,
    coalmine: &support::Coalmine,
    seen: &mut Seen,
    in_cluster: &mut Vec<Vec<(String, u64)>>,
) -> Value {
    let record = |_: &Value| {
        let route = cluster_route(api);
        if in_cluster.last() != Some(&route) {
            in_cluster.push(route);
        }
    };
    support::rollout::poll(
        coalmine,
        "release",
        seen,
        Duration::from_secs(90),
        record,
        is_final,
    )
}

/// The `status` of the Rollout `release` in the cluster.
fn rollout_status(api: &FakeApiServer) -> Option<Value> {
    let obj = api.get(ROLLOUTS, "default", "release")?;
    Some(obj["status"].clone()).filter(|s| s.is_object())
}

#[test]
fn release_steps_are_patched_into_the_cluster_and_survive_other_changes() {
    let (api, dir, p) = cluster("k8s-ro");
    let coalmine = api.replica(dir.path(), "replica-a");
    let envoy = start_envoy_for(&coalmine, &p.gw, false);
    wait_for_outcomes(p.gw.port, HOST, &[], &["v1"], WAIT);

    let analysis = "    interval: 2s\n    stepWeights: [20, 60]\n";
    start_release(&api, analysis);
    // Each step shows in the cluster's VirtualService, as the release moves.
    let mut seen = Seen::default();
    let mut in_cluster = Vec::new();
    let end = follow_to_end(&api, &coalmine, &mut seen, &mut in_cluster);
    assert_eq!(phase(&end), "Succeeded", "statuses:\n{}", seen.summary());
    let kinds: Vec<(String, f64)> = step_kinds(&end);
    let want = [("step", 20.0), ("step", 60.0), ("promote", 100.0)];
    assert_eq!(kinds, want.map(|(k, w)| (k.to_string(), w)).to_vec());
    let pairs = |list: &[(&str, u64)]| -> Vec<(String, u64)> {
        list.iter().map(|(s, w)| (s.to_string(), *w)).collect()
    };
    for step in [
        pairs(&[("v1", 80), ("v2", 20)]),
        pairs(&[("v1", 40), ("v2", 60)]),
        pairs(&[("v2", 100)]),
    ] {
        assert!(
            in_cluster.contains(&step),
            "the cluster's VirtualService never held {step:?}: {in_cluster:?}"
        );
    }
    assert_eq!(cluster_route(&api), pairs(&[("v2", 100)]));
    // The Rollout in the cluster says so too.
    let ok = support::poll_until(WAIT, || {
        rollout_status(&api).is_some_and(|s| s["phase"] == "Succeeded")
    });
    let status = rollout_status(&api).unwrap_or_default();
    assert!(ok, "the Rollout's status never said Succeeded: {status}");
    assert_eq!(status["canaryWeight"], 100.0, "{status}");
    assert_eq!(status["steps"], end["steps"], "{status}");
    // Every step's revision was made from the cluster, and Envoy serves the promotion.
    let steps = support::rollout::steps(&end);
    assert!(steps.iter().all(|s| s["revision"].is_u64()), "{end}");
    wait_for_outcomes(p.gw.port, HOST, &[], &["v2"], WAIT);

    // Another change in the cluster: a new revision, and the release's traffic stays.
    let other = Backend::start("other");
    let se = service_entry("other", "other.example", &[(other.port(), "other")]);
    api.apply_yaml(&se);
    let before: u64 = end["steps"][2]["revision"].as_u64().unwrap();
    let moved = support::poll_until(WAIT, || {
        let r = coalmine.admin_get("/api/v1/revisions");
        let v: Value = serde_json::from_str(&r.body).unwrap_or_default();
        let list = v["revisions"].as_array().cloned().unwrap_or_default();
        list.iter().filter_map(|r| r["revision"].as_u64()).max() > Some(before)
    });
    assert!(moved, "the new ServiceEntry made no revision");
    let counts = send(40, p.gw.port, HOST, &[]);
    assert_eq!(
        counts,
        BTreeMap::from([("v2".to_string(), 40)]),
        "{counts:?}"
    );
    drop(envoy);
}

#[test]
fn a_new_leader_carries_the_release_on_from_the_rollout_status() {
    let (api, dir, p) = cluster("k8s-ro-ha");
    let mut first = api.replica(dir.path(), "replica-a");
    assert!(
        support::poll_until(WAIT, || api.lease_holder().as_deref() == Some("replica-a")),
        "replica-a never led"
    );
    let second = api.replica(dir.path(), "replica-b");
    // Envoy follows the replica that stays.
    let _envoy = start_envoy_for(&second, &p.gw, false);
    wait_for_outcomes(p.gw.port, HOST, &[], &["v1"], WAIT);

    let analysis = "    interval: 3s\n    stepWeights: [20, 40, 60]\n";
    start_release(&api, analysis);
    // Mid-way (the second step in the cluster), the leader dies.
    let mid = support::poll_until(Duration::from_secs(60), || {
        cluster_route(&api).contains(&("v2".to_string(), 40))
    });
    assert!(
        mid,
        "never reached the second step: {:?}",
        cluster_route(&api)
    );
    first.kill9();
    let mut in_cluster = vec![cluster_route(&api)];
    let mut seen = Seen::default();
    let end = follow_to_end(&api, &second, &mut seen, &mut in_cluster);
    assert_eq!(phase(&end), "Succeeded", "statuses:\n{}", seen.summary());
    assert_eq!(api.lease_holder().as_deref(), Some("replica-b"));
    // Carried on, not started over: every step once, and the weight never went back.
    let kinds: Vec<(String, f64)> = step_kinds(&end);
    let want = [
        ("step", 20.0),
        ("step", 40.0),
        ("step", 60.0),
        ("promote", 100.0),
    ];
    assert_eq!(
        kinds,
        want.map(|(k, w)| (k.to_string(), w)).to_vec(),
        "{end}"
    );
    let v2: Vec<u64> = in_cluster
        .iter()
        .map(|r| r.iter().find(|(s, _)| s == "v2").map_or(0, |(_, w)| *w))
        .collect();
    assert!(
        v2.windows(2).all(|w| w[0] <= w[1]),
        "the canary weight went back after the takeover: {in_cluster:?}"
    );
    assert!(
        second.log_contains("traffic step patched"),
        "replica-b did not write the steps after the takeover"
    );
    wait_for_outcomes(p.gw.port, HOST, &[], &["v2"], WAIT);
}

#[test]
fn the_leader_waits_for_the_acks_of_proxies_on_other_replicas() {
    let (api, dir, p) = cluster("k8s-ro-acks");
    let leader = api.replica(dir.path(), "replica-a");
    assert!(
        support::poll_until(WAIT, || api.lease_holder().as_deref() == Some("replica-a")),
        "replica-a never led"
    );
    // The only Envoy is on the follower.
    let follower = api.replica(dir.path(), "replica-b");
    let envoy = start_envoy_for(&follower, &p.gw, false);
    wait_for_outcomes(p.gw.port, HOST, &[], &["v1"], WAIT);
    // Wait until the follower reports itself, then freeze its Envoy: nothing is ACKed.
    let analysis = "    interval: 1s\n    stepWeights: [30]\n";
    envoy.signal("STOP");
    start_release(&api, analysis);
    let mut seen = Seen::default();
    let applied = support::rollout::poll(
        &leader,
        "release",
        &mut seen,
        WAIT,
        |_| {},
        |s| {
            support::rollout::steps(s)
                .first()
                .is_some_and(|st| st["revision"].is_u64())
        },
    );
    std::thread::sleep(Duration::from_secs(4));
    let held = support::rollout::status(&leader, "release").expect("status");
    let first = &support::rollout::steps(&held)[0];
    assert!(
        first["ackedAt"].is_null(),
        "the step counted as ACKed while the only Envoy (on the other replica) was stopped: \
         {held}\n(first seen {applied})"
    );
    assert_eq!(phase(&held), "Progressing", "{held}");
    let reports = rollout_status(&api).map(|s| s["replicas"].clone());
    assert!(
        reports
            .as_ref()
            .is_some_and(|r| r["replica-b"]["acked"] == false),
        "the follower reports its proxy has not ACKed: {reports:?}"
    );
    // The follower answers for the release from the Rollout's status, and relays
    // commands to the leader.
    let from_follower = support::rollout::status(&follower, "release").expect("status");
    assert_eq!(phase(&from_follower), "Progressing", "{from_follower}");
    assert_eq!(from_follower["canaryWeight"], 30.0, "{from_follower}");
    let out = follower.cli(&["rollout", "pause", "release"]);
    expect_code(&out, 0, "rollout pause through the follower");
    assert_eq!(
        phase(&support::rollout::status(&leader, "release").unwrap()),
        "Paused"
    );
    let out = follower.cli(&["rollout", "resume", "release"]);
    expect_code(&out, 0, "rollout resume through the follower");
    assert_eq!(
        phase(&support::rollout::status(&leader, "release").unwrap()),
        "Progressing"
    );
    // Thawed, the Envoy ACKs, and the release carries on to the end.
    envoy.signal("CONT");
    let end = support::rollout::wait(
        &leader,
        "release",
        &mut seen,
        Duration::from_secs(60),
        is_final,
    );
    assert_eq!(phase(&end), "Succeeded", "statuses:\n{}", seen.summary());
    wait_for_outcomes(p.gw.port, HOST, &[], &["v2"], WAIT);
}
