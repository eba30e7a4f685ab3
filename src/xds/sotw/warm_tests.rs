//! Make-before-break on a SotW stream (see `xds::warm`): one `#[test]` per rule.

use super::tests::mk_req as req;
use super::*;
use crate::xds::warm::fixtures::{names, view, with_listener_using};
use envoy_types::pb::google::rpc::Status;

/// Plays Envoy on one stream: remembers the last response per type and answers it.
struct Envoy {
    s: SotwStream,
    last: [Option<Response>; TypeKind::COUNT],
}

impl Envoy {
    /// A stream subscribed as Envoy does (CDS and LDS wildcard, EDS and RDS by name),
    /// with everything of `v` ACKed.
    fn synced(v: Arc<View>, eds: &[&str], rds: &[&str]) -> Envoy {
        let mut e = Envoy {
            s: SotwStream::new(v),
            last: Default::default(),
        };
        for (kind, names) in [
            (TypeKind::Cluster, &[][..]),
            (TypeKind::Endpoint, eds),
            (TypeKind::Listener, &[][..]),
            (TypeKind::Route, rds),
        ] {
            let out = e.s.handle_request(&req(kind, names, "", ""));
            e.take(out);
            e.ack(kind, names);
        }
        assert!(e.s.converged());
        e
    }

    /// Keeps the responses; returns their types in order.
    fn take(&mut self, out: Output) -> Vec<TypeKind> {
        out.responses
            .into_iter()
            .map(|r| {
                let kind = r.kind;
                self.last[kind.index()] = Some(r);
                kind
            })
            .collect()
    }

    fn view(&mut self, v: Arc<View>) -> Vec<TypeKind> {
        let out = self.s.handle_view(v);
        self.take(out)
    }

    /// ACKs the last response of `kind`, subscribed to `names`.
    fn ack(&mut self, kind: TypeKind, names: &[&str]) -> Vec<TypeKind> {
        let last = self.last[kind.index()].clone().expect("a response to ACK");
        let out = self
            .s
            .handle_request(&req(kind, names, &last.version, &last.nonce));
        self.take(out)
    }

    fn nack(&mut self, kind: TypeKind) -> Vec<TypeKind> {
        let last = self.last[kind.index()].clone().expect("a response to NACK");
        let mut r = req(kind, &[], "", &last.nonce);
        r.error_detail = Some(Status {
            code: 3,
            message: "rejected".into(),
            details: vec![],
        });
        let out = self.s.handle_request(&r);
        self.take(out)
    }

    fn got(&self, kind: TypeKind) -> Vec<&str> {
        names(
            &self.last[kind.index()]
                .as_ref()
                .expect("a response")
                .resources,
        )
    }
}

const C: TypeKind = TypeKind::Cluster;
const E: TypeKind = TypeKind::Endpoint;
const R: TypeKind = TypeKind::Route;
const L: TypeKind = TypeKind::Listener;

#[test]
fn a_route_to_a_new_cluster_waits_until_its_assignment_is_acked() {
    let mut e = Envoy::synced(view(&[("a", "1")], &[("r", &["a"])]), &["a"], &["r"]);
    let v2 = view(&[("a", "1"), ("b", "1")], &[("r", &["b"])]);
    assert_eq!(e.view(v2), [C], "the cluster goes first, the route waits");
    assert_eq!(e.got(C), ["a", "b"]);
    assert!(!e.s.converged());
    assert!(e.ack(C, &[]).is_empty(), "b is not subscribed to yet");
    // Envoy subscribes to b's assignment (ACKing the last EDS response).
    assert_eq!(e.ack(E, &["a", "b"]), [E]);
    assert_eq!(e.got(E), ["b"]);
    assert_eq!(e.ack(E, &["a", "b"]), [R], "b is warm: the route goes");
    assert_eq!(e.got(R), ["r"]);
    assert!(e.s.converged());
    assert!(e.ack(R, &["r"]).is_empty());
}

