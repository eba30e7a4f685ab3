//! A destination resolved against what is known: its full host (a ServiceEntry host or
//! a discovered service), its subset (a DestinationRule's) and its port.

use std::collections::{BTreeMap, BTreeSet};

use crate::ingest::Report;
use crate::model::{Destination, DestinationRule, Service};

/// The full host of a known service that `host` names, if any.
pub(super) fn resolve_host(
    host: &str,
    namespace: &str,
    services: &BTreeMap<String, Service>,
) -> Option<String> {
    crate::model::host_candidates(host, namespace)
        .into_iter()
        .find(|h| services.contains_key(h))
}

/// Everything a destination is resolved against.
pub(super) struct Known<'a> {
    pub services: &'a BTreeMap<String, Service>,
    pub rules: &'a BTreeMap<&'a str, &'a DestinationRule>,
    pub broken_hosts: &'a BTreeSet<String>,
    pub broken_rule_hosts: &'a BTreeSet<String>,
}

/// Fills in the full host and the port (0 until now when not given), or reports why
/// the destination names nothing.
pub(super) fn resolve(
    d: &mut Destination,
    path: &str,
    namespace: &str,
    known: &Known<'_>,
    r: &mut Report,
) {
    let Some(host) = resolve_host(&d.host, namespace, known.services) else {
        let broken = crate::model::host_candidates(&d.host, namespace)
            .iter()
            .any(|h| known.broken_hosts.contains(h));
        if !broken {
            r.push(
                format!("{path}.host"),
                format!(
                    "host {:?} is not defined by any ServiceEntry or discovered service",
                    d.host
                ),
            );
        }
        return;
    };
    d.host = host;
    let service = &known.services[&d.host];
    if let Some(subset) = &d.subset {
        let rule = known.rules.get(d.host.as_str());
        let defined = rule.is_some_and(|rule| rule.subset(subset).is_some());
        if !defined && !known.broken_rule_hosts.contains(&d.host) {
            r.push(
                format!("{path}.subset"),
                format!(
                    "subset {subset:?} is not defined by a DestinationRule for host {:?}",
                    d.host
                ),
            );
        }
    }
    let ports = || {
        let numbers: Vec<String> = service.ports.iter().map(|p| p.number.to_string()).collect();
        numbers.join(", ")
    };
    if d.port != 0 {
        if service.port(d.port).is_none() {
            r.push(
                format!("{path}.port.number"),
                format!(
                    "port {} is not a port of host {:?} (ports: {})",
                    d.port,
                    d.host,
                    ports()
                ),
            );
        }
        return;
    }
    match service.ports.as_slice() {
        [only] => d.port = only.number,
        [] => r.push(
            format!("{path}.host"),
            format!("host {:?} has no ports", d.host),
        ),
        _ => r.push(
            path,
            format!(
                "host {:?} has several ports ({}): port.number is required",
                d.host,
                ports()
            ),
        ),
    }
}
