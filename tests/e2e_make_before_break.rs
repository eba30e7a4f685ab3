//! Make-before-break end to end (issue 10): no request may fail while a release moves
//! traffic. A real Envoy 1.40 (State of the World and Delta ADS), keep-alive load through
//! it from the start of each test to its end, and loopback backends; any non-2xx answer
//! or broken connection fails the test, and so does a load that sent too little.
//!
//! - subsets of one host flipped every 200 ms;
//! - a switch to a new host created in the same revision, the old host removed in that
//!   same revision (`--config`) or in the next one (REST), 50 switches;
//! - `kill -9` of coalmine while a switch is in flight, and a restart: no failure, Envoy
//!   ends on the new host, and once it settles nothing more is pushed.

mod support;

use std::time::{Duration, Instant};

use support::churn::{
    assert_clean, post_ok, protocol, update_successes, wait_acked, wait_cluster, why_failed, Tally,
    Traffic,
};
use support::config::{
    destination_rule, docs, service_entry, virtual_service, weighted_virtual_service,
};
use support::traffic::wait_for_outcomes;
use support::{poll_until, start_envoy_for, Backend, Coalmine, ConfigDir, Envoy, GatewaySpec};

const HOST: &str = "web.test";
const WAIT: Duration = Duration::from_secs(20);
/// What a switch may take to move the traffic (the file watcher polls every 200 ms).
const MOVE: Duration = Duration::from_secs(10);

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

// ---- 3. kill -9 during a switch ---------------------------------------------------

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
