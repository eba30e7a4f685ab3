//! Make-before-break end to end (issue 10): no request may fail while a release moves
//! traffic. A real Envoy 1.40 (State of the World and Delta ADS), keep-alive load through
//! it from the start of each test to its end, and loopback backends; any non-2xx answer
//! or broken connection fails the test, and so does a load that sent too little.
//!
//! - subsets of one host flipped every 200 ms;
//! - a switch to a new host created in the same revision, the old host removed in that
//!   same revision (`--config`) or in the next one (REST), 50 switches;
//! - a DestinationRule `trafficPolicy` change and a Listener change: `apply?wait=`
//!   answers within a second (Envoy re-warms what changed, which must not wait for its
//!   15 s `initial_fetch_timeout`);
//! - `kill -9` of coalmine while a switch is in flight, and a restart: no failure, Envoy
//!   ends on the new host, and once it settles nothing more is pushed.

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::churn::{
    assert_clean, update_successes, wait_acked, wait_cluster, why_failed, Tally, Traffic,
};
use support::config::{
    destination_rule, docs, service_entry, virtual_service, weighted_virtual_service,
};
use support::traffic::{wait_for_outcomes, Client, LoadReport};
use support::{poll_until, start_envoy_for, Backend, Coalmine, ConfigDir, Envoy, GatewaySpec};

const HOST: &str = "web.test";
const WAIT: Duration = Duration::from_secs(20);
/// What a switch may take to move the traffic (the file watcher polls every 200 ms).
const MOVE: Duration = Duration::from_secs(10);
/// How long an `apply?wait=` that changes what Envoy re-warms may take to answer.
const FAST_ACK: Duration = Duration::from_secs(1);

fn protocol(delta: bool) -> &'static str {
    if delta {
        "delta"
    } else {
        "sotw"
    }
}

/// A VirtualService `web` on `gateway` sending everything to `host` (no subset).
fn route_to(gateway: &str, host: &str) -> String {
    let http = format!("  - name: main\n    route:\n    - destination: {{host: \"{host}\"}}\n");
    virtual_service("web", gateway, &http)
}

/// Starts `gw`'s Envoy, waits until `version` answers, then starts load (50 requests in).
fn envoy_under_load(
    coalmine: &Coalmine,
    gw: &GatewaySpec,
    delta: bool,
    version: &str,
) -> (Envoy, Traffic) {
    let envoy = start_envoy_for(coalmine, gw, delta);
    wait_for_outcomes(gw.port, HOST, &[], &[version], WAIT);
    let traffic = Traffic::start(protocol(delta), gw.port, HOST);
    traffic.run(50);
    (envoy, traffic)
}

/// POSTs `yaml` to `path` (`/api/v1/apply?wait=10s`, ...); the status, the body and
/// how long the answer took (read for up to 30 s, longer than any `wait=` here).
fn post(coalmine: &Coalmine, path: &str, yaml: &str) -> (u16, Value, Duration) {
    let mut client = Client::new(coalmine.admin_port());
    client.timeout = Duration::from_secs(30);
    let headers = [("content-type", "application/yaml")];
    let started = Instant::now();
    let r = client
        .request("POST", "localhost", path, &headers, yaml.as_bytes())
        .unwrap_or_else(|e| panic!("coalmine admin POST {path}: {e}"));
    let took = started.elapsed();
    let body = serde_json::from_str(&r.body).unwrap_or(Value::String(r.body.clone()));
    (r.status, body, took)
}

/// POSTs and asserts a 200.
fn post_ok(coalmine: &Coalmine, path: &str, yaml: &str) -> (Value, Duration) {
    let (status, body, took) = post(coalmine, path, yaml);
    assert_eq!(
        status, 200,
        "POST {path} answered {status} after {took:?}: {body}"
    );
    (body, took)
}

// ---- 1. subset flips ------------------------------------------------------------

