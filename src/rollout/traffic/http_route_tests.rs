//! Tests of the HTTPRoute rewrites on real YAML, each result read back through
//! `build_config`, and of the Rollout checks that only an HTTPRoute target has.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::http_route::{finalize, rollback, set_weight};
use super::StepOptions;
use crate::ingest::{parse_documents, Document, Errors};
use crate::model::{Config, Kind, Rollout, RouteAction, Weight};
use crate::resource_set::build_config;

const BASE: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: edge}
spec:
  gatewayClassName: coalmine
  listeners: [{name: http, port: 8080, protocol: HTTP}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: petstore}
spec:
  hosts: [petstore-v1.default.svc.cluster.local, petstore-v2.default.svc.cluster.local,
          petstore-v3.default.svc.cluster.local]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 10.0.0.1}]
"#;

const ROUTE: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: petstore}
spec:
  parentRefs: [{name: edge}]
  hostnames: [petstore.example.com]
  rules:
    - name: debug
      matches: [{headers: [{name: x-debug, value: "1"}]}]
      backendRefs: [{name: petstore-v3, port: 80}]
    - matches: [{path: {type: PathPrefix, value: /api}}]
      filters:
        - type: RequestHeaderModifier
          requestHeaderModifier: {set: [{name: x-via, value: gw}]}
      backendRefs:
        - name: petstore-v1
          port: 80
          filters:
            - type: RequestHeaderModifier
              requestHeaderModifier: {set: [{name: x-tier, value: stable}]}
"#;

fn docs(route: &str, tail: &str) -> Vec<Document> {
    let rollout = format!(
        "apiVersion: coalmine.dev/v1alpha1\nkind: Rollout\nmetadata: {{name: petstore}}\n\
         spec:\n  target: {{kind: HTTPRoute, name: petstore}}\n  \
         stable: {{host: petstore-v1, port: {{number: 80}}}}\n  \
         canary: {{host: petstore-v2, port: {{number: 80}}}}\n{tail}"
    );
    parse_documents(&format!("{BASE}---{route}---\n{rollout}")).expect("fixture parses")
}

fn build(docs: &[Document]) -> Result<Config, Errors> {
    build_config(docs, &BTreeMap::new())
}

fn route_doc(docs: &[Document]) -> Value {
    let doc = docs.iter().find(|d| d.key.kind == Kind::HttpRoute).unwrap();
    doc.value.clone()
}

/// The set with the HTTPRoute replaced by `route`, built.
fn rebuild(docs: &[Document], route: &Value) -> Config {
    let mut docs = docs.to_vec();
    let doc = docs.iter_mut().find(|d| d.key.kind == Kind::HttpRoute);
    doc.unwrap().value = route.clone();
    build(&docs).unwrap_or_else(|e| panic!("{e}\n{route:#}"))
}

/// (host, weight in millionths) of each destination of route `i` in the built config.
fn weights(config: &Config, i: usize) -> Vec<(String, u32)> {
    let RouteAction::Route(ds) = &config.virtual_services[0].http[i].action else {
        panic!("route {i} has no destinations");
    };
    let host = |h: &str| h.split('.').next().unwrap().to_string();
    ds.iter()
        .map(|d| (host(&d.destination.host), d.weight.units()))
        .collect()
}

fn rollout(config: &Config) -> &Rollout {
    &config.rollouts[0]
}

const CANARY: &str = "  analysis: {interval: 30s, stepWeights: [0.01, 10, 50]}\n";
const AB: &str = "  strategy: ABTesting\n  analysis:\n    iterations: 2\n    \
                  match: [{headers: {x-canary: {exact: \"true\"}}}]\n";

#[test]
fn an_http_route_is_a_valid_target() {
    let config = build(&docs(ROUTE, CANARY)).unwrap();
    let r = rollout(&config);
    assert_eq!(r.target.kind, Kind::HttpRoute);
    assert_eq!(r.stable.host, "petstore-v1.default.svc.cluster.local");
    assert_eq!(r.target_route(&config.virtual_services[0]), Some(1));
}

