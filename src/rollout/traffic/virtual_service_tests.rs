//! Tests of the VirtualService rewrites on real YAML, each result read back through
//! `build_config`; also the fixtures that the machine tests share.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::virtual_service::{finalize, rollback, set_weight};
use super::weight_json;
use super::StepOptions;
use crate::ingest::{parse_documents, Document};
use crate::model::{Config, Kind, RouteAction, Weight};
use crate::resource_set::build_config;

/// A service with subsets v1 and v2 and a VirtualService that sends all to v1.
const BASE: &str = r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: petstore}
spec:
  hosts: [petstore.default.svc.cluster.local]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints:
    - {address: 10.0.0.1, labels: {version: v1}}
    - {address: 10.0.0.2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: petstore}
spec:
  host: petstore
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
"#;

const VS: &str = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: petstore}
spec:
  hosts: [petstore.example.com]
  http:
    - name: debug
      match: [{headers: {x-debug: {exact: "1"}}}]
      route: [{destination: {host: petstore, subset: v2}}]
    - name: main
      match: [{uri: {prefix: /api}}]
      timeout: 5s
      route:
        - destination: {host: petstore, subset: v1}
          headers: {request: {set: {x-tier: stable}}}
"#;

/// The whole set: BASE, the VirtualService and a Rollout with this spec tail
/// (`strategy` and `analysis`, indented by two spaces).
pub(crate) fn mk_docs(vs: &str, tail: &str) -> Vec<Document> {
    let rollout = format!(
        "apiVersion: coalmine.dev/v1alpha1\nkind: Rollout\nmetadata: {{name: petstore}}\n\
         spec:\n  target: {{kind: VirtualService, name: petstore}}\n  \
         stable: {{host: petstore, subset: v1}}\n  canary: {{host: petstore, subset: v2}}\n{tail}"
    );
    parse_documents(&format!("{BASE}---{vs}---\n{rollout}")).expect("fixture parses")
}

pub(crate) fn mk_config(tail: &str) -> Config {
    build_config(&mk_docs(VS, tail), &BTreeMap::new()).expect("fixture is valid")
}

/// The set with the VirtualService replaced by `vs`, built (with the Rollout).
fn rebuild(docs: &[Document], vs: &Value) -> Config {
    let mut docs = docs.to_vec();
    let doc = docs
        .iter_mut()
        .find(|d| d.key.kind == Kind::VirtualService)
        .unwrap();
    doc.value = vs.clone();
    build_config(&docs, &BTreeMap::new()).unwrap_or_else(|e| panic!("{e}\n{vs:#}"))
}

fn vs_doc(docs: &[Document]) -> Value {
    docs.iter()
        .find(|d| d.key.kind == Kind::VirtualService)
        .unwrap()
        .value
        .clone()
}

/// (subset, percent) of each destination of route `i` in the built config.
fn weights(config: &Config, i: usize) -> Vec<(String, f64)> {
    let RouteAction::Route(ds) = &config.virtual_services[0].http[i].action else {
        panic!("route {i} has no destinations");
    };
    ds.iter()
        .map(|d| (d.destination.subset.clone().unwrap(), d.weight.percent()))
        .collect()
}

const CANARY: &str = "  analysis: {interval: 30s, stepWeights: [0.01, 10, 50]}\n";
const AB: &str = "  strategy: ABTesting\n  analysis:\n    iterations: 2\n    \
                  match: [{headers: {x-canary: {exact: \"true\"}}}]\n";

#[test]
fn a_canary_weight_moves_only_the_target_route() {
    let docs = mk_docs(VS, CANARY);
    let config = build_config(&docs, &BTreeMap::new()).unwrap();
    let rollout = &config.rollouts[0];
    let out = set_weight(
        &vs_doc(&docs),
        rollout,
        Weight::from_percent(10.0).unwrap(),
        StepOptions::default(),
    )
    .unwrap();
    let http = &out["spec"]["http"];
    assert_eq!(
        http[0],
        vs_doc(&docs)["spec"]["http"][0],
        "other routes untouched"
    );
    assert_eq!(http[1]["timeout"], "5s");
    assert_eq!(http[1]["match"], json!([{"uri": {"prefix": "/api"}}]));
    assert_eq!(
        http[1]["route"],
        json!([
            {"destination": {"host": "petstore", "subset": "v1"}, "weight": 90,
             "headers": {"request": {"set": {"x-tier": "stable"}}}},
            // A new canary entry copies the stable's (its header changes too).
            {"destination": {"host": "petstore.default.svc.cluster.local", "subset": "v2",
                             "port": {"number": 80}}, "weight": 10,
             "headers": {"request": {"set": {"x-tier": "stable"}}}}
        ])
    );
    assert_eq!(out["spec"]["hosts"], json!(["petstore.example.com"]));
    let built = rebuild(&docs, &out);
    assert_eq!(
        weights(&built, 1),
        vec![("v1".into(), 90.0), ("v2".into(), 10.0)]
    );
}