/// A VirtualService flipping between subsets v1 and v2 of one ServiceEntry host every
/// 200 ms for 10 s, through the REST API, under load.
fn subset_flips(delta: bool) {
    let (v1, v2) = (Backend::start("v1"), Backend::start("v2"));
    let gw = GatewaySpec::new(&format!("flips-{}", protocol(delta)));
    let vs = |subset: &str| weighted_virtual_service("web", &gw.name, "web", &[(subset, 100)]);
    let set = docs(&[
        &gw.yaml(),
        &service_entry("web", "web", &[(v1.port(), "v1"), (v2.port(), "v2")]),
        &destination_rule("web", "web", &["v1", "v2"]),
        &vs("v1"),
    ]);
    let coalmine = Coalmine::start_bare(&[]);
    post_ok(&coalmine, "/api/v1/apply", &set);
    let (envoy, traffic) = envoy_under_load(&coalmine, &gw, delta, "v1");

    let started = Instant::now();
    let mut flips = 0;
    while started.elapsed() < Duration::from_secs(10) {
        flips += 1;
        let to = if flips % 2 == 1 { "v2" } else { "v1" };
        post_ok(&coalmine, "/api/v1/apply", &vs(to));
        std::thread::sleep(Duration::from_millis(200));
    }
    let last = if flips % 2 == 1 { "v2" } else { "v1" };
    traffic.wait_moved(last, "the last flip", MOVE);
    let report = traffic.report();
    let reports = assert_clean(vec![traffic], 2000, &why_failed(&envoy));
    let r = &reports[0];
    eprintln!("{flips} flips");
    assert!(flips >= 40, "only {flips} flips in 10 s");
    for v in ["v1", "v2"] {
        let n = r.versions.get(v).copied().unwrap_or(0);
        assert!(
            n * 5 >= r.total,
            "flipping every 200 ms, {v} answered only {n} of {}: {report:?}",
            r.total
        );
    }
}

#[test]
fn subset_flips_every_200ms_lose_nothing_sotw() {
    subset_flips(false);
}

#[test]
fn subset_flips_every_200ms_lose_nothing_delta() {
    subset_flips(true);
}

// ---- 2. a switch to a new host ----------------------------------------------------

/// The two colours a switch alternates between: host `web-<colour>` with one backend
/// answering `<colour>`.
struct Colours {
    blue: Backend,
    green: Backend,
}

impl Colours {
    fn start() -> Colours {
        Colours {
            blue: Backend::start("blue"),
            green: Backend::start("green"),
        }
    }

    fn backend(&self, colour: &str) -> &Backend {
        match colour {
            "blue" => &self.blue,
            _ => &self.green,
        }
    }

    /// The ServiceEntry of host `web-<colour>`.
    fn service_entry(&self, colour: &str) -> String {
        let host = format!("web-{colour}");
        service_entry(&host, &host, &[(self.backend(colour).port(), colour)])
    }
}

/// The colour of switch `n` (1-based): green, blue, green, ...
fn colour_of(n: usize) -> (&'static str, &'static str) {
    if n % 2 == 1 {
        ("green", "blue")
    } else {
        ("blue", "green")
    }
}

const SWITCHES: usize = 50;

/// Asserts the load clean, then that Envoy drops `web-green` and keeps only `web-blue`.
fn assert_ended_on_blue(traffic: Traffic, tally: &Tally, envoy: &Envoy) {
    let context = format!("{}\n{}", tally.summary(), why_failed(envoy));
    let reports = assert_clean(vec![traffic], 2000, &context);
    wait_cluster(envoy, "outbound|80||web-green", false, WAIT);
    let clusters = envoy.dynamic_cluster_names();
    assert_eq!(clusters, ["outbound|80||web-blue"], "{reports:?}");
}

