//! End to end routing through a real Envoy 1.40: weighted splits (and a live change of
//! weights), header canaries with a prefix rewrite, canaries by replica ratio,
//! fractional weights in millionths, and Gateway selectors, all driven by `--config`.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use support::config::{destination_rule, docs, service_entry, virtual_service};
use support::dump::route_targets;
use support::traffic::{self, send, send_path, wait_for_outcomes};
use support::{start_envoy_for, Backend, Coalmine, ConfigDir, Envoy, GatewaySpec};

const HOST: &str = "petstore.test";
const WAIT: Duration = Duration::from_secs(20);
const V1: &str = "outbound|80|v1|petstore";
const V2: &str = "outbound|80|v2|petstore";

/// A VirtualService `name` on `gateway` splitting `petstore` by subset weights in
/// percent (written as given, so fractions and invalid values go through as is).
fn split_vs(name: &str, gateway: &str, weights: &[(&str, f64)]) -> String {
    support::config::weighted_virtual_service(name, gateway, "petstore", weights)
}

/// Gateway + ServiceEntry (one endpoint per backend, labelled by its version) +
/// DestinationRule v1/v2 + `vs`.
fn mesh(gw: &GatewaySpec, backends: &[&Backend], vs: &str) -> String {
    let eps: Vec<(u16, &str)> = backends.iter().map(|b| (b.port(), b.version())).collect();
    docs(&[
        &gw.yaml(),
        &service_entry("petstore", "petstore", &eps),
        &destination_rule("petstore", "petstore", &["v1", "v2"]),
        vs,
    ])
}

/// Waits until the route configuration of `gw` sends traffic to exactly `want`
/// (cluster → weight in millionths; 100 for a lone cluster).
fn wait_weights(envoy: &Envoy, gw: &GatewaySpec, want: &[(&str, u64)]) {
    let want: BTreeMap<String, u64> = want.iter().map(|(n, w)| (n.to_string(), *w)).collect();
    let route = format!("http.{}", gw.port);
    let ok = support::poll_until(WAIT, || route_targets(envoy, &route) == want);
    let got = route_targets(envoy, &route);
    assert!(ok, "{route} never routed to {want:?}; it has {got:?}");
}

/// How many of `counts` went to `version`, after checking that every one of the
/// `total` requests was answered by v1 or v2.
fn hits(counts: &BTreeMap<String, usize>, total: usize, version: &str) -> usize {
    let ok = counts.get("v1").unwrap_or(&0) + counts.get("v2").unwrap_or(&0);
    assert_eq!(ok, total, "every request answered by a backend: {counts:?}");
    counts.get(version).copied().unwrap_or(0)
}

/// Names of every dynamic listener (active, warming or failed) in Envoy's dump.
fn all_listener_names(envoy: &Envoy) -> Vec<String> {
    let section = envoy.dump_section("ListenersConfigDump");
    section["dynamic_listeners"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l["name"].as_str().map(str::to_string))
        .collect()
}

