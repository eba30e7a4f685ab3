//! Building a class's view from the previous snapshot's, re-translating only what the
//! change can have touched: an endpoint change re-translates only the affected
//! ClusterLoadAssignments; a route change (weights, matches) only the listeners and
//! route configurations, when it names no new cluster. Anything else is translated in
//! full. Every path gives the same view as a full translation (tested below).

use std::collections::BTreeSet;

use crate::model::{Config, Destination};

/// What changed between two configurations, as far as translation cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delta {
    Same,
    /// Only the endpoints of these hosts.
    Endpoints(BTreeSet<String>),
    /// Only virtual services.
    Routes,
    Other,
}

/// Rollouts are not translated, so they take no part.
pub fn classify(old: &Config, new: &Config) -> Delta {
    let rest_same = old.gateways == new.gateways
        && old.destination_rules == new.destination_rules
        && old.secrets == new.secrets
        && old.request_authentications == new.request_authentications
        && old.authorization_policies == new.authorization_policies;
    if !rest_same {
        return Delta::Other;
    }
    let services_same = old.services == new.services;
    if old.virtual_services != new.virtual_services {
        return if services_same {
            Delta::Routes
        } else {
            Delta::Other
        };
    }
    if services_same {
        return Delta::Same;
    }
    if !old.services.keys().eq(new.services.keys()) {
        return Delta::Other;
    }
    let mut hosts = BTreeSet::new();
    for (host, o) in &old.services {
        let n = &new.services[host];
        let same_but_endpoints = o.host == n.host
            && o.source == n.source
            && o.ports == n.ports
            && o.resolution == n.resolution;
        if !same_but_endpoints {
            return Delta::Other;
        }
        if o.endpoints != n.endpoints {
            hosts.insert(host.clone());
        }
    }
    Delta::Endpoints(hosts)
}

/// The destination a cluster name (`outbound|PORT|SUBSET|HOST`) stands for.
pub fn destination_of(cluster_name: &str) -> Option<Destination> {
    let mut parts = cluster_name.splitn(4, '|');
    if parts.next()? != "outbound" {
        return None;
    }
    let port = parts.next()?.parse().ok()?;
    let subset = parts.next()?;
    let host = parts.next()?;
    Some(Destination {
        host: host.to_string(),
        subset: (!subset.is_empty()).then(|| subset.to_string()),
        port,
    })
}

#[cfg(test)]
mod tests;
