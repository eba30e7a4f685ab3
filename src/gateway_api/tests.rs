//! Gateway API documents end to end: text in, Config (and Envoy resources) or field
//! errors out, through the same `parse_documents` / `build_config` as Istio's.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use envoy_types::pb::envoy::config::route::v3::route::Action;
use envoy_types::pb::envoy::config::route::v3::route_action::ClusterSpecifier;

use super::GATEWAY_NAME_LABEL;
use crate::ingest::{parse_documents, Errors};
use crate::model::*;
use crate::resource_set::build_config;

const SET: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: edge}
spec:
  gatewayClassName: coalmine
  listeners:
    - {name: http, port: 8080, protocol: HTTP}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: petstore}
spec:
  hosts: [petstore-v1, petstore-v2]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 10.0.0.1}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  parentRefs: [{name: edge, sectionName: http}]
  hostnames: [web.example.com]
  rules:
    - name: canary
      matches:
        - headers: [{name: X-Canary, value: "true"}]
      backendRefs: [{name: petstore-v2, port: 80}]
    - matches: [{path: {type: PathPrefix, value: /petstore}}]
      filters:
        - type: URLRewrite
          urlRewrite: {hostname: api.internal, path: {type: ReplacePrefixMatch, replacePrefixMatch: /api/pets}}
        - type: RequestHeaderModifier
          requestHeaderModifier: {set: [{name: x-via, value: gw}], remove: [x-debug]}
        - type: ResponseHeaderModifier
          responseHeaderModifier: {add: [{name: x-served, value: "1"}]}
        - type: RequestMirror
          requestMirror: {backendRef: {name: petstore-v2, port: 80}, percent: 10}
      backendRefs: [{name: petstore-v1, port: 80}]
      timeouts: {request: 5s}
    - matches: [{path: {type: Exact, value: /old}}]
      filters:
        - type: RequestRedirect
          requestRedirect: {scheme: https, hostname: new.example.com, statusCode: 301,
                            path: {type: ReplaceFullPath, replaceFullPath: /new}}
    - backendRefs:
        - {name: petstore-v1, port: 80, weight: 1}
        - {name: petstore-v2, port: 80, weight: 3}
"#;

fn build(text: &str) -> Result<Config, Errors> {
    build_config(&parse_documents(text)?, &BTreeMap::new())
}

/// (resource, field) of every error.
fn fields(text: &str) -> Vec<(String, String)> {
    let errors = build(text).expect_err("errors");
    errors
        .0
        .into_iter()
        .map(|e| (e.resource, e.field))
        .collect()
}

fn dest(host: &str) -> Destination {
    Destination {
        host: host.into(),
        subset: None,
        port: 80,
    }
}

#[test]
fn a_gateway_and_route_become_the_model() {
    let config = build(SET).unwrap();
    let gateway = &config.gateways[0];
    assert_eq!(
        gateway.key.to_string(),
        "Gateway.gateway.networking.k8s.io default/edge"
    );
    assert_eq!(gateway.selector[GATEWAY_NAME_LABEL], "edge");
    let vs = &config.virtual_services[0];
    assert_eq!(vs.key.to_string(), "HTTPRoute default/web");
    assert_eq!(vs.gateways, vec!["default/edge".to_string()]);
    assert_eq!(vs.hosts, vec!["web.example.com".to_string()]);
    let [canary, api, old, split] = vs.http.as_slice() else {
        panic!("four rules: {:?}", vs.http);
    };
    assert_eq!(canary.name.as_deref(), Some("canary"));
    let exact = HeaderMatch::Value(StringMatch::Exact("true".into()));
    assert_eq!(canary.matches[0].headers["x-canary"], exact);
    assert_eq!(canary.matches[0].uri, Some(StringMatch::Prefix("/".into())));
    let rewrite = api.rewrite.clone().unwrap();
    assert_eq!(rewrite.uri.as_deref(), Some("/api/pets"));
    assert_eq!(rewrite.authority.as_deref(), Some("api.internal"));
    assert_eq!(api.headers.request.set["x-via"], "gw");
    assert_eq!(api.headers.request.remove, vec!["x-debug".to_string()]);
    assert_eq!(api.headers.response.add["x-served"], "1");
    let mirror = api.mirror.clone().unwrap();
    assert_eq!(
        (mirror.destination, mirror.percent),
        (dest("petstore-v2"), Some(10.0))
    );
    assert_eq!(api.timeout, Some(std::time::Duration::from_secs(5)));
    let RouteAction::Redirect(redirect) = &old.action else {
        panic!("a redirect: {old:?}");
    };
    assert_eq!(redirect.uri.as_deref(), Some("/new"));
    assert_eq!(redirect.authority.as_deref(), Some("new.example.com"));
    assert_eq!(
        (redirect.scheme.as_deref(), redirect.status),
        (Some("https"), 301)
    );
    let RouteAction::Route(weighted) = &split.action else {
        panic!("a split: {split:?}");
    };
    let shares: Vec<(Destination, u32)> = weighted
        .iter()
        .map(|w| (w.destination.clone(), w.weight.units()))
        .collect();
    assert_eq!(
        shares,
        vec![
            (dest("petstore-v1"), 250_000),
            (dest("petstore-v2"), 750_000)
        ]
    );
}

