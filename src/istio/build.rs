//! `build_config`: reads every document's spec by kind, then runs the cross-resource
//! checks; owns the order (by key) and the duplicate check.

use std::collections::BTreeMap;

use serde_json::Value;

use super::check::{check, Read};
use super::destination_rule::try_destination_rule;
use super::document::Document;
use super::error::{Errors, Report, Result};
use super::gateway::try_gateway;
use super::rollout::try_rollout;
use super::service_entry::try_service_entry;
use super::virtual_service::try_virtual_service;
use crate::model::{Config, Kind, Service};

/// Validates every document and the set as a whole, returning the consistent Config,
/// or every error found (not just the first).
///
/// `discovered` are services known from elsewhere (Kubernetes) in addition to
/// ServiceEntry hosts; a ServiceEntry host takes precedence over a discovered one.
/// Every list in the Config is sorted by key.
pub fn build_config(docs: &[Document], discovered: &BTreeMap<String, Service>) -> Result<Config> {
    let mut sorted: Vec<&Document> = docs.iter().collect();
    sorted.sort_by(|a, b| a.key.cmp(&b.key));
    let mut errors = Vec::new();
    let mut read = Read::default();
    for (i, doc) in sorted.iter().enumerate() {
        let mut r = Report::new(doc.key.to_string());
        if i > 0 && sorted[i - 1].key == doc.key {
            r.push(
                "metadata.name",
                "another document has the same kind, namespace and name",
            );
        } else {
            read_document(doc, &mut r, &mut read);
        }
        errors.extend(r.errors);
    }
    crate::gateway_api::attach_routes(&mut read, discovered, &mut errors);
    let config = check(read, discovered, &mut errors);
    if errors.is_empty() {
        Ok(config)
    } else {
        Err(Errors(errors))
    }
}

/// Reads one document's spec into `read`, or, when it has errors, records what it
/// would have defined in `read.broken`.
fn read_document(doc: &Document, r: &mut Report, read: &mut Read) {
    let Some(spec) = doc.value.get("spec") else {
        r.push("spec", "required");
        return;
    };
    let key = &doc.key;
    match key.kind {
        Kind::Gateway => match try_gateway(key, spec, r).filter(|_| r.is_clean()) {
            Some(gateway) => read.gateways.push(gateway),
            None => {
                let name = format!("{}/{}", key.namespace, key.name);
                read.broken.gateways.insert(name);
            }
        },
        Kind::VirtualService => match try_virtual_service(key, spec, r).filter(|_| r.is_clean()) {
            Some(vs) => read.virtual_services.push(vs),
            None => {
                read.broken.virtual_services.insert(key.clone());
            }
        },
        Kind::DestinationRule => {
            match try_destination_rule(key, spec, r).filter(|_| r.is_clean()) {
                Some(rule) => read.destination_rules.push(rule),
                None => {
                    if let Some(host) = spec.get("host").and_then(Value::as_str) {
                        let host = (host.to_string(), key.namespace.clone());
                        read.broken.rule_hosts.push(host);
                    }
                }
            }
        }
        Kind::ServiceEntry => match try_service_entry(key, spec, r).filter(|_| r.is_clean()) {
            Some(services) => read.service_entries.push((key.clone(), services)),
            None => {
                let hosts = spec.get("hosts").and_then(Value::as_array);
                let hosts = hosts.into_iter().flatten().filter_map(Value::as_str);
                read.broken.hosts.extend(hosts.map(str::to_string));
            }
        },
        Kind::KubernetesGateway => crate::gateway_api::read_gateway(key, spec, r, read),
        Kind::HttpRoute => crate::gateway_api::read_http_route(key, spec, r, read),
        Kind::Rollout => {
            if let Some(rollout) = try_rollout(key, spec, r).filter(|_| r.is_clean()) {
                read.rollouts.push(rollout);
            }
        }
    }
}