#[test]
fn a_step_writes_reduced_relative_weights_that_read_back_exactly() {
    let docs = docs(ROUTE, CANARY);
    let config = build(&docs).unwrap();
    let before = route_doc(&docs);
    let cases = [
        (10.0, (9, 1), 100_000),
        (0.01, (9999, 1), 100),
        (50.0, (1, 1), 500_000),
    ];
    for (percent, (stable, canary), units) in cases {
        let weight = Weight::from_percent(percent).unwrap();
        let out = set_weight(&before, rollout(&config), weight, StepOptions::default()).unwrap();
        let rules = &out["spec"]["rules"];
        assert_eq!(
            rules[0], before["spec"]["rules"][0],
            "other rules untouched"
        );
        assert_eq!(rules[1]["filters"], before["spec"]["rules"][1]["filters"]);
        let refs = rules[1]["backendRefs"].as_array().unwrap();
        assert_eq!(refs[0]["name"], "petstore-v1");
        assert_eq!(refs[0]["weight"], stable, "{percent}%");
        assert_eq!(
            refs[0]["filters"], before["spec"]["rules"][1]["backendRefs"][0]["filters"],
            "the stable backendRef keeps its own filters"
        );
        assert_eq!(
            refs[1],
            // A new canary backendRef copies the stable's filters.
            json!({"name": "petstore-v2", "port": 80, "weight": canary, "filters": [{"type": "RequestHeaderModifier", "requestHeaderModifier": {"set": [{"name": "x-tier", "value": "stable"}]}}]})
        );
        let built = rebuild(&docs, &out);
        let want = vec![
            ("petstore-v1".to_string(), 1_000_000 - units),
            ("petstore-v2".to_string(), units),
        ];
        assert_eq!(weights(&built, 1), want, "{percent}%");
    }
}

#[test]
fn zero_and_full_weights_keep_both_backends() {
    let docs = docs(ROUTE, CANARY);
    let config = build(&docs).unwrap();
    let out = set_weight(
        &route_doc(&docs),
        rollout(&config),
        Weight::ZERO,
        StepOptions::default(),
    )
    .unwrap();
    let refs = &out["spec"]["rules"][1]["backendRefs"];
    assert_eq!(
        (refs[0]["weight"].clone(), refs[1]["weight"].clone()),
        (json!(1), json!(0))
    );
    let built = rebuild(&docs, &out);
    assert_eq!(weights(&built, 1)[0].1, 1_000_000);
}

