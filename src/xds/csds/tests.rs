//! CSDS answers from ledger records, without IO: each status, its version, contents and
//! error text; and what a real SotW stream leaves in the ledger for them.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::discovery::v3::DiscoveryRequest;
use envoy_types::pb::google::protobuf::{value, Struct, Value};
use envoy_types::pb::google::rpc;

use super::*;
use crate::ledger::ResourceList;
use crate::node::NodeInfo;
use crate::xds::{SotwRequest, SotwStream};

fn mk_any(kind: TypeKind, name: &str, version: &str) -> Any {
    Any {
        type_url: kind.type_url().into(),
        value: format!("{name}@{version}").into_bytes(),
    }
}

fn mk(kind: TypeKind, name: &str, version: &str) -> Arc<Encoded> {
    let any = mk_any(kind, name, version).encode_to_vec();
    Arc::new(Encoded::new(name, version, any.into()))
}

fn mk_list(kind: TypeKind, items: &[(&str, &str)]) -> ResourceList {
    Arc::new(items.iter().map(|(n, v)| mk(kind, n, v)).collect())
}

fn mk_record() -> ProxyRecord {
    let labels = Struct {
        fields: [(
            "app".to_string(),
            Value {
                kind: Some(value::Kind::StringValue("gw".into())),
            },
        )]
        .into(),
    };
    let node = Node {
        id: "gw-1".into(),
        cluster: "edge".into(),
        metadata: Some(Struct {
            fields: [(
                "labels".to_string(),
                Value {
                    kind: Some(value::Kind::StructValue(labels)),
                },
            )]
            .into(),
        }),
        user_agent_name: "envoy".into(),
        client_features: vec!["envoy.lb.does_not_support_overprovisioning".into()],
        ..Default::default()
    };
    ProxyRecord::new(NodeInfo::from_node(&node), 1)
}

fn status(entry: &GenericXdsConfig) -> ConfigStatus {
    ConfigStatus::try_from(entry.config_status).expect("a known status")
}

fn entry<'a>(config: &'a ClientConfig, kind: TypeKind, name: &str) -> &'a GenericXdsConfig {
    config
        .generic_xds_configs
        .iter()
        .find(|e| e.type_url == kind.type_url() && e.name == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in {config:?}"))
}

const L: TypeKind = TypeKind::Listener;

#[test]
fn acked_resources_are_synced_with_the_node_as_reported() {
    let mut record = mk_record();
    let t = &mut record.types[L.index()];
    t.served = Some("v1".into());
    t.acked = Some("v1".into());
    t.resources = mk_list(L, &[("a", "1"), ("b", "1")]);
    t.acked_resources = t.resources.clone();
    let config = client_config(&record, None);

    let node = config.node.as_ref().expect("node");
    assert_eq!((node.id.as_str(), node.cluster.as_str()), ("gw-1", "edge"));
    assert!(node
        .metadata
        .as_ref()
        .unwrap()
        .fields
        .contains_key("labels"));
    assert!(
        node.client_features.is_empty(),
        "feature lists are left out"
    );
    let names: Vec<&str> = config
        .generic_xds_configs
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    assert_eq!(names, ["a", "b"]);
    let a = entry(&config, L, "a");
    assert_eq!(status(a), ConfigStatus::Synced);
    assert_eq!(a.client_status, ClientResourceStatus::Acked as i32);
    assert_eq!(a.version_info, "v1");
    assert_eq!(a.xds_config, Some(mk_any(L, "a", "1")));
    assert_eq!(a.error_state, None);
}

#[test]
fn sent_but_unanswered_is_stale_and_what_did_not_change_stays_synced() {
    let mut record = mk_record();
    let t = &mut record.types[L.index()];
    t.served = Some("v2".into());
    t.acked = Some("v1".into());
    t.resources = mk_list(L, &[("a", "1"), ("b", "2")]);
    t.acked_resources = mk_list(L, &[("a", "1"), ("b", "1")]);
    let config = client_config(&record, None);
    let (a, b) = (entry(&config, L, "a"), entry(&config, L, "b"));
    assert_eq!(
        (status(a), a.version_info.as_str()),
        (ConfigStatus::Synced, "v1")
    );
    assert_eq!(
        (status(b), b.version_info.as_str()),
        (ConfigStatus::Stale, "v2")
    );
    assert_eq!(b.xds_config, Some(mk_any(L, "b", "2")), "what was sent");
}

