//! Protocol tests of the Delta state machine: subscriptions, initial versions,
//! removals, ACK and NACK.

use super::*;
use crate::snapshot::ResourceMap;
use envoy_types::pb::google::rpc::Status;

fn mk_map(items: &[(&str, &str)]) -> ResourceMap {
    items
        .iter()
        .map(|(n, v)| {
            let e = Encoded::new(*n, *v, bytes::Bytes::from(format!("{n}@{v}")));
            (n.to_string(), Arc::new(e))
        })
        .collect()
}

fn mk_view(clusters: &[(&str, &str)], endpoints: &[(&str, &str)]) -> Arc<View> {
    Arc::new(View::new([
        mk_map(clusters),
        mk_map(endpoints),
        ResourceMap::new(),
        ResourceMap::new(),
        ResourceMap::new(),
    ]))
}

fn mk_req(
    kind: TypeKind,
    subscribe: &[&str],
    unsubscribe: &[&str],
    nonce: &str,
) -> DeltaDiscoveryRequest {
    DeltaDiscoveryRequest {
        type_url: kind.type_url().into(),
        resource_names_subscribe: subscribe.iter().map(|s| s.to_string()).collect(),
        resource_names_unsubscribe: unsubscribe.iter().map(|s| s.to_string()).collect(),
        response_nonce: nonce.into(),
        ..Default::default()
    }
}

fn names(r: &DeltaResponse) -> Vec<&str> {
    r.resources.iter().map(|e| e.name.as_str()).collect()
}

#[test]
fn wildcard_first_request_gets_everything() {
    let mut s = DeltaStream::new(mk_view(&[("a", "1"), ("b", "1")], &[]));
    let out = s.handle_request(&mk_req(TypeKind::Cluster, &[], &[], ""));
    assert_eq!(names(&out.responses[0]), ["a", "b"]);
    assert!(out.responses[0].removed.is_empty());
}

#[test]
fn named_subscribe_and_unsubscribe() {
    let mut s = DeltaStream::new(mk_view(&[], &[("a", "1"), ("b", "1")]));
    let r = s
        .handle_request(&mk_req(TypeKind::Endpoint, &["a"], &[], ""))
        .responses
        .remove(0);
    assert_eq!(names(&r), ["a"]);
    let out = s.handle_request(&mk_req(TypeKind::Endpoint, &["b"], &[], &r.nonce));
    assert_eq!(names(&out.responses[0]), ["b"], "only the new name is sent");
    let r2 = &out.responses[0];
    let out = s.handle_request(&mk_req(TypeKind::Endpoint, &[], &["a"], &r2.nonce));
    assert!(out.responses.is_empty(), "unsubscribing needs no response");
    // A later change to the unsubscribed resource is not sent.
    let out = s.handle_view(mk_view(&[], &[("a", "2"), ("b", "1")]));
    assert!(out.responses.is_empty());
}

#[test]
fn only_changed_resources_are_sent_and_removed_ones_listed() {
    let mut s = DeltaStream::new(mk_view(&[("a", "1"), ("b", "1"), ("c", "1")], &[]));
    let r = s
        .handle_request(&mk_req(TypeKind::Cluster, &[], &[], ""))
        .responses
        .remove(0);
    s.handle_request(&mk_req(TypeKind::Cluster, &[], &[], &r.nonce));
    let out = s.handle_view(mk_view(&[("a", "1"), ("b", "2")], &[]));
    let resp = &out.responses[0];
    assert_eq!(names(resp), ["b"]);
    assert_eq!(resp.removed, ["c"]);
    assert_ne!(resp.system_version, r.system_version);
    // Nothing changed: nothing sent.
    assert!(s
        .handle_view(mk_view(&[("a", "1"), ("b", "2")], &[]))
        .responses
        .is_empty());
}

#[test]
fn initial_resource_versions_prevent_resending_what_the_client_holds() {
    let mut s = DeltaStream::new(mk_view(&[("a", "1"), ("b", "2")], &[]));
    let mut req = mk_req(TypeKind::Cluster, &[], &[], "");
    req.initial_resource_versions = [
        ("a".to_string(), "1".to_string()),
        ("b".to_string(), "1".to_string()),
        ("gone".to_string(), "1".to_string()),
    ]
    .into();
    let out = s.handle_request(&req);
    let resp = &out.responses[0];
    assert_eq!(names(resp), ["b"], "a is held at its current version");
    // The client may still route to "gone" with listeners and routes not heard of
    // yet: it is removed once those are ACKed.
    assert!(resp.removed.is_empty());
    let nonce = resp.nonce.clone();
    s.handle_request(&mk_req(TypeKind::Cluster, &[], &[], &nonce));
    let lds = s.handle_request(&mk_req(TypeKind::Listener, &[], &[], ""));
    let nonce = lds.responses[0].nonce.clone();
    assert!(s
        .handle_request(&mk_req(TypeKind::Listener, &[], &[], &nonce))
        .responses
        .is_empty());
    let rds = s.handle_request(&mk_req(TypeKind::Route, &[], &[], ""));
    let nonce = rds.responses[0].nonce.clone();
    let out = s.handle_request(&mk_req(TypeKind::Route, &[], &[], &nonce));
    assert_eq!(out.responses.len(), 1);
    assert_eq!(out.responses[0].kind, TypeKind::Cluster);
    assert_eq!(out.responses[0].removed, ["gone"]);
    assert!(s.converged());
}