#[test]
fn ab_testing_puts_a_named_rule_before_the_target_and_replaces_it_each_step() {
    let docs = docs(ROUTE, AB);
    let config = build(&docs).unwrap();
    let r = rollout(&config);
    let once = set_weight(&route_doc(&docs), r, Weight::ZERO, StepOptions::AB).unwrap();
    let twice = set_weight(&once, r, Weight::ZERO, StepOptions::AB).unwrap();
    assert_eq!(once, twice, "a second step replaces the A/B rule");
    let rules = twice["spec"]["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 3);
    assert_eq!(rules[1]["name"], "coalmine-ab-petstore");
    assert_eq!(
        rules[1]["matches"],
        json!([{
            "path": {"type": "PathPrefix", "value": "/api"},
            "headers": [{"name": "x-canary", "type": "Exact", "value": "true"}],
        }])
    );
    assert_eq!(
        rules[1]["filters"], rules[2]["filters"],
        "the rule's filters kept"
    );
    assert_eq!(
        rules[1]["backendRefs"],
        json!([{"name": "petstore-v2", "port": 80, "weight": 1, "filters": [{"type": "RequestHeaderModifier", "requestHeaderModifier": {"set": [{"name": "x-tier", "value": "stable"}]}}]}])
    );
    let built = rebuild(&docs, &twice);
    let ab = &built.virtual_services[0].http[1];
    assert_eq!(ab.name.as_deref(), Some("coalmine-ab-petstore"));
    assert!(ab.matches[0].headers.contains_key("x-canary"));
    assert_eq!(weights(&built, 1), vec![("petstore-v2".into(), 1_000_000)]);
    assert_eq!(weights(&built, 2)[0], ("petstore-v1".into(), 1_000_000));
    assert_eq!(r.target_route(&built.virtual_services[0]), Some(2));

    let rolled_back = rollback(&twice, r).unwrap();
    let rules = rolled_back["spec"]["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 2, "the A/B rule is gone");
    assert_eq!(rules[1]["backendRefs"].as_array().unwrap().len(), 1);
    assert_eq!(rules[1]["backendRefs"][0]["name"], "petstore-v1");
}

#[test]
fn finalize_moves_the_rule_to_the_canary_service() {
    let docs = docs(ROUTE, CANARY);
    let config = build(&docs).unwrap();
    let r = rollout(&config);
    // From a step: the canary backendRef exists and is kept.
    let step = set_weight(
        &route_doc(&docs),
        r,
        Weight::from_percent(50.0).unwrap(),
        StepOptions::default(),
    );
    let done = finalize(&step.unwrap(), r).unwrap();
    let refs = &done["spec"]["rules"][1]["backendRefs"];
    assert_eq!(
        refs,
        &json!([{"name": "petstore-v2", "port": 80, "filters": [{"type": "RequestHeaderModifier", "requestHeaderModifier": {"set": [{"name": "x-tier", "value": "stable"}]}}]}])
    );
    // Straight from the start: the stable's backendRef, filters and all, now names v2.
    let done = finalize(&route_doc(&docs), r).unwrap();
    let refs = done["spec"]["rules"][1]["backendRefs"].as_array().unwrap();
    assert_eq!(refs.len(), 1);
    assert_eq!(refs[0]["name"], "petstore-v2");
    assert!(refs[0]["filters"].is_array(), "{:#}", refs[0]);
    let built = rebuild(&docs, &done);
    assert_eq!(weights(&built, 1), vec![("petstore-v2".into(), 1_000_000)]);
}

#[test]
fn a_serviceentry_host_canary_is_named_as_a_hostname_backend() {
    let route = ROUTE.replace(
        "backendRefs: [{name: petstore-v3, port: 80}]",
        "backendRefs: [{name: petstore-v3, port: 80}]\n    - matches: [{path: {value: /x}}]\n      backendRefs: [{name: petstore-v1, port: 80}]",
    );
    let text = format!("{BASE}---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: ext}}\nspec:\n  hosts: [canary.example.org]\n  ports: [{{number: 80, name: http, protocol: HTTP}}]\n  resolution: STATIC\n  endpoints: [{{address: 10.0.0.9}}]\n---{route}---\napiVersion: coalmine.dev/v1alpha1\nkind: Rollout\nmetadata: {{name: petstore}}\nspec:\n  target: {{kind: HTTPRoute, name: petstore}}\n  stable: {{host: petstore-v1}}\n  canary: {{host: canary.example.org}}\n{CANARY}");
    let docs = parse_documents(&text).unwrap();
    let config = build(&docs).unwrap();
    let out = set_weight(
        &route_doc(&docs),
        rollout(&config),
        Weight::from_percent(10.0).unwrap(),
        StepOptions::default(),
    )
    .unwrap();
    assert_eq!(
        out["spec"]["rules"][1]["backendRefs"][1],
        json!({"group": "networking.istio.io", "kind": "Hostname", "name": "canary.example.org",
               "port": 80, "weight": 1})
    );
    let built = rebuild(&docs, &out);
    assert_eq!(weights(&built, 1)[1], ("canary".into(), 100_000));
}

fn errors(docs: &[Document]) -> Vec<(String, String)> {
    let errs = build(docs).expect_err("errors");
    errs.0.into_iter().map(|e| (e.field, e.message)).collect()
}

#[test]
fn an_http_route_target_names_services_and_matches_it_can_express() {
    let subsets = docs(ROUTE, CANARY)
        .into_iter()
        .map(|mut d| {
            if d.key.kind == Kind::Rollout {
                d.value["spec"]["stable"]["subset"] = json!("v1");
            }
            d
        })
        .collect::<Vec<_>>();
    let found = errors(&subsets);
    assert!(
        found
            .iter()
            .any(|(f, m)| f == "spec.stable.subset" && m.contains("not a subset")),
        "{found:?}"
    );

    let prefix = AB.replace("exact: \"true\"", "prefix: \"t\"");
    let found = errors(&docs(ROUTE, &prefix));
    assert_eq!(
        found,
        vec![(
            "spec.analysis.match[0].headers.x-canary".to_string(),
            "an HTTPRoute matches a header exactly or by regex".to_string()
        )]
    );

    let third = ROUTE.replace(
        "        - name: petstore-v1\n",
        "        - {name: petstore-v3, port: 80}\n        - name: petstore-v1\n",
    );
    let found = errors(&docs(&third, CANARY));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].1.starts_with(
            "spec.rules[1].backendRefs[0] of HTTPRoute default/petstore sends traffic to host"
        ),
        "{}",
        found[0].1
    );
}