#[test]
fn translates_to_a_listener_on_the_listener_port() {
    let config = build(SET).unwrap();
    let labels = Labels::from([(GATEWAY_NAME_LABEL.to_string(), "edge".to_string())]);
    let selected = crate::translate::select_gateways(&config, &labels);
    assert_eq!(selected.len(), 1);
    assert!(crate::translate::select_gateways(&config, &Labels::new()).is_empty());
    let resources = crate::translate::translate(&config, &selected);
    let listeners: Vec<&String> = resources.listeners.keys().collect();
    assert_eq!(listeners, vec!["0.0.0.0_8080"]);
    let routes = &resources.routes["http.8080"];
    let vhost = &routes.virtual_hosts[0];
    assert_eq!(vhost.domains, vec!["web.example.com", "web.example.com:*"]);
    let Some(Action::Route(action)) = &vhost.routes[3].action else {
        panic!("route action: {:?}", vhost.routes[3]);
    };
    let Some(ClusterSpecifier::WeightedClusters(split)) = &action.cluster_specifier else {
        panic!("weighted clusters: {action:?}");
    };
    let got: Vec<(&str, u32)> = split
        .clusters
        .iter()
        .map(|c| (c.name.as_str(), c.weight.as_ref().unwrap().value))
        .collect();
    assert_eq!(
        got,
        vec![
            ("outbound|80||petstore-v1", 250_000),
            ("outbound|80||petstore-v2", 750_000)
        ]
    );
    assert!(resources.clusters.contains_key("outbound|80||petstore-v2"));
}

#[test]
fn v1beta1_and_istio_gateways_side_by_side() {
    let text = SET.replace(
        "gateway.networking.k8s.io/v1\nkind: HTTPRoute",
        "gateway.networking.k8s.io/v1beta1\nkind: HTTPRoute",
    )
        + "---\napiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: istio}\n\
           spec: {servers: [{port: {number: 80, protocol: HTTP}, hosts: ['*']}]}\n";
    let config = build(&text).unwrap();
    let kinds: Vec<Kind> = config.gateways.iter().map(|g| g.key.kind).collect();
    assert_eq!(kinds, vec![Kind::Gateway, Kind::KubernetesGateway]);
}

#[test]
fn all_zero_weights_answer_500() {
    let text = SET
        .replace("weight: 1}", "weight: 0}")
        .replace("weight: 3}", "weight: 0}");
    let config = build(&text).unwrap();
    let split = &config.virtual_services[0].http[3];
    assert_eq!(split.action, RouteAction::None);
    let abort = split.fault.as_ref().and_then(|f| f.abort.as_ref()).unwrap();
    assert_eq!(abort.http_status, 500);
}

#[test]
fn errors_name_the_resource_and_field() {
    let text = SET
        .replace("weight: 3}", "weight: -3}")
        .replace("- type: RequestHeaderModifier", "- type: ExtensionRef\n          extensionRef: {name: x}\n        - type: RequestHeaderModifier")
        .replace("{name: edge, sectionName: http}", "{name: edge, sectionName: https}, {name: nope}")
        .replace("[{name: petstore-v2, port: 80}]", "[{name: petstore-v3, port: 80, extra: 1}]");
    let got = fields(&text);
    let route = |f: &str| ("HTTPRoute default/web".to_string(), f.to_string());
    assert_eq!(
        got,
        vec![
            route("spec.rules[0].backendRefs[0].extra"),
            route("spec.rules[1].filters[1].extensionRef"),
            route("spec.rules[1].filters[1].type"),
            route("spec.rules[3].backendRefs[1].weight"),
        ]
    );
    // With the fields fixed, the cross-resource errors show.
    let text = SET
        .replace(
            "{name: edge, sectionName: http}",
            "{name: edge, sectionName: https}, {name: nope}",
        )
        .replace(
            "[{name: petstore-v2, port: 80}]",
            "[{name: petstore-v3, port: 80}]",
        );
    let errors = build(&text).unwrap_err();
    let lines: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        vec![
            "HTTPRoute default/web: spec.parentRefs[0].sectionName: the Gateway has no listener named \"https\"",
            "HTTPRoute default/web: spec.parentRefs[1].name: Gateway.gateway.networking.k8s.io default/nope is not defined",
        ]
    );
}