#[test]
fn reconnect_holding_everything_gets_an_empty_response() {
    let mut s = DeltaStream::new(mk_view(&[("a", "1")], &[]));
    let mut req = mk_req(TypeKind::Cluster, &[], &[], "");
    req.initial_resource_versions = [("a".to_string(), "1".to_string())].into();
    let out = s.handle_request(&req);
    assert_eq!(
        out.responses.len(),
        1,
        "the first request is always answered"
    );
    assert!(out.responses[0].resources.is_empty());
    assert!(out.responses[0].removed.is_empty());
}

#[test]
fn ack_and_nack_without_resend() {
    let mut s = DeltaStream::new(mk_view(&[("a", "1")], &[]));
    let r = s
        .handle_request(&mk_req(TypeKind::Cluster, &[], &[], ""))
        .responses
        .remove(0);
    let out = s.handle_request(&mk_req(TypeKind::Cluster, &[], &[], &r.nonce));
    assert_eq!(
        out.events,
        [Event::Ack {
            kind: TypeKind::Cluster,
            version: r.system_version.clone()
        }]
    );
    assert_eq!(s.acked(TypeKind::Cluster), Some(r.system_version.as_str()));

    let bad = s
        .handle_view(mk_view(&[("a", "2")], &[]))
        .responses
        .remove(0);
    let mut nack = mk_req(TypeKind::Cluster, &[], &[], &bad.nonce);
    nack.error_detail = Some(Status {
        code: 3,
        message: "rejected".into(),
        details: vec![],
    });
    let out = s.handle_request(&nack);
    assert!(out.responses.is_empty(), "a NACK must not trigger a resend");
    assert_eq!(
        out.events,
        [Event::Nack {
            kind: TypeKind::Cluster,
            version: bad.system_version.clone(),
            message: "rejected".into()
        }]
    );
    assert_eq!(s.acked(TypeKind::Cluster), Some(r.system_version.as_str()));
    assert!(s
        .handle_view(mk_view(&[("a", "2")], &[]))
        .responses
        .is_empty());
    assert_eq!(
        names(&s.handle_view(mk_view(&[("a", "3")], &[])).responses[0]),
        ["a"]
    );
}

#[test]
fn unknown_nonce_is_not_an_ack() {
    let mut s = DeltaStream::new(mk_view(&[("a", "1")], &[]));
    s.handle_request(&mk_req(TypeKind::Cluster, &[], &[], ""));
    let out = s.handle_request(&mk_req(TypeKind::Cluster, &[], &[], "999"));
    assert!(out.events.is_empty());
    assert_eq!(s.acked(TypeKind::Cluster), None);
}

#[test]
fn changes_are_pushed_in_xds_order() {
    let mut s = DeltaStream::new(mk_view(&[("a", "1")], &[("a", "1")]));
    s.handle_request(&mk_req(TypeKind::Endpoint, &["a"], &[], ""));
    s.handle_request(&mk_req(TypeKind::Cluster, &[], &[], ""));
    let out = s.handle_view(mk_view(&[("a", "2")], &[("a", "2")]));
    let kinds: Vec<TypeKind> = out.responses.iter().map(|r| r.kind).collect();
    assert_eq!(kinds, [TypeKind::Cluster, TypeKind::Endpoint]);
}

#[test]
fn a_name_subscribed_to_that_does_not_exist_is_reported_removed() {
    let mut s = DeltaStream::new(mk_view(&[("a", "1"), ("b", "1")], &[]));
    let r = s
        .handle_request(&mk_req(TypeKind::Cluster, &["a", "nope"], &[], ""))
        .responses
        .remove(0);
    assert_eq!(names(&r), ["a"], "only the named cluster, not b");
    assert_eq!(r.removed, ["nope"]);
    let out = s.handle_request(&mk_req(TypeKind::Cluster, &["gone"], &[], &r.nonce));
    let r2 = &out.responses[0];
    assert!(r2.resources.is_empty());
    assert_eq!(r2.removed, ["gone"]);
    assert_eq!(r2.system_version, r.system_version, "nothing held changed");
    // It appears later: it is sent like any subscribed resource.
    let out = s.handle_view(mk_view(&[("a", "1"), ("b", "1"), ("gone", "1")], &[]));
    assert_eq!(names(&out.responses[0]), ["gone"]);
}
