//! CSDS end to end: a coalmine with an admin token serving two real Envoy 1.40 proxies;
//! a Python grpcio client asks `envoy.service.status.v3.ClientStatusDiscoveryService`
//! (Fetch and Stream) what each proxy was served. Its listener, route, clusters and
//! endpoints are SYNCED at the versions Envoy itself reports, with the config served;
//! a route Envoy NACKs is ERROR with Envoy's text; `node_matchers` select proxies; a
//! call without the token (or with a wrong one) is UNAUTHENTICATED. Without a token, on
//! loopback, CSDS is open, and a route held back by make-before-break is NOT_SENT.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::config::listener::v3::Listener;
use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;
use envoy_types::pb::envoy::r#type::matcher::v3::string_matcher::MatchPattern;
use envoy_types::pb::envoy::r#type::matcher::v3::{NodeMatcher, StringMatcher};
use envoy_types::pb::envoy::service::status::v3::client_config::GenericXdsConfig;
use envoy_types::pb::envoy::service::status::v3::{
    ClientConfig, ClientStatusRequest, ClientStatusResponse, ConfigStatus,
};
use envoy_types::pb::google::protobuf::value::Kind;
use prost::Message;
use support::config::{service_entry, weighted_virtual_service};
use support::scenario::{expect_code, stderr, Petstore};
use support::traffic::wait_for_outcomes;
use support::{dump, grpc, poll_until, process, Coalmine, GatewaySpec};

const TOKEN: &str = "csds-s3cret";
const WAIT: Duration = Duration::from_secs(20);
/// Passes coalmine's validation; Envoy 1.40 rejects it (RE2 program too large).
const BIG_REGEX: &str = "^(abc|def|ghi|jkl){20}$";

const TYPES: [(&str, &str); 4] = [
    ("cds", "type.googleapis.com/envoy.config.cluster.v3.Cluster"),
    (
        "eds",
        "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment",
    ),
    (
        "lds",
        "type.googleapis.com/envoy.config.listener.v3.Listener",
    ),
    (
        "rds",
        "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
    ),
];

fn cli(coalmine: &Coalmine, args: &[&str]) -> std::process::Output {
    let server = coalmine.server_url();
    let env = [
        ("COALMINE_SERVER", server.as_str()),
        ("COALMINE_ADMIN_TOKEN", TOKEN),
    ];
    process::cli_with(args, &env, None)
}

fn mk_matcher(pattern: MatchPattern) -> NodeMatcher {
    NodeMatcher {
        node_id: Some(StringMatcher {
            match_pattern: Some(pattern),
            ignore_case: false,
        }),
        node_metadatas: Vec::new(),
    }
}

fn mk_request(matchers: Vec<NodeMatcher>) -> Vec<u8> {
    ClientStatusRequest {
        node_matchers: matchers,
        ..Default::default()
    }
    .encode_to_vec()
}

/// FetchClientStatus with the token.
fn fetch(coalmine: &Coalmine, matchers: Vec<NodeMatcher>) -> Vec<ClientConfig> {
    let answers = grpc::csds(
        &coalmine.xds_addr(),
        "fetch",
        Some(TOKEN),
        &[mk_request(matchers)],
    )
    .unwrap_or_else(|e| panic!("FetchClientStatus: {e}"));
    assert_eq!(answers.len(), 1);
    ClientStatusResponse::decode(answers[0].as_slice())
        .expect("a ClientStatusResponse")
        .config
}

/// The one ClientConfig of `node`.
fn config_of(coalmine: &Coalmine, node: &str) -> ClientConfig {
    let mut configs = fetch(coalmine, vec![mk_matcher(MatchPattern::Exact(node.into()))]);
    assert_eq!(configs.len(), 1, "{configs:?}");
    configs.remove(0)
}

fn status(e: &GenericXdsConfig) -> ConfigStatus {
    ConfigStatus::try_from(e.config_status).expect("a known status")
}

fn of_type<'a>(config: &'a ClientConfig, url: &str) -> Vec<&'a GenericXdsConfig> {
    config
        .generic_xds_configs
        .iter()
        .filter(|e| e.type_url == url)
        .collect()
}

