//! Make-before-break on a Delta stream (see `xds::warm`): one `#[test]` per rule.

use super::*;
use crate::xds::warm::fixtures::{names, view};

/// Plays Envoy on one Delta stream: remembers the last response per type.
struct Envoy {
    s: DeltaStream,
    last: [Option<DeltaResponse>; TypeKind::COUNT],
}

fn req(kind: TypeKind, subscribe: &[&str], nonce: &str) -> DeltaDiscoveryRequest {
    DeltaDiscoveryRequest {
        type_url: kind.type_url().into(),
        resource_names_subscribe: subscribe.iter().map(|s| s.to_string()).collect(),
        response_nonce: nonce.into(),
        ..Default::default()
    }
}

impl Envoy {
    fn new(v: Arc<View>) -> Envoy {
        Envoy {
            s: DeltaStream::new(v),
            last: Default::default(),
        }
    }

    /// Subscribed as Envoy does (CDS and LDS wildcard, EDS and RDS by name), with
    /// everything ACKed.
    fn synced(v: Arc<View>, eds: &[&str], rds: &[&str]) -> Envoy {
        let mut e = Envoy::new(v);
        for (kind, names) in [
            (TypeKind::Cluster, &[][..]),
            (TypeKind::Endpoint, eds),
            (TypeKind::Listener, &[][..]),
            (TypeKind::Route, rds),
        ] {
            e.send(req(kind, names, ""));
            e.ack(kind);
        }
        assert!(e.s.converged());
        e
    }

    fn take(&mut self, out: DeltaOutput) -> Vec<TypeKind> {
        out.responses
            .into_iter()
            .map(|r| {
                let kind = r.kind;
                self.last[kind.index()] = Some(r);
                kind
            })
            .collect()
    }

    fn send(&mut self, r: DeltaDiscoveryRequest) -> Vec<TypeKind> {
        let out = self.s.handle_request(&r);
        self.take(out)
    }

    fn view(&mut self, v: Arc<View>) -> Vec<TypeKind> {
        let out = self.s.handle_view(v);
        self.take(out)
    }

    fn nonce(&self, kind: TypeKind) -> String {
        self.last[kind.index()]
            .as_ref()
            .expect("a response")
            .nonce
            .clone()
    }

    fn ack(&mut self, kind: TypeKind) -> Vec<TypeKind> {
        let nonce = self.nonce(kind);
        self.send(req(kind, &[], &nonce))
    }

    fn got(&self, kind: TypeKind) -> (Vec<&str>, Vec<&str>) {
        let last = self.last[kind.index()].as_ref().expect("a response");
        let removed = last.removed.iter().map(String::as_str).collect();
        (names(&last.resources), removed)
    }
}

const C: TypeKind = TypeKind::Cluster;
const E: TypeKind = TypeKind::Endpoint;
const R: TypeKind = TypeKind::Route;

#[test]
fn a_route_to_a_new_cluster_waits_until_its_assignment_is_acked() {
    let mut e = Envoy::synced(view(&[("a", "1")], &[("r", &["a"])]), &["a"], &["r"]);
    assert_eq!(
        e.view(view(&[("a", "1"), ("b", "1")], &[("r", &["b"])])),
        [C]
    );
    assert_eq!(e.got(C), (vec!["b"], vec![]));
    assert!(e.ack(C).is_empty());
    // Envoy subscribes to the new cluster's assignment.
    let nonce = e.nonce(E);
    assert_eq!(e.send(req(E, &["b"], &nonce)), [E]);
    assert_eq!(e.got(E), (vec!["b"], vec![]));
    assert_eq!(e.ack(E), [R], "b is warm: the route goes");
    assert!(e.s.converged());
}

