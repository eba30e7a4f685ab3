//! Protocol tests of the SotW state machine: ACK, NACK, stale nonces, subscriptions,
//! ordering and reconnects.

use super::*;
use crate::snapshot::ResourceMap;
use envoy_types::pb::envoy::service::discovery::v3::DiscoveryRequest;
use envoy_types::pb::google::rpc::Status;

fn mk_encoded(name: &str, version: &str) -> Arc<Encoded> {
    Arc::new(Encoded::new(
        name,
        version,
        bytes::Bytes::from(format!("{name}@{version}")),
    ))
}

fn mk_map(items: &[(&str, &str)]) -> ResourceMap {
    items
        .iter()
        .map(|(n, v)| (n.to_string(), mk_encoded(n, v)))
        .collect()
}

/// A view with clusters a, b; endpoints for each; one listener; one route config.
fn mk_view(cluster_version: &str) -> Arc<View> {
    Arc::new(View::new([
        mk_map(&[("a", cluster_version), ("b", "1")]),
        mk_map(&[("a", "1"), ("b", "1")]),
        mk_map(&[("l", "1")]),
        mk_map(&[("r", "1")]),
        ResourceMap::new(),
    ]))
}

/// A request for `kind` naming `names`, with this version and nonce (shared with the
/// make-before-break tests).
pub(super) fn mk_req(kind: TypeKind, names: &[&str], version: &str, nonce: &str) -> SotwRequest {
    SotwRequest::from(DiscoveryRequest {
        type_url: kind.type_url().into(),
        resource_names: names.iter().map(|s| s.to_string()).collect(),
        version_info: version.into(),
        response_nonce: nonce.into(),
        ..Default::default()
    })
}

fn mk_nack(kind: TypeKind, names: &[&str], version: &str, nonce: &str, msg: &str) -> SotwRequest {
    SotwRequest {
        error_detail: Some(Status {
            code: 3,
            message: msg.into(),
            details: vec![],
        }),
        ..mk_req(kind, names, version, nonce)
    }
}

fn names(r: &Response) -> Vec<&str> {
    r.resources.iter().map(|e| e.name.as_str()).collect()
}

#[test]
fn wildcard_request_gets_every_resource_of_its_type() {
    let mut s = SotwStream::new(mk_view("1"));
    let out = s.handle_request(&mk_req(TypeKind::Cluster, &[], "", ""));
    assert_eq!(out.responses.len(), 1);
    assert_eq!(names(&out.responses[0]), ["a", "b"]);
    assert_eq!(out.responses[0].kind, TypeKind::Cluster);
    assert!(out.events.is_empty());
}

#[test]
fn named_request_gets_only_those_names_and_skips_unknown_ones() {
    let mut s = SotwStream::new(mk_view("1"));
    let out = s.handle_request(&mk_req(TypeKind::Endpoint, &["b", "zzz"], "", ""));
    assert_eq!(names(&out.responses[0]), ["b"]);
}

#[test]
fn ack_is_recorded_and_sends_nothing() {
    let mut s = SotwStream::new(mk_view("1"));
    let r = s
        .handle_request(&mk_req(TypeKind::Cluster, &[], "", ""))
        .responses
        .remove(0);
    let out = s.handle_request(&mk_req(TypeKind::Cluster, &[], &r.version, &r.nonce));
    assert!(out.responses.is_empty());
    assert_eq!(
        out.events,
        [Event::Ack {
            kind: TypeKind::Cluster,
            version: r.version.clone()
        }]
    );
    assert_eq!(s.acked(TypeKind::Cluster), Some(r.version.as_str()));
}

