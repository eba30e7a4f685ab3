//! Every incremental path gives exactly the view a full translation gives.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::*;
use crate::model::Labels;
use crate::snapshot::{Snapshot, TypeKind, View};
use crate::{ingest, resource_set};

const BASE: &str = r#"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  selector: {app: gw}
  servers:
  - port: {number: 8080, name: http, protocol: HTTP}
    hosts: ["*"]
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
kind: ServiceEntry
metadata: {name: other}
spec:
  hosts: [other]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints:
  - {address: 10.0.1.1}
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
  hosts: ["*"]
  gateways: [gw]
  http:
  - match: [{uri: {prefix: /other}}]
    route:
    - destination: {host: other}
  - route:
    - destination: {host: petstore, subset: v1}
      weight: 90
    - destination: {host: petstore, subset: v2}
      weight: 10
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: petstore-mesh}
spec:
  hosts: [petstore]
  http:
  - route:
    - destination: {host: petstore, subset: v1}
      weight: 90
    - destination: {host: petstore, subset: v2}
      weight: 10
"#;

fn mk_config(yaml: &str) -> Arc<Config> {
    let docs = ingest::parse_documents(yaml).unwrap();
    Arc::new(resource_set::build_config(&docs, &BTreeMap::new()).unwrap())
}

fn content(view: &View) -> Vec<Vec<(String, String)>> {
    TypeKind::ALL
        .iter()
        .map(|k| {
            view.resources(*k)
                .values()
                .map(|r| (r.name.clone(), r.version.clone()))
                .collect()
        })
        .collect()
}

/// The next snapshot's view, built from the previous one, equals a full translation,
/// for every class: the gateway's, the unselected Envoys', the gRPC clients'.
/// Returns, for the gateway class, the previous and the next view.
fn assert_incremental_matches_full(
    old: &str,
    new: &str,
    expected: Delta,
) -> (Arc<View>, Arc<View>) {
    every_class_matches_full(old, new, expected).swap_remove(0)
}

/// How a test picks one class's view of a snapshot.
type ViewOf<'a> = &'a dyn Fn(&Snapshot) -> Arc<View>;

/// As [`assert_incremental_matches_full`], returning the (previous, next) views of
/// the gateway, unselected and gRPC classes, in that order.
fn every_class_matches_full(old: &str, new: &str, expected: Delta) -> Vec<(Arc<View>, Arc<View>)> {
    let (old, new) = (mk_config(old), mk_config(new));
    assert_eq!(classify(&old, &new), expected);
    let gateway: Labels = [("app".to_string(), "gw".to_string())].into();
    let classes: [ViewOf; 3] = [
        &|s| s.view_for(&gateway),
        &|s| s.view_for(&Labels::new()),
        &|s| s.grpc_view(),
    ];
    let mut views = Vec::new();
    for view_of in classes {
        let prev = Snapshot::new(old.clone(), 1);
        let before = view_of(&prev);
        let next = Snapshot::next(&prev, new.clone(), 2);
        let full = Snapshot::new(new.clone(), 2);
        let after = view_of(&next);
        assert_eq!(content(&after), content(&view_of(&full)));
        views.push((before, after));
    }
    views
}

/// Whether the next view keeps the previous view's resource of a type and name (the
/// same shared bytes, not a new encoding).
fn reused(before: &View, after: &View, kind: TypeKind, name: &str) -> bool {
    Arc::ptr_eq(&before.resources(kind)[name], &after.resources(kind)[name])
}

#[test]
fn endpoint_change_rebuilds_only_assignments_and_matches_full() {
    let new = BASE.replace("http: 8082}", "http: 9082}");
    let hosts = BTreeSet::from(["petstore".to_string()]);
    let (before, after) = assert_incremental_matches_full(BASE, &new, Delta::Endpoints(hosts));
    assert!(reused(
        &before,
        &after,
        TypeKind::Endpoint,
        "outbound|80|v1|petstore"
    ));
    assert!(!reused(
        &before,
        &after,
        TypeKind::Endpoint,
        "outbound|80|v2|petstore"
    ));
    assert!(reused(&before, &after, TypeKind::Route, "http.8080"));
    assert!(reused(
        &before,
        &after,
        TypeKind::Cluster,
        "outbound|80|v2|petstore"
    ));
}

#[test]
fn weight_change_rebuilds_only_routes_and_matches_full() {
    let new = BASE
        .replace("weight: 90", "weight: 50")
        .replace("weight: 10", "weight: 50");
    let (before, after) = assert_incremental_matches_full(BASE, &new, Delta::Routes);
    assert!(reused(
        &before,
        &after,
        TypeKind::Cluster,
        "outbound|80|v1|petstore"
    ));
    assert!(reused(
        &before,
        &after,
        TypeKind::Endpoint,
        "outbound|80|v1|petstore"
    ));
    assert!(!reused(&before, &after, TypeKind::Route, "http.8080"));
}