/// `--config`: each switch writes the whole set anew, with the new host, the route
/// moved to it and the old host gone, so all three are one revision.
fn switch_same_revision(delta: bool) {
    let colours = Colours::start();
    let gw = GatewaySpec::new(&format!("same-rev-{}", protocol(delta)));
    let set = |colour: &str| {
        let host = format!("web-{colour}");
        docs(&[
            &gw.yaml(),
            &colours.service_entry(colour),
            &route_to(&gw.name, &host),
        ])
    };
    let cfg = ConfigDir::new();
    cfg.write("mesh.yaml", &set("blue"));
    let coalmine = Coalmine::start(&cfg.path(), &[]);
    let (envoy, traffic) = envoy_under_load(&coalmine, &gw, delta, "blue");

    let started = Instant::now();
    let mut tally = Tally::default();
    for n in 1..=SWITCHES {
        let (to, _) = colour_of(n);
        cfg.write("mesh.yaml", &set(to));
        let what = format!("switch {n} to {to}");
        traffic.wait_moved(to, &what, MOVE);
        tally.mark(&what, std::slice::from_ref(&traffic));
    }
    eprintln!("{SWITCHES} switches in {:?}", started.elapsed());
    assert_ended_on_blue(traffic, &tally, &envoy);
}

#[test]
fn switch_to_a_new_host_removing_the_old_in_the_same_revision_sotw() {
    switch_same_revision(false);
}

#[test]
fn switch_to_a_new_host_removing_the_old_in_the_same_revision_delta() {
    switch_same_revision(true);
}

/// REST: each switch applies the new host with the route moved to it (one revision,
/// waiting for the ACK), waits until the traffic is there, then deletes the old host
/// (the next revision, waiting for the ACK).
fn switch_next_revision(delta: bool) {
    let colours = Colours::start();
    let gw = GatewaySpec::new(&format!("next-rev-{}", protocol(delta)));
    let coalmine = Coalmine::start_bare(&[]);
    let first = docs(&[
        &gw.yaml(),
        &colours.service_entry("blue"),
        &route_to(&gw.name, "web-blue"),
    ]);
    post_ok(&coalmine, "/api/v1/apply", &first);
    let (envoy, traffic) = envoy_under_load(&coalmine, &gw, delta, "blue");

    let started = Instant::now();
    let (mut slowest_apply, mut slowest_delete) = (Duration::ZERO, Duration::ZERO);
    let mut tally = Tally::default();
    for n in 1..=SWITCHES {
        let (to, from) = colour_of(n);
        let new = docs(&[
            &colours.service_entry(to),
            &route_to(&gw.name, &format!("web-{to}")),
        ]);
        let (_, took) = post_ok(&coalmine, "/api/v1/apply?wait=10s", &new);
        slowest_apply = slowest_apply.max(took);
        traffic.wait_moved(to, &format!("switch {n} to {to}"), MOVE);
        let loads = std::slice::from_ref(&traffic);
        tally.mark(&format!("switch {n}: web-{to} and the route to it"), loads);
        let old = colours.service_entry(from);
        let (_, took) = post_ok(&coalmine, "/api/v1/delete?wait=10s", &old);
        slowest_delete = slowest_delete.max(took);
        traffic.run(20);
        tally.mark(&format!("switch {n}: web-{from} deleted"), loads);
    }
    eprintln!(
        "{SWITCHES} switches in {:?}; slowest apply?wait {slowest_apply:?}, delete?wait {slowest_delete:?}",
        started.elapsed()
    );
    traffic.run(100);
    assert_ended_on_blue(traffic, &tally, &envoy);
}

#[test]
fn switch_to_a_new_host_removing_the_old_in_the_next_revision_sotw() {
    switch_next_revision(false);
}

#[test]
fn switch_to_a_new_host_removing_the_old_in_the_next_revision_delta() {
    switch_next_revision(true);
}

// ---- 3. changes Envoy re-warms: apply?wait answers within a second ------------------

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

// ---- 4. kill -9 during a switch ---------------------------------------------------

/// After how long, once coalmine logs the push of a switch, it is killed: from at once
/// (streams not yet written) to when Envoy has probably taken some of it.
const KILL_AFTER_MS: [u64; 6] = [0, 1, 3, 6, 12, 25];