fn all_synced(config: &ClientConfig) -> bool {
    TYPES
        .iter()
        .all(|(_, url)| !of_type(config, url).is_empty())
        && config
            .generic_xds_configs
            .iter()
            .all(|e| status(e) == ConfigStatus::Synced)
}

fn node_ids(configs: &[ClientConfig]) -> Vec<String> {
    let mut ids: Vec<String> = configs
        .iter()
        .map(|c| c.node.as_ref().expect("node").id.clone())
        .collect();
    ids.sort();
    ids
}

fn label_app(node: &Node) -> Option<String> {
    let labels = node.metadata.as_ref()?.fields.get("labels")?;
    let Some(Kind::StructValue(labels)) = &labels.kind else {
        return None;
    };
    match &labels.fields.get("app")?.kind {
        Some(Kind::StringValue(app)) => Some(app.clone()),
        _ => None,
    }
}

/// Waits until every resource of `node` is SYNCED; its ClientConfig then.
fn wait_synced(coalmine: &Coalmine, node: &str) -> ClientConfig {
    let mut last = None;
    let synced = poll_until(WAIT, || {
        let config = config_of(coalmine, node);
        let done = all_synced(&config);
        last = Some(config);
        done
    });
    assert!(synced, "{node} never all SYNCED: {last:#?}");
    last.expect("polled")
}

/// A second Gateway, routing to v1 of the same host.
fn other_yaml(other: &GatewaySpec) -> String {
    let vs = weighted_virtual_service("petstore-other", &other.name, "petstore", &[("v1", 100)]);
    format!("{}---\n{vs}", other.yaml())
}

