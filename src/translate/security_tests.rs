//! RequestAuthentication, AuthorizationPolicy and claim matches through translation:
//! which proxies get the filters, their order, the providers and requirement, the
//! JWKS cluster, RBAC policies and principals, route matches on claims, and bytes
//! that do not vary.

use std::collections::BTreeMap;

use envoy_types::pb::envoy::config::cluster::v3::cluster::{ClusterDiscoveryType, DiscoveryType};
use envoy_types::pb::envoy::config::listener::v3::{filter, Listener};
use envoy_types::pb::envoy::config::rbac::v3::{principal::Identifier, rbac::Action, Principal};
use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;
use envoy_types::pb::envoy::extensions::filters::http::jwt_authn::v3::{
    jwt_provider::JwksSourceSpecifier, jwt_requirement::RequiresType,
    requirement_rule::RequirementType, JwtAuthentication,
};
use envoy_types::pb::envoy::extensions::filters::http::rbac::v3::Rbac as RbacFilter;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    http_filter, HttpConnectionManager,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{
    metadata_matcher::path_segment::Segment, string_matcher::MatchPattern, value_matcher,
    MetadataMatcher,
};
use prost::Message;

use super::{select_gateways, translate, Resources};
use crate::ingest::parse_documents;
use crate::model::{Config, Labels};
use crate::resource_set::build_config;

const MESH: &str = r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: petstore}
spec:
  hosts: [petstore]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 10.0.0.1, labels: {version: v1}}, {address: 10.0.0.2, labels: {version: v2}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: petstore}
spec:
  host: petstore
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: edge}
spec:
  selector: {app: edge}
  servers: [{port: {number: 8080, name: http, protocol: HTTP}, hosts: ["*"]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: petstore}
spec:
  hosts: ["*"]
  gateways: [edge]
  http:
  - match:
    - headers: {"@request.auth.claims.group": {exact: beta-testers}}
    route: [{destination: {host: petstore, subset: v2}}]
  - route: [{destination: {host: petstore, subset: v1}}]
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt}
spec:
  selector: {matchLabels: {app: edge}}
  jwtRules:
  - issuer: https://issuer.test
    audiences: [petstore]
    jwksUri: http://127.0.0.1:9999/jwks.json
    forwardOriginalToken: true
  - issuer: https://other.test/realm
    jwks: '{"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}]}'
    fromHeaders: [{name: x-token}]
"#;