/// Listener names coalmine serves to `node`, from its own `/api/v1/config_dump`.
fn served_listeners(coalmine: &Coalmine, node: &str) -> Vec<String> {
    let r = coalmine.admin_get(&format!("/api/v1/config_dump?node={node}"));
    assert_eq!(r.status, 200, "config_dump for {node}: {}", r.body);
    let dump: Value = serde_json::from_str(&r.body).expect("config_dump is JSON");
    dump["listeners"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l["name"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn weighted_split_follows_the_file() {
    let (v1, v2) = (Backend::start("v1"), Backend::start("v2"));
    let gw = GatewaySpec::new("split");
    let cfg = ConfigDir::new();
    let even = split_vs("petstore", &gw.name, &[("v1", 50.0), ("v2", 50.0)]);
    cfg.write("mesh.yaml", &mesh(&gw, &[&v1, &v2], &even));
    let coalmine = Coalmine::start(&cfg.path(), &[]);
    let envoy = start_envoy_for(&coalmine, &gw, false);
    wait_weights(&envoy, &gw, &[(V1, 500_000), (V2, 500_000)]);
    wait_for_outcomes(gw.port, HOST, &[], &["v1", "v2"], WAIT);

    let counts = send(1000, gw.port, HOST, &[]);
    let n1 = hits(&counts, 1000, "v1");
    assert!((450..=550).contains(&n1), "50/50 split: {counts:?}");

    let canary = split_vs("petstore", &gw.name, &[("v1", 90.0), ("v2", 10.0)]);
    cfg.write("mesh.yaml", &mesh(&gw, &[&v1, &v2], &canary));
    wait_weights(&envoy, &gw, &[(V1, 900_000), (V2, 100_000)]);
    let counts = send(1000, gw.port, HOST, &[]);
    let n2 = hits(&counts, 1000, "v2");
    assert!((50..=150).contains(&n2), "90/10 split: {counts:?}");
}

#[test]
fn header_canary_and_prefix_rewrite() {
    let (v1, v2) = (Backend::start("v1"), Backend::start("v2"));
    let gw = GatewaySpec::new("header");
    let route = |subset: &str| {
        format!("    route:\n    - destination: {{host: petstore, subset: {subset}}}\n")
    };
    let canary = "headers: {x-canary: {exact: \"true\"}}";
    let http = format!(
        "  - name: canary-api
    match:
    - uri: {{prefix: /petstore}}
      {canary}
    rewrite: {{uri: /api/pets}}
{r2}  - name: stable-api
    match:
    - uri: {{prefix: /petstore}}
    rewrite: {{uri: /api/pets}}
{r1}  - name: canary
    match:
    - {canary}
{r2}  - name: stable
{r1}",
        r1 = route("v1"),
        r2 = route("v2"),
    );
    let vs = virtual_service("petstore", &gw.name, &http);
    let cfg = ConfigDir::new();
    cfg.write("mesh.yaml", &mesh(&gw, &[&v1, &v2], &vs));
    let coalmine = Coalmine::start(&cfg.path(), &[]);
    let _envoy = start_envoy_for(&coalmine, &gw, false);
    wait_for_outcomes(gw.port, HOST, &[("x-canary", "true")], &["v2"], WAIT);

    let only = |v: &str| BTreeMap::from([(v.to_string(), 50)]);
    assert_eq!(send(50, gw.port, HOST, &[("x-canary", "true")]), only("v2"));
    assert_eq!(
        send(50, gw.port, HOST, &[("x-canary", "false")]),
        only("v1")
    );
    assert_eq!(send(50, gw.port, HOST, &[("x-canary", "TRUE")]), only("v1"));
    assert_eq!(send(50, gw.port, HOST, &[]), only("v1"));

    // Under /petstore the backend is asked for /api/pets..., on either version.
    let pets = send_path(20, gw.port, HOST, "/petstore/7", &[]);
    assert_eq!(pets, BTreeMap::from([("v1".to_string(), 20)]));
    for (headers, version) in [(vec![], "v1"), (vec![("x-canary", "true")], "v2")] {
        let r = traffic::get(gw.port, HOST, "/petstore/7?q=1", &headers).expect("get");
        assert_eq!((r.status, r.body.as_str()), (200, version), "{r:?}");
        assert_eq!(r.header("x-request-path"), Some("/api/pets/7?q=1"), "{r:?}");
    }
    let r = traffic::get(gw.port, HOST, "/petstore", &[]).expect("get");
    assert_eq!(r.header("x-request-path"), Some("/api/pets"), "{r:?}");
    let seen = |b: &Backend| -> Vec<String> { b.received().into_iter().map(|r| r.path).collect() };
    assert!(
        seen(&v1).iter().any(|p| p == "/api/pets/7"),
        "{:?}",
        seen(&v1)
    );
    assert!(
        seen(&v2).iter().any(|p| p == "/api/pets/7?q=1"),
        "{:?}",
        seen(&v2)
    );
    assert!(
        !seen(&v1)
            .iter()
            .chain(&seen(&v2))
            .any(|p| p.starts_with("/petstore")),
        "no backend sees the original /petstore path"
    );
}

#[test]
fn replica_ratio_without_subsets() {
    let v1s: Vec<Backend> = (0..4).map(|_| Backend::start("v1")).collect();
    let v2 = Backend::start("v2");
    let gw = GatewaySpec::new("replicas");
    let mut eps: Vec<(u16, &str)> = v1s.iter().map(|b| (b.port(), "v1")).collect();
    eps.push((v2.port(), "v2"));
    let http = "  - route:\n    - destination: {host: petstore}\n";
    let vs = virtual_service("petstore", &gw.name, http);
    let cfg = ConfigDir::new();
    cfg.write(
        "mesh.yaml",
        &docs(&[
            &gw.yaml(),
            &service_entry("petstore", "petstore", &eps),
            &vs,
        ]),
    );
    let coalmine = Coalmine::start(&cfg.path(), &[]);
    let envoy = start_envoy_for(&coalmine, &gw, false);
    wait_for_outcomes(gw.port, HOST, &[], &["v1", "v2"], WAIT);
    let clusters = envoy.dynamic_cluster_names();
    assert_eq!(
        clusters,
        ["outbound|80||petstore"],
        "one cluster, no subsets"
    );

    let before: Vec<u64> = v1s.iter().map(Backend::hits).collect();
    let counts = send(1000, gw.port, HOST, &[]);
    let n2 = hits(&counts, 1000, "v2");
    assert!(
        (150..=250).contains(&n2),
        "1 of 5 endpoints is v2: {counts:?}"
    );
    for (b, was) in v1s.iter().zip(before) {
        let got = b.hits() - was;
        assert!(
            (150..=250).contains(&got),
            "each v1 replica ~200: {got} {counts:?}"
        );
    }
}

#[test]
fn fractional_weights_reach_envoy_in_millionths() {
    let (v1, v2) = (Backend::start("v1"), Backend::start("v2"));
    let gw = GatewaySpec::new("fraction");
    let cfg = ConfigDir::new();
    let vs = split_vs("petstore", &gw.name, &[("v1", 99.9), ("v2", 0.1)]);
    cfg.write("mesh.yaml", &mesh(&gw, &[&v1, &v2], &vs));
    let coalmine = Coalmine::start(&cfg.path(), &[]);
    let envoy = start_envoy_for(&coalmine, &gw, false);
    wait_weights(&envoy, &gw, &[(V1, 999_000), (V2, 1_000)]);
    envoy.listener_ready(gw.port, WAIT);

    let counts = send(1000, gw.port, HOST, &[]);
    let n1 = hits(&counts, 1000, "v1");
    assert!(n1 >= 990, "99.9 % on v1: {counts:?}");

    // Four decimals is the finest step; it still reaches Envoy exactly.
    let vs = split_vs("petstore", &gw.name, &[("v1", 99.9999), ("v2", 0.0001)]);
    cfg.write("mesh.yaml", &mesh(&gw, &[&v1, &v2], &vs));
    wait_weights(&envoy, &gw, &[(V1, 999_999), (V2, 1)]);
}

#[test]
fn gateway_selector_picks_proxies_by_label() {
    let (v1, v2) = (Backend::start("v1"), Backend::start("v2"));
    let gw = GatewaySpec::new("selected");
    let cfg = ConfigDir::new();
    let vs = split_vs("petstore", &gw.name, &[("v1", 100.0)]);
    cfg.write("mesh.yaml", &mesh(&gw, &[&v1, &v2], &vs));
    let coalmine = Coalmine::start(&cfg.path(), &[]);
    let matched = start_envoy_for(&coalmine, &gw, false);
    let stranger_id = support::unique("stranger");
    let stranger = Envoy::start(&coalmine.bootstrap(&stranger_id, &[("app", &stranger_id)], false));

    let gw_listener = format!("0.0.0.0_{}", gw.port);
    matched.wait_until(
        |e| e.dynamic_listener_names() == [gw_listener.clone()],
        WAIT,
    );
    wait_for_outcomes(gw.port, HOST, &[], &["v1"], WAIT);

    // The stranger has taken its listeners (whatever became of binding them).
    stranger.wait_until(
        |e| {
            let lds = e.stats(r"^listener_manager\.lds\.update_(success|rejected)$");
            lds.values().sum::<u64>() >= 1
        },
        WAIT,
    );
    let names = all_listener_names(&stranger);
    assert!(
        !names.contains(&gw_listener),
        "unmatched proxy has {names:?}"
    );
    assert_eq!(
        served_listeners(&coalmine, &stranger_id),
        ["0.0.0.0_10000"],
        "the unmatched proxy gets the default listener"
    );
    assert_eq!(served_listeners(&coalmine, &gw.app), [gw_listener]);
}
