//! Canonical bytes of a resource, for its content-hash version.
//!
//! prost encodes protobuf `map` fields from a `HashMap`, whose order changes from one
//! process to the next; hashing that encoding would give the same configuration new
//! versions after every restart. Here each map field a translation fills is taken out
//! and appended sorted by key, so equal content always hashes equal. The bytes sent to
//! Envoy are the plain encoding: map order means nothing to Envoy.

use std::collections::HashMap;

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::core::v3::Metadata;
use envoy_types::pb::envoy::config::listener::v3::Listener;
use envoy_types::pb::envoy::config::route::v3::{
    route::Action, route_action::ClusterSpecifier, RouteConfiguration,
};
use prost::Message;

pub fn cluster(cluster: &Cluster) -> Vec<u8> {
    let mut c = cluster.clone();
    let mut tail = Vec::new();
    sorted_into(&mut c.typed_extension_protocol_options, &mut tail);
    metadata_into(&mut c.metadata, &mut tail);
    finish(c.encode_to_vec(), tail)
}

pub fn listener(listener: &Listener) -> Vec<u8> {
    let mut l = listener.clone();
    let mut tail = Vec::new();
    metadata_into(&mut l.metadata, &mut tail);
    finish(l.encode_to_vec(), tail)
}

pub fn route(route: &RouteConfiguration) -> Vec<u8> {
    let mut rc = route.clone();
    let mut tail = Vec::new();
    for vh in &mut rc.virtual_hosts {
        sorted_into(&mut vh.typed_per_filter_config, &mut tail);
        metadata_into(&mut vh.metadata, &mut tail);
        for r in &mut vh.routes {
            sorted_into(&mut r.typed_per_filter_config, &mut tail);
            metadata_into(&mut r.metadata, &mut tail);
            if let Some(Action::Route(action)) = &mut r.action {
                if let Some(ClusterSpecifier::WeightedClusters(wc)) = &mut action.cluster_specifier
                {
                    for cw in &mut wc.clusters {
                        sorted_into(&mut cw.typed_per_filter_config, &mut tail);
                    }
                }
            }
        }
    }
    finish(rc.encode_to_vec(), tail)
}

fn metadata_into(metadata: &mut Option<Metadata>, tail: &mut Vec<u8>) {
    if let Some(m) = metadata {
        sorted_into(&mut m.filter_metadata, tail);
        sorted_into(&mut m.typed_filter_metadata, tail);
    }
}

/// Moves the map's entries out, appending them to `tail` sorted by key. A marker
/// byte keeps an empty map distinct from a missing one in a nested position.
fn sorted_into<V: Message>(map: &mut HashMap<String, V>, tail: &mut Vec<u8>) {
    let mut entries: Vec<(String, V)> = map.drain().collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    tail.push(0xff);
    for (key, value) in entries {
        tail.extend_from_slice(&(key.len() as u64).to_le_bytes());
        tail.extend_from_slice(key.as_bytes());
        let bytes = value.encode_to_vec();
        tail.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        tail.extend_from_slice(&bytes);
    }
}

fn finish(mut head: Vec<u8>, tail: Vec<u8>) -> Vec<u8> {
    head.extend_from_slice(&tail);
    head
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::envoy::config::route::v3::{Route, VirtualHost};
    use envoy_types::pb::google::protobuf::Any;

    fn mk_route_config() -> RouteConfiguration {
        let mut per_filter = HashMap::new();
        for name in ["a.filter", "b.filter", "c.filter", "d.filter", "e.filter"] {
            per_filter.insert(
                name.to_string(),
                Any {
                    type_url: format!("type.googleapis.com/{name}"),
                    value: name.as_bytes().to_vec(),
                },
            );
        }
        RouteConfiguration {
            name: "http.80".into(),
            virtual_hosts: vec![VirtualHost {
                name: "vh".into(),
                domains: vec!["*".into()],
                routes: vec![Route {
                    typed_per_filter_config: per_filter,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn map_order_does_not_change_the_canonical_bytes() {
        // Each HashMap gets its own random seed, so building the same map many times
        // exercises different iteration orders.
        let first = route(&mk_route_config());
        for _ in 0..32 {
            assert_eq!(route(&mk_route_config()), first);
        }
    }

    #[test]
    fn different_content_gives_different_bytes() {
        let a = mk_route_config();
        let mut b = mk_route_config();
        b.virtual_hosts[0].routes[0]
            .typed_per_filter_config
            .get_mut("c.filter")
            .unwrap()
            .value = b"changed".to_vec();
        assert_ne!(route(&a), route(&b));
    }
}