#[test]
fn a_dropped_cluster_stays_until_the_routes_leaving_it_are_acked() {
    let mut e = Envoy::synced(view(&[("a", "1")], &[("r", &["a"])]), &["a"], &["r"]);
    // One revision adds b, moves the route to it and drops a.
    assert_eq!(e.view(view(&[("b", "1")], &[("r", &["b"])])), [C]);
    assert_eq!(e.got(C), ["a", "b"], "a stays while the proxy routes to it");
    e.ack(C, &[]);
    e.ack(E, &["a", "b"]);
    assert_eq!(e.ack(E, &["a", "b"]), [R]);
    assert!(!e.s.converged());
    assert_eq!(e.ack(R, &["r"]), [C], "routes ACKed: a goes");
    assert_eq!(e.got(C), ["b"]);
    e.ack(C, &[]);
    assert!(e.ack(E, &["b"]).is_empty());
    assert!(e.s.converged());
}

#[test]
fn a_dropped_cluster_waits_for_an_unacked_route_change_of_an_earlier_revision() {
    let mut e = Envoy::synced(
        view(&[("a", "1"), ("b", "1")], &[("r", &["a"])]),
        &["a", "b"],
        &["r"],
    );
    assert_eq!(
        e.view(view(&[("a", "1"), ("b", "1")], &[("r", &["b"])])),
        [R]
    );
    // Before the proxy ACKs the route, the next revision drops a.
    assert!(e.view(view(&[("b", "1")], &[("r", &["b"])])).is_empty());
    assert_eq!(e.ack(R, &["r"]), [C]);
    assert_eq!(e.got(C), ["b"]);
}

#[test]
fn a_changed_cluster_gets_its_assignment_again_right_after_it() {
    let mut e = Envoy::synced(view(&[("a", "1")], &[("r", &["a"])]), &["a"], &["r"]);
    // A new load-balancing policy: same assignment, but Envoy re-warms the cluster
    // (and ACKs the clusters only once it has the assignment).
    assert_eq!(e.view(view(&[("a", "2")], &[("r", &["a"])])), [C, E]);
    assert_eq!(e.got(E), ["a"]);
    assert!(!e.s.converged());
    assert!(e.ack(E, &["a"]).is_empty());
    assert!(e.ack(C, &[]).is_empty());
    assert!(e.s.converged());
}

#[test]
fn a_route_change_between_warm_clusters_goes_at_once() {
    let mut e = Envoy::synced(
        view(&[("a", "1"), ("b", "1")], &[("r", &["a"])]),
        &["a", "b"],
        &["r"],
    );
    assert_eq!(
        e.view(view(&[("a", "1"), ("b", "1")], &[("r", &["a", "b"])])),
        [R]
    );
    assert!(e.s.converged());
}

#[test]
fn a_route_to_an_absent_cluster_waits_for_it_then_for_the_grace() {
    let mut e = Envoy::synced(view(&[("a", "1")], &[("r", &["a"])]), &["a"], &["r"]);
    // The route moves to c before c exists (a Kubernetes Service not seen yet).
    assert!(e.view(view(&[("a", "1")], &[("r", &["c"])])).is_empty());
    assert!(e.s.waiting_absent());
    assert!(!e.s.converged());
    // c arrives: it warms, then the route goes.
    assert_eq!(
        e.view(view(&[("a", "1"), ("c", "1")], &[("r", &["c"])])),
        [C]
    );
    assert!(!e.s.waiting_absent());
    e.ack(C, &[]);
    e.ack(E, &["a", "c"]);
    assert_eq!(e.ack(E, &["a", "c"]), [R]);

    // Another absent cluster that never comes: the route goes after the grace.
    assert!(e
        .view(view(&[("a", "1"), ("c", "1")], &[("r", &["d"])]))
        .is_empty());
    assert!(e.s.waiting_absent());
    let out = e.s.absent_expired();
    e.take(out);
    assert_eq!(e.got(R), ["r"]);
    assert_eq!(
        e.last[R.index()].as_ref().unwrap().resources[0].version,
        "d"
    );
}