#[test]
fn unsupported_constructs_are_errors() {
    let text = SET
        .replace("protocol: HTTP}\n", "protocol: HTTPS, tls: {mode: Terminate}}\n")
        .replace("replacePrefixMatch: /api/pets}}", "replacePrefixMatch: /api/pets}}\n        - {type: URLRewrite, urlRewrite: {}}")
        .replace("[{path: {type: Exact, value: /old}}]", "[{path: {type: Exact, value: /old}}]\n      backendRefs: [{name: petstore-v1, port: 80}]");
    let got = fields(&text);
    let gateway = "Gateway.gateway.networking.k8s.io default/edge".to_string();
    let route = |f: &str| ("HTTPRoute default/web".to_string(), f.to_string());
    assert_eq!(
        got,
        vec![
            (gateway, "spec.listeners[0].tls.certificateRefs".into()),
            route("spec.rules[1].filters[1]"),
            route("spec.rules[2].filters[0].requestRedirect"),
        ]
    );
}

#[test]
fn rewrites_follow_gateway_api_semantics() {
    let text = SET.replace(
        "path: {type: ReplacePrefixMatch, replacePrefixMatch: /api/pets}",
        "path: {type: ReplaceFullPath, replaceFullPath: /all}",
    );
    let config = build(&text).unwrap();
    let api = &config.virtual_services[0].http[1];
    assert_eq!(
        api.matches[0].uri,
        Some(StringMatch::Regex("/petstore(/.*)?".into()))
    );
    assert_eq!(api.rewrite.as_ref().unwrap().uri.as_deref(), Some("/all"));
    let text = SET.replace(
        "matches: [{path: {type: PathPrefix, value: /petstore}}]",
        "matches: []",
    );
    let config = build(&text).unwrap();
    let api = &config.virtual_services[0].http[1];
    assert_eq!(
        api.rewrite.as_ref().unwrap().uri.as_deref(),
        Some("/api/pets/")
    );
    let text = SET.replace(
        "type: PathPrefix, value: /petstore",
        "type: Exact, value: /petstore",
    );
    assert_eq!(
        fields(&text),
        vec![(
            "HTTPRoute default/web".to_string(),
            "spec.rules[1].filters[0].urlRewrite.path.type".to_string()
        )]
    );
}

#[test]
fn gateway_kinds_do_not_mix() {
    let istio_gateway =
        "---\napiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: edge}\n\
                         spec: {servers: [{port: {number: 80, protocol: HTTP}, hosts: ['*']}]}\n";
    let got = fields(&(SET.to_string() + istio_gateway));
    assert_eq!(
        got,
        vec![(
            "Gateway.gateway.networking.k8s.io default/edge".to_string(),
            "metadata.name".to_string()
        )]
    );
    let vs = "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: vs}\n\
              spec: {hosts: [other.example.com], gateways: [edge], http: [{route: [{destination: {host: petstore-v1}}]}]}\n";
    let got = fields(&(SET.to_string() + vs));
    assert_eq!(
        got,
        vec![(
            "VirtualService default/vs".to_string(),
            "spec.gateways[0]".to_string()
        )]
    );
}

#[test]
fn an_unresolved_backend_fails_only_its_share_of_its_rule() {
    // petstore-v3 is no Service: the canary rule (its only backend) answers 500 and the
    // split rule sends its quarter meant for a Deployment kind to a 500; the rest serve.
    let text = SET
        .replace(
            "[{name: petstore-v2, port: 80}]",
            "[{name: petstore-v3, port: 80}]",
        )
        .replace(
            "{name: petstore-v1, port: 80, weight: 1}",
            "{name: petstore-v1, port: 80, weight: 1, group: apps, kind: Deployment}",
        );
    let config = build(&text).expect("the route is accepted");
    let http = &config.virtual_services[0].http;
    assert_eq!(http[0].action, RouteAction::None);
    let abort = http[0].fault.as_ref().and_then(|f| f.abort.as_ref());
    assert_eq!(abort.map(|a| a.http_status), Some(500));
    let RouteAction::Route(split) = &http[3].action else {
        panic!("the split rule still routes: {:?}", http[3].action)
    };
    assert_eq!(split.len(), 1);
    assert_eq!(split[0].destination, dest("petstore-v2"));
    assert_eq!(split[0].weight, Weight::from_units(750_000));
    assert_eq!(http[3].unresolved, Weight::from_units(250_000));
    let reasons: Vec<(&str, &str)> = config
        .unresolved
        .iter()
        .map(|u| (u.field.as_str(), u.reason))
        .collect();
    assert_eq!(
        reasons,
        [
            ("spec.rules[0].backendRefs[0]", "BackendNotFound"),
            ("spec.rules[3].backendRefs[0]", "InvalidKind"),
        ]
    );
}

