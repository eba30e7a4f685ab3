//! Cross-resource checks: every destination resolved to a known service, subset and
//! port; every gateway defined; no host claimed twice on one listener; one
//! DestinationRule and one ServiceEntry per host; Rollouts in [`super::rollout_check`].
//! Produces the consistent Config.

use std::collections::{BTreeMap, BTreeSet};

use super::alert_check::check_alerts;
use super::resolve::{resolve, resolve_host, Known};
use super::rollout_check::check_rollouts;
use super::tls_check::check_tls;
use crate::ingest::{FieldError, Read, Report};
use crate::model::{
    Config, DestinationRule, Gateway, Kind, Labels, MetricSource, MetricTemplate, ResourceKey,
    Rollout, RouteAction, Service, VirtualService, MESH_GATEWAY,
};

/// Runs every cross-resource check, adding errors to `errors`, and assembles the Config.
pub(crate) fn check(
    read: Read,
    discovered: &BTreeMap<String, Service>,
    errors: &mut Vec<FieldError>,
) -> Config {
    let services = collect_services(read.service_entries, discovered, errors);
    let destination_rules = index_rules(read.destination_rules, &services, errors);
    let rules: BTreeMap<&str, &DestinationRule> = destination_rules
        .iter()
        .map(|rule| (rule.host.as_str(), rule))
        .collect();
    let broken_rule_hosts: BTreeSet<String> = read
        .broken
        .rule_hosts
        .iter()
        .map(|(host, ns)| resolve_host(host, ns, &services).unwrap_or_else(|| host.clone()))
        .collect();
    let gateways: BTreeMap<String, &Gateway> = read
        .gateways
        .iter()
        .map(|g| (format!("{}/{}", g.key.namespace, g.key.name), g))
        .collect();
    let known = Known {
        services: &services,
        rules: &rules,
        broken_hosts: &read.broken.hosts,
        broken_rule_hosts: &broken_rule_hosts,
    };
    let mut claims: Vec<Claim> = Vec::new();
    let mut virtual_services = read.virtual_services;
    for vs in &mut virtual_services {
        let mut r = Report::new(vs.key.to_string());
        for (k, gateway) in vs.gateways.iter().enumerate() {
            let defined = gateway == MESH_GATEWAY
                || gateways.contains_key(gateway)
                || read.broken.gateways.contains(gateway);
            if !defined {
                r.push(
                    format!("spec.gateways[{k}]"),
                    format!("gateway {gateway:?} is not defined"),
                );
            }
            // HTTPRoutes were attached to Gateway API Gateways only; a VirtualService
            // binds Istio Gateways only.
            let foreign = gateways.get(gateway).filter(|g| {
                vs.key.kind == Kind::VirtualService && g.key.kind == Kind::KubernetesGateway
            });
            if let Some(g) = foreign {
                r.push(
                    format!("spec.gateways[{k}]"),
                    format!(
                        "{} is a Gateway API Gateway: attach HTTPRoutes to it",
                        g.key
                    ),
                );
            }
        }
        resolve_destinations(vs, &known, &mut r);
        claim_hosts(vs, &gateways, &mut claims, &mut r);
        errors.extend(r.errors);
    }
    let rollouts = check_rollouts(
        read.rollouts,
        &virtual_services,
        &read.broken.virtual_services,
        &known,
        errors,
    );
    let metric_templates = check_templates(&rollouts, read.metric_templates, errors);
    let alert_providers = check_alerts(&rollouts, read.alert_providers, &read.addresses, errors);
    let mut services = services;
    speak_grpc(&virtual_services, &mut services);
    let mut gateways = read.gateways;
    let secrets = check_tls(&mut gateways, read.secrets, &read.broken.secrets, errors);
    Config {
        gateways,
        virtual_services,
        destination_rules,
        services,
        rollouts,
        unresolved: read.unresolved,
        gateway_status: read.gateway_status,
        secrets,
        metric_templates,
        alert_providers,
        request_authentications: read.request_authentications,
        authorization_policies: read.authorization_policies,
    }
}