#[test]
fn a_route_to_a_new_cluster_falls_back_to_full_and_matches() {
    let new = BASE.replace(
        "- destination: {host: other}",
        "- destination: {host: petstore}",
    );
    assert_incremental_matches_full(BASE, &new, Delta::Routes);
}

#[test]
fn other_changes_and_no_change() {
    let new = BASE.replace(
        "- {name: v2, labels: {version: v2}}",
        "- {name: v2, labels: {version: v3}}",
    );
    assert_incremental_matches_full(BASE, &new, Delta::Other);
    assert_incremental_matches_full(BASE, BASE, Delta::Same);
}

#[test]
fn cluster_names_parse_back_to_destinations() {
    let d = destination_of("outbound|80|v1|petstore.default.svc.cluster.local").unwrap();
    assert_eq!(
        (d.port, d.subset.as_deref(), d.host.as_str()),
        (80, Some("v1"), "petstore.default.svc.cluster.local")
    );
    assert_eq!(destination_of("outbound|80||web").unwrap().subset, None);
    assert!(destination_of("coalmine_xds").is_none());
}

#[test]
fn grpc_class_rebuilds_only_what_changed_and_matches_full() {
    let new = BASE
        .replace("weight: 90", "weight: 50")
        .replace("weight: 10", "weight: 50");
    let views = every_class_matches_full(BASE, &new, Delta::Routes);
    let (before, after) = &views[2];
    let cluster = "outbound|80|v1|petstore";
    assert!(reused(before, after, TypeKind::Cluster, cluster));
    assert!(reused(before, after, TypeKind::Endpoint, cluster));
    assert!(!reused(before, after, TypeKind::Route, "petstore:80"));
    assert!(reused(before, after, TypeKind::Route, "other:80"));
    assert!(after
        .resources(TypeKind::Listener)
        .contains_key("petstore:80"));

    let moved = BASE.replace("http: 8082}", "http: 9082}");
    let hosts = BTreeSet::from(["petstore".to_string()]);
    let views = every_class_matches_full(BASE, &moved, Delta::Endpoints(hosts));
    let (before, after) = &views[2];
    assert!(reused(before, after, TypeKind::Endpoint, cluster));
    assert!(!reused(
        before,
        after,
        TypeKind::Endpoint,
        "outbound|80|v2|petstore"
    ));
}

#[test]
fn grpc_dns_cluster_whose_subset_empties_matches_full() {
    const DNS: &str = r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api}
spec:
  hosts: [api.example.org]
  ports: [{number: 443, name: grpc, protocol: GRPC}]
  resolution: DNS
  endpoints:
  - {address: a.example.org, labels: {version: v1}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: api}
spec:
  host: api.example.org
  subsets:
  - {name: v1, labels: {version: v1}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: api}
spec:
  hosts: [api.example.org]
  http:
  - route:
    - destination: {host: api.example.org, subset: v1}
"#;
    let emptied = DNS.replace(
        "{address: a.example.org, labels: {version: v1}}",
        "{address: a.example.org, labels: {version: v2}}",
    );
    let hosts = BTreeSet::from(["api.example.org".to_string()]);
    every_class_matches_full(DNS, &emptied, Delta::Endpoints(hosts.clone()));
    every_class_matches_full(&emptied, DNS, Delta::Endpoints(hosts));
}

const JWT: &str = r#"
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt}
spec:
  selector: {matchLabels: {app: gw}}
  jwtRules: [{issuer: i, jwksUri: "http://keys.test/jwks"}]
"#;

#[test]
fn a_route_change_beside_a_key_cluster_stays_incremental() {
    let old = format!("{BASE}{JWT}");
    let new = old
        .replace("weight: 90", "weight: 50")
        .replace("weight: 10", "weight: 50");
    let (before, after) = assert_incremental_matches_full(&old, &new, Delta::Routes);
    let jwks = "coalmine|jwks|keys.test|80";
    assert!(reused(&before, &after, TypeKind::Cluster, jwks));
    assert!(after.uses(jwks), "the listener uses its key cluster");
}

#[test]
fn a_policy_change_translates_in_full() {
    let old = format!("{BASE}{JWT}");
    let new = old.replace("issuer: i,", "issuer: j,");
    assert_incremental_matches_full(&old, &new, Delta::Other);
    assert_incremental_matches_full(BASE, &old, Delta::Other);
}