#[test]
fn nack_keeps_error_text_and_is_never_resent() {
    let mut s = SotwStream::new(mk_view("1"));
    let first = s
        .handle_request(&mk_req(TypeKind::Cluster, &[], "", ""))
        .responses
        .remove(0);
    s.handle_request(&mk_req(
        TypeKind::Cluster,
        &[],
        &first.version,
        &first.nonce,
    ));

    // New content, which the proxy rejects.
    let bad = s.handle_view(mk_view("2")).responses.remove(0);
    let out = s.handle_request(&mk_nack(
        TypeKind::Cluster,
        &[],
        &first.version,
        &bad.nonce,
        "bad cluster",
    ));
    assert!(out.responses.is_empty(), "a NACK must not trigger a resend");
    assert_eq!(
        out.events,
        [Event::Nack {
            kind: TypeKind::Cluster,
            version: bad.version.clone(),
            message: "bad cluster".into()
        }]
    );
    assert_eq!(s.acked(TypeKind::Cluster), Some(first.version.as_str()));
    assert_eq!(
        s.last_nack(TypeKind::Cluster),
        Some((bad.version.as_str(), "bad cluster"))
    );

    // The same rejected content again (another type changed): still nothing for CDS.
    let out = s.handle_view(mk_view("2"));
    assert!(out.responses.is_empty());

    // A fix is sent.
    let out = s.handle_view(mk_view("3"));
    assert_eq!(out.responses.len(), 1);
    assert_ne!(out.responses[0].version, bad.version);
}

#[test]
fn stale_nonce_is_ignored() {
    let mut s = SotwStream::new(mk_view("1"));
    let first = s
        .handle_request(&mk_req(TypeKind::Cluster, &[], "", ""))
        .responses
        .remove(0);
    let second = s.handle_view(mk_view("2")).responses.remove(0);
    // The proxy ACKs (or NACKs) the first response after the second was sent.
    let out = s.handle_request(&mk_req(
        TypeKind::Cluster,
        &[],
        &first.version,
        &first.nonce,
    ));
    assert_eq!(out, Output::default());
    let out = s.handle_request(&mk_nack(TypeKind::Cluster, &[], "", &first.nonce, "late"));
    assert_eq!(out, Output::default());
    assert_eq!(s.acked(TypeKind::Cluster), None);
    // The current nonce is honoured.
    let out = s.handle_request(&mk_req(
        TypeKind::Cluster,
        &[],
        &second.version,
        &second.nonce,
    ));
    assert_eq!(out.events.len(), 1);
}

#[test]
fn subscription_change_on_ack_sends_only_what_is_new() {
    let mut s = SotwStream::new(mk_view("1"));
    let r = s
        .handle_request(&mk_req(TypeKind::Endpoint, &["a"], "", ""))
        .responses
        .remove(0);
    assert_eq!(names(&r), ["a"]);
    let out = s.handle_request(&mk_req(
        TypeKind::Endpoint,
        &["a", "b"],
        &r.version,
        &r.nonce,
    ));
    assert_eq!(out.responses.len(), 1);
    assert_eq!(names(&out.responses[0]), ["b"], "a is held already");
    assert_ne!(out.responses[0].version, r.version);
    // Unsubscribing needs no response: Envoy drops what it no longer asks for.
    let r2 = &out.responses[0];
    let out = s.handle_request(&mk_req(TypeKind::Endpoint, &["b"], &r2.version, &r2.nonce));
    assert!(out.responses.is_empty());
}

#[test]
fn endpoint_change_sends_only_the_changed_assignment_but_clusters_go_whole() {
    let mut s = SotwStream::new(mk_view("1"));
    for (kind, n) in [
        (TypeKind::Cluster, vec![]),
        (TypeKind::Endpoint, vec!["a", "b"]),
    ] {
        let r = s
            .handle_request(&mk_req(kind, &n, "", ""))
            .responses
            .remove(0);
        s.handle_request(&mk_req(kind, &n, &r.version, &r.nonce));
    }
    let changed = Arc::new(View::new([
        mk_map(&[("a", "2"), ("b", "1")]),
        mk_map(&[("a", "1"), ("b", "2")]),
        mk_map(&[("l", "1")]),
        mk_map(&[("r", "1")]),
        ResourceMap::new(),
    ]));
    let out = s.handle_view(changed);
    assert_eq!(out.responses.len(), 2);
    assert_eq!(out.responses[0].kind, TypeKind::Cluster);
    assert_eq!(
        names(&out.responses[0]),
        ["a", "b"],
        "CDS is state of the world"
    );
    assert_eq!(out.responses[1].kind, TypeKind::Endpoint);
    assert_eq!(
        names(&out.responses[1]),
        ["b"],
        "only the changed assignment"
    );
}

