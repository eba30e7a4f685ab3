//! What a simulated proxy learns from the resources it receives, as Envoy does: the
//! EDS names of its clusters, the RDS names of its listeners, and whether a
//! ClusterLoadAssignment or RouteConfiguration shows a change.
//!
//! Equal responses give equal name sets, so sets are decoded once and shared by every
//! stream through a cache keyed by (previous set, response): 10,000 streams holding
//! 2,000 EDS names each would otherwise cost the load generator gigabytes.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::core::v3::address;
use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use envoy_types::pb::envoy::config::listener::v3::Listener;
use envoy_types::pb::envoy::config::route::v3::{route::Action, route_action, RouteConfiguration};
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    http_connection_manager::RouteSpecifier, HttpConnectionManager,
};
use prost::Message;

use super::tracker::Expect;

/// Resource name → the name it makes the proxy subscribe to (a cluster's EDS service
/// name, a listener's route configuration), and the sorted subscription list.
#[derive(Debug, Default)]
pub struct Names {
    pub id: u64,
    pub map: BTreeMap<String, String>,
    pub subs: Vec<String>,
}

/// Which of the two name-bearing types a set is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    Clusters,
    Listeners,
}

/// Name sets shared by every stream.
#[derive(Debug, Default)]
pub struct NameCache {
    next_id: AtomicU64,
    sets: Mutex<HashMap<(Source, u64, u64), Arc<Names>>>,
}

impl NameCache {
    pub fn empty(&self) -> Arc<Names> {
        Arc::new(Names::default())
    }

    /// The set after applying `added` (encoded resources, with their names when the
    /// protocol gives them) and `removed` to `old`. `key` identifies the response's
    /// content (SotW: its version; Delta: the names and versions it carries).
    pub fn transition<'a>(
        &self,
        source: Source,
        old: &Arc<Names>,
        replace: bool,
        key: u64,
        added: impl Iterator<Item = &'a [u8]>,
        removed: &[String],
    ) -> Arc<Names> {
        let cache_key = (source, if replace { 0 } else { old.id }, key);
        if let Some(set) = self.sets.lock().expect("names poisoned").get(&cache_key) {
            return set.clone();
        }
        let mut map = if replace {
            BTreeMap::new()
        } else {
            old.map.clone()
        };
        for name in removed {
            map.remove(name);
        }
        for bytes in added {
            let learned = match source {
                Source::Clusters => eds_name(bytes),
                Source::Listeners => rds_name(bytes),
            };
            if let Some((name, sub)) = learned {
                match sub {
                    Some(sub) => map.insert(name, sub),
                    None => map.remove(&name),
                };
            }
        }
        let mut subs: Vec<String> = map.values().cloned().collect();
        subs.sort();
        subs.dedup();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let set = Arc::new(Names { id, map, subs });
        let mut sets = self.sets.lock().expect("names poisoned");
        sets.entry(cache_key).or_insert(set).clone()
    }
}

pub fn hash_of(parts: impl IntoIterator<Item = impl Hash>) -> u64 {
    let mut h = DefaultHasher::new();
    for p in parts {
        p.hash(&mut h);
    }
    h.finish()
}

/// A cluster's name and, for EDS clusters, the name to subscribe to.
fn eds_name(bytes: &[u8]) -> Option<(String, Option<String>)> {
    let cluster = Cluster::decode(bytes).ok()?;
    let sub = cluster.eds_cluster_config.as_ref().map(|eds| {
        if eds.service_name.is_empty() {
            cluster.name.clone()
        } else {
            eds.service_name.clone()
        }
    });
    Some((cluster.name, sub))
}

/// A listener's name and the route configuration its HTTP connection manager takes
/// over RDS.
fn rds_name(bytes: &[u8]) -> Option<(String, Option<String>)> {
    let listener = Listener::decode(bytes).ok()?;
    let sub = listener
        .filter_chains
        .iter()
        .flat_map(|chain| &chain.filters)
        .filter_map(|f| match &f.config_type {
            Some(
                envoy_types::pb::envoy::config::listener::v3::filter::ConfigType::TypedConfig(any),
            ) => HttpConnectionManager::decode(any.value.as_slice()).ok(),
            _ => None,
        })
        .find_map(|hcm| match hcm.route_specifier {
            Some(RouteSpecifier::Rds(rds)) => Some(rds.route_config_name),
            _ => None,
        });
    Some((listener.name, sub))
}

/// The first field of a CLA or RouteConfiguration (its name) without decoding the
/// rest; `None` when the encoding does not start with it.
pub fn peek_name(bytes: &[u8]) -> Option<&str> {
    let (&tag, rest) = bytes.split_first()?;
    if tag != 0x0a {
        return None;
    }
    let mut len = 0usize;
    let mut shift = 0;
    for (i, &b) in rest.iter().enumerate().take(5) {
        len |= usize::from(b & 0x7f) << shift;
        shift += 7;
        if b & 0x80 == 0 {
            let start = i + 1;
            return std::str::from_utf8(rest.get(start..start + len)?).ok();
        }
    }
    None
}

/// Whether the encoded resource shows what a change expects.
pub fn shows(bytes: &[u8], expect: &Expect) -> bool {
    match expect {
        Expect::PortAtLeast(port) => ClusterLoadAssignment::decode(bytes)
            .map(|cla| max_port(&cla) >= *port)
            .unwrap_or(false),
        Expect::WeightAtLeast { cluster, weight } => RouteConfiguration::decode(bytes)
            .map(|rc| max_weight(&rc, cluster) >= *weight)
            .unwrap_or(false),
    }
}

fn max_port(cla: &ClusterLoadAssignment) -> u32 {
    use envoy_types::pb::envoy::config::core::v3::socket_address::PortSpecifier;
    use envoy_types::pb::envoy::config::endpoint::v3::lb_endpoint::HostIdentifier;
    cla.endpoints
        .iter()
        .flat_map(|l| &l.lb_endpoints)
        .filter_map(|e| match &e.host_identifier {
            Some(HostIdentifier::Endpoint(ep)) => ep.address.as_ref(),
            _ => None,
        })
        .filter_map(|a| match &a.address {
            Some(address::Address::SocketAddress(s)) => match s.port_specifier {
                Some(PortSpecifier::PortValue(p)) => Some(p),
                _ => None,
            },
            _ => None,
        })
        .max()
        .unwrap_or(0)
}

fn max_weight(rc: &RouteConfiguration, cluster: &str) -> u32 {
    rc.virtual_hosts
        .iter()
        .flat_map(|v| &v.routes)
        .filter_map(|r| match &r.action {
            Some(Action::Route(a)) => a.cluster_specifier.as_ref(),
            _ => None,
        })
        .filter_map(|s| match s {
            route_action::ClusterSpecifier::WeightedClusters(w) => Some(&w.clusters),
            _ => None,
        })
        .flatten()
        .filter(|c| c.name == cluster)
        .filter_map(|c| c.weight.as_ref().map(|w| w.value))
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peek_name_reads_the_first_field() {
        let cla = ClusterLoadAssignment {
            cluster_name: "outbound|80|v1|svc-1".into(),
            ..Default::default()
        };
        let bytes = cla.encode_to_vec();
        assert_eq!(peek_name(&bytes), Some("outbound|80|v1|svc-1"));
        assert_eq!(peek_name(&[0x12, 0]), None);
    }
}
