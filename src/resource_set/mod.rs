//! A whole set of documents into one consistent [`Config`]: each document's spec read by
//! its dialect ([`crate::istio`], [`crate::gateway_api`], [`crate::rollout_kind`]),
//! HTTPRoutes attached to their Gateways, then the cross-resource checks
//! ([`check()`]): every destination resolved, every gateway defined, no host claimed twice,
//! Rollouts against their targets. Owns the order (by key) and the duplicate check.

mod alert_check;
mod check;
mod resolve;
mod rollout_check;
mod tls_check;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde_json::Value;

use crate::gateway_api::{self, NamespaceLabels, Pending};
use crate::ingest::{try_address_secret, try_secret, Document, Errors, Read, Report, Result};
use crate::istio::{
    try_authorization_policy, try_destination_rule, try_gateway, try_request_authentication,
    try_service_entry, try_virtual_service,
};
use crate::model::{Config, Kind, Service};
use crate::rollout_kind::{try_alert_provider, try_metric_template, try_rollout};
use check::check;

/// Validates every document and the set as a whole, returning the consistent Config,
/// or every error found (not just the first).
///
/// `discovered` are services known from elsewhere (Kubernetes) in addition to
/// ServiceEntry hosts; a ServiceEntry host takes precedence over a discovered one.
/// Every list in the Config is sorted by key. Namespaces have only the label
/// Kubernetes gives each (see [`build_config_with`]).
pub fn build_config(docs: &[Document], discovered: &BTreeMap<String, Service>) -> Result<Config> {
    build_config_with(docs, discovered, &NamespaceLabels::new())
}

/// [`build_config`], with the labels of the cluster's namespaces, which Gateway API
/// listeners with `allowedRoutes.namespaces.from: Selector` match (a namespace not in
/// `namespaces` has only `kubernetes.io/metadata.name`).
pub fn build_config_with(
    docs: &[Document],
    discovered: &BTreeMap<String, Service>,
    namespaces: &NamespaceLabels,
) -> Result<Config> {
    let mut sorted: Vec<&Document> = docs.iter().collect();
    sorted.sort_by(|a, b| a.key.cmp(&b.key));
    let mut errors = Vec::new();
    let mut read = Read::default();
    let mut pending = Pending::default();
    for (i, doc) in sorted.iter().enumerate() {
        let mut r = Report::new(doc.key.to_string());
        if i > 0 && sorted[i - 1].key == doc.key {
            r.push(
                "metadata.name",
                "another document has the same kind, namespace and name",
            );
        } else {
            read_document(doc, &mut r, &mut read, &mut pending);
        }
        errors.extend(r.errors);
    }
    gateway_api::attach_routes(&mut read, pending, discovered, namespaces, &mut errors);
    let config = check(read, discovered, &mut errors);
    if errors.is_empty() {
        Ok(config)
    } else {
        Err(Errors(errors))
    }
}

/// Reads one document's spec into `read` (Gateway API kinds into `pending` until they
/// are attached), or, when it has errors, records what it would have defined in
/// `read.broken`.
fn read_document(doc: &Document, r: &mut Report, read: &mut Read, pending: &mut Pending) {
    if doc.key.kind == Kind::Secret {
        let name = format!("{}/{}", doc.key.namespace, doc.key.name);
        match try_address_secret(&doc.value) {
            Some(Ok(address)) => {
                read.addresses.insert(name, address);
                return;
            }
            Some(Err(field)) => {
                r.push(field, "is not base64 of UTF-8 text (a webhook address)");
                return;
            }
            None => {}
        }
        match try_secret(&doc.key, &doc.value, r).filter(|_| r.is_clean()) {
            Some(secret) => read.secrets.push(secret),
            None => {
                let name = format!("{}/{}", doc.key.namespace, doc.key.name);
                read.broken.secrets.insert(name);
            }
        }
        return;
    }
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
        Kind::KubernetesGateway => gateway_api::read_gateway(key, spec, r, read, pending),
        Kind::HttpRoute | Kind::GrpcRoute => {
            let created = doc.value.pointer("/metadata/creationTimestamp");
            let created = created.and_then(Value::as_str).map(str::to_string);
            gateway_api::read_route(key, spec, created, r, read, pending)
        }
        Kind::ReferenceGrant => gateway_api::read_reference_grant(key, spec, r, pending),
        // Read above: a Secret has no spec.
        Kind::Secret => {}
        Kind::AlertProvider => {
            if let Some(provider) = try_alert_provider(key, spec, r).filter(|_| r.is_clean()) {
                read.alert_providers.push(provider);
            }
        }
        Kind::MetricTemplate => {
            if let Some(template) = try_metric_template(key, spec, r).filter(|_| r.is_clean()) {
                read.metric_templates.push(template);
            }
        }
        Kind::Rollout => {
            if let Some(rollout) = try_rollout(key, spec, r).filter(|_| r.is_clean()) {
                read.rollouts.push(rollout);
            }
        }
        Kind::RequestAuthentication => {
            let ra = try_request_authentication(key, spec, r).filter(|_| r.is_clean());
            read.request_authentications.extend(ra);
        }
        Kind::AuthorizationPolicy => {
            let ap = try_authorization_policy(key, spec, r).filter(|_| r.is_clean());
            read.authorization_policies.extend(ap);
        }
    }
}
