//! Changes Envoy re-warms (issue 10): a DestinationRule `trafficPolicy` change and a
//! Listener change on a host carrying keep-alive load through a real Envoy 1.40 (State
//! of the World and Delta ADS). `apply?wait=` answers within a second (Envoy re-warms
//! what changed, which must not wait for its 15 s `initial_fetch_timeout`), the change
//! is in effect, and no request fails.

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::churn::{
    assert_clean, post, post_ok, protocol, wait_acked, why_failed, Tally, Traffic,
};
use support::config::{docs, service_entry, virtual_service, weighted_virtual_service};
use support::traffic::{wait_for_outcomes, LoadReport};
use support::{poll_until, start_envoy_for, Backend, Coalmine, Envoy, GatewaySpec};

const HOST: &str = "web.test";
const WAIT: Duration = Duration::from_secs(20);
/// How long an `apply?wait=` that changes what Envoy re-warms may take to answer.
const FAST_ACK: Duration = Duration::from_secs(1);

/// A DestinationRule `web` with subsets v1, v2 and this `trafficPolicy` (YAML flow).
fn policy_rule(policy: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: web
spec:
  host: web
  trafficPolicy: {policy}
  subsets:
  - {{name: v1, labels: {{version: v1}}}}
  - {{name: v2, labels: {{version: v2}}}}
"
    )
}

/// The dynamic clusters Envoy has made active, by name.
fn active_clusters(envoy: &Envoy) -> Vec<(String, Value)> {
    let section = envoy.dump_section("ClustersConfigDump");
    let list = section["dynamic_active_clusters"].as_array().cloned();
    list.into_iter()
        .flatten()
        .map(|c| {
            let name = c["cluster"]["name"].as_str().unwrap_or("?").to_string();
            (name, c["cluster"].clone())
        })
        .collect()
}

type ClusterCheck = fn(&Value) -> bool;

/// Each `trafficPolicy` change in turn (every cluster of the host re-warms in Envoy) on
/// a host carrying a 50/50 split: `apply?wait=10s` answers 200 within a second, and
/// Envoy's active clusters have the change by then.
fn policy_change(delta: bool) {
    let (v1, v2) = (Backend::start("v1"), Backend::start("v2"));
    let gw = GatewaySpec::new(&format!("policy-{}", protocol(delta)));
    let set = docs(&[
        &gw.yaml(),
        &service_entry("web", "web", &[(v1.port(), "v1"), (v2.port(), "v2")]),
        // Unlike every step below, so no step's check holds before its change is in.
        &policy_rule("{connectionPool: {tcp: {connectTimeout: 5s}}}"),
        &weighted_virtual_service("web", &gw.name, "web", &[("v1", 50), ("v2", 50)]),
    ]);
    let coalmine = Coalmine::start_bare(&[]);
    post_ok(&coalmine, "/api/v1/apply", &set);
    let envoy = start_envoy_for(&coalmine, &gw, delta);
    wait_for_outcomes(gw.port, HOST, &[], &["v1", "v2"], WAIT);
    wait_acked(&coalmine, &gw.app, WAIT);
    let traffic = Traffic::start(protocol(delta), gw.port, HOST);
    traffic.run(100);

    let steps: [(&str, &str, ClusterCheck); 5] = [
        ("loadBalancer RANDOM", "{loadBalancer: {simple: RANDOM}}", |c| {
            c["lb_policy"] == "RANDOM"
        }),
        (
            "loadBalancer LEAST_REQUEST",
            "{loadBalancer: {simple: LEAST_REQUEST}}",
            |c| c["lb_policy"] == "LEAST_REQUEST",
        ),
        (
            "connectionPool connectTimeout 3s",
            "{loadBalancer: {simple: LEAST_REQUEST}, connectionPool: {tcp: {connectTimeout: 3s}}}",
            |c| c["connect_timeout"] == "3s",
        ),
        (
            "outlierDetection consecutive5xxErrors 7",
            "{connectionPool: {tcp: {connectTimeout: 3s}}, outlierDetection: {consecutive5xxErrors: 7, interval: 5s}}",
            |c| c["outlier_detection"]["consecutive_5xx"] == 7,
        ),
        (
            "back to ROUND_ROBIN, no other policy",
            "{loadBalancer: {simple: ROUND_ROBIN}}",
            |c| {
                c["lb_policy"].is_null()
                    && c["outlier_detection"].is_null()
                    && c["connect_timeout"] == "10s"
            },
        ),
    ];
    let mut results = Vec::new();
    let mut tally = Tally::default();
    for (what, policy, check) in steps {
        let (status, body, took) = post(&coalmine, "/api/v1/apply?wait=10s", &policy_rule(policy));
        let applied = Instant::now();
        let took_effect = poll_until(FAST_ACK, || {
            let clusters = active_clusters(&envoy);
            let subsets = ["outbound|80|v1|web", "outbound|80|v2|web"];
            subsets.iter().all(|want| {
                let mut named = clusters.iter().filter(|(name, _)| name == want);
                named.next().is_some_and(|(_, c)| check(c))
            })
        });
        let effect = applied.elapsed();
        // Clusters Envoy holds back until their endpoints come (or its 15 s
        // initial_fetch_timeout passes).
        let warming = envoy.stat("cluster_manager.warming_clusters").unwrap_or(0);
        eprintln!(
            "{what}: apply?wait answered {status} in {took:?}; in Envoy: {took_effect} \
             (+{effect:?}), {warming} clusters warming"
        );
        let in_envoy = format!("{took_effect} ({warming} clusters still warming)");
        results.push((what, status, took, took_effect, in_envoy, body));
        traffic.run(500);
        tally.mark(what, std::slice::from_ref(&traffic));
    }
    let context = format!("{}\n{}", tally.summary(), why_failed(&envoy));
    let bad: Vec<String> = results
        .iter()
        .filter(|(_, status, took, effect, _, _)| *status != 200 || *took > FAST_ACK || !effect)
        .map(|(what, status, took, _, in_envoy, body)| {
            format!(
                "{what}: apply?wait=10s answered {status} after {took:?} (want 200 within \
                 {FAST_ACK:?}); active in Envoy within {FAST_ACK:?} after: {in_envoy}; body {body}"
            )
        })
        .collect();
    let reports = assert_clean(vec![traffic], 1500, &context);
    assert_none_slow(&bad, results.len(), "policy changes", &reports);
}

