//! Self-tests of the e2e harness without coalmine's xDS: Envoy installs and is 1.40,
//! rendered bootstraps validate in the real Envoy, and a static Envoy routes real
//! requests to test backends with the counts, rewrites and echoes the harness reports.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use coalmine::bootstrap::{render, BootstrapOptions};
use support::{envoy, free_port, traffic, Backend, Envoy, Load};

fn mk_opts(delta: bool) -> BootstrapOptions {
    BootstrapOptions {
        node_id: "harness-node".into(),
        labels: BTreeMap::from([
            ("app".to_string(), "petstore".to_string()),
            ("version".to_string(), "1.0".to_string()),
            ("quirky".to_string(), "a: b # 'c\" {d}".to_string()),
        ]),
        admin_port: 0,
        delta,
        ..Default::default()
    }
}

#[test]
fn envoy_installs_and_reports_1_40() {
    let version = envoy::envoy_version();
    assert!(version.contains("1.40"), "{version}");
}

#[test]
fn rendered_bootstrap_validates_in_envoy() {
    for delta in [false, true] {
        let yaml = render(&mk_opts(delta));
        if let Err(e) = envoy::validate(&yaml) {
            panic!("delta={delta}: {e}\n{yaml}");
        }
    }
    let named = render(&BootstrapOptions {
        xds_addr: "localhost:18000".into(),
        ..mk_opts(false)
    });
    envoy::validate(&named).unwrap_or_else(|e| panic!("{e}\n{named}"));
}

#[test]
fn validate_reports_a_broken_bootstrap() {
    let err =
        envoy::validate("static_resources: {clusters: [{name: x, type: NOPE}]}\n").unwrap_err();
    assert!(err.contains("NOPE") || err.contains("type"), "{err}");
}

#[test]
fn cli_bootstrap_validates_in_envoy() {
    for delta in [false, true] {
        let yaml = support::process::bootstrap_yaml(
            "cli-node",
            &[("app", "web"), ("track", "a=b")],
            "127.0.0.1:18000",
            delta,
        );
        let doc = coalmine::yaml::value(&yaml).expect("yaml");
        assert_eq!(
            doc["node"]["metadata"]["labels"]["track"].as_str(),
            Some("a=b")
        );
        envoy::validate(&yaml).unwrap_or_else(|e| panic!("delta={delta}: {e}\n{yaml}"));
    }
}

#[test]
fn backend_answers_with_its_version_and_echoes() {
    let b = Backend::start("v7");
    let mut client = traffic::Client::new(b.port());
    for i in 0..3 {
        let r = client
            .get("shop.local", &format!("/x/{i}?q=1"), &[("x-test", "yes")])
            .expect("get");
        assert_eq!((r.status, r.body.as_str()), (200, "v7"));
        assert_eq!(r.header("x-backend-version"), Some("v7"));
        assert_eq!(
            r.header("x-request-path"),
            Some(format!("/x/{i}?q=1").as_str())
        );
        assert_eq!(r.header("x-request-host"), Some("shop.local"));
    }
    assert_eq!(b.hits(), 3);
    let got = b.received();
    assert_eq!(
        got[2].headers.get("x-test").map(String::as_str),
        Some("yes")
    );

    b.set_failure_rate(0.25);
    let counts = traffic::send(100, b.port(), "h", &[]);
    assert_eq!(
        counts,
        BTreeMap::from([("error:500".into(), 25), ("v7".into(), 75)])
    );
}

#[test]
fn backend_stop_frees_its_port() {
    let b = Backend::start("v1");
    let port = b.port();
    b.stop();
    drop(b);
    let _again = Backend::start_on(port, "v2");
    assert_eq!(traffic::get(port, "h", "/", &[]).expect("get").body, "v2");
}

