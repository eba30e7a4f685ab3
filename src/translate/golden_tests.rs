//! Golden (insta) tests of whole translations, with fixtures built straight from model
//! types, and the determinism check.

use std::collections::BTreeMap;
use std::time::Duration;

use envoy_types::pb::envoy::config::route::v3::{
    route::Action, route_action::ClusterSpecifier, RouteConfiguration,
};
use prost::Message;

use super::fixtures::*;
use super::render::render;
use super::{translate, Resources};
use crate::model::*;

#[test]
fn weighted_split_with_subsets() {
    let split = vec![
        mk_dest("petstore", Some("v1"), 8080, 50.0),
        mk_dest("petstore", Some("v2"), 8080, 50.0),
    ];
    let config = mk_petstore_config(vec![mk_route("split", vec![], split)]);
    insta::assert_snapshot!(render(&translate(&config, &mesh())));
}

#[test]
fn header_canary_with_prefix_rewrite() {
    let canary_match = RouteMatch {
        uri: Some(StringMatch::Prefix("/petstore".into())),
        headers: BTreeMap::from([(
            "x-canary".into(),
            HeaderMatch::Value(StringMatch::Exact("true".into())),
        )]),
        ..Default::default()
    };
    let stable_match = RouteMatch {
        uri: Some(StringMatch::Prefix("/petstore".into())),
        ..Default::default()
    };
    let rewrite = Some(Rewrite {
        uri: Some("/api/pets".into()),
        authority: None,
    });
    let mut canary = mk_route(
        "canary",
        vec![canary_match],
        vec![mk_dest("petstore", Some("v2"), 8080, 100.0)],
    );
    canary.rewrite = rewrite.clone();
    let mut stable = mk_route(
        "stable",
        vec![stable_match],
        vec![mk_dest("petstore", Some("v1"), 8080, 100.0)],
    );
    stable.rewrite = rewrite;
    let config = mk_petstore_config(vec![canary, stable]);
    insta::assert_snapshot!(render(&translate(&config, &mesh())));
}

#[test]
fn gateway_with_two_servers_on_two_ports() {
    let config = mk_two_port_gateway_config();
    let selected = super::select_gateways(&config, &mk_labels(&[("app", "ingress")]));
    let resources = translate(&config, &selected);
    let listeners: Vec<&String> = resources.listeners.keys().collect();
    assert_eq!(listeners, ["0.0.0.0_8080", "0.0.0.0_8443"]);
    insta::assert_snapshot!(render(&resources));
}

#[test]
fn fractional_weight_stays_exact() {
    let split = vec![
        mk_dest("petstore", Some("v1"), 8080, 99.99),
        mk_dest("petstore", Some("v2"), 8080, 0.01),
    ];
    let config = mk_petstore_config(vec![mk_route("canary", vec![], split)]);
    let resources = translate(&config, &mesh());
    let weights = route_weights(&resources.routes["http.10000"]);
    assert_eq!(
        weights,
        [
            ("outbound|8080|v1|petstore".into(), 999_900),
            ("outbound|8080|v2|petstore".into(), 100)
        ]
    );
    insta::assert_snapshot!(render(&resources));
}

#[test]
fn zero_weight_destination_still_gets_a_warm_cluster() {
    let split = vec![
        mk_dest("petstore", Some("v1"), 8080, 100.0),
        mk_dest("petstore", Some("v2"), 8080, 0.0),
    ];
    let config = mk_petstore_config(vec![mk_route("stable", vec![], split)]);
    let resources = translate(&config, &mesh());
    let route = &resources.routes["http.10000"].virtual_hosts[0].routes[0];
    let Some(Action::Route(action)) = &route.action else {
        panic!("not a route")
    };
    let only = ClusterSpecifier::Cluster("outbound|8080|v1|petstore".into());
    assert_eq!(action.cluster_specifier, Some(only));
    assert!(resources.clusters.contains_key("outbound|8080|v2|petstore"));
    assert_eq!(
        resources.endpoints["outbound|8080|v2|petstore"].endpoints[0]
            .lb_endpoints
            .len(),
        1
    );
}

