//! Test fixtures for translation: model configs built straight from model types
//! (`mk_*`), independent of any input dialect.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::model::*;

pub(super) fn mk_labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub(super) fn mk_endpoint(address: &str, version: &str) -> Endpoint {
    Endpoint {
        address: address.into(),
        ports: BTreeMap::new(),
        labels: mk_labels(&[("version", version)]),
        health: EndpointHealth::Healthy,
        weight: 1,
    }
}

pub(super) fn mk_service(
    host: &str,
    port: u32,
    resolution: Resolution,
    endpoints: Vec<Endpoint>,
) -> Service {
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

pub(super) fn mk_petstore() -> Service {
    let mut draining = mk_endpoint("10.0.0.3", "v1");
    draining.health = EndpointHealth::Draining;
    let mut v2 = mk_endpoint("10.0.0.2", "v2");
    v2.ports.insert("http".into(), 9090);
    v2.weight = 3;
    let endpoints = vec![draining, mk_endpoint("10.0.0.1", "v1"), v2];
    mk_service("petstore", 8080, Resolution::Static, endpoints)
}

pub(super) fn mk_subset(name: &str) -> Subset {
    Subset {
        name: name.into(),
        labels: mk_labels(&[("version", name)]),
        traffic_policy: None,
    }
}

pub(super) fn mk_rule(
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

pub(super) fn mk_dest(
    host: &str,
    subset: Option<&str>,
    port: u32,
    percent: f64,
) -> WeightedDestination {
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

pub(super) fn mk_route(
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
        unresolved: Weight::ZERO,
        grpc: false,
    }
}

pub(super) fn mk_vs(
    name: &str,
    hosts: &[&str],
    gateways: &[&str],
    http: Vec<HttpRoute>,
) -> VirtualService {
    VirtualService {
        key: ResourceKey::new(Kind::VirtualService, "default", name),
        hosts: hosts.iter().map(|h| h.to_string()).collect(),
        gateways: gateways.iter().map(|g| g.to_string()).collect(),
        http,
        listeners: Vec::new(),
        created: None,
    }
}

/// petstore (v1, v2) with one mesh virtual service routing as `http` says.
pub(super) fn mk_petstore_config(http: Vec<HttpRoute>) -> Config {
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

pub(super) fn mesh() -> BTreeSet<ResourceKey> {
    BTreeSet::new()
}

pub(super) fn mk_two_port_gateway_config() -> Config {
    let server = |port, protocol, hosts: &[&str], tls| Server {
        name: None,
        port,
        protocol,
        hosts: hosts.iter().map(|h| h.to_string()).collect(),
        tls,
        https_redirect: false,
    };
    let tls = ServerTls::simple(CertificateSource::Files {
        certificate: "/etc/certs/tls.crt".into(),
        private_key: "/etc/certs/tls.key".into(),
    });
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

/// Everything else a route can carry: fault + CORS together, retries, timeout,
/// headers, a redirect, a fault-only route, and regex, method and query matches.
pub(super) fn mk_feature_config() -> Config {
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
        prefix: None,
        authority: None,
        scheme: Some("https".into()),
        port: None,
        status: 308,
        port_follows_scheme: false,
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