#[test]
fn legacy_wildcard_stays_wildcard_when_acks_name_nothing() {
    let mut s = SotwStream::new(mk_view("1"));
    let r = s
        .handle_request(&mk_req(TypeKind::Listener, &[], "", ""))
        .responses
        .remove(0);
    let out = s.handle_request(&mk_req(TypeKind::Listener, &[], &r.version, &r.nonce));
    assert!(out.responses.is_empty());
    let out = s.handle_view(Arc::new(View::new([
        ResourceMap::new(),
        ResourceMap::new(),
        mk_map(&[("l", "1"), ("l2", "1")]),
        ResourceMap::new(),
        ResourceMap::new(),
    ])));
    assert_eq!(names(&out.responses[0]), ["l", "l2"]);
}

#[test]
fn new_view_is_pushed_in_xds_order_and_only_changed_types() {
    let mut s = SotwStream::new(mk_view("1"));
    // Subscribe in an order different from the push order.
    for (kind, n) in [
        (TypeKind::Route, vec!["r"]),
        (TypeKind::Listener, vec![]),
        (TypeKind::Endpoint, vec!["a", "b"]),
        (TypeKind::Cluster, vec![]),
    ] {
        let r = s
            .handle_request(&mk_req(kind, &n, "", ""))
            .responses
            .remove(0);
        s.handle_request(&mk_req(kind, &n, &r.version, &r.nonce));
    }
    let changed = Arc::new(View::new([
        mk_map(&[("a", "2"), ("b", "1")]),
        mk_map(&[("a", "2"), ("b", "1")]),
        mk_map(&[("l", "1")]),
        mk_map(&[("r", "2")]),
        ResourceMap::new(),
    ]));
    let out = s.handle_view(changed);
    let kinds: Vec<TypeKind> = out.responses.iter().map(|r| r.kind).collect();
    assert_eq!(
        kinds,
        [TypeKind::Cluster, TypeKind::Endpoint, TypeKind::Route]
    );
}

#[test]
fn reconnect_with_current_version_sends_nothing() {
    let mut before = SotwStream::new(mk_view("1"));
    let r = before
        .handle_request(&mk_req(TypeKind::Cluster, &[], "", ""))
        .responses
        .remove(0);

    // A new stream (after a control-plane restart) with the same content.
    let mut after = SotwStream::new(mk_view("1"));
    let out = after.handle_request(&mk_req(TypeKind::Cluster, &[], &r.version, ""));
    assert!(out.responses.is_empty());
    assert_eq!(after.acked(TypeKind::Cluster), Some(r.version.as_str()));
    // And it still pushes once the content changes.
    assert_eq!(after.handle_view(mk_view("2")).responses.len(), 1);

    // With different content, the reconnecting proxy is sent the new version.
    let mut other = SotwStream::new(mk_view("9"));
    let out = other.handle_request(&mk_req(TypeKind::Cluster, &[], &r.version, ""));
    assert_eq!(out.responses.len(), 1);
}

#[test]
fn versions_come_from_content() {
    let mut a = SotwStream::new(mk_view("1"));
    let mut b = SotwStream::new(mk_view("1"));
    let ra = a
        .handle_request(&mk_req(TypeKind::Cluster, &[], "", ""))
        .responses
        .remove(0);
    let rb = b
        .handle_request(&mk_req(TypeKind::Cluster, &[], "", ""))
        .responses
        .remove(0);
    assert_eq!(ra.version, rb.version);
    let mut c = SotwStream::new(mk_view("2"));
    let rc = c
        .handle_request(&mk_req(TypeKind::Cluster, &[], "", ""))
        .responses
        .remove(0);
    assert_ne!(ra.version, rc.version);
}