/// A static Envoy: a route to the v2 cluster for `x-canary: true` with a prefix
/// rewrite, otherwise round robin over both backends.
fn static_envoy(listen: u16, v1: u16, v2: u16) -> String {
    let cluster = |name: &str, ports: &[u16]| {
        let eps: Vec<serde_json::Value> = ports
            .iter()
            .map(|p| serde_json::json!({"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": p}}}}))
            .collect();
        serde_json::json!({
            "name": name, "type": "STATIC", "connect_timeout": "1s", "lb_policy": "ROUND_ROBIN",
            "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": eps}]},
        })
    };
    let config = serde_json::json!({
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "static_resources": {
            "listeners": [{
                "name": "http",
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": listen}},
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                        "stat_prefix": "http",
                        "route_config": {"virtual_hosts": [{
                            "name": "all", "domains": ["*"],
                            "routes": [
                                {"match": {"prefix": "/petstore", "headers": [{"name": "x-canary", "string_match": {"exact": "true"}}]},
                                 "route": {"cluster": "v2", "prefix_rewrite": "/api/pets"}},
                                {"match": {"prefix": "/"}, "route": {"cluster": "both"}},
                            ],
                        }]},
                        "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {
                            "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}],
                    },
                }]}],
            }],
            "clusters": [cluster("both", &[v1, v2]), cluster("v2", &[v2])],
        },
    });
    coalmine::yaml11::to_string(&config)
}

#[test]
fn static_envoy_routes_real_traffic_to_backends() {
    let (v1, v2) = (Backend::start("v1"), Backend::start("v2"));
    let port = free_port();
    let envoy = Envoy::start(&static_envoy(port, v1.port(), v2.port()));
    envoy.listener_ready(port, Duration::from_secs(20));
    envoy.wait_until(
        |e| e.stat("cluster.both.membership_healthy") == Some(2),
        Duration::from_secs(10),
    );

    let counts = traffic::send(200, port, "shop.local", &[]);
    assert_eq!(counts.values().sum::<usize>(), 200, "{counts:?}");
    let (n1, n2) = (
        counts.get("v1").copied().unwrap_or(0),
        counts.get("v2").copied().unwrap_or(0),
    );
    assert_eq!(n1 + n2, 200, "only backends answer: {counts:?}");
    assert!(
        (80..=120).contains(&n1),
        "round robin is near 50/50: {counts:?}"
    );

    let canary = traffic::send_path(
        20,
        port,
        "shop.local",
        "/petstore/7",
        &[("x-canary", "true")],
    );
    assert_eq!(canary, BTreeMap::from([("v2".to_string(), 20)]));
    let r = traffic::get(port, "shop.local", "/petstore/7", &[("x-canary", "true")]).expect("get");
    assert_eq!(r.header("x-request-path"), Some("/api/pets/7"));
    assert_eq!(r.header("x-request-host"), Some("shop.local"));

    let load = Load::start(port, "shop.local", "/", &[], Duration::from_millis(2));
    std::thread::sleep(Duration::from_millis(500));
    let mid = load.report();
    let report = load.stop();
    assert!(report.total >= mid.total && report.total > 20, "{report:?}");
    assert_eq!(report.failures(), 0, "{report:?}");
    assert_eq!(report.versions.keys().collect::<Vec<_>>(), ["v1", "v2"]);

    // A failing backend shows up as errors in the counts.
    v2.set_failure_rate(1.0);
    let counts = traffic::send(20, port, "shop.local", &[]);
    assert_eq!(counts.get("error:500"), Some(&10), "{counts:?}");

    let listeners = envoy.dump_section("ListenersConfigDump");
    assert!(listeners["static_listeners"].is_array(), "{listeners}");
    assert!(envoy.stat("http.http.downstream_rq_2xx").unwrap_or(0) >= 200);
}

#[test]
fn examples_are_istio_documents() {
    let expected: [(&str, &[&str]); 4] = [
        (
            "weighted-canary.yaml",
            &["ServiceEntry", "DestinationRule", "VirtualService"],
        ),
        (
            "header-canary.yaml",
            &["ServiceEntry", "DestinationRule", "VirtualService"],
        ),
        (
            "blue-green.yaml",
            &["ServiceEntry", "DestinationRule", "VirtualService"],
        ),
        ("replica-ratio.yaml", &["ServiceEntry", "VirtualService"]),
    ];
    for (file, kinds) in expected {
        let text = support::config::example(file);
        let docs: Vec<serde_json::Value> =
            coalmine::yaml::documents(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
        let got: Vec<&str> = docs
            .iter()
            .map(|d| d["kind"].as_str().unwrap_or("?"))
            .collect();
        assert_eq!(got, kinds, "{file}");
        for d in &docs {
            assert_eq!(d["apiVersion"], "networking.istio.io/v1", "{file}");
            assert_eq!(d["metadata"]["name"], "petstore", "{file}");
        }
    }
}