#[test]
fn policy_change_on_a_busy_host_is_acked_within_a_second_sotw() {
    policy_change(false);
}

#[test]
fn policy_change_on_a_busy_host_is_acked_within_a_second_delta() {
    policy_change(true);
}

/// Asserts `bad` is empty: none of the `total` steps (`kind`, e.g. "policy changes") was slow.
fn assert_none_slow(bad: &[String], total: usize, kind: &str, reports: &[LoadReport]) {
    assert!(
        bad.is_empty(),
        "{} of {total} {kind} were slow or did not take effect:\n{}\n(load: {reports:?})",
        bad.len(),
        bad.join("\n")
    );
}

/// The Gateway of `gw` with a second HTTP server on `extra` (its own listener).
fn gateway_with(gw: &GatewaySpec, extra: u16) -> String {
    format!(
        "{}  - port: {{number: {extra}, name: http-extra, protocol: HTTP}}\n    hosts: [\"*\"]\n",
        gw.yaml()
    )
}

/// The VirtualService to `web`, plus (when `fault`) a first route that aborts requests
/// carrying `x-fault: abort` with 418: that puts Envoy's fault filter into the listener,
/// so the listener itself changes (Envoy re-warms it).
fn listener_vs(gateway: &str, fault: bool) -> String {
    let mut http = String::new();
    if fault {
        http.push_str(
            "  - name: fault
    match:
    - headers: {x-fault: {exact: abort}}
    fault: {abort: {httpStatus: 418, percentage: {value: 100}}}
    route:
    - destination: {host: web}
",
        );
    }
    http.push_str("  - name: main\n    route:\n    - destination: {host: web}\n");
    virtual_service("web", gateway, &http)
}