#[test]
fn csds_shows_what_envoy_holds_nacks_filters_and_refuses_without_the_token() {
    let p = Petstore::new("csds");
    let other = GatewaySpec::new("csds-other");
    let coalmine = Coalmine::start_bare_env(&[], &[("COALMINE_ADMIN_TOKEN", TOKEN)]);
    let both = format!(
        "{}---\n{}",
        p.yaml(&[("v1", 50), ("v2", 50)]),
        other_yaml(&other)
    );
    expect_code(
        &cli(&coalmine, &["apply", "-f", &p.write("split.yaml", &both)]),
        0,
        "apply split",
    );
    let envoy = support::start_envoy_for(&coalmine, &p.gw, false);
    let other_envoy = support::start_envoy_for(&coalmine, &other, true);
    wait_for_outcomes(p.gw.port, "petstore", &[], &["v1", "v2"], WAIT);

    // SYNCED, at the versions Envoy reports, with what it was served.
    let config = wait_synced(&coalmine, p.node());
    let node = config.node.as_ref().expect("node");
    assert_eq!(node.id, p.node());
    assert_eq!(
        label_app(node).as_deref(),
        Some(p.gw.app.as_str()),
        "{node:?}"
    );
    assert_eq!(node.user_agent_name, "envoy");
    let versions: BTreeMap<&str, String> = TYPES
        .iter()
        .map(|(kind, _)| (*kind, dump::version_info(&envoy, kind)))
        .collect();
    for (kind, url) in TYPES {
        for e in of_type(&config, url) {
            assert_eq!(e.version_info, versions[kind], "{kind} {}", e.name);
            let any = e.xds_config.as_ref().expect("xds_config");
            assert_eq!(any.type_url, url, "{kind} {}", e.name);
        }
    }
    let clusters: Vec<&str> = of_type(&config, TYPES[0].1)
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    let mut envoy_clusters = envoy.dynamic_cluster_names();
    envoy_clusters.sort();
    assert_eq!(clusters, envoy_clusters, "the clusters Envoy holds");
    let listeners = of_type(&config, TYPES[2].1);
    assert_eq!(listeners.len(), 1, "{listeners:?}");
    assert_eq!(listeners[0].name, envoy.dynamic_listener_names()[0]);
    let listener = Listener::decode(listeners[0].xds_config.as_ref().unwrap().value.as_slice())
        .expect("a Listener");
    assert_eq!(listener.name, listeners[0].name);
    let routes = of_type(&config, TYPES[3].1);
    assert_eq!(routes.len(), 1, "{routes:?}");
    assert_eq!(routes[0].name, p.route());
    let route = RouteConfiguration::decode(routes[0].xds_config.as_ref().unwrap().value.as_slice())
        .expect("a RouteConfiguration");
    assert_eq!(route.name, p.route());

    // node_matchers: none is every proxy; exact, prefix; OR-ed.
    wait_synced(&coalmine, &other.app);
    let mut everyone = vec![p.node().to_string(), other.app.clone()];
    everyone.sort();
    assert_eq!(node_ids(&fetch(&coalmine, vec![])), everyone);
    let prefix = &p.node()[..p.node().len() - 1];
    assert_eq!(
        node_ids(&fetch(
            &coalmine,
            vec![mk_matcher(MatchPattern::Prefix(prefix.into()))]
        )),
        [p.node()]
    );
    assert_eq!(
        node_ids(&fetch(
            &coalmine,
            vec![mk_matcher(MatchPattern::Prefix("csds-".into()))]
        )),
        everyone
    );
    assert_eq!(
        node_ids(&fetch(
            &coalmine,
            vec![
                mk_matcher(MatchPattern::Exact("nobody".into())),
                mk_matcher(MatchPattern::Exact(other.app.clone())),
            ]
        )),
        [other.app.as_str()]
    );
    assert!(fetch(
        &coalmine,
        vec![mk_matcher(MatchPattern::Exact("nobody".into()))]
    )
    .is_empty());

    // A route Envoy rejects: ERROR with its text, the rest stays SYNCED.
    let good_rds = versions["rds"].clone();
    let bad = p.yaml(&[("v1", 50), ("v2", 50)]).replace(
        "  - name: split\n",
        &format!(
            "  - name: big-regex\n    match: [{{uri: {{regex: \"{BIG_REGEX}\"}}}}]\n    \
             route: [{{destination: {{host: petstore, subset: v2}}}}]\n  - name: split\n"
        ),
    );
    let bad = format!("{bad}---\n{}", other_yaml(&other));
    let out = cli(
        &coalmine,
        &["apply", "-f", &p.write("nack.yaml", &bad), "--wait"],
    );
    expect_code(&out, 1, "apply --wait of a route Envoy rejects");
    assert!(stderr(&out).contains("NACKed"), "{}", stderr(&out));
    let config = config_of(&coalmine, p.node());
    let route = of_type(&config, TYPES[3].1)[0];
    assert_eq!(status(route), ConfigStatus::Error, "{route:?}");
    let error = route.error_state.as_ref().expect("error_state");
    assert!(error.details.contains("RE2 program size"), "{error:?}");
    assert!(error.details.contains(BIG_REGEX), "{error:?}");
    assert_ne!(error.version_info, good_rds, "the rejected version");
    assert_eq!(route.version_info, error.version_info);
    let rejected = RouteConfiguration::decode(
        error
            .failed_configuration
            .as_ref()
            .expect("failed_configuration")
            .value
            .as_slice(),
    )
    .expect("a RouteConfiguration");
    assert!(
        format!("{rejected:?}").contains(BIG_REGEX),
        "the rejected route itself"
    );
    assert_eq!(
        dump::version_info(&envoy, "rds"),
        good_rds,
        "Envoy keeps the last good route"
    );
    for e in &config.generic_xds_configs {
        if e.type_url != TYPES[3].1 {
            assert_eq!(status(e), ConfigStatus::Synced, "{e:?}");
        }
    }
    // The other proxy's route did not change: it is untouched by the NACK.
    assert!(all_synced(&config_of(&coalmine, &other.app)));

    // StreamClientStatus: one answer per request, same rules.
    let requests = [
        mk_request(vec![mk_matcher(MatchPattern::Exact(p.node().into()))]),
        mk_request(vec![]),
    ];
    let answers = grpc::csds(&coalmine.xds_addr(), "stream", Some(TOKEN), &requests)
        .unwrap_or_else(|e| panic!("StreamClientStatus: {e}"));
    let answers: Vec<ClientStatusResponse> = answers
        .iter()
        .map(|a| ClientStatusResponse::decode(a.as_slice()).expect("a response"))
        .collect();
    assert_eq!(answers.len(), 2);
    assert_eq!(node_ids(&answers[0].config), [p.node()]);
    assert_eq!(node_ids(&answers[1].config), everyone);

    // No token, a wrong one: UNAUTHENTICATED, on both methods, with the reason.
    let request = [mk_request(vec![])];
    for (mode, token) in [
        ("fetch", None),
        ("fetch", Some("wrong")),
        ("stream", None),
        ("stream", Some("wrong")),
    ] {
        let refused = grpc::csds(&coalmine.xds_addr(), mode, token, &request)
            .expect_err("CSDS without the token");
        assert!(refused.starts_with("UNAUTHENTICATED"), "{mode}: {refused}");
        assert!(refused.contains("authorization: Bearer"), "{refused}");
    }
    drop(other_envoy);
}