#[test]
fn a_cluster_deleted_under_its_route_stays_for_the_grace() {
    let mut e = Envoy::synced(view(&[("a", "1")], &[("r", &["a"])]), &["a"], &["r"]);
    // The Service is deleted before the route moves off it.
    assert!(e.view(view(&[], &[("r", &["a"])])).is_empty());
    assert!(e.s.waiting_absent());
    // The route moves to b meanwhile: a goes once that is ACKed.
    assert_eq!(e.view(view(&[("b", "1")], &[("r", &["b"])])), [C]);
    assert_eq!(e.got(C), ["a", "b"]);
    e.ack(C, &[]);
    e.ack(E, &["a", "b"]);
    assert_eq!(e.ack(E, &["a", "b"]), [R]);
    assert_eq!(e.ack(R, &["r"]), [C]);
    assert_eq!(e.got(C), ["b"]);
    assert!(!e.s.waiting_absent());

    // Deleted for good: after the grace the cluster goes and the route answers 503.
    assert!(e.view(view(&[], &[("r", &["b"])])).is_empty());
    e.ack(C, &[]);
    let out = e.s.absent_expired();
    e.take(out);
    assert_eq!(e.got(C), Vec::<&str>::new());
}

#[test]
fn a_nacked_cluster_holds_that_proxy_and_nobody_else() {
    let v1 = view(&[("a", "1")], &[("r", &["a"])]);
    let v2 = view(&[("a", "1"), ("b", "1")], &[("r", &["b"])]);
    let mut slow = Envoy::synced(v1.clone(), &["a"], &["r"]);
    let mut fast = Envoy::synced(v1, &["a"], &["r"]);
    slow.view(v2.clone());
    fast.view(v2);
    assert!(slow.nack(C).is_empty());
    fast.ack(C, &[]);
    fast.ack(E, &["a", "b"]);
    assert_eq!(fast.ack(E, &["a", "b"]), [R]);
    assert!(fast.s.converged());
    assert!(
        !slow.s.converged(),
        "the NACKing proxy keeps its working routes"
    );
}

#[test]
fn a_client_subscribing_to_clusters_by_name_is_never_held() {
    // gRPC asks for the clusters its routes name, after it has the routes.
    let v1 = view(&[("a", "1")], &[("r", &["a"])]);
    let mut s = SotwStream::new(v1);
    let out = s.handle_request(&req(R, &["r"], "", ""));
    let last = &out.responses[0];
    s.handle_request(&req(R, &["r"], &last.version, &last.nonce));
    s.handle_request(&req(C, &["a"], "", ""));
    let out = s.handle_view(view(&[("a", "1"), ("b", "1")], &[("r", &["b"])]));
    let kinds: Vec<TypeKind> = out.responses.iter().map(|r| r.kind).collect();
    assert_eq!(kinds, [R]);
    assert!(s.converged());
}

#[test]
fn a_proxy_reconnecting_with_the_previous_revision_keeps_its_clusters_until_routes_move() {
    // coalmine restarted mid-switch: the proxy holds v1 (route to a), the view is v2.
    let v1 = view(&[("a", "1")], &[("r", &["a"])]);
    let v2 = view(&[("b", "1")], &[("r", &["b"])]);
    let held = Envoy::synced(v1.clone(), &["a"], &["r"]);
    let version = |k: TypeKind| held.s.sent(k).unwrap().to_string();
    let mut e = Envoy {
        s: SotwStream::new(v2).with_previous(Some(v1)),
        last: Default::default(),
    };
    let out = e.s.handle_request(&req(C, &[], &version(C), ""));
    e.take(out);
    assert_eq!(e.got(C), ["a", "b"], "a stays: the proxy's routes use it");
    e.ack(C, &[]);
    let out = e.s.handle_request(&req(E, &["a", "b"], &version(E), ""));
    e.take(out);
    e.ack(E, &["a", "b"]);
    let out = e.s.handle_request(&req(
        TypeKind::Listener,
        &[],
        &version(TypeKind::Listener),
        "",
    ));
    assert!(out.responses.is_empty(), "the listener is current");
    let out = e.s.handle_request(&req(R, &["r"], &version(R), ""));
    e.take(out);
    assert_eq!(
        e.last[R.index()].as_ref().unwrap().resources[0].version,
        "b"
    );
    assert_eq!(e.ack(R, &["r"]), [C]);
    assert_eq!(e.got(C), ["b"]);
    e.ack(C, &[]);
    assert!(e.ack(E, &["b"]).is_empty());
    assert!(e.s.converged());
}