#[test]
fn a_nack_of_the_set_held_is_an_error_with_its_text_until_a_new_set_goes() {
    let mut record = mk_record();
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let t = &mut record.types[L.index()];
    t.served = Some("v2".into());
    t.acked = Some("v1".into());
    t.resources = mk_list(L, &[("a", "1"), ("b", "2")]);
    t.acked_resources = mk_list(L, &[("a", "1"), ("b", "1")]);
    t.nack = Some(NackRecord {
        version: "v2".into(),
        message: "cannot bind 0.0.0.0:80".into(),
        at,
        revision: 2,
    });
    let config = client_config(&record, None);
    assert_eq!(status(entry(&config, L, "a")), ConfigStatus::Synced);
    let b = entry(&config, L, "b");
    assert_eq!(status(b), ConfigStatus::Error);
    assert_eq!(b.client_status, ClientResourceStatus::Nacked as i32);
    assert_eq!(b.version_info, "v2");
    let error = b.error_state.as_ref().expect("error_state");
    assert_eq!(error.details, "cannot bind 0.0.0.0:80");
    assert_eq!(error.version_info, "v2");
    assert_eq!(error.failed_configuration, Some(mk_any(L, "b", "2")));
    assert_eq!(error.last_update_attempt.unwrap().seconds, 1_700_000_000);

    let mut without = config.clone();
    drop_contents(&mut without);
    let b = entry(&without, L, "b");
    assert_eq!(b.xds_config, None);
    assert_eq!(b.error_state.as_ref().unwrap().failed_configuration, None);
    assert_eq!(
        b.error_state.as_ref().unwrap().details,
        "cannot bind 0.0.0.0:80"
    );

    // A fix sent since: the old NACK no longer speaks for what is held.
    let t = &mut record.types[L.index()];
    t.served = Some("v3".into());
    t.resources = mk_list(L, &[("a", "1"), ("b", "3")]);
    let b = client_config(&record, None);
    let b = entry(&b, L, "b");
    assert_eq!(
        (status(b), b.error_state.is_none()),
        (ConfigStatus::Stale, true)
    );
}

#[test]
fn what_the_view_has_but_was_not_sent_is_not_sent() {
    let mut record = mk_record();
    let t = &mut record.types[L.index()];
    t.served = Some("v1".into());
    t.acked = Some("v1".into());
    t.resources = mk_list(L, &[("a", "1"), ("kept", "1")]);
    t.acked_resources = t.resources.clone();
    // The view: `a` changed (held back), `new` added (held back), `kept` gone (the
    // proxy keeps it until what uses it moved).
    let view = View::new([
        ResourceMap::new(),
        ResourceMap::new(),
        [("a", "2"), ("new", "1")]
            .iter()
            .map(|(n, v)| (n.to_string(), mk(L, n, v)))
            .collect(),
        ResourceMap::new(),
        ResourceMap::new(),
    ]);
    let config = client_config(&record, Some(&view));
    let a = entry(&config, L, "a");
    assert_eq!(status(a), ConfigStatus::NotSent);
    assert_eq!(
        a.client_status,
        ClientResourceStatus::Acked as i32,
        "holds v1"
    );
    assert_eq!(a.xds_config, Some(mk_any(L, "a", "2")), "what waits to go");
    assert_eq!(a.version_info, "");
    let new = entry(&config, L, "new");
    assert_eq!(status(new), ConfigStatus::NotSent);
    assert_eq!(new.client_status, ClientResourceStatus::Unknown as i32);
    assert_eq!(status(entry(&config, L, "kept")), ConfigStatus::Synced);
    let names: Vec<&str> = config
        .generic_xds_configs
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    assert_eq!(names, ["a", "kept", "new"], "sorted by name");
    // Without a view (a client naming what it wants) only what was sent is listed.
    assert_eq!(client_config(&record, None).generic_xds_configs.len(), 2);
}

fn mk_req(kind: TypeKind, version: &str, nonce: &str, error: Option<&str>) -> SotwRequest {
    SotwRequest {
        error_detail: error.map(|m| rpc::Status {
            code: 3,
            message: m.into(),
            details: vec![],
        }),
        ..SotwRequest::from(DiscoveryRequest {
            type_url: kind.type_url().into(),
            version_info: version.into(),
            response_nonce: nonce.into(),
            ..Default::default()
        })
    }
}

#[test]
fn a_sotw_stream_holds_what_it_sent_and_what_was_acked() {
    let view = |v: &str| {
        Arc::new(View::new([
            ResourceMap::new(),
            ResourceMap::new(),
            [("a", "1"), ("b", v)]
                .iter()
                .map(|(n, v)| (n.to_string(), mk(L, n, v)))
                .collect(),
            ResourceMap::new(),
            ResourceMap::new(),
        ]))
    };
    let mut s = SotwStream::new(view("1"));
    let first = s
        .handle_request(&mk_req(L, "", "", None))
        .responses
        .remove(0);
    let names = |l: &ResourceList| {
        l.iter()
            .map(|r| format!("{}@{}", r.name, r.version))
            .collect::<Vec<_>>()
    };
    assert_eq!(names(s.holds(L)), ["a@1", "b@1"]);
    assert!(s.acked_holds(L).is_empty(), "nothing ACKed yet");
    s.handle_request(&mk_req(L, &first.version, &first.nonce, None));
    assert_eq!(names(s.acked_holds(L)), ["a@1", "b@1"]);

    let second = s.handle_view(view("2")).responses.remove(0);
    assert_eq!(names(s.holds(L)), ["a@1", "b@2"]);
    assert_eq!(
        names(s.acked_holds(L)),
        ["a@1", "b@1"],
        "until the proxy answers"
    );
    s.handle_request(&mk_req(L, &first.version, &second.nonce, Some("bad b")));
    assert_eq!(
        names(s.acked_holds(L)),
        ["a@1", "b@1"],
        "a NACK keeps the last ACKed"
    );
}