const POLICIES: &str = r#"
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: require-jwt}
spec:
  selector: {matchLabels: {app: edge}}
  rules:
  - from: [{source: {requestPrincipals: ["*"]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: no-admin}
spec:
  action: DENY
  rules:
  - to: [{operation: {paths: ["/admin*"], methods: [POST]}}]
    from: [{source: {notRequestPrincipals: ["https://other.test/realm/root"]}}]
"#;

fn config(text: &str) -> Config {
    let docs = parse_documents(text).unwrap();
    build_config(&docs, &BTreeMap::new()).unwrap()
}

fn edge_labels() -> Labels {
    Labels::from([("app".to_string(), "edge".to_string())])
}

fn resources(config: &Config, labels: &Labels) -> Resources {
    translate(config, &select_gateways(config, labels))
}

fn hcm(listener: &Listener) -> HttpConnectionManager {
    let Some(filter::ConfigType::TypedConfig(any)) =
        &listener.filter_chains[0].filters[0].config_type
    else {
        panic!("no typed config");
    };
    HttpConnectionManager::decode(any.value.as_slice()).unwrap()
}

fn filter_names(listener: &Listener) -> Vec<String> {
    hcm(listener)
        .http_filters
        .into_iter()
        .map(|f| f.name)
        .collect()
}

fn typed<M: Message + Default>(listener: &Listener, index: usize) -> M {
    let filters = hcm(listener).http_filters;
    let Some(http_filter::ConfigType::TypedConfig(any)) = &filters[index].config_type else {
        panic!("no typed config");
    };
    M::decode(any.value.as_slice()).unwrap()
}

fn keys(m: &MetadataMatcher) -> Vec<&str> {
    m.path
        .iter()
        .map(|p| match &p.segment {
            Some(Segment::Key(k)) => k.as_str(),
            None => "",
        })
        .collect()
}

#[test]
fn selected_proxies_get_jwt_then_rbac_before_the_router() {
    let config = config(&format!("{MESH}---\n{POLICIES}"));
    let out = resources(&config, &edge_labels());
    let listener = &out.listeners["0.0.0.0_8080"];
    assert_eq!(
        filter_names(listener),
        [
            "envoy.filters.http.jwt_authn",
            "envoy.filters.http.rbac",
            "envoy.filters.http.rbac",
            "envoy.filters.http.router"
        ]
    );
    let deny: RbacFilter = typed(listener, 1);
    let allow: RbacFilter = typed(listener, 2);
    let (deny, allow) = (deny.rules.unwrap(), allow.rules.unwrap());
    assert_eq!(deny.action, Action::Deny as i32);
    assert_eq!(allow.action, Action::Allow as i32);
    assert!(deny.policies.contains_key("default/no-admin[0]"));
    assert!(allow.policies.contains_key("default/require-jwt[0]"));

    // A proxy none of the policies select: the default listener, no filters but the
    // router... except the selector-less DENY policy, which applies to every proxy.
    let other = resources(&config, &Labels::new());
    let names = filter_names(&other.listeners["0.0.0.0_10000"]);
    assert_eq!(
        names,
        ["envoy.filters.http.rbac", "envoy.filters.http.router"]
    );
}

#[test]
fn each_rule_is_a_provider_and_a_missing_token_passes() {
    let config = config(MESH);
    let out = resources(&config, &edge_labels());
    let listener = &out.listeners["0.0.0.0_8080"];
    let jwt: JwtAuthentication = typed(listener, 0);
    let remote = &jwt.providers["default/jwt/0"];
    assert_eq!(remote.issuer, "https://issuer.test");
    assert_eq!(remote.audiences, ["petstore"]);
    assert!(remote.forward && remote.clear_route_cache);
    assert_eq!(remote.payload_in_metadata, "payload");
    let Some(JwksSourceSpecifier::RemoteJwks(fetch)) = &remote.jwks_source_specifier else {
        panic!("remote jwks");
    };
    let uri = fetch.http_uri.as_ref().unwrap();
    assert_eq!(uri.uri, "http://127.0.0.1:9999/jwks.json");
    let inline = &jwt.providers["default/jwt/1"];
    assert!(matches!(
        inline.jwks_source_specifier,
        Some(JwksSourceSpecifier::LocalJwks(_))
    ));
    assert_eq!(inline.from_headers[0].name, "x-token");

    let Some(RequirementType::Requires(req)) = &jwt.rules[0].requirement_type else {
        panic!("a requirement");
    };
    let Some(RequiresType::RequiresAny(any)) = &req.requires_type else {
        panic!("requires_any");
    };
    let kinds: Vec<String> = any
        .requirements
        .iter()
        .map(|r| match &r.requires_type {
            Some(RequiresType::ProviderName(n)) => n.clone(),
            Some(RequiresType::AllowMissing(_)) => "allow_missing".into(),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(kinds, ["default/jwt/0", "default/jwt/1", "allow_missing"]);

    // The keys are fetched through a static cluster for the URI's address.
    let cluster = &out.clusters["coalmine|jwks|127.0.0.1|9999"];
    assert_eq!(
        cluster.cluster_discovery_type,
        Some(ClusterDiscoveryType::Type(DiscoveryType::Static as i32))
    );
}

#[test]
fn a_claim_match_reads_the_verified_payload() {
    let config = config(MESH);
    let out = resources(&config, &edge_labels());
    let rc: &RouteConfiguration = &out.routes["http.8080"];
    let route = &rc.virtual_hosts[0].routes[0];
    let m = &route.r#match.as_ref().unwrap().dynamic_metadata[0];
    assert_eq!(m.filter, "envoy.filters.http.jwt_authn");
    assert_eq!(keys(m), ["payload", "group"]);
    // A string claim, or a list claim holding the value.
    let Some(value_matcher::MatchPattern::OrMatch(or)) =
        m.value.as_ref().and_then(|v| v.match_pattern.as_ref())
    else {
        panic!("string or list item: {m:?}");
    };
    assert!(matches!(
        or.value_matchers[0].match_pattern,
        Some(value_matcher::MatchPattern::StringMatch(_))
    ));
    assert!(matches!(
        or.value_matchers[1].match_pattern,
        Some(value_matcher::MatchPattern::ListMatch(_))
    ));
    assert!(rc.virtual_hosts[0].routes[1]
        .r#match
        .as_ref()
        .unwrap()
        .dynamic_metadata
        .is_empty());
}

/// The `(claim path, matched string)` pairs a principal requires, flattened.
fn claims_of(p: &Principal, out: &mut Vec<String>) {
    match &p.identifier {
        Some(Identifier::AndIds(set)) | Some(Identifier::OrIds(set)) => {
            set.ids.iter().for_each(|id| claims_of(id, out))
        }
        Some(Identifier::NotId(inner)) => {
            out.push("not".into());
            claims_of(inner, out);
        }
        Some(Identifier::SourcedMetadata(s)) => {
            let m = s.metadata_matcher.as_ref().unwrap();
            let value = match m.value.as_ref().and_then(|v| v.match_pattern.as_ref()) {
                Some(value_matcher::MatchPattern::StringMatch(sm)) => match &sm.match_pattern {
                    Some(MatchPattern::Exact(s)) => format!("={s}"),
                    Some(MatchPattern::Prefix(s)) => format!("^{s}"),
                    Some(MatchPattern::Suffix(s)) => format!("${s}"),
                    other => format!("{other:?}"),
                },
                Some(value_matcher::MatchPattern::PresentMatch(_)) => "present".into(),
                other => format!("{other:?}"),
            };
            out.push(format!("{}{value}", keys(m)[1..].join(".")));
        }
        Some(Identifier::Any(_)) => out.push("any".into()),
        other => out.push(format!("{other:?}")),
    }
}

#[test]
fn principals_are_split_at_the_known_issuers() {
    let config = config(&format!("{MESH}---\n{POLICIES}"));
    let out = resources(&config, &edge_labels());
    let listener = &out.listeners["0.0.0.0_8080"];
    let rules = |i| typed::<RbacFilter>(listener, i).rules.unwrap();
    let deny = rules(1);
    let policy = &deny.policies["default/no-admin[0]"];
    let mut got = Vec::new();
    claims_of(&policy.principals[0], &mut got);
    assert_eq!(got, ["not", "iss=https://other.test/realm", "sub=root"]);
    let allow = rules(2);
    let mut got = Vec::new();
    claims_of(
        &allow.policies["default/require-jwt[0]"].principals[0],
        &mut got,
    );
    assert_eq!(got, ["present"]);

    let principal = |value: &str| {
        let issuers = ["https://a.test", "https://a.test/x"];
        let mut got = Vec::new();
        claims_of(&super::rbac::request_principal(value, &issuers), &mut got);
        got
    };
    assert_eq!(
        principal("https://a.test/x/alice"),
        [
            "iss=https://a.test",
            "sub=x/alice",
            "iss=https://a.test/x",
            "sub=alice"
        ]
    );
    assert_eq!(
        principal("https://a.test/*"),
        ["iss=https://a.test", "iss=https://a.test/x"]
    );
    assert_eq!(
        principal("*st/bob"),
        [
            "iss=https://a.test",
            "sub$st/bob",
            "iss=https://a.test",
            "sub=bob",
            "iss=https://a.test/x",
            "sub$st/bob"
        ]
    );
    assert_eq!(principal("https://unknown/bob"), ["not", "any"]);
}

#[test]
fn an_allow_policy_without_rules_allows_nothing() {
    let text = format!(
        "{MESH}---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {{name: deny-all}}
spec: {{}}
"
    );
    let config = config(&text);
    let out = resources(&config, &Labels::new());
    let listener = &out.listeners["0.0.0.0_10000"];
    let allow = typed::<RbacFilter>(listener, 0).rules.unwrap();
    assert_eq!(allow.action, Action::Allow as i32);
    assert!(allow.policies.is_empty());
}

#[test]
fn a_target_ref_selects_the_proxies_of_that_gateway() {
    let text = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: web}
spec:
  gatewayClassName: coalmine
  listeners: [{name: http, port: 8081, protocol: HTTP}]
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: web}]
  jwtRules: [{issuer: i, jwks: '{"keys":[{"kty":"EC"}]}'}]
"#;
    let config = config(text);
    let web = Labels::from([(
        "gateway.networking.k8s.io/gateway-name".to_string(),
        "web".to_string(),
    )]);
    let out = resources(&config, &web);
    let names = filter_names(&out.listeners["0.0.0.0_8081"]);
    assert_eq!(
        names,
        ["envoy.filters.http.jwt_authn", "envoy.filters.http.router"]
    );
    let other = resources(&config, &edge_labels());
    let names = filter_names(&other.listeners["0.0.0.0_10000"]);
    assert_eq!(names, ["envoy.filters.http.router"]);
}

#[test]
fn the_same_policies_encode_to_the_same_bytes() {
    let config = config(&format!("{MESH}---\n{POLICIES}"));
    let first = resources(&config, &edge_labels()).listeners["0.0.0.0_8080"].encode_to_vec();
    for _ in 0..16 {
        let again = resources(&config, &edge_labels()).listeners["0.0.0.0_8080"].encode_to_vec();
        assert_eq!(again, first);
    }
}

#[test]
fn config_dump_renders_the_jwt_and_rbac_filters() {
    use envoy_types::pb::google::protobuf::Any;
    use prost::Name;
    let config = config(&format!("{MESH}---\n{POLICIES}"));
    let out = resources(&config, &edge_labels());
    let any = Any {
        type_url: Listener::type_url(),
        value: out.listeners["0.0.0.0_8080"].encode_to_vec(),
    };
    let json = crate::envoy_json::any_to_json(&any.encode_to_vec()).unwrap();
    let text = json.to_string();
    assert!(
        text.contains("\"issuer\":\"https://issuer.test\""),
        "{text}"
    );
    assert!(text.contains("default/no-admin[0]"), "{text}");
}