#[test]
fn a_dropped_cluster_is_removed_once_the_routes_leaving_it_are_acked() {
    let mut e = Envoy::synced(view(&[("a", "1")], &[("r", &["a"])]), &["a"], &["r"]);
    assert_eq!(e.view(view(&[("b", "1")], &[("r", &["b"])])), [C]);
    assert_eq!(e.got(C), (vec!["b"], vec![]), "a is not removed yet");
    e.ack(C);
    let nonce = e.nonce(E);
    e.send(req(E, &["b"], &nonce));
    assert_eq!(e.ack(E), [R]);
    assert_eq!(e.ack(R), [C, E], "routes ACKed: a and its assignment go");
    assert_eq!(e.got(C), (vec![], vec!["a"]));
    assert_eq!(e.got(E), (vec![], vec!["a"]));
}

#[test]
fn a_changed_cluster_gets_its_unchanged_assignment_again() {
    let mut e = Envoy::synced(view(&[("a", "1")], &[("r", &["a"])]), &["a"], &["r"]);
    assert_eq!(e.view(view(&[("a", "2")], &[("r", &["a"])])), [C, E]);
    assert_eq!(e.got(E), (vec!["a"], vec![]));
    assert!(!e.s.converged());
    e.ack(E);
    e.ack(C);
    assert!(e.s.converged());
}

#[test]
fn a_reconnecting_envoy_keeps_what_its_routes_may_use_until_they_are_acked() {
    // coalmine restarted mid-switch: the proxy holds a, the view has only b.
    let v = view(&[("b", "1")], &[("r", &["b"])]);
    let mut e = Envoy::new(v);
    let mut first = req(C, &[], "");
    first.initial_resource_versions = [("a".to_string(), "1".to_string())].into();
    e.send(first);
    assert_eq!(e.got(C), (vec!["b"], vec![]), "a is not removed");
    e.ack(C);
    let mut eds = req(E, &["a", "b"], "");
    eds.initial_resource_versions = [("a".to_string(), "1".to_string())].into();
    e.send(eds);
    assert_eq!(
        e.got(E),
        (vec!["b"], vec![]),
        "a's assignment is held, not removed"
    );
    e.ack(E);
    e.send(req(TypeKind::Listener, &[], ""));
    e.ack(TypeKind::Listener);
    let mut rds = req(R, &["r"], "");
    rds.initial_resource_versions = [("r".to_string(), "a".to_string())].into();
    assert_eq!(e.send(rds), [R], "b is warm: the route moves to it");
    assert_eq!(e.ack(R), [C, E]);
    assert_eq!(e.got(C), (vec![], vec!["a"]));
    assert!(e.s.converged());
}

#[test]
fn a_warm_cluster_left_in_the_same_revision_goes_after_the_route_ack() {
    let mut e = Envoy::synced(
        view(&[("a", "1"), ("b", "1")], &[("r", &["a", "b"])]),
        &["a", "b"],
        &["r"],
    );
    assert_eq!(
        e.view(view(&[("b", "1")], &[("r", &["b"])])),
        [R],
        "routes first"
    );
    assert_eq!(e.ack(R), [C, E], "then a and its assignment go");
    assert_eq!(e.got(C), (vec![], vec!["a"]));
}

#[test]
fn a_reconnect_whose_listeners_answered_before_its_clusters_still_drops_the_old_cluster() {
    // Envoy's first requests after a reconnect come in any order: here LDS first.
    let v = view(&[("b", "1")], &[("r", &["b"])]);
    let mut e = Envoy::new(v);
    e.send(req(TypeKind::Listener, &[], ""));
    e.ack(TypeKind::Listener);
    let mut first = req(C, &[], "");
    first.initial_resource_versions = [("a".to_string(), "1".to_string())].into();
    e.send(first);
    assert_eq!(e.got(C), (vec!["b"], vec![]), "a is kept for now");
    e.ack(C);
    let mut eds = req(E, &["a", "b"], "");
    eds.initial_resource_versions = [("a".to_string(), "1".to_string())].into();
    e.send(eds);
    e.ack(E);
    let mut rds = req(R, &["r"], "");
    rds.initial_resource_versions = [("r".to_string(), "a".to_string())].into();
    assert_eq!(e.send(rds), [R]);
    assert_eq!(e.ack(R), [C, E], "the listeners were ACKed already: a goes");
    assert!(e.s.converged());
}