/// Every proxy's ClientConfig, without a token.
fn fetch_open(coalmine: &Coalmine) -> Vec<ClientConfig> {
    let answers = grpc::csds(&coalmine.xds_addr(), "fetch", None, &[mk_request(vec![])])
        .unwrap_or_else(|e| panic!("CSDS without a token on loopback: {e}"));
    ClientStatusResponse::decode(answers[0].as_slice())
        .expect("a response")
        .config
}

#[test]
fn without_a_token_csds_is_open_on_loopback_and_shows_a_held_route_as_not_sent() {
    let p = Petstore::new("csds-open");
    let coalmine = Coalmine::start_bare(&[]);
    expect_code(
        &coalmine.cli(&["apply", "-f", &p.write("v1.yaml", &p.yaml(&[("v1", 100)]))]),
        0,
        "apply",
    );
    let envoy = support::start_envoy_for(&coalmine, &p.gw, false);
    let synced = poll_until(WAIT, || {
        let configs = fetch_open(&coalmine);
        configs.len() == 1 && all_synced(&configs[0])
    });
    assert!(synced, "the Envoy never showed SYNCED");
    let good_rds = dump::version_info(&envoy, "rds");

    // A route to a new host with no endpoint yet is held back (make-before-break: the
    // proxy keeps the route it has while the new cluster could take no traffic, up to
    // a grace of 5 s): NOT_SENT, the proxy still on the route it ACKed.
    let ghost = p.yaml(&[("v1", 100)]).replace(
        "{host: \"petstore\", subset: \"v1\"}",
        "{host: \"ghost.test\"}",
    );
    let no_endpoints =
        service_entry("ghost", "ghost.test", &[]).replace("  endpoints:\n", "  endpoints: []\n");
    let ghost = format!("{ghost}---\n{no_endpoints}");
    assert!(ghost.contains("ghost.test"), "{ghost}");
    expect_code(
        &coalmine.cli(&["apply", "-f", &p.write("ghost.yaml", &ghost)]),
        0,
        "apply a route to an absent host",
    );
    let mut seen = None;
    let held = poll_until(Duration::from_secs(4), || {
        let configs = fetch_open(&coalmine);
        let route = of_type(&configs[0], TYPES[3].1)[0].clone();
        let not_sent = status(&route) == ConfigStatus::NotSent;
        seen = Some(route);
        not_sent
    });
    let route = seen.expect("polled");
    assert!(held, "the held route was never NOT_SENT: {route:?}");
    assert_eq!(
        route.client_status,
        envoy_types::pb::envoy::admin::v3::ClientResourceStatus::Acked as i32,
        "Envoy holds the route it ACKed"
    );
    let waiting = RouteConfiguration::decode(route.xds_config.as_ref().unwrap().value.as_slice())
        .expect("a RouteConfiguration");
    assert!(format!("{waiting:?}").contains("ghost.test"), "{waiting:?}");
    assert_eq!(dump::version_info(&envoy, "rds"), good_rds, "not sent yet");

    // After the grace it goes, and Envoy takes it.
    let synced = poll_until(WAIT, || all_synced(&fetch_open(&coalmine)[0]));
    assert!(synced, "the route never went after the grace");
    assert_ne!(dump::version_info(&envoy, "rds"), good_rds);
}
