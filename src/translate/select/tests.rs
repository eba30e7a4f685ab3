//! Gateway selection by labels, host intersection, and the listeners and virtual
//! hosts each proxy class gets.

use super::*;
use crate::model::{Kind, Server};

fn mk_gateway(name: &str, selector: &[(&str, &str)], servers: Vec<Server>) -> Gateway {
    Gateway {
        key: ResourceKey::new(Kind::Gateway, "default", name),
        selector: selector
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        servers,
    }
}

fn mk_server(port: u32, hosts: &[&str]) -> Server {
    Server {
        name: None,
        port,
        protocol: Protocol::Http,
        hosts: hosts.iter().map(|h| h.to_string()).collect(),
        tls: None,
        https_redirect: false,
    }
}

fn mk_vs(name: &str, hosts: &[&str], gateways: &[&str]) -> VirtualService {
    VirtualService {
        key: ResourceKey::new(Kind::VirtualService, "default", name),
        hosts: hosts.iter().map(|h| h.to_string()).collect(),
        gateways: gateways.iter().map(|g| g.to_string()).collect(),
        http: Vec::new(),
        listeners: Vec::new(),
        created: None,
    }
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn selector_must_be_a_subset_of_the_labels() {
    let config = Config {
        gateways: vec![
            mk_gateway("all", &[], vec![]),
            mk_gateway("ingress", &[("app", "ingress")], vec![]),
            mk_gateway("two", &[("app", "ingress"), ("zone", "a")], vec![]),
        ],
        ..Default::default()
    };
    let names = |l: &Labels| -> Vec<String> {
        select_gateways(&config, l)
            .into_iter()
            .map(|k| k.name)
            .collect()
    };
    assert_eq!(names(&Labels::new()), ["all"]);
    assert_eq!(names(&labels(&[("app", "ingress")])), ["all", "ingress"]);
    assert_eq!(
        names(&labels(&[("app", "ingress"), ("zone", "a"), ("x", "y")])),
        ["all", "ingress", "two"]
    );
    assert_eq!(names(&labels(&[("app", "other")])), ["all"]);
}

#[test]
fn host_intersection_follows_istio() {
    assert_eq!(
        intersect("*", "a.example.com").as_deref(),
        Some("a.example.com")
    );
    assert_eq!(
        intersect("*.example.com", "a.example.com").as_deref(),
        Some("a.example.com")
    );
    assert_eq!(
        intersect("*.example.com", "*.b.example.com").as_deref(),
        Some("*.b.example.com")
    );
    assert_eq!(
        intersect("a.example.com", "*.example.com").as_deref(),
        Some("a.example.com")
    );
    assert_eq!(
        intersect("a.example.com", "*").as_deref(),
        Some("a.example.com")
    );
    assert_eq!(intersect("*.example.com", "example.com"), None);
    assert_eq!(intersect("a.example.com", "b.example.com"), None);
    assert_eq!(intersect("*.example.com", "a.example.org"), None);
}

#[test]
fn default_listener_serves_only_mesh_services() {
    let config = Config {
        virtual_services: vec![
            mk_vs("b", &["b.local"], &[MESH_GATEWAY]),
            mk_vs("a", &["*"], &[MESH_GATEWAY]),
            mk_vs("gw-only", &["c.local"], &["default/gw"]),
        ],
        ..Default::default()
    };
    let plans = plan_listeners(&config, &BTreeSet::new());
    assert_eq!(plans.len(), 1);
    assert_eq!(plans[0].port, DEFAULT_LISTENER_PORT);
    let vhosts: Vec<_> = plans[0]
        .virtual_hosts
        .iter()
        .map(|v| (v.name.as_str(), v.domains.clone()))
        .collect();
    assert_eq!(
        vhosts,
        [
            ("default/a", vec!["*".to_string()]),
            ("default/b", vec!["b.local".into(), "b.local:*".into()])
        ]
    );
}

#[test]
fn gateway_ports_merge_and_hosts_filter_services() {
    let gw = mk_gateway(
        "gw",
        &[],
        vec![
            mk_server(80, &["*.example.com"]),
            mk_server(80, &["api.test"]),
            mk_server(443, &["*"]),
        ],
    );
    let other = mk_gateway("other", &[], vec![mk_server(80, &["*"])]);
    let config = Config {
        gateways: vec![gw.clone(), other.clone()],
        virtual_services: vec![
            mk_vs("web", &["www.example.com"], &["default/gw"]),
            mk_vs("api", &["api.test", "api.example.org"], &["default/gw"]),
            mk_vs("mesh-only", &["www.example.com"], &[MESH_GATEWAY]),
            mk_vs("not-bound", &["x.example.com"], &["default/third"]),
        ],
        ..Default::default()
    };
    let keys = BTreeSet::from([gw.key.clone(), other.key.clone()]);
    let plans = plan_listeners(&config, &keys);
    let ports: Vec<u32> = plans.iter().map(|p| p.port).collect();
    assert_eq!(ports, [80, 443]);
    let on_80: Vec<_> = plans[0]
        .virtual_hosts
        .iter()
        .map(|v| (v.name.as_str(), v.domains.clone()))
        .collect();
    assert_eq!(
        on_80,
        [
            (
                "default/api",
                vec!["api.test".to_string(), "api.test:*".into()]
            ),
            (
                "default/web",
                vec!["www.example.com".into(), "www.example.com:*".into()]
            ),
        ]
    );
    let on_443: Vec<_> = plans[1]
        .virtual_hosts
        .iter()
        .map(|v| v.domains.len())
        .collect();
    assert_eq!(on_443, [4, 2]);
}
