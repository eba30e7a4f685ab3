//! Which `host:port` targets a proxyless gRPC client can dial (`xds:///host:port`),
//! and which virtual service routes each. Builds no protobuf.
//!
//! The targets are every port of every service (ServiceEntry hosts, Kubernetes
//! Services; a wildcard host cannot be dialled), plus, for a `mesh` virtual service host that names no service, that host
//! on each port its routes send to. A target is routed by the `mesh` virtual service
//! naming its host exactly, else by the one whose wildcard host covers it most
//! narrowly (earlier by key on a tie), else straight to the service's port.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::{Config, VirtualService, MESH_GATEWAY};
use crate::translate::select::{destinations, intersect};

/// One dialable target.
#[derive(Debug, PartialEq)]
pub(in crate::translate) struct Target<'a> {
    pub host: String,
    pub port: u32,
    /// The virtual service routing it; `None` routes to the service's port itself.
    pub virtual_service: Option<&'a VirtualService>,
    /// When that is an HTTPRoute or GRPCRoute: every route of its kind on the mesh
    /// with the same host, whose rules merge by the Gateway API's precedence (it among
    /// them).
    pub merged: Vec<&'a VirtualService>,
}

impl Target<'_> {
    /// `host:port`: the name of its listener and route configuration, and the
    /// authority gRPC matches virtual hosts against.
    pub fn name(&self) -> String {
        target_name(&self.host, self.port)
    }
}

fn target_name(host: &str, port: u32) -> String {
    format!("{host}:{port}")
}

/// Every target, sorted by (host, port).
pub(in crate::translate) fn plan_targets(config: &Config) -> Vec<Target<'_>> {
    let mut mesh: Vec<&VirtualService> = config
        .virtual_services
        .iter()
        .filter(|vs| vs.gateways.iter().any(|g| g == MESH_GATEWAY))
        .collect();
    mesh.sort_by(|a, b| a.key.cmp(&b.key));

    let mut targets: BTreeMap<(String, u32), Option<&VirtualService>> = BTreeMap::new();
    let dialable = config.services.iter().filter(|(h, _)| !h.contains('*'));
    for (host, service) in dialable {
        for port in &service.ports {
            let key = (host.clone(), port.number);
            targets.insert(key, routing_service(&mesh, host));
        }
    }
    for vs in &mesh {
        let ports: BTreeSet<u32> = destinations(vs).map(|d| d.port).collect();
        for host in vs.hosts.iter().filter(|h| !h.contains('*')) {
            if config.services.contains_key(host) {
                continue;
            }
            for port in &ports {
                targets
                    .entry((host.clone(), *port))
                    .or_insert_with(|| routing_service(&mesh, host));
            }
        }
    }
    targets
        .into_iter()
        .map(|((host, port), virtual_service)| Target {
            merged: virtual_service.map_or_else(Vec::new, |vs| merged(&mesh, vs, &host)),
            host,
            port,
            virtual_service,
        })
        .collect()
}

/// The Gateway API routes of `chosen`'s kind with the host that made it route `host`
/// (empty for a VirtualService, which never merges).
fn merged<'a>(
    mesh: &[&'a VirtualService],
    chosen: &'a VirtualService,
    host: &str,
) -> Vec<&'a VirtualService> {
    if !chosen.key.kind.is_gateway_api_route() {
        return Vec::new();
    }
    let pattern = chosen
        .hosts
        .iter()
        .find(|h| h.eq_ignore_ascii_case(host))
        .or_else(|| chosen.hosts.iter().find(|h| h.starts_with('*')))
        .map(|h| h.to_ascii_lowercase());
    mesh.iter()
        .copied()
        .filter(|vs| vs.key.kind == chosen.key.kind)
        .filter(|vs| {
            vs.hosts
                .iter()
                .any(|h| Some(h.to_ascii_lowercase()) == pattern)
        })
        .collect()
}

/// The virtual service (of `mesh`, sorted by key) that routes `host`: an exact host
/// first, else the narrowest wildcard covering it.
fn routing_service<'a>(mesh: &[&'a VirtualService], host: &str) -> Option<&'a VirtualService> {
    let exact = mesh
        .iter()
        .find(|vs| vs.hosts.iter().any(|h| h.eq_ignore_ascii_case(host)));
    if let Some(vs) = exact {
        return Some(vs);
    }
    let mut best: Option<(usize, &VirtualService)> = None;
    for vs in mesh {
        for pattern in vs.hosts.iter().filter(|h| h.starts_with('*')) {
            let covers = intersect(pattern, host).as_deref() == Some(host);
            if covers && best.is_none_or(|(len, _)| pattern.len() > len) {
                best = Some((pattern.len(), vs));
            }
        }
    }
    best.map(|(_, vs)| vs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Resolution;
    use crate::translate::fixtures::*;

    fn summary(config: &Config) -> Vec<(String, Option<String>)> {
        plan_targets(config)
            .iter()
            .map(|t| (t.name(), t.virtual_service.map(|vs| vs.key.name.clone())))
            .collect()
    }

    #[test]
    fn every_service_port_and_every_routed_virtual_host_is_a_target() {
        let to_v1 = vec![mk_route(
            "all",
            vec![],
            vec![mk_dest("petstore", Some("v1"), 8080, 100.0)],
        )];
        let mut config = mk_petstore_config(to_v1);
        config.services.insert(
            "other".into(),
            mk_service("other", 80, Resolution::Static, vec![]),
        );
        assert_eq!(
            summary(&config),
            [
                ("other:80".to_string(), None),
                ("petstore:8080".into(), None),
                ("petstore.example.com:8080".into(), Some("petstore".into())),
            ]
        );
    }

    #[test]
    fn exact_hosts_beat_wildcards_and_narrow_wildcards_beat_wide_ones() {
        let route = |host: &str| {
            vec![mk_route(
                "all",
                vec![],
                vec![mk_dest(host, None, 8080, 100.0)],
            )]
        };
        let mut config = mk_petstore_config(vec![]);
        config.services.insert(
            "a.example.com".into(),
            mk_service("a.example.com", 8080, Resolution::Static, vec![]),
        );
        config.services.insert(
            "b.example.com".into(),
            mk_service("b.example.com", 8080, Resolution::Static, vec![]),
        );
        config.virtual_services = vec![
            mk_vs("all", &["*"], &[MESH_GATEWAY], route("petstore")),
            mk_vs(
                "example",
                &["*.example.com"],
                &[MESH_GATEWAY],
                route("petstore"),
            ),
            mk_vs("a", &["a.example.com"], &[MESH_GATEWAY], route("petstore")),
            mk_vs("gw", &["petstore"], &["default/gw"], route("petstore")),
        ];
        assert_eq!(
            summary(&config),
            [
                ("a.example.com:8080".to_string(), Some("a".to_string())),
                ("b.example.com:8080".into(), Some("example".into())),
                ("petstore:8080".into(), Some("all".into())),
            ]
        );
    }
}