#[test]
fn unknown_type_is_ignored() {
    let mut s = SotwStream::new(mk_view("1"));
    let mut req = mk_req(TypeKind::Cluster, &[], "", "");
    req.type_url = "type.googleapis.com/envoy.config.route.v3.ScopedRouteConfiguration".into();
    assert_eq!(s.handle_request(&req), Output::default());
}

#[test]
fn nonces_are_unique_on_a_stream() {
    let mut s = SotwStream::new(mk_view("1"));
    let a = s
        .handle_request(&mk_req(TypeKind::Cluster, &[], "", ""))
        .responses
        .remove(0);
    let b = s
        .handle_request(&mk_req(TypeKind::Listener, &[], "", ""))
        .responses
        .remove(0);
    let c = s.handle_view(mk_view("2")).responses.remove(0);
    assert_ne!(a.nonce, b.nonce);
    assert_ne!(b.nonce, c.nonce);
}

#[test]
fn a_subscription_that_shrinks_and_grows_back_gets_the_dropped_resource_again() {
    let mut s = SotwStream::new(mk_view("1"));
    let r = s
        .handle_request(&mk_req(TypeKind::Endpoint, &["a", "b"], "", ""))
        .responses
        .remove(0);
    // The cluster for a goes away: Envoy narrows its subscription.
    let out = s.handle_request(&mk_req(TypeKind::Endpoint, &["b"], &r.version, &r.nonce));
    assert!(out.responses.is_empty());
    // It comes back (a restore): a must be sent again although its version is the same.
    let out = s.handle_request(&mk_req(
        TypeKind::Endpoint,
        &["a", "b"],
        &r.version,
        &r.nonce,
    ));
    assert_eq!(out.responses.len(), 1);
    assert_eq!(names(&out.responses[0]), ["a"]);
}

#[test]
fn named_listener_and_cluster_subscriptions_get_what_exists_and_an_answer_per_change() {
    let mut s = SotwStream::new(mk_view("1"));
    let r = s
        .handle_request(&mk_req(TypeKind::Listener, &["l", "nope"], "", ""))
        .responses
        .remove(0);
    assert_eq!(names(&r), ["l"]);
    // A new name that does not exist: answered at once, without it.
    let out = s.handle_request(&mk_req(
        TypeKind::Listener,
        &["l", "nope", "other"],
        &r.version,
        &r.nonce,
    ));
    assert_eq!(out.responses.len(), 1);
    let r2 = &out.responses[0];
    assert_eq!(names(r2), ["l"]);
    assert_eq!(r2.version, r.version);
    // The ACK repeats the names: nothing more.
    let out = s.handle_request(&mk_req(
        TypeKind::Listener,
        &["other", "nope", "l"],
        &r2.version,
        &r2.nonce,
    ));
    assert!(out.responses.is_empty());

    let r = s
        .handle_request(&mk_req(TypeKind::Cluster, &["a"], "", ""))
        .responses
        .remove(0);
    assert_eq!(names(&r), ["a"], "b is not subscribed");
    // A change to an unsubscribed cluster is not pushed; to a subscribed one it is.
    let mut view = mk_view("1");
    let maps = view.to_maps();
    let mut clusters = maps[0].clone();
    clusters.insert("b".into(), mk_encoded("b", "2"));
    view = Arc::new(View::new([
        clusters,
        maps[1].clone(),
        maps[2].clone(),
        maps[3].clone(),
        ResourceMap::new(),
    ]));
    assert!(s.handle_view(view).responses.is_empty());
    let out = s.handle_view(mk_view("2"));
    assert_eq!(names(&out.responses[0]), ["a"]);
}
