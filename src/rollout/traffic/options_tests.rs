//! Tests of what a step does besides weights, on a VirtualService rich in rules of its
//! own: sticky sessions, mirroring, and that nothing else of the route changes before,
//! during and after a release.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::virtual_service::{finalize, rollback, set_weight};
use super::virtual_service_tests::mk_docs;
use super::{Error, StepOptions};
use crate::ingest::Document;
use crate::model::{Config, HeaderMatch, Kind, RouteAction, StringMatch, Weight};
use crate::resource_set::build_config;

/// Rules, matches, retries, a fault, header changes and CORS around the target route.
const VS: &str = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: petstore}
spec:
  hosts: [petstore.example.com]
  http:
    - name: debug
      match: [{headers: {x-debug: {exact: "1"}}}]
      fault: {abort: {httpStatus: 418, percentage: {value: 100}}}
      route: [{destination: {host: petstore, subset: v2}}]
    - name: main
      match: [{uri: {prefix: /api}}, {uri: {exact: /health}}]
      timeout: 5s
      retries: {attempts: 3, perTryTimeout: 1s, retryOn: "5xx,reset"}
      headers: {response: {set: {x-served-by: coalmine}}}
      corsPolicy: {allowOrigins: [{exact: "https://a.example"}], allowMethods: [GET]}
      route:
        - destination: {host: petstore, subset: v1}
          headers: {request: {set: {x-tier: stable}}}
    - name: rest
      route: [{destination: {host: petstore, subset: v1}}]
"#;

const STICKY: &str = "  analysis:\n    stepWeights: [10, 50]\n    \
                      sessionAffinity: {cookieName: flagger-cookie, maxAge: 21600}\n";
const MIRROR: &str =
    "  analysis: {stepWeight: 20, maxWeight: 40, mirror: true, mirrorWeight: 50}\n";

fn vs(docs: &[Document]) -> Value {
    let doc = docs.iter().find(|d| d.key.kind == Kind::VirtualService);
    doc.unwrap().value.clone()
}

fn rebuild(docs: &[Document], value: &Value) -> Config {
    let mut docs = docs.to_vec();
    let doc = docs.iter_mut().find(|d| d.key.kind == Kind::VirtualService);
    doc.unwrap().value = value.clone();
    build_config(&docs, &BTreeMap::new()).unwrap_or_else(|e| panic!("{e}\n{value:#}"))
}

fn percent(p: f64) -> Weight {
    Weight::from_percent(p).unwrap()
}

#[test]
fn sticky_steps_pin_each_cookie_to_its_side_and_promotion_removes_them() {
    let docs = mk_docs(VS, STICKY);
    let config = build_config(&docs, &BTreeMap::new()).unwrap();
    let rollout = &config.rollouts[0];
    let step = |doc: &Value, w| set_weight(doc, rollout, percent(w), StepOptions::default());
    let first = step(&vs(&docs), 10.0).unwrap();
    let second = step(&first, 50.0).unwrap();
    let http = second["spec"]["http"].as_array().unwrap();
    let names: Vec<&str> = http.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "debug",
            "coalmine-sticky-canary-petstore",
            "coalmine-sticky-stable-petstore",
            "main",
            "rest"
        ]
    );
    // Each side sets its cookie, once, however many steps went before.
    let cookie = |entry: &Value| entry["headers"]["response"]["add"]["Set-Cookie"].clone();
    let main = &http[3]["route"];
    let canary_cookie = cookie(&main[1]);
    let stable_cookie = cookie(&main[0]);
    let token = canary_cookie.as_str().unwrap();
    assert!(token.starts_with("flagger-cookie=") && token.ends_with("; Max-Age=21600; Path=/"));
    assert!(stable_cookie
        .as_str()
        .unwrap()
        .starts_with("flagger-cookie-primary="));
    assert_eq!(
        main[0]["headers"]["request"],
        json!({"set": {"x-tier": "stable"}})
    );
    // The pinned routes keep the route's own fields and AND its matches with the cookie.
    let pinned = &http[1];
    assert_eq!(pinned["retries"], http[3]["retries"]);
    assert_eq!(pinned["corsPolicy"], http[3]["corsPolicy"]);
    assert_eq!(pinned["match"].as_array().unwrap().len(), 2);
    assert_eq!(pinned["route"].as_array().unwrap().len(), 1);
    // The rewritten VirtualService is valid and routes cookies as it says.
    let built = rebuild(&docs, &second);
    let routes = &built.virtual_services[0].http;
    let value = token.split(';').next().unwrap().split('=').nth(1).unwrap();
    let HeaderMatch::Value(StringMatch::Regex(regex)) = &routes[1].matches[0].headers["cookie"]
    else {
        panic!("a cookie regex");
    };
    let re = regex::Regex::new(&format!("^(?:{regex})$")).unwrap();
    assert!(re.is_match(&format!("a=b; flagger-cookie={value}")));
    let RouteAction::Route(to) = &routes[1].action else {
        panic!("a route");
    };
    assert_eq!(to[0].destination.subset.as_deref(), Some("v2"));
    let RouteAction::Route(to) = &routes[2].action else {
        panic!("a route");
    };
    assert_eq!(to[0].destination.subset.as_deref(), Some("v1"));
    // Promotion and rollback: the cookies stop mattering, the route is as it was but
    // for the destination.
    let mut expected = vs(&docs);
    expected["spec"]["http"][1]["route"][0]["destination"] = json!({"host": "petstore.default.svc.cluster.local", "subset": "v2", "port": {"number": 80}});
    assert_eq!(finalize(&second, rollout).unwrap(), expected);
    assert_eq!(rollback(&second, rollout).unwrap(), vs(&docs));
}

