//! Fuzz target: text as the admin API's apply (and `--config`) reads it, through the
//! whole path short of the store: `parse_documents` → `build_config` → every class's
//! view (translated, encoded, hashed). Errors are fine; a panic is a bug.
//!
//! It also checks that a next snapshot's views, built incrementally from a fixed base
//! configuration's (and the base's from the input's), equal a full translation.
#![no_main]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock};

use coalmine::ingest::parse_documents;
use coalmine::resource_set::build_config;
use coalmine::model::{Config, Labels};
use coalmine::snapshot::{Snapshot, TypeKind, View};
use libfuzzer_sys::fuzz_target;

/// A small valid configuration: a Gateway, two services, a split route.
const BASE: &str = "
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  selector: {app: gw}
  servers:
  - port: {number: 8080, name: http, protocol: HTTP}
    hosts: [\"*\"]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: petstore}
spec:
  hosts: [petstore]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints:
  - {address: 10.0.0.1, ports: {http: 8081}, labels: {version: v1}}
  - {address: 10.0.0.2, ports: {http: 8082}, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: petstore}
spec:
  host: petstore
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: petstore}
spec:
  hosts: [\"*\"]
  gateways: [gw]
  http:
  - route:
    - destination: {host: petstore, subset: v1}
      weight: 90
    - destination: {host: petstore, subset: v2}
      weight: 10
";

fn base() -> &'static Arc<Config> {
    static BASE_CONFIG: OnceLock<Arc<Config>> = OnceLock::new();
    BASE_CONFIG.get_or_init(|| {
        let docs = parse_documents(BASE).expect("the base parses");
        Arc::new(build_config(&docs, &BTreeMap::new()).expect("the base is valid"))
    })
}

/// Each type's (name, version) pairs: equal views have equal content.
fn content(view: &View) -> Vec<Vec<(String, String)>> {
    TypeKind::ALL
        .iter()
        .map(|k| {
            let all = view.resources(*k).values();
            all.map(|r| (r.name.clone(), r.version.clone())).collect()
        })
        .collect()
}

/// The views a proxy can be served from `s`: each Gateway's own, the unselected
/// Envoys', the gRPC clients', and those of the labels of `gateways`' selectors.
fn views(s: &Snapshot, selectors: &[Labels]) -> Vec<Arc<View>> {
    let mut out: Vec<Arc<View>> = selectors.iter().map(|l| s.view_for(l)).collect();
    for gw in &s.config().gateways {
        out.push(s.view_for_gateways(BTreeSet::from([gw.key.clone()])));
    }
    out.push(s.view_for_gateways(BTreeSet::new()));
    out.push(s.grpc_view());
    out
}

/// The views of `new` built from `old`'s equal those of a full translation.
fn incremental_matches_full(old: &Arc<Config>, new: &Arc<Config>) {
    let selectors: Vec<Labels> = (old.gateways.iter().chain(&new.gateways))
        .map(|g| g.selector.clone())
        .collect();
    let prev = Snapshot::new(old.clone(), 1);
    views(&prev, &selectors);
    let next = Snapshot::next(&prev, new.clone(), 2);
    let full = Snapshot::new(new.clone(), 2);
    let (a, b) = (views(&next, &selectors), views(&full, &selectors));
    for (incremental, full) in a.iter().zip(&b) {
        assert_eq!(content(incremental), content(full), "incremental != full");
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(docs) = parse_documents(text) else {
        return;
    };
    let Ok(config) = build_config(&docs, &BTreeMap::new()) else {
        return;
    };
    let config = Arc::new(config);
    incremental_matches_full(base(), &config);
    incremental_matches_full(&config, base());
});