#[test]
fn dns_service() {
    let mut config = Config::default();
    let named = mk_service("api.external.com", 443, Resolution::Dns, vec![]);
    let mut listed = mk_service(
        "mirror.external.com",
        80,
        Resolution::Dns,
        vec![mk_endpoint("a.mirror.net", "v1")],
    );
    listed.ports[0].target_port = Some(8000);
    config.services.insert(named.host.clone(), named);
    config.services.insert(listed.host.clone(), listed);
    let mut route = mk_route(
        "out",
        vec![],
        vec![mk_dest("api.external.com", None, 443, 100.0)],
    );
    route.mirror = Some(Mirror {
        destination: Destination {
            host: "mirror.external.com".into(),
            subset: None,
            port: 80,
        },
        percent: Some(12.5),
    });
    config.virtual_services = vec![mk_vs("external", &["*"], &[MESH_GATEWAY], vec![route])];
    let resources = translate(&config, &mesh());
    assert!(
        resources.endpoints.is_empty(),
        "DNS clusters carry their endpoints inline"
    );
    insta::assert_snapshot!(render(&resources));
}

#[test]
fn traffic_policy_overrides() {
    let base = TrafficPolicy {
        load_balancer: Some(LoadBalancer::LeastRequest),
        connection_pool: Some(ConnectionPool {
            max_connections: Some(100),
            connect_timeout: Some(Duration::from_millis(250)),
            idle_timeout: Some(Duration::from_secs(30)),
            ..Default::default()
        }),
        outlier_detection: Some(OutlierDetection {
            consecutive_5xx_errors: Some(5),
            interval: Some(Duration::from_secs(10)),
            base_ejection_time: Some(Duration::from_secs(30)),
            max_ejection_percent: Some(50),
            min_health_percent: Some(20),
            ..Default::default()
        }),
    };
    let mut v2 = mk_subset("v2");
    v2.traffic_policy = Some(TrafficPolicy {
        load_balancer: Some(LoadBalancer::Random),
        connection_pool: Some(ConnectionPool {
            http2_max_requests: Some(10),
            max_requests_per_connection: Some(1),
            ..Default::default()
        }),
        outlier_detection: None,
    });
    let split = vec![
        mk_dest("petstore", Some("v1"), 8080, 90.0),
        mk_dest("petstore", Some("v2"), 8080, 10.0),
    ];
    let mut config = mk_petstore_config(vec![mk_route("split", vec![], split)]);
    config.destination_rules = vec![mk_rule("petstore", vec![mk_subset("v1"), v2], Some(base))];
    config.services.get_mut("petstore").unwrap().ports[0].protocol = "GRPC".into();
    let resources = translate(&config, &mesh());
    insta::assert_snapshot!(render(&Resources {
        clusters: resources.clusters,
        ..Default::default()
    }));
}

#[test]
fn route_features() {
    let resources = translate(&mk_feature_config(), &mesh());
    insta::assert_snapshot!(render(&Resources {
        listeners: resources.listeners,
        routes: resources.routes,
        ..Default::default()
    }));
}

#[test]
fn translation_is_deterministic_down_to_the_bytes() {
    let mut config = mk_feature_config();
    let gateway = mk_two_port_gateway_config();
    config.gateways = gateway.gateways.clone();
    config
        .virtual_services
        .extend(gateway.virtual_services.clone());
    for gateways in [
        mesh(),
        config.gateways.iter().map(|g| g.key.clone()).collect(),
    ] {
        let first = translate(&config, &gateways);
        let second = translate(&config.clone(), &gateways);
        assert_eq!(first, second);
        assert_eq!(encode(&first), encode(&second));
    }
}

fn encode(r: &Resources) -> Vec<Vec<u8>> {
    let clusters = r.clusters.values().map(Message::encode_to_vec);
    let endpoints = r.endpoints.values().map(Message::encode_to_vec);
    let listeners = r.listeners.values().map(Message::encode_to_vec);
    let routes = r.routes.values().map(Message::encode_to_vec);
    clusters
        .chain(endpoints)
        .chain(listeners)
        .chain(routes)
        .collect()
}

fn route_weights(routes: &RouteConfiguration) -> Vec<(String, u32)> {
    let Some(Action::Route(action)) = &routes.virtual_hosts[0].routes[0].action else {
        panic!("not a route")
    };
    let Some(ClusterSpecifier::WeightedClusters(weighted)) = &action.cluster_specifier else {
        panic!("not weighted")
    };
    weighted
        .clusters
        .iter()
        .map(|c| (c.name.clone(), c.weight.unwrap().value))
        .collect()
}