#[test]
fn another_namespace_needs_a_reference_grant() {
    let text = SET.replace(
        "[{name: petstore-v2, port: 80}]",
        "[{name: petstore-v2, namespace: shop, port: 80}]",
    );
    let config = build(&text).unwrap();
    assert_eq!(config.unresolved.len(), 1);
    assert_eq!(config.unresolved[0].reason, "RefNotPermitted");
    assert_eq!(config.virtual_services[0].http[0].action, RouteAction::None);
    // A grant in the backend's namespace lets the route's namespace refer to it (the
    // ServiceEntry host petstore-v2 is found from any namespace).
    let grant = "---\napiVersion: gateway.networking.k8s.io/v1beta1\nkind: ReferenceGrant\n\
                 metadata: {name: from-default, namespace: shop}\n\
                 spec: {from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: default}],\n\
                 to: [{group: '', kind: Service}]}\n";
    let config = build(&(text.clone() + grant)).unwrap();
    assert_eq!(config.unresolved, []);
    let RouteAction::Route(canary) = &config.virtual_services[0].http[0].action else {
        panic!("the canary rule routes")
    };
    assert_eq!(canary[0].destination, dest("petstore-v2"));
    // A grant from another namespace allows nothing here.
    let elsewhere = grant.replace("namespace: default}", "namespace: other}");
    let config = build(&(text.clone() + &elsewhere)).unwrap();
    assert_eq!(config.unresolved[0].reason, "RefNotPermitted");
    let bad_grant = grant.replace("kind: HTTPRoute,", "");
    let errors = build(&(text + &bad_grant)).unwrap_err();
    assert_eq!(errors.0[0].resource, "ReferenceGrant shop/from-default");
    assert_eq!(errors.0[0].field, "spec.from[0].kind");
}

#[test]
fn routes_attach_only_where_listeners_allow() {
    // A parentRef picks listeners on some of the Gateway's ports: the route is on those.
    let two_ports = SET.replace(
        "    - {name: http, port: 8080, protocol: HTTP}\n",
        "    - {name: http, port: 8080, protocol: HTTP}\n    - {name: alt, port: 9090, protocol: HTTP}\n",
    );
    let config = build(&two_ports).unwrap();
    let ports: Vec<u32> = config.virtual_services[0]
        .listeners
        .iter()
        .map(|l| l.port)
        .collect();
    assert_eq!(ports, [8080]);
    let other_ns = SET
        .replace(
            "metadata: {name: web}",
            "metadata: {name: web, namespace: shop}",
        )
        .replace(
            "{name: edge, sectionName: http}",
            "{name: edge, namespace: default}",
        )
        .replace(
            "kind: ServiceEntry\nmetadata: {name: petstore}",
            "kind: ServiceEntry\nmetadata: {name: petstore, namespace: shop}",
        );
    assert_eq!(
        fields(&other_ns),
        vec![(
            "HTTPRoute shop/web".to_string(),
            "spec.parentRefs[0]".to_string()
        )]
    );
    let allowed = other_ns.replace(
        "port: 8080, protocol: HTTP}",
        "port: 8080, protocol: HTTP, allowedRoutes: {namespaces: {from: All}}}",
    );
    let config = build(&allowed).unwrap();
    assert_eq!(
        config.virtual_services[0].gateways,
        vec!["default/edge".to_string()]
    );
    let narrowed = SET
        .replace(
            "port: 8080, protocol: HTTP}",
            "port: 8080, protocol: HTTP, hostname: '*.example.com'}",
        )
        .replace("  hostnames: [web.example.com]\n", "");
    let config = build(&narrowed).unwrap();
    assert_eq!(
        config.virtual_services[0].hosts,
        vec!["*.example.com".to_string()]
    );
    let disjoint = narrowed.replace("parentRefs:", "hostnames: [web.example.org]\n  parentRefs:");
    assert_eq!(
        fields(&disjoint),
        vec![(
            "HTTPRoute default/web".to_string(),
            "spec.parentRefs[0]".to_string()
        )]
    );
}