/// The MetricTemplates by `namespace/name`; a Rollout metric naming one that is not
/// defined is an error naming the metric.
fn check_templates(
    rollouts: &[Rollout],
    templates: Vec<MetricTemplate>,
    errors: &mut Vec<FieldError>,
) -> BTreeMap<String, MetricTemplate> {
    let templates: BTreeMap<String, MetricTemplate> = templates
        .into_iter()
        .map(|t| (format!("{}/{}", t.key.namespace, t.key.name), t))
        .collect();
    for rollout in rollouts {
        for (i, metric) in rollout.analysis.metrics.iter().enumerate() {
            if let MetricSource::Template { template, .. } = &metric.source {
                if !templates.contains_key(template) {
                    errors.push(FieldError {
                        resource: rollout.key.to_string(),
                        field: format!("spec.analysis.metrics[{i}].templateRef"),
                        message: format!(
                            "metric {:?}: MetricTemplate {template} is not defined",
                            metric.name
                        ),
                        reason: None,
                    });
                }
            }
        }
    }
    templates
}

/// Every service port a GRPCRoute sends to (or mirrors to) speaks gRPC, whatever its
/// declared protocol, so its clusters use HTTP/2 (cleartext, h2c): the Gateway API
/// has GRPCRoute backends speak gRPC. Requests of other routes to that port then go
/// over HTTP/2 too.
fn speak_grpc(virtual_services: &[VirtualService], services: &mut BTreeMap<String, Service>) {
    let grpc_routes = virtual_services
        .iter()
        .filter(|vs| vs.key.kind == Kind::GrpcRoute);
    for route in grpc_routes.flat_map(|vs| vs.http.iter()) {
        let mut sent = Vec::new();
        if let RouteAction::Route(destinations) = &route.action {
            sent.extend(destinations.iter().map(|d| &d.destination));
        }
        sent.extend(route.mirror.iter().map(|m| &m.destination));
        for d in sent {
            let port = services
                .get_mut(&d.host)
                .and_then(|s| s.ports.iter_mut().find(|p| p.number == d.port));
            if let Some(port) = port.filter(|p| !matches!(p.protocol.as_str(), "GRPC" | "HTTP2")) {
                port.protocol = "GRPC".into();
            }
        }
    }
}

/// Discovered services, then every ServiceEntry host (which takes precedence over a
/// discovered service of the same host); a host in two ServiceEntries is an error.
fn collect_services(
    entries: Vec<(ResourceKey, Vec<(usize, Service)>)>,
    discovered: &BTreeMap<String, Service>,
    errors: &mut Vec<FieldError>,
) -> BTreeMap<String, Service> {
    let mut services = discovered.clone();
    let mut declared: BTreeMap<String, ResourceKey> = BTreeMap::new();
    for (key, entry_services) in entries {
        let mut r = Report::new(key.to_string());
        for (i, service) in entry_services {
            if let Some(other) = declared.get(&service.host) {
                r.push(
                    format!("spec.hosts[{i}]"),
                    format!("host {:?} is already defined by {other}", service.host),
                );
                continue;
            }
            declared.insert(service.host.clone(), key.clone());
            services.insert(service.host.clone(), service);
        }
        errors.extend(r.errors);
    }
    services
}

/// Resolves each rule's host to a known service where one matches; a second rule for
/// the same host is an error.
fn index_rules(
    rules: Vec<DestinationRule>,
    services: &BTreeMap<String, Service>,
    errors: &mut Vec<FieldError>,
) -> Vec<DestinationRule> {
    let mut out: Vec<DestinationRule> = Vec::new();
    for mut rule in rules {
        if let Some(host) = resolve_host(&rule.host, &rule.key.namespace, services) {
            rule.host = host;
        }
        if let Some(other) = out.iter().find(|o| o.host == rule.host) {
            errors.push(FieldError {
                resource: rule.key.to_string(),
                field: "spec.host".into(),
                message: format!("host {:?} already has {}", rule.host, other.key),
                reason: None,
            });
            continue;
        }
        out.push(rule);
    }
    out
}