/// `--config` switches (new host, route moved, old host removed: one revision), each
/// with coalmine SIGKILLed while it pushes and restarted on the same data dir and ports:
/// no request fails, Envoy ends on the new host, and once the reconnected Envoy is
/// settled its update counters stop moving (no churn).
fn sigkill_during_switch(delta: bool) {
    let colours = Colours::start();
    let gw = GatewaySpec::new(&format!("kill-{}", protocol(delta)));
    let set = |colour: &str| {
        docs(&[
            &gw.yaml(),
            &colours.service_entry(colour),
            &route_to(&gw.name, &format!("web-{colour}")),
        ])
    };
    let cfg = ConfigDir::new();
    cfg.write("mesh.yaml", &set("blue"));
    let mut coalmine = Coalmine::start(&cfg.path(), &[]);
    let envoy = start_envoy_for(&coalmine, &gw, delta);
    wait_for_outcomes(gw.port, HOST, &[], &["blue"], WAIT);
    wait_acked(&coalmine, &gw.app, WAIT);
    let traffic = Traffic::start(protocol(delta), gw.port, HOST);
    traffic.run(50);
    let connected = |want: u64| {
        let ok = poll_until(WAIT, || {
            envoy.stat("control_plane.connected_state") == Some(want)
        });
        assert!(ok, "envoy connected_state never became {want}");
    };

    let mut churn = Vec::new();
    let mut tally = Tally::default();
    for (n, delay) in KILL_AFTER_MS.iter().enumerate() {
        let n = n + 1;
        let (to, from) = colour_of(n);
        let pushes = coalmine.log_count("pushing configuration");
        cfg.write("mesh.yaml", &set(to));
        let pushed = poll_until(Duration::from_secs(5), || {
            coalmine.log_count("pushing configuration") > pushes
        });
        assert!(pushed, "switch {n}: coalmine never pushed the new file");
        std::thread::sleep(Duration::from_millis(*delay));
        coalmine.kill9();
        connected(0);
        traffic.run(300);

        coalmine.restart();
        connected(1);
        let what = format!("switch {n} to {to}, killed {delay} ms into its push");
        traffic.wait_moved(to, &what, WAIT);
        tally.mark(&what, std::slice::from_ref(&traffic));
        // Settled: the old host gone, every type ACKed; from then on nothing may be
        // pushed any more (the file watcher polls every 200 ms).
        wait_cluster(&envoy, &format!("outbound|80||web-{from}"), false, WAIT);
        wait_acked(&coalmine, &gw.app, WAIT);
        let before = update_successes(&envoy);
        std::thread::sleep(Duration::from_millis(1500));
        let after = update_successes(&envoy);
        let moved: Vec<String> = after
            .iter()
            .filter(|(k, v)| before.get(*k) != Some(*v))
            .map(|(k, v)| format!("{k}: {} -> {v}", before.get(k).copied().unwrap_or(0)))
            .collect();
        if !moved.is_empty() {
            eprintln!("churn after switch {n}: {moved:?}");
            churn.push(format!("switch {n} (killed after {delay} ms): {moved:?}"));
        }
    }
    let churned = if churn.is_empty() {
        "no churn once settled".to_string()
    } else {
        format!("churn once settled:\n{}", churn.join("\n"))
    };
    let context = format!("{}\n{churned}\n{}", tally.summary(), why_failed(&envoy));
    let reports = assert_clean(vec![traffic], 2000, &context);
    assert!(
        churn.is_empty(),
        "after a restart settled, Envoy kept taking updates:\n{}\n(load: {reports:?})",
        churn.join("\n")
    );
    let (last, _) = colour_of(KILL_AFTER_MS.len());
    assert_eq!(
        envoy.dynamic_cluster_names(),
        [format!("outbound|80||web-{last}")],
        "the old host is gone"
    );
}

#[test]
fn sigkill_during_a_switch_loses_nothing_and_settles_sotw() {
    sigkill_during_switch(false);
}

#[test]
fn sigkill_during_a_switch_loses_nothing_and_settles_delta() {
    sigkill_during_switch(true);
}