#[test]
fn a_mirrored_step_copies_traffic_and_the_next_step_stops_it() {
    let docs = mk_docs(VS, MIRROR);
    let config = build_config(&docs, &BTreeMap::new()).unwrap();
    let rollout = &config.rollouts[0];
    assert_eq!(rollout.analysis.mirror, Some(percent(50.0)));
    let mirror = StepOptions {
        mirror: true,
        ..StepOptions::default()
    };
    let mirrored = set_weight(&vs(&docs), rollout, Weight::ZERO, mirror).unwrap();
    let main = &mirrored["spec"]["http"][1];
    assert_eq!(
        main["mirror"],
        json!({"host": "petstore.default.svc.cluster.local", "subset": "v2", "port": {"number": 80}})
    );
    assert_eq!(main["mirrorPercentage"], json!({"value": 50}));
    let built = rebuild(&docs, &mirrored);
    let m = built.virtual_services[0].http[1].mirror.as_ref().unwrap();
    assert_eq!(m.destination.subset.as_deref(), Some("v2"));
    let stepped = set_weight(&mirrored, rollout, percent(20.0), StepOptions::default()).unwrap();
    assert!(stepped["spec"]["http"][1].get("mirror").is_none());
    assert!(stepped["spec"]["http"][1].get("mirrorPercentage").is_none());
    assert_eq!(rollback(&mirrored, rollout).unwrap(), vs(&docs));
}

#[test]
fn a_route_that_mirrors_elsewhere_is_not_taken_over() {
    let taken = VS.replace(
        "      timeout: 5s\n",
        "      timeout: 5s\n      mirror: {host: petstore, subset: v1}\n",
    );
    let docs = mk_docs(&taken, MIRROR);
    // Refused when applied, naming the field...
    let err = build_config(&docs, &BTreeMap::new())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("spec.analysis.mirror") && err.contains("already mirrors"),
        "{err}"
    );
    // ...and never written by a step should the route gain a mirror during a release.
    let docs = mk_docs(VS, MIRROR);
    let config = build_config(&docs, &BTreeMap::new()).unwrap();
    let docs = mk_docs(&taken, MIRROR);
    let mirror = StepOptions {
        mirror: true,
        ..StepOptions::default()
    };
    let err = set_weight(&vs(&docs), &config.rollouts[0], Weight::ZERO, mirror).unwrap_err();
    assert!(matches!(err, Error::MirrorTaken("VirtualService", ref host) if host == "petstore"));
}

#[test]
fn every_step_and_the_promotion_change_only_the_target_routes_destinations() {
    let docs = mk_docs(VS, STICKY);
    let config = build_config(&docs, &BTreeMap::new()).unwrap();
    let rollout = &config.rollouts[0];
    let before = vs(&docs);
    let mut doc = before.clone();
    for w in [10.0, 50.0] {
        doc = set_weight(&doc, rollout, percent(w), StepOptions::default()).unwrap();
        // A user's edit during the release, elsewhere in the route, is kept.
        doc["spec"]["http"][0]["timeout"] = json!("2s");
        let http = doc["spec"]["http"].as_array().unwrap();
        let main = http.iter().find(|r| r["name"] == "main").unwrap();
        for (key, value) in before["spec"]["http"][1].as_object().unwrap() {
            if key != "route" {
                assert_eq!(&main[key], value, "{key} changed at {w} %");
            }
        }
        assert_eq!(http.last().unwrap(), &before["spec"]["http"][2]);
    }
    let done = finalize(&doc, rollout).unwrap();
    let mut expected = before.clone();
    expected["spec"]["http"][0]["timeout"] = json!("2s");
    expected["spec"]["http"][1]["route"][0]["destination"] = json!({"host": "petstore.default.svc.cluster.local", "subset": "v2", "port": {"number": 80}});
    assert_eq!(done, expected);
}