#[test]
fn the_example_rolls_out_an_http_route() {
    let text = include_str!("../../../examples/rollout-http-route.yaml");
    let config = build(&parse_documents(text).unwrap()).unwrap();
    let r = rollout(&config);
    assert_eq!(
        (r.target.kind, r.target.name.as_str()),
        (Kind::HttpRoute, "petstore")
    );
    assert_eq!(r.target_route(&config.virtual_services[0]), Some(0));
}

const STICKY_MIRROR: &str = "  analysis:\n    stepWeights: [10, 50]\n    mirror: true\n    \
                             mirrorWeight: 12.5\n    \
                             sessionAffinity: {cookieName: canary, primaryCookieName: stable}\n";

#[test]
fn sticky_and_mirrored_steps_read_back_and_promotion_restores_the_rule() {
    let docs = docs(ROUTE, STICKY_MIRROR);
    let config = build(&docs).unwrap();
    let r = rollout(&config);
    let before = route_doc(&docs);
    let mirror = StepOptions {
        mirror: true,
        ..StepOptions::default()
    };
    let first = set_weight(&before, r, Weight::ZERO, mirror).unwrap();
    let second = set_weight(&first, r, Weight::from_percent(10.0).unwrap(), mirror).unwrap();
    let rules = second["spec"]["rules"].as_array().unwrap();
    let names: Vec<&str> = rules
        .iter()
        .map(|r| r["name"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        names,
        [
            "debug",
            "coalmine-sticky-canary-petstore",
            "coalmine-sticky-stable-petstore",
            ""
        ]
    );
    let target = &rules[3];
    let mirrors: Vec<&Value> = target["filters"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["type"] == "RequestMirror")
        .collect();
    assert_eq!(
        mirrors,
        [&json!({"type": "RequestMirror", "requestMirror": {
            "backendRef": {"name": "petstore-v2", "port": 80},
            "fraction": {"numerator": 125_000, "denominator": 1_000_000}}})],
        "one mirror however many steps"
    );
    // The canary backendRef sets its cookie beside the filters it copied from stable.
    let canary = &target["backendRefs"][1];
    let filters = canary["filters"].as_array().unwrap();
    assert_eq!(filters.len(), 2);
    let add = &filters[1]["responseHeaderModifier"]["add"];
    assert_eq!(add.as_array().unwrap().len(), 1);
    assert!(add[0]["value"].as_str().unwrap().starts_with("canary="));
    // The pinned rules match the cookie with the rule's own path, and mirror nothing.
    let pinned = &rules[1];
    assert_eq!(
        pinned["matches"][0]["path"],
        json!({"type": "PathPrefix", "value": "/api"})
    );
    assert_eq!(
        pinned["matches"][0]["headers"][0]["type"],
        "RegularExpression"
    );
    assert!(pinned["filters"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["type"] != "RequestMirror"));
    let built = rebuild(&docs, &second);
    let routes = &built.virtual_services[0].http;
    assert!(routes[3].mirror.is_some());
    assert!(routes[1].mirror.is_none());
    assert_eq!(
        weights(&built, 1),
        vec![("petstore-v2".into(), Weight::FULL.units())]
    );
    assert_eq!(
        weights(&built, 2),
        vec![("petstore-v1".into(), Weight::FULL.units())]
    );
    // Rollback gives back the rule as written; promotion the same with the canary.
    assert_eq!(rollback(&second, r).unwrap(), before);
    let mut promoted = before.clone();
    promoted["spec"]["rules"][1]["backendRefs"][0]["name"] = json!("petstore-v2");
    assert_eq!(finalize(&second, r).unwrap(), promoted);
}
