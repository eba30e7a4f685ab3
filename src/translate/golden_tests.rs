//! Golden (insta) tests of whole translations, with fixtures built straight from model
//! types, and the determinism check.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use envoy_types::pb::envoy::config::route::v3::{
    route::Action, route_action::ClusterSpecifier, RouteConfiguration,
};
use prost::Message;

use super::render::render;
use super::{translate, Resources};
use crate::model::*;

fn mk_labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn mk_endpoint(address: &str, version: &str) -> Endpoint {
    Endpoint {
        address: address.into(),
        ports: BTreeMap::new(),
        labels: mk_labels(&[("version", version)]),
        health: EndpointHealth::Healthy,
        weight: 1,
    }
}

fn mk_service(host: &str, port: u32, resolution: Resolution, endpoints: Vec<Endpoint>) -> Service {
    Service {
        host: host.into(),
        source: ResourceKey::new(Kind::ServiceEntry, "default", host),
        ports: vec![ServicePort {
            number: port,
            name: "http".into(),
            protocol: "HTTP".into(),
            target_port: None,
        }],
        resolution,
        endpoints,
    }
}

fn mk_petstore() -> Service {
    let mut draining = mk_endpoint("10.0.0.3", "v1");
    draining.health = EndpointHealth::Draining;
    let mut v2 = mk_endpoint("10.0.0.2", "v2");
    v2.ports.insert("http".into(), 9090);
    v2.weight = 3;
    let endpoints = vec![draining, mk_endpoint("10.0.0.1", "v1"), v2];
    mk_service("petstore", 8080, Resolution::Static, endpoints)
}

fn mk_subset(name: &str) -> Subset {
    Subset {
        name: name.into(),
        labels: mk_labels(&[("version", name)]),
        traffic_policy: None,
    }
}

fn mk_rule(
    host: &str,
    subsets: Vec<Subset>,
    traffic_policy: Option<TrafficPolicy>,
) -> DestinationRule {
    DestinationRule {
        key: ResourceKey::new(Kind::DestinationRule, "default", host),
        host: host.into(),
        traffic_policy,
        subsets,
    }
}

fn mk_dest(host: &str, subset: Option<&str>, port: u32, percent: f64) -> WeightedDestination {
    WeightedDestination {
        destination: Destination {
            host: host.into(),
            subset: subset.map(Into::into),
            port,
        },
        weight: Weight::from_percent(percent).unwrap(),
        headers: Headers::default(),
    }
}

fn mk_route(
    name: &str,
    matches: Vec<RouteMatch>,
    destinations: Vec<WeightedDestination>,
) -> HttpRoute {
    HttpRoute {
        name: Some(name.into()),
        matches,
        action: RouteAction::Route(destinations),
        rewrite: None,
        timeout: None,
        retries: None,
        fault: None,
        mirror: None,
        cors: None,
        headers: Headers::default(),
    }
}

fn mk_vs(name: &str, hosts: &[&str], gateways: &[&str], http: Vec<HttpRoute>) -> VirtualService {
    VirtualService {
        key: ResourceKey::new(Kind::VirtualService, "default", name),
        hosts: hosts.iter().map(|h| h.to_string()).collect(),
        gateways: gateways.iter().map(|g| g.to_string()).collect(),
        http,
    }
}

/// petstore (v1, v2) with one mesh virtual service routing as `http` says.
fn mk_petstore_config(http: Vec<HttpRoute>) -> Config {
    Config {
        virtual_services: vec![mk_vs(
            "petstore",
            &["petstore.example.com"],
            &[MESH_GATEWAY],
            http,
        )],
        destination_rules: vec![mk_rule(
            "petstore",
            vec![mk_subset("v1"), mk_subset("v2")],
            None,
        )],
        services: BTreeMap::from([("petstore".to_string(), mk_petstore())]),
        ..Default::default()
    }
}

fn mesh() -> BTreeSet<ResourceKey> {
    BTreeSet::new()
}

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