#[test]
fn documents_dispatch_by_api_group() {
    let docs = parse_documents(SET).unwrap();
    let kinds: BTreeSet<Kind> = docs.iter().map(|d| d.key.kind).collect();
    assert_eq!(
        kinds,
        BTreeSet::from([Kind::KubernetesGateway, Kind::ServiceEntry, Kind::HttpRoute])
    );
    let bad = SET.replace(
        "gateway.networking.k8s.io/v1\nkind: HTTPRoute",
        "gateway.networking.k8s.io/v2\nkind: HTTPRoute",
    );
    let errors = parse_documents(&bad).unwrap_err();
    assert_eq!(
        errors.to_string(),
        "HTTPRoute default/web: apiVersion: unsupported apiVersion \"gateway.networking.k8s.io/v2\" \
         (expected gateway.networking.k8s.io/v1 or v1beta1)"
    );
    let bad =
        "apiVersion: networking.istio.io/v1\nkind: HTTPRoute\nmetadata: {name: a}\nspec: {}\n";
    assert!(parse_documents(bad)
        .unwrap_err()
        .to_string()
        .contains("expected gateway.networking.k8s.io/v1"));
}

#[test]
fn redirects_take_every_redirect_code_and_a_prefix() {
    for code in [301, 302, 303, 307, 308] {
        let text = SET.replace("statusCode: 301", &format!("statusCode: {code}"));
        let config = build(&text).unwrap();
        let RouteAction::Redirect(redirect) = &config.virtual_services[0].http[2].action else {
            panic!("a redirect")
        };
        assert_eq!(redirect.status, code);
        assert!(redirect.port_follows_scheme);
    }
    let text = SET.replace("statusCode: 301", "statusCode: 304");
    assert_eq!(
        fields(&text),
        [(
            "HTTPRoute default/web".to_string(),
            "spec.rules[2].filters[0].requestRedirect.statusCode".to_string()
        )]
    );
    // ReplacePrefixMatch needs a prefix match; the exact /old match is not one.
    let text = SET.replace(
        "path: {type: ReplaceFullPath, replaceFullPath: /new}",
        "path: {type: ReplacePrefixMatch, replacePrefixMatch: /new}",
    );
    assert_eq!(
        fields(&text),
        [(
            "HTTPRoute default/web".to_string(),
            "spec.rules[2].filters[0].requestRedirect.path.type".to_string()
        )]
    );
    let text = text.replace(
        "{type: Exact, value: /old}",
        "{type: PathPrefix, value: /old}",
    );
    let config = build(&text).unwrap();
    let RouteAction::Redirect(redirect) = &config.virtual_services[0].http[2].action else {
        panic!("a redirect")
    };
    assert_eq!(
        (redirect.uri.as_deref(), redirect.prefix.as_deref()),
        (None, Some("/new"))
    );
}

#[test]
fn backend_request_timeouts_and_cors() {
    let text = SET.replace(
        "timeouts: {request: 5s}",
        "timeouts: {request: 5s, backendRequest: 2s}\n      filters:\n        - {type: CORS, cors: {allowOrigins: ['*', 'https://*.example.com', 'https://a.test'], allowMethods: [GET]}}",
    );
    // The rule already has filters: put CORS on the split rule instead.
    let text = text.replace(
        "\n      filters:\n        - {type: CORS",
        "\n    - matches: [{path: {type: Exact, value: /cors}}]\n      backendRefs: [{name: petstore-v1, port: 80}]\n      filters:\n        - {type: CORS",
    );
    let config = build(&text).unwrap();
    let http = &config.virtual_services[0].http;
    assert_eq!(http[1].timeout, Some(Duration::from_secs(2)));
    let cors = http[2].cors.as_ref().expect("cors");
    assert_eq!(
        cors.allow_origins,
        [
            StringMatch::Regex(".*".into()),
            StringMatch::Regex("https://.*\\.example\\.com".into()),
            StringMatch::Exact("https://a.test".into()),
        ]
    );
    assert_eq!(cors.max_age, Some(Duration::from_secs(5)));
    let longer = SET.replace(
        "timeouts: {request: 5s}",
        "timeouts: {request: 5s, backendRequest: 9s}",
    );
    assert_eq!(
        fields(&longer),
        [(
            "HTTPRoute default/web".to_string(),
            "spec.rules[1].timeouts.backendRequest".to_string()
        )]
    );
}
