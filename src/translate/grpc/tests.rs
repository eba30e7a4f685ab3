//! The gRPC view as a whole: API listeners, route configurations built from the Envoy
//! routes, clusters; a golden file of a header canary; determinism.

use std::collections::BTreeMap;
use std::time::Duration;

use envoy_types::pb::envoy::config::cluster::v3::cluster::LbPolicy;
use envoy_types::pb::envoy::config::core::v3::config_source::ConfigSourceSpecifier;
use envoy_types::pb::envoy::config::listener::v3::Listener;
use envoy_types::pb::envoy::config::route::v3::{
    route::Action, route_action::ClusterSpecifier, RouteConfiguration,
};
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    http_connection_manager::RouteSpecifier, http_filter, HttpConnectionManager,
};
use prost::Message;

use super::translate;
use crate::model::*;
use crate::translate::fixtures::*;
use crate::translate::render::render;

fn mk_canary_config() -> Config {
    let canary = RouteMatch {
        headers: BTreeMap::from([(
            "x-canary".into(),
            HeaderMatch::Value(StringMatch::Exact("true".into())),
        )]),
        ..Default::default()
    };
    let mut config = mk_petstore_config(vec![
        mk_route(
            "canary",
            vec![canary],
            vec![mk_dest("petstore", Some("v2"), 8080, 100.0)],
        ),
        mk_route(
            "stable",
            vec![],
            vec![
                mk_dest("petstore", Some("v1"), 8080, 90.0),
                mk_dest("petstore", Some("v2"), 8080, 10.0),
            ],
        ),
    ]);
    config.services.get_mut("petstore").unwrap().ports[0].protocol = "GRPC".into();
    config
}

fn hcm_of(listener: &Listener) -> HttpConnectionManager {
    let any = listener
        .api_listener
        .as_ref()
        .and_then(|a| a.api_listener.as_ref())
        .expect("an api_listener");
    assert_eq!(
        any.type_url,
        "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
    );
    HttpConnectionManager::decode(any.value.as_slice()).unwrap()
}

fn clusters_of(rc: &RouteConfiguration) -> Vec<Vec<String>> {
    rc.virtual_hosts[0]
        .routes
        .iter()
        .map(|r| match &r.action {
            Some(Action::Route(a)) => match &a.cluster_specifier {
                Some(ClusterSpecifier::Cluster(c)) => vec![c.clone()],
                Some(ClusterSpecifier::WeightedClusters(w)) => {
                    w.clusters.iter().map(|c| c.name.clone()).collect()
                }
                other => panic!("unexpected {other:?}"),
            },
            other => panic!("unexpected {other:?}"),
        })
        .collect()
}

#[test]
fn api_listeners_take_their_route_configuration_over_ads_with_only_the_router() {
    let out = translate(&mk_canary_config());
    let names: Vec<&str> = out.listeners.keys().map(String::as_str).collect();
    assert_eq!(names, ["petstore.example.com:8080", "petstore:8080"]);
    assert!(out.routes.keys().eq(out.listeners.keys()));
    for (name, listener) in &out.listeners {
        assert!(listener.address.is_none() && listener.filter_chains.is_empty());
        let hcm = hcm_of(listener);
        let Some(RouteSpecifier::Rds(rds)) = &hcm.route_specifier else {
            panic!("{name}: no RDS");
        };
        assert_eq!(&rds.route_config_name, name);
        let source = rds.config_source.as_ref().unwrap();
        assert!(matches!(
            source.config_source_specifier,
            Some(ConfigSourceSpecifier::Ads(_))
        ));
        assert_eq!(source.resource_api_version, 2, "V3");
        let filters: Vec<(&str, &str)> = hcm
            .http_filters
            .iter()
            .map(|f| match &f.config_type {
                Some(http_filter::ConfigType::TypedConfig(any)) => {
                    (f.name.as_str(), any.type_url.as_str())
                }
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            filters,
            [(
                "envoy.filters.http.router",
                "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
            )]
        );
    }
}

#[test]
fn routes_are_envoys_and_a_service_without_a_virtual_service_goes_to_its_port() {
    let out = translate(&mk_canary_config());
    let routed = &out.routes["petstore.example.com:8080"];
    assert_eq!(routed.virtual_hosts.len(), 1);
    assert_eq!(
        routed.virtual_hosts[0].domains,
        ["petstore.example.com", "petstore.example.com:8080"]
    );
    assert_eq!(
        clusters_of(routed),
        [
            vec!["outbound|8080|v2|petstore".to_string()],
            vec![
                "outbound|8080|v1|petstore".into(),
                "outbound|8080|v2|petstore".into()
            ],
        ]
    );
    let headers = &routed.virtual_hosts[0].routes[0]
        .r#match
        .as_ref()
        .unwrap()
        .headers;
    assert_eq!(headers[0].name, "x-canary");

    let default = &out.routes["petstore:8080"];
    assert_eq!(
        default.virtual_hosts[0].domains,
        ["petstore", "petstore:8080"]
    );
    assert_eq!(clusters_of(default), [vec!["outbound|8080||petstore"]]);

    let clusters: Vec<&str> = out.clusters.keys().map(String::as_str).collect();
    assert_eq!(
        clusters,
        [
            "outbound|8080|v1|petstore",
            "outbound|8080|v2|petstore",
            "outbound|8080||petstore",
        ]
    );
    assert!(out.endpoints.keys().eq(out.clusters.keys()));
    assert!(out
        .clusters
        .values()
        .all(|c| c.lb_policy == LbPolicy::RoundRobin as i32));
}

#[test]
fn filter_configs_go_and_timeouts_become_max_stream_durations() {
    let config = mk_feature_config();
    let envoy = crate::translate::translate(&config, &mesh());
    let out = translate(&config);
    let grpc = &out.routes["petstore.example.com:8080"].virtual_hosts[0];
    let envoy_vhost = envoy.routes["http.10000"]
        .virtual_hosts
        .iter()
        .find(|v| v.name == grpc.name)
        .unwrap();
    assert_eq!(grpc.routes.len(), envoy_vhost.routes.len());
    assert!(envoy_vhost
        .routes
        .iter()
        .any(|r| !r.typed_per_filter_config.is_empty()));
    for route in &grpc.routes {
        assert!(route.typed_per_filter_config.is_empty(), "{route:?}");
        if let Some(Action::Route(a)) = &route.action {
            if let Some(ClusterSpecifier::WeightedClusters(w)) = &a.cluster_specifier {
                assert!(w
                    .clusters
                    .iter()
                    .all(|c| c.typed_per_filter_config.is_empty()));
            }
        }
    }
    let Some(Action::Route(main)) = &grpc.routes[0].action else {
        panic!("main routes");
    };
    let max = main.max_stream_duration.as_ref().unwrap();
    assert_eq!(
        max.max_stream_duration.as_ref().map(|d| d.seconds),
        Some(Duration::from_secs(5).as_secs() as i64)
    );
}

#[test]
fn envoy_views_hold_no_api_listener() {
    let envoy = crate::translate::translate(&mk_canary_config(), &mesh());
    assert!(envoy.listeners.values().all(|l| l.api_listener.is_none()));
    assert!(envoy.listeners.keys().all(|n| n.starts_with("0.0.0.0_")));
}

#[test]
fn translation_is_deterministic() {
    let config = mk_feature_config();
    assert_eq!(translate(&config), translate(&config));
}

#[test]
fn header_canary_golden() {
    insta::assert_snapshot!(render(&translate(&mk_canary_config())));
}