fn resolve_destinations(vs: &mut VirtualService, known: &Known<'_>, r: &mut Report) {
    let namespace = vs.key.namespace.clone();
    for (i, route) in vs.http.iter_mut().enumerate() {
        if let RouteAction::Route(destinations) = &mut route.action {
            for (j, weighted) in destinations.iter_mut().enumerate() {
                let path = format!("spec.http[{i}].route[{j}].destination");
                resolve(&mut weighted.destination, &path, &namespace, known, r);
            }
        }
        if let Some(mirror) = &mut route.mirror {
            let path = format!("spec.http[{i}].mirror");
            resolve(&mut mirror.destination, &path, &namespace, known, r);
        }
    }
}

/// One host served on one listener: a gateway port (for the proxies a selector picks)
/// or the mesh.
struct Claim {
    host: String,
    /// `None` for the mesh.
    listener: Option<(u32, Labels)>,
    owner: ResourceKey,
}

impl Claim {
    /// Two routes serving one host on one listener, unless both are HTTPRoutes or both
    /// GRPCRoutes (the Gateway API merges their rules by its precedence; an HTTPRoute
    /// and a GRPCRoute it does not).
    fn collides(&self, other: &Claim) -> bool {
        let merged = self.owner.kind.is_gateway_api_route() && self.owner.kind == other.owner.kind;
        !merged
            && self.host == other.host
            && match (&self.listener, &other.listener) {
                (None, None) => true,
                (Some((port, a)), Some((other_port, b))) => port == other_port && overlap(a, b),
                _ => false,
            }
    }
}

/// Whether some proxy could carry labels that both selectors pick.
fn overlap(a: &Labels, b: &Labels) -> bool {
    a.iter().all(|(k, v)| b.get(k).is_none_or(|w| w == v))
}

/// Reports each host of `vs` that an earlier VirtualService already serves on one of
/// the same listeners, then records the hosts of `vs`.
fn claim_hosts(
    vs: &VirtualService,
    gateways: &BTreeMap<String, &Gateway>,
    claims: &mut Vec<Claim>,
    r: &mut Report,
) {
    let mut listeners: BTreeSet<Option<(u32, Labels)>> = BTreeSet::new();
    for gateway in &vs.gateways {
        if gateway == MESH_GATEWAY {
            listeners.insert(None);
        } else if let Some(gateway) = gateways.get(gateway) {
            for server in &gateway.servers {
                listeners.insert(Some((server.port, gateway.selector.clone())));
            }
        }
    }
    let mut mine = Vec::new();
    for (k, host) in vs.hosts.iter().enumerate() {
        for listener in &listeners {
            let claim = Claim {
                host: host.to_ascii_lowercase(),
                listener: listener.clone(),
                owner: vs.key.clone(),
            };
            if let Some(other) = claims.iter().find(|c| c.collides(&claim)) {
                let place = match &claim.listener {
                    None => "on the mesh".to_string(),
                    Some((port, _)) => format!("on gateway port {port}"),
                };
                let field = match vs.key.kind.is_gateway_api_route() {
                    true => "spec.hostnames".to_string(),
                    false => format!("spec.hosts[{k}]"),
                };
                let (mine, theirs) = (vs.key.kind, other.owner.kind);
                let mixed = if mine.is_gateway_api_route() != theirs.is_gateway_api_route() {
                    " (a VirtualService's in-order rules and HTTPRoutes' precedence cannot share a host)"
                } else if mine != theirs {
                    " (the Gateway API does not let an HTTPRoute and a GRPCRoute share a \
                     hostname on a listener)"
                } else {
                    ""
                };
                r.push(
                    field,
                    format!(
                        "host {host:?} is already served {place} by {}{mixed}",
                        other.owner
                    ),
                );
                break;
            }
            mine.push(claim);
        }
    }
    claims.extend(mine);
}