#[test]
fn fractional_weights_are_written_exactly() {
    assert_eq!(
        weight_json(Weight::from_percent(0.01).unwrap()).to_string(),
        "0.01"
    );
    assert_eq!(
        weight_json(Weight::from_percent(99.99).unwrap()).to_string(),
        "99.99"
    );
    assert_eq!(
        weight_json(Weight::from_percent(0.1).unwrap()).to_string(),
        "0.1"
    );
    assert_eq!(weight_json(Weight::FULL).to_string(), "100");
    let docs = mk_docs(VS, CANARY);
    let config = build_config(&docs, &BTreeMap::new()).unwrap();
    let rollout = &config.rollouts[0];
    for (canary, stable) in [(0.01, 99.99), (0.1, 99.9), (0.0001, 99.9999)] {
        let weight = Weight::from_percent(canary).unwrap();
        let out = set_weight(&vs_doc(&docs), rollout, weight, StepOptions::default()).unwrap();
        let built = rebuild(&docs, &out);
        let RouteAction::Route(ds) = &built.virtual_services[0].http[1].action else {
            panic!()
        };
        assert_eq!(ds[1].weight, weight);
        assert_eq!(ds[0].weight, Weight::from_percent(stable).unwrap());
    }
}

#[test]
fn ab_testing_adds_a_matching_route_before_the_target() {
    let docs = mk_docs(VS, AB);
    let config = build_config(&docs, &BTreeMap::new()).unwrap();
    let rollout = &config.rollouts[0];
    let out = set_weight(&vs_doc(&docs), rollout, Weight::ZERO, StepOptions::AB).unwrap();
    let http = out["spec"]["http"].as_array().unwrap();
    assert_eq!(http.len(), 3);
    assert_eq!(http[1]["name"], "coalmine-ab-petstore");
    assert_eq!(
        http[1]["match"],
        json!([{"uri": {"prefix": "/api"}, "headers": {"x-canary": {"exact": "true"}}}])
    );
    assert_eq!(http[1]["timeout"], "5s");
    assert_eq!(http[1]["route"].as_array().unwrap().len(), 1);
    assert_eq!(http[1]["route"][0]["weight"], 100);
    assert_eq!(http[2]["name"], "main");
    let built = rebuild(&docs, &out);
    assert_eq!(weights(&built, 1), vec![("v2".into(), 100.0)]);
    assert_eq!(
        weights(&built, 2),
        vec![("v1".into(), 100.0), ("v2".into(), 0.0)]
    );
    // Applying it again replaces the A/B route rather than adding a second one.
    let again = set_weight(&out, rollout, Weight::ZERO, StepOptions::AB).unwrap();
    assert_eq!(again, out);
    // Finalize from there: no A/B route, the canary takes the stable's place.
    let done = finalize(&out, rollout).unwrap();
    let http = done["spec"]["http"].as_array().unwrap();
    assert_eq!(http.len(), 2);
    assert_eq!(http[1]["name"], "main");
    let built = rebuild(&docs, &done);
    assert_eq!(weights(&built, 1), vec![("v2".into(), 100.0)]);
    // The Rollout still validates against the promoted VirtualService.
    assert_eq!(built.rollouts.len(), 1);
}

#[test]
fn finalize_keeps_the_stable_entry_fields_for_the_canary() {
    let docs = mk_docs(VS, CANARY);
    let config = build_config(&docs, &BTreeMap::new()).unwrap();
    let done = finalize(&vs_doc(&docs), &config.rollouts[0]).unwrap();
    assert_eq!(
        done["spec"]["http"][1]["route"],
        json!([{"destination": {"host": "petstore.default.svc.cluster.local", "subset": "v2",
                                "port": {"number": 80}},
                "headers": {"request": {"set": {"x-tier": "stable"}}}}])
    );
}

#[test]
fn rollback_sends_everything_to_stable_in_one_document() {
    let docs = mk_docs(VS, AB);
    let config = build_config(&docs, &BTreeMap::new()).unwrap();
    let rollout = &config.rollouts[0];
    let ab = set_weight(&vs_doc(&docs), rollout, Weight::ZERO, StepOptions::AB).unwrap();
    let back = rollback(&ab, rollout).unwrap();
    // Exactly as before the release: a lone entry needs no weight.
    assert_eq!(back, vs_doc(&docs));
    let built = rebuild(&docs, &back);
    assert_eq!(weights(&built, 1), vec![("v1".into(), 100.0)]);
}

#[test]
fn a_document_without_the_route_is_an_error() {
    let docs = mk_docs(VS, CANARY);
    let config = build_config(&docs, &BTreeMap::new()).unwrap();
    let other = json!({"metadata": {"namespace": "default"}, "spec": {"http": [
        {"route": [{"destination": {"host": "other"}}]}
    ]}});
    let err = set_weight(
        &other,
        &config.rollouts[0],
        Weight::ZERO,
        StepOptions::default(),
    )
    .unwrap_err();
    assert_eq!(err, super::Error::NoTargetRoute("VirtualService"));
}