#[test]
fn traffic_moves_to_a_cluster_only_once_it_has_endpoints() {
    use crate::xds::warm::fixtures::view_with_empty;
    let mut e = Envoy::synced(view(&[("a", "1")], &[("r", &["a"])]), &["a"], &["r"]);
    // A Kubernetes Service seen before its EndpointSlice, and the route moved to it.
    let v2 = view_with_empty(&[("a", "1"), ("b", "1")], &["b"], &[("r", &["b"])]);
    assert_eq!(e.view(v2), [C]);
    e.ack(C, &[]);
    e.ack(E, &["a", "b"]);
    assert!(
        e.ack(E, &["a", "b"]).is_empty(),
        "b is warm but empty: the route waits"
    );
    assert!(e.s.waiting_absent());
    // The slice arrives: the route goes.
    let v3 = view(&[("a", "1"), ("b", "1")], &[("r", &["b"])]);
    assert_eq!(e.view(v3), [E, R]);
    assert!(!e.s.waiting_absent());
}

#[test]
fn endpoints_stay_for_the_grace_when_a_used_cluster_goes_empty() {
    use crate::xds::warm::fixtures::view_with_empty;
    let mut e = Envoy::synced(view(&[("a", "1")], &[("r", &["a"])]), &["a"], &["r"]);
    // The Service behind a is deleted before the route leaves it.
    let emptied = view_with_empty(&[("a", "1")], &["a"], &[("r", &["a"])]);
    assert!(e.view(emptied.clone()).is_empty(), "a keeps its endpoints");
    assert!(e.s.waiting_absent());
    // The route moves to b: a is dropped once the move is ACKed, never emptied.
    let moved = view_with_empty(&[("a", "1"), ("b", "1")], &["a"], &[("r", &["b"])]);
    assert_eq!(e.view(moved), [C]);
    e.ack(C, &[]);
    e.ack(E, &["a", "b"]);
    assert_eq!(e.ack(E, &["a", "b"]), [R]);
    assert_eq!(
        e.got(E),
        ["b"],
        "a keeps its endpoints while the route moves"
    );
    // Once no route uses a, its empty assignment may go.
    assert_eq!(e.ack(R, &["r"]), [E]);
    assert_eq!(e.got(E), ["a"]);
    assert!(!e.s.waiting_absent());

    // Emptied for good under a route: after the grace the empty assignment goes.
    let mut e = Envoy::synced(view(&[("a", "1")], &[("r", &["a"])]), &["a"], &["r"]);
    assert!(e.view(emptied).is_empty());
    let out = e.s.absent_expired();
    e.take(out);
    assert_eq!(
        e.last[E.index()].as_ref().unwrap().resources[0].version,
        "0"
    );
}

#[test]
fn a_new_proxy_gets_routes_once_its_first_clusters_are_warm() {
    let mut e = Envoy {
        s: SotwStream::new(view(&[("a", "1")], &[("r", &["a"])])),
        last: Default::default(),
    };
    let out = e.s.handle_request(&req(C, &[], "", ""));
    assert_eq!(e.take(out), [C]);
    // A client asking for routes before its clusters are warm gets none yet.
    let out = e.s.handle_request(&req(R, &["r"], "", ""));
    assert_eq!(e.take(out), [R]);
    assert_eq!(e.got(R), Vec::<&str>::new());
    let out = e.s.handle_request(&req(E, &["a"], "", ""));
    assert_eq!(e.take(out), [E]);
    e.ack(E, &["a"]);
    assert_eq!(e.ack(C, &[]), [R]);
    assert_eq!(e.got(R), ["r"]);
}

#[test]
fn a_warm_cluster_left_in_the_same_revision_goes_after_the_route_ack() {
    // A canary promoted: the route moves to b (warm already) and a is dropped at once.
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
    assert_eq!(e.ack(R, &["r"]), [C], "then a goes");
    assert_eq!(e.got(C), ["b"]);
}

#[test]
fn a_listener_whose_jwt_filter_needs_a_new_cluster_waits_until_it_is_warm() {
    let v1 = view(&[("a", "1")], &[("r", &["a"])]);
    let mut e = Envoy::synced(v1.clone(), &["a"], &["r"]);
    let v2 = with_listener_using(&v1, "jwks");
    assert_eq!(
        e.view(v2),
        [C],
        "the cluster goes first, the listener waits"
    );
    assert_eq!(e.got(C), ["a", "jwks"]);
    assert_eq!(e.ack(C, &[]), [L], "jwks is warm: the listener goes");
    assert_eq!(e.got(L), ["l"]);
    assert!(e.ack(L, &[]).is_empty());
    assert!(e.s.converged());
}
