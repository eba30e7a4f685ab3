//! What the dialects read from a set of documents, before the cross-resource checks:
//! the resources that read cleanly, and the names the broken ones would have defined.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::{
    AlertProvider, AuthorizationPolicy, DestinationRule, Gateway, GatewayStatus, MetricTemplate,
    RequestAuthentication, ResourceKey, Rollout, Service, TlsSecret, UnresolvedRef, VirtualService,
};

/// Resources that read cleanly, each kind sorted by key, and what the broken ones
/// would have defined.
#[derive(Debug, Default)]
pub(crate) struct Read {
    pub gateways: Vec<Gateway>,
    pub virtual_services: Vec<VirtualService>,
    pub destination_rules: Vec<DestinationRule>,
    /// Each ServiceEntry's services, with the index of the host in `spec.hosts`.
    pub service_entries: Vec<(ResourceKey, Vec<(usize, Service)>)>,
    pub rollouts: Vec<Rollout>,
    /// Certificate Secrets.
    pub secrets: Vec<TlsSecret>,
    /// Flagger MetricTemplates.
    pub metric_templates: Vec<MetricTemplate>,
    /// Flagger AlertProviders, addresses from Secrets not yet filled in.
    pub alert_providers: Vec<AlertProvider>,
    /// Webhook addresses of Secrets holding one (`address`), by `namespace/name`.
    pub addresses: BTreeMap<String, String>,
    pub request_authentications: Vec<RequestAuthentication>,
    pub authorization_policies: Vec<AuthorizationPolicy>,
    /// References of accepted resources that could not be resolved.
    pub unresolved: Vec<UnresolvedRef>,
    /// The Gateway API status found while attaching routes.
    pub gateway_status: GatewayStatus,
    pub broken: Broken,
}

/// Names that documents with errors declare. References to them are not reported
/// again: the document's own errors already say what to fix.
#[derive(Debug, Default)]
pub(crate) struct Broken {
    /// `namespace/name` of Gateways.
    pub gateways: BTreeSet<String>,
    /// Hosts of ServiceEntries.
    pub hosts: BTreeSet<String>,
    /// Hosts of DestinationRules, with the namespace they were written in.
    pub rule_hosts: Vec<(String, String)>,
    /// VirtualServices (a Rollout's target may be one).
    pub virtual_services: BTreeSet<ResourceKey>,
    /// `namespace/name` of Secrets.
    pub secrets: BTreeSet<String>,
}