/// The names of the HTTP filters of Envoy's active listener `name`.
fn listener_http_filters(envoy: &Envoy, name: &str) -> Option<Vec<String>> {
    let section = envoy.dump_section("ListenersConfigDump");
    let listener = section["dynamic_listeners"]
        .as_array()?
        .iter()
        .find(|l| l["name"] == name)?["active_state"]["listener"]
        .clone();
    let hcm = &listener["filter_chains"][0]["filters"][0]["typed_config"];
    let filters = hcm["http_filters"].as_array()?;
    Some(
        filters
            .iter()
            .filter_map(|f| f["name"].as_str().map(str::to_string))
            .collect(),
    )
}

/// Listener changes under load on the existing port: a new port added to the Gateway,
/// the existing listener changed in place (a fault filter in), and both undone; each
/// `apply?wait=10s` answers 200 within a second, and takes effect.
fn listener_change(delta: bool) {
    let web = Backend::start("web");
    let gw = GatewaySpec::new(&format!("listener-{}", protocol(delta)));
    let extra = support::free_port();
    let se = service_entry("web", "web", &[(web.port(), "web")]);
    let coalmine = Coalmine::start_bare(&[]);
    let set = docs(&[&gw.yaml(), &se, &listener_vs(&gw.name, false)]);
    post_ok(&coalmine, "/api/v1/apply", &set);
    let envoy = start_envoy_for(&coalmine, &gw, delta);
    wait_for_outcomes(gw.port, HOST, &[], &["web"], WAIT);
    wait_acked(&coalmine, &gw.app, WAIT);
    let traffic = Traffic::start(protocol(delta), gw.port, HOST);
    traffic.run(100);

    let main_listener = format!("0.0.0.0_{}", gw.port);
    let extra_listener = format!("0.0.0.0_{extra}");
    let answers = |port: u16, headers: &[(&str, &str)]| {
        support::traffic::get(port, HOST, "/", headers)
            .map(|r| r.status)
            .unwrap_or(0)
    };
    let has_fault = |e: &Envoy| {
        listener_http_filters(e, &main_listener)
            .is_some_and(|f| f.iter().any(|n| n == "envoy.filters.http.fault"))
    };
    type Effect<'a> = Box<dyn Fn(&Envoy) -> bool + 'a>;
    let steps: Vec<(&str, String, Effect<'_>)> = vec![
        (
            "a second Gateway server (a new listener)",
            gateway_with(&gw, extra),
            Box::new(|_: &Envoy| answers(extra, &[]) == 200),
        ),
        (
            "a fault route (the existing listener changes)",
            listener_vs(&gw.name, true),
            Box::new(|e: &Envoy| has_fault(e) && answers(gw.port, &[("x-fault", "abort")]) == 418),
        ),
        (
            "the fault route removed (the listener changes back)",
            listener_vs(&gw.name, false),
            Box::new(|e: &Envoy| {
                listener_http_filters(e, &main_listener).is_some() && !has_fault(e)
            }),
        ),
        (
            "the second server removed (a listener goes)",
            gw.yaml(),
            Box::new(|e: &Envoy| !e.dynamic_listener_names().contains(&extra_listener)),
        ),
    ];
    let mut bad = Vec::new();
    let mut tally = Tally::default();
    for (what, yaml, effect) in &steps {
        let (status, body, took) = post(&coalmine, "/api/v1/apply?wait=10s", yaml);
        let applied = Instant::now();
        let took_effect = poll_until(FAST_ACK, || effect(&envoy));
        eprintln!(
            "{what}: apply?wait answered {status} in {took:?}, in Envoy {took_effect} (+{:?})",
            applied.elapsed()
        );
        if status != 200 || took > FAST_ACK || !took_effect {
            bad.push(format!(
                "{what}: apply?wait=10s answered {status} after {took:?} (want 200 within \
                 {FAST_ACK:?}); in effect within {FAST_ACK:?} after: {took_effect}; body {body}"
            ));
        }
        traffic.run(1000);
        tally.mark(what, std::slice::from_ref(&traffic));
    }
    let context = format!("{}\n{}", tally.summary(), why_failed(&envoy));
    let reports = assert_clean(vec![traffic], 2000, &context);
    assert_none_slow(&bad, steps.len(), "listener changes", &reports);
}

#[test]
fn listener_change_is_acked_within_a_second_sotw() {
    listener_change(false);
}

#[test]
fn listener_change_is_acked_within_a_second_delta() {
    listener_change(true);
}