fn mk_two_port_gateway_config() -> Config {
    let server = |port, protocol, hosts: &[&str], tls| Server {
        name: None,
        port,
        protocol,
        hosts: hosts.iter().map(|h| h.to_string()).collect(),
        tls,
    };
    let tls = ServerTls {
        server_certificate: "/etc/certs/tls.crt".into(),
        private_key: "/etc/certs/tls.key".into(),
        ca_certificates: None,
    };
    let gateway = Gateway {
        key: ResourceKey::new(Kind::Gateway, "default", "public"),
        selector: mk_labels(&[("app", "ingress")]),
        servers: vec![
            server(8080, Protocol::Http, &["*.example.com"], None),
            server(8443, Protocol::Https, &["petstore.example.com"], Some(tls)),
        ],
    };
    let mut config = mk_petstore_config(vec![]);
    config.gateways = vec![gateway];
    let to_v1 = vec![mk_route(
        "all",
        vec![],
        vec![mk_dest("petstore", Some("v1"), 8080, 100.0)],
    )];
    let mut vs = mk_vs(
        "public",
        &["petstore.example.com"],
        &["default/public"],
        to_v1,
    );
    vs.key.name = "public".into();
    config.virtual_services = vec![vs];
    config
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

/// Everything else a route can carry: fault + CORS together, retries, timeout,
/// headers, a redirect, a fault-only route, and regex, method and query matches.
fn mk_feature_config() -> Config {
    let mut headers = Headers::default();
    headers.request.set.insert("x-route".into(), "main".into());
    headers.request.add.insert("x-trace".into(), "on".into());
    headers.response.remove.push("server".into());
    let mut v2 = mk_dest("petstore", Some("v2"), 8080, 20.0);
    v2.headers
        .request
        .set
        .insert("x-subset".into(), "v2".into());
    let mut main = mk_route(
        "main",
        vec![RouteMatch {
            name: Some("api".into()),
            uri: Some(StringMatch::Regex("/api/v[0-9]+/.*".into())),
            method: Some(StringMatch::Exact("GET".into())),
            query_params: BTreeMap::from([("debug".into(), StringMatch::Exact("1".into()))]),
            without_headers: BTreeMap::from([("x-internal".into(), HeaderMatch::Present)]),
            ..Default::default()
        }],
        vec![mk_dest("petstore", Some("v1"), 8080, 80.0), v2],
    );
    main.rewrite = Some(Rewrite {
        uri: Some("/v2/".into()),
        authority: Some("backend.internal".into()),
    });
    main.timeout = Some(Duration::from_secs(5));
    main.retries = Some(Retries {
        attempts: 3,
        per_try_timeout: Some(Duration::from_secs(2)),
        retry_on: None,
    });
    main.headers = headers;
    main.fault = Some(Fault {
        delay: Some(Delay {
            fixed: Duration::from_millis(100),
            percent: Some(0.5),
        }),
        abort: None,
    });
    main.cors = Some(CorsPolicy {
        allow_origins: vec![StringMatch::Exact("https://shop.example.com".into())],
        allow_methods: vec!["GET".into(), "POST".into()],
        max_age: Some(Duration::from_secs(600)),
        allow_credentials: Some(true),
        ..Default::default()
    });
    let mut redirect = mk_route(
        "old",
        vec![RouteMatch {
            uri: Some(StringMatch::Exact("/old".into())),
            ..Default::default()
        }],
        vec![],
    );
    redirect.action = RouteAction::Redirect(Redirect {
        uri: Some("/new".into()),
        authority: None,
        scheme: Some("https".into()),
        port: None,
        status: 308,
    });
    let mut broken = mk_route(
        "broken",
        vec![RouteMatch {
            uri: Some(StringMatch::Prefix("/broken".into())),
            ..Default::default()
        }],
        vec![],
    );
    broken.action = RouteAction::None;
    broken.fault = Some(Fault {
        delay: None,
        abort: Some(Abort {
            http_status: 418,
            percent: None,
        }),
    });
    mk_petstore_config(vec![main, redirect, broken])
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
