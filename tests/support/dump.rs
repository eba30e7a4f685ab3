//! Reading what a real Envoy holds from its `/config_dump`: the `version_info` it
//! reports per xDS type, and the clusters its routes send traffic to.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::Envoy;

/// Per xDS type (`cds`, `eds`, `lds`, `rds`), the versions Envoy holds: the
/// `version_info` of its `/config_dump` for clusters, listeners and routes (a set, so a
/// disagreement between route configurations shows up), and for endpoints, whose dump
/// carries no version, the `version_text` stat of each EDS cluster.
pub fn version_infos(envoy: &Envoy) -> BTreeMap<&'static str, BTreeSet<String>> {
    let top = |v: &Value| -> BTreeSet<String> {
        v["version_info"]
            .as_str()
            .map(str::to_string)
            .into_iter()
            .collect()
    };
    let routes = envoy.dump_section("RoutesConfigDump")["dynamic_route_configs"].clone();
    let rds = routes
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["version_info"].as_str().map(str::to_string))
        .collect();
    let stats = envoy.admin_get("/stats?filter=%5Ecluster%5C..*%5C.version_text%24");
    let eds = stats
        .lines()
        .filter_map(|l| l.split_once(".version_text: "))
        .filter(|(name, _)| name.starts_with("cluster.") && *name != "cluster_manager.cds")
        .map(|(_, v)| v.trim().trim_matches('"').to_string())
        .collect();
    BTreeMap::from([
        ("cds", top(&envoy.dump_section("ClustersConfigDump"))),
        ("lds", top(&envoy.dump_section("ListenersConfigDump"))),
        ("rds", rds),
        ("eds", eds),
    ])
}

/// The one `version_info` Envoy reports for `kind`; panics when it has none or several.
pub fn version_info(envoy: &Envoy, kind: &str) -> String {
    let all = version_infos(envoy);
    let set = &all[kind];
    assert_eq!(set.len(), 1, "envoy {kind} version_info: {all:?}");
    set.iter().next().cloned().expect("one")
}

/// The clusters that the routes of route configuration `route_name` send traffic to,
/// with their weight (100 for a route to a single cluster; weight-0 entries left out).
pub fn route_targets(envoy: &Envoy, route_name: &str) -> BTreeMap<String, u64> {
    let routes = envoy.dump_section("RoutesConfigDump");
    let mut targets = BTreeMap::new();
    let configs = routes["dynamic_route_configs"].as_array().cloned();
    for rc in configs.into_iter().flatten() {
        let config = &rc["route_config"];
        if config["name"].as_str() != Some(route_name) {
            continue;
        }
        for vh in config["virtual_hosts"].as_array().into_iter().flatten() {
            for route in vh["routes"].as_array().into_iter().flatten() {
                let action = &route["route"];
                if let Some(c) = action["cluster"].as_str() {
                    targets.insert(c.to_string(), 100);
                }
                let weighted = action["weighted_clusters"]["clusters"].as_array();
                for wc in weighted.into_iter().flatten() {
                    let weight = wc["weight"].as_u64().unwrap_or(0);
                    if weight > 0 {
                        targets.insert(wc["name"].as_str().unwrap_or("?").to_string(), weight);
                    }
                }
            }
        }
    }
    targets
}
