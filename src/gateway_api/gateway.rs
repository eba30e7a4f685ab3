//! Gateway API `Gateway` specs into [`model::Gateway`](crate::model::Gateway) plus
//! what HTTPRoutes attach to: each listener's name, port, hostname and allowed routes
//! (`allowedRoutes.namespaces.from` `Same`, `All` or `Selector`, matched against the
//! labels of the route's namespace), and its `spec.addresses` ([`super::addresses`]).

use serde_json::Value;

use super::addresses::try_addresses;
use super::label_selector::{try_label_selector, LabelSelector};
use super::{API_GROUP, GATEWAY_NAME_LABEL};
use crate::ingest::{check_host, Fields, Obj, Report};
use crate::model::{
    CertificateSource, Gateway, GatewayAddress, Labels, NotTrue, Protocol, ResourceKey, Server,
    ServerTls,
};

const SPEC: Fields = Fields {
    known: &["gatewayClassName", "listeners", "addresses"],
    unsupported: &["infrastructure", "backendTLS", "allowedListeners"],
};
const LISTENER: Fields = Fields::known(&[
    "name",
    "hostname",
    "port",
    "protocol",
    "allowedRoutes",
    "tls",
]);
const TLS: Fields = Fields {
    known: &["mode", "certificateRefs"],
    unsupported: &["options", "frontendValidation"],
};
const CERTIFICATE_REF: Fields = Fields::known(&["group", "kind", "name", "namespace"]);
const ALLOWED_ROUTES: Fields = Fields::known(&["namespaces", "kinds"]);
const NAMESPACES: Fields = Fields::known(&["from", "selector"]);
const ROUTE_KIND: Fields = Fields::known(&["group", "kind"]);

/// The route kinds an HTTP listener takes.
pub(super) const ROUTE_KINDS: [&str; 2] = ["HTTPRoute", "GRPCRoute"];

/// A listener as routes see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Listener {
    pub name: String,
    pub port: u32,
    /// `*` when the listener names no hostname.
    pub hostname: String,
    /// The namespaces whose routes may attach.
    pub namespaces: AllowedNamespaces,
    /// The route kinds that may attach (`allowedRoutes.kinds`; HTTPRoute and
    /// GRPCRoute when it names none).
    pub kinds: Vec<&'static str>,
    /// Why the listener is not served, when it is not (an unsupported protocol or
    /// value): the Gateway's other listeners still are, as the Gateway API says.
    pub problem: Option<NotTrue>,
    /// An HTTPS listener's certificate Secret, `(namespace, name)` (the first of its
    /// `certificateRefs`), resolved once every document is read.
    pub certificate: Option<(String, String)>,
}

/// `allowedRoutes.namespaces`: whose routes a listener admits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum AllowedNamespaces {
    /// The Gateway's own namespace (`from: Same`, the default).
    Same,
    All,
    /// The namespaces whose labels the selector matches.
    Selector(LabelSelector),
}

impl AllowedNamespaces {
    /// Whether a route of `namespace` (labelled `labels`) may attach to a listener of a
    /// Gateway in `gateway_namespace`.
    pub(super) fn admit(&self, gateway_namespace: &str, namespace: &str, labels: &Labels) -> bool {
        match self {
            AllowedNamespaces::Same => gateway_namespace == namespace,
            AllowedNamespaces::All => true,
            AllowedNamespaces::Selector(selector) => selector.matches(labels),
        }
    }
}

/// A Gateway as read: the model's, its listeners and its `spec.addresses`.
pub(super) type GatewayRead = (Gateway, Vec<Listener>, Vec<GatewayAddress>);

/// Reads a Gateway spec; every problem goes to `r`.
pub(super) fn try_gateway(key: &ResourceKey, spec: &Value, r: &mut Report) -> Option<GatewayRead> {
    let spec = Obj::new(r, "spec", spec, SPEC)?;
    spec.required_string(r, "gatewayClassName");
    let addresses = try_addresses(&spec, r);
    let items = spec.list(r, "listeners");
    if items.is_empty() {
        r.push(spec.at("listeners"), "at least one listener is required");
    }
    let mut listeners: Vec<Listener> = Vec::new();
    let mut problems = Report::new(key.to_string());
    for (path, item) in items {
        let Some((listener, own)) = try_listener(key, &path, item, r) else {
            continue;
        };
        problems.adopt(own);
        if let Some(i) = listeners.iter().position(|l| l.name == listener.name) {
            let message = format!("listener name is already used by spec.listeners[{i}]");
            r.push(format!("{path}.name"), message);
        } else if let Some(i) = listeners
            .iter()
            .position(|l| l.port == listener.port && l.hostname == listener.hostname)
        {
            let message = format!(
                "spec.listeners[{i}] already listens on port {} for hostname {:?}",
                listener.port, listener.hostname
            );
            r.push(format!("{path}.hostname"), message);
        }
        let mut listener = listener;
        let tls = listener.certificate.is_some();
        let conflict = listeners
            .iter()
            .position(|l| l.port == listener.port && l.certificate.is_some() != tls);
        if let Some(i) = conflict.filter(|_| listener.problem.is_none()) {
            listener.problem = Some(NotTrue {
                reason: "ProtocolConflict",
                message: format!(
                    "port {} is taken by spec.listeners[{i}] with another protocol",
                    listener.port
                ),
            });
        }
        listeners.push(listener);
    }
    // With no listener left to serve, the Gateway is rejected with every problem.
    if !listeners.is_empty() && listeners.iter().all(|l| l.problem.is_some()) {
        r.adopt(problems);
    }
    let servers = listeners
        .iter()
        .filter(|l| l.problem.is_none())
        .map(|l| Server {
            name: Some(l.name.clone()),
            port: l.port,
            protocol: match l.certificate {
                Some(_) => Protocol::Https,
                None => Protocol::Http,
            },
            hosts: vec![l.hostname.clone()],
            tls: l.certificate.as_ref().map(|(namespace, name)| {
                ServerTls::simple(CertificateSource::Secret(format!("{namespace}/{name}")))
            }),
            https_redirect: false,
        })
        .collect();
    let selector = Labels::from([(GATEWAY_NAME_LABEL.to_string(), key.name.clone())]);
    let gateway = Gateway {
        key: key.clone(),
        selector,
        servers,
    };
    Some((gateway, listeners, addresses))
}

/// A listener: a missing or malformed name or port is an error of the Gateway; any
/// other problem makes only this listener unserved ([`Listener::problem`]).
fn try_listener(
    key: &ResourceKey,
    path: &str,
    value: &Value,
    gateway: &mut Report,
) -> Option<(Listener, Report)> {
    let mut own = Report::new(key.to_string());
    let Some(listener) = Obj::new(&mut own, path, value, LISTENER) else {
        gateway.adopt(own);
        return None;
    };
    let name = listener.required_string(gateway, "name");
    let port = listener.uint(gateway, "port", 1, 65535);
    if !listener.has("port") {
        gateway.push(listener.at("port"), "required");
    }
    let r = &mut own;
    let protocol = listener.required_string(r, "protocol");
    let https = protocol.as_deref() == Some("HTTPS");
    match protocol.as_deref() {
        None | Some("HTTP" | "HTTPS") => {}
        Some(other) => r.push(
            listener.at("protocol"),
            format!("protocol {other:?} is not supported (HTTP or HTTPS)"),
        ),
    }
    let certificate = match (https, listener.get("tls")) {
        (true, Some(tls)) => try_tls(&listener.at("tls"), tls, &key.namespace, r),
        (true, None) => {
            r.push(listener.at("tls"), "required for an HTTPS listener");
            None
        }
        (false, Some(_)) => {
            r.push(listener.at("tls"), "only an HTTPS listener terminates TLS");
            None
        }
        (false, None) => None,
    };
    let hostname = listener.string(r, "hostname");
    if let Some(hostname) = &hostname {
        if hostname == "*" || check_host(hostname).is_err() || hostname.contains(':') {
            let message = format!("{hostname:?} is not a valid hostname (a DNS name or *.suffix)");
            r.push(listener.at("hostname"), message);
        }
    }
    let (namespaces, kinds) = listener
        .get("allowedRoutes")
        .map(|value| try_allowed_routes(&listener.at("allowedRoutes"), value, r))
        .unwrap_or((AllowedNamespaces::Same, ROUTE_KINDS.to_vec()));
    let unsupported_protocol = own
        .errors
        .iter()
        .any(|e| e.field.ends_with(".protocol") || e.field.ends_with(".tls"));
    let problem = (!own.is_clean()).then(|| NotTrue {
        reason: match unsupported_protocol {
            true => "UnsupportedProtocol",
            false => "UnsupportedValue",
        },
        message: own
            .errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect::<Vec<_>>()
            .join("; "),
    });
    let (Some(name), Some(port)) = (name, port) else {
        gateway.adopt(own);
        return None;
    };
    let listener = Listener {
        name,
        port,
        hostname: hostname.unwrap_or_else(|| "*".to_string()),
        namespaces,
        kinds,
        problem,
        certificate,
    };
    Some((listener, own))
}

/// `tls` of an HTTPS listener: `mode: Terminate` (the default) and the first of its
/// `certificateRefs` (a Secret; the namespace defaults to the Gateway's).
fn try_tls(path: &str, value: &Value, namespace: &str, r: &mut Report) -> Option<(String, String)> {
    let tls = Obj::new(r, path, value, TLS)?;
    match tls.string(r, "mode").as_deref() {
        None | Some("Terminate") => {}
        Some(other) => {
            let message = format!("{other:?} is not supported (Terminate: coalmine routes HTTP)");
            r.push(tls.at("mode"), message);
        }
    }
    let refs = tls.list(r, "certificateRefs");
    if refs.is_empty() {
        r.push(tls.at("certificateRefs"), "at least one Secret is required");
    }
    let mut first = None;
    for (ref_path, value) in refs {
        let Some(cert) = Obj::new(r, &ref_path, value, CERTIFICATE_REF) else {
            continue;
        };
        let group = cert.string(r, "group").unwrap_or_default();
        let kind = cert.string(r, "kind").unwrap_or_else(|| "Secret".into());
        if !group.is_empty() || kind != "Secret" {
            let message = format!("{kind:?} of group {group:?} is not supported (a Secret)");
            r.push(cert.at("kind"), message);
        }
        let name = cert.required_string(r, "name");
        let ns = cert
            .string(r, "namespace")
            .unwrap_or_else(|| namespace.into());
        if first.is_none() {
            first = name.map(|name| (ns, name));
        }
    }
    first
}

/// The namespaces whose routes may attach, and the route kinds that may.
fn try_allowed_routes(
    path: &str,
    value: &Value,
    r: &mut Report,
) -> (AllowedNamespaces, Vec<&'static str>) {
    let Some(allowed) = Obj::new(r, path, value, ALLOWED_ROUTES) else {
        return (AllowedNamespaces::Same, ROUTE_KINDS.to_vec());
    };
    let mut kinds = Vec::new();
    let listed = allowed.list(r, "kinds");
    for (kind_path, value) in &listed {
        let Some(kind) = Obj::new(r, kind_path, value, ROUTE_KIND) else {
            continue;
        };
        let group = kind.string(r, "group").unwrap_or_else(|| API_GROUP.into());
        let name = kind.required_string(r, "kind");
        let known = ROUTE_KINDS
            .into_iter()
            .find(|k| name.as_deref() == Some(*k) && group == API_GROUP);
        match known {
            Some(k) if !kinds.contains(&k) => kinds.push(k),
            Some(_) => {}
            None => {
                let message = format!(
                    "only {} (group {API_GROUP}) are supported",
                    ROUTE_KINDS.join(" and ")
                );
                r.push(kind_path, message);
            }
        }
    }
    if listed.is_empty() {
        kinds = ROUTE_KINDS.to_vec();
    }
    (try_namespaces(allowed, r), kinds)
}

/// The namespaces `allowedRoutes.namespaces` admits.
fn try_namespaces(allowed: Obj<'_, '_>, r: &mut Report) -> AllowedNamespaces {
    let namespaces_path = allowed.at("namespaces");
    let Some(namespaces) = allowed
        .get("namespaces")
        .and_then(|value| Obj::new(r, &namespaces_path, value, NAMESPACES))
    else {
        return AllowedNamespaces::Same;
    };
    let from = namespaces.string(r, "from");
    let selector = namespaces.get("selector");
    if selector.is_some() && from.as_deref() != Some("Selector") {
        r.push(namespaces.at("selector"), "only with from: Selector");
    }
    match from.as_deref() {
        None | Some("Same") => AllowedNamespaces::Same,
        Some("All") => AllowedNamespaces::All,
        Some("Selector") => match selector {
            Some(value) => {
                let path = namespaces.at("selector");
                AllowedNamespaces::Selector(try_label_selector(&path, value, r))
            }
            None => {
                r.push(namespaces.at("selector"), "required with from: Selector");
                AllowedNamespaces::Same
            }
        },
        Some(other) => {
            let message = format!("{other:?} is not supported (Same, All or Selector)");
            r.push(namespaces.at("from"), message);
            AllowedNamespaces::Same
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Kind;
    use serde_json::json;

    type Read = (Option<GatewayRead>, Vec<(String, String)>);

    fn read(spec: Value) -> Read {
        let key = ResourceKey::new(Kind::KubernetesGateway, "default", "edge");
        let mut r = Report::new(key.to_string());
        let out = try_gateway(&key, &spec, &mut r);
        let errors = r.errors.into_iter().map(|e| (e.field, e.message)).collect();
        (out, errors)
    }

    #[test]
    fn listeners_become_servers_selected_by_gateway_name() {
        let (out, errors) = read(json!({
            "gatewayClassName": "coalmine",
            "listeners": [
                {"name": "http", "port": 8080, "protocol": "HTTP"},
                {"name": "web", "port": 8080, "protocol": "HTTP", "hostname": "*.example.com",
                 "allowedRoutes": {"namespaces": {"from": "All"}, "kinds": [{"kind": "HTTPRoute"}]}}
            ]
        }));
        assert_eq!(errors, vec![]);
        let (gateway, listeners, addresses) = out.unwrap();
        assert!(addresses.is_empty());
        assert_eq!(gateway.selector[GATEWAY_NAME_LABEL], "edge");
        assert_eq!(gateway.servers.len(), 2);
        assert_eq!(gateway.servers[0].hosts, vec!["*".to_string()]);
        assert_eq!(gateway.servers[0].port, 8080);
        assert_eq!(gateway.servers[1].hosts, vec!["*.example.com".to_string()]);
        assert_eq!(listeners[0].namespaces, AllowedNamespaces::Same);
        assert_eq!(listeners[1].namespaces, AllowedNamespaces::All);
    }

    #[test]
    fn a_bad_listener_is_not_served_and_the_others_are() {
        let (out, errors) = read(json!({
            "gatewayClassName": "coalmine",
            "listeners": [
                {"name": "http", "port": 80, "protocol": "HTTP"},
                {"name": "tls", "port": 443, "protocol": "TLS",
                 "tls": {"mode": "Passthrough"}},
                {"name": "odd", "port": 81, "protocol": "HTTP",
                 "allowedRoutes": {"kinds": [{"kind": "TLSRoute"}]}},
                {"name": "https", "port": 8443, "protocol": "HTTPS",
                 "tls": {"certificateRefs": [{"name": "cert", "namespace": "certs"}]}},
                {"name": "conflict", "port": 80, "protocol": "HTTPS", "hostname": "a.example.com",
                 "tls": {"certificateRefs": [{"name": "cert"}]}}
            ]
        }));
        assert_eq!(errors, vec![]);
        let (gateway, listeners, _) = out.unwrap();
        let ports: Vec<u32> = gateway.servers.iter().map(|s| s.port).collect();
        assert_eq!(ports, [80, 8443]);
        let https = &gateway.servers[1];
        assert_eq!(https.protocol, Protocol::Https);
        assert_eq!(
            https.tls.as_ref().unwrap().certificate,
            CertificateSource::Secret("certs/cert".into())
        );
        let reasons: Vec<Option<&str>> = listeners
            .iter()
            .map(|l| l.problem.as_ref().map(|p| p.reason))
            .collect();
        assert_eq!(
            reasons,
            [
                None,
                Some("UnsupportedProtocol"),
                Some("UnsupportedValue"),
                None,
                Some("ProtocolConflict")
            ]
        );
        let https = listeners[1].problem.as_ref().unwrap();
        assert!(
            https.message.contains("spec.listeners[1].protocol"),
            "{}",
            https.message
        );
    }

    #[test]
    fn names_every_bad_field() {
        let (_, errors) = read(json!({
            "addresses": [{"type": "NamedAddress", "value": "x"}],
            "listeners": [
                {"name": "https", "port": 443, "protocol": "HTTPS",
                 "tls": {"mode": "Passthrough", "certificateRefs": [{"kind": "ConfigMap"}]}},
                {"name": "https", "port": 0, "protocol": "HTTP", "hostname": "bad host"},
                {"name": "b", "protocol": "HTTP", "port": 80, "extra": 1,
                 "allowedRoutes": {"namespaces": {"from": "Selector", "selector":
                                       {"matchExpressions": [{"key": "a", "operator": "Like"}]}},
                                   "kinds": [{"kind": "TLSRoute"}]}}
            ]
        }));
        // No listener is left to serve, so the Gateway is rejected with them all.
        let mut fields: Vec<&str> = errors.iter().map(|(f, _)| f.as_str()).collect();
        fields.sort();
        assert_eq!(
            fields,
            vec![
                "spec.addresses[0].type",
                "spec.gatewayClassName",
                "spec.listeners[0].tls.certificateRefs[0].kind",
                "spec.listeners[0].tls.certificateRefs[0].name",
                "spec.listeners[0].tls.mode",
                "spec.listeners[1].hostname",
                "spec.listeners[1].port",
                "spec.listeners[2].allowedRoutes.kinds[0]",
                "spec.listeners[2].allowedRoutes.namespaces.selector.matchExpressions[0].operator",
                "spec.listeners[2].extra",
            ]
        );
        let message = |field: &str| errors.iter().find(|(f, _)| f == field).unwrap().1.clone();
        assert!(
            message("spec.listeners[0].tls.mode").starts_with("\"Passthrough\" is not supported")
        );
    }

    #[test]
    fn a_selector_listener_admits_the_namespaces_it_matches() {
        let (out, errors) = read(json!({
            "gatewayClassName": "coalmine",
            "addresses": [{"value": "10.0.0.7"}, {"type": "Hostname", "value": "edge.test"}],
            "listeners": [
                {"name": "http", "port": 80, "protocol": "HTTP", "allowedRoutes": {"namespaces": {
                    "from": "Selector", "selector": {"matchLabels": {"team": "web"}}}}},
                {"name": "bad", "port": 81, "protocol": "HTTP", "allowedRoutes": {"namespaces": {
                    "from": "Selector"}}},
                {"name": "odd", "port": 82, "protocol": "HTTP", "allowedRoutes": {"namespaces": {
                    "from": "All", "selector": {}}}}
            ]
        }));
        assert_eq!(errors, vec![]);
        let (gateway, listeners, addresses) = out.unwrap();
        let values: Vec<&str> = addresses.iter().map(|a| a.value.as_str()).collect();
        assert_eq!(values, ["10.0.0.7", "edge.test"]);
        let web = Labels::from([("team".to_string(), "web".to_string())]);
        let allowed = &listeners[0].namespaces;
        assert!(allowed.admit("default", "shop", &web));
        assert!(!allowed.admit("default", "default", &Labels::new()));
        let problems: Vec<String> = listeners[1..]
            .iter()
            .map(|l| l.problem.clone().unwrap().message)
            .collect();
        assert_eq!(
            problems,
            [
                "spec.listeners[1].allowedRoutes.namespaces.selector: required with from: Selector",
                "spec.listeners[2].allowedRoutes.namespaces.selector: only with from: Selector",
            ]
        );
        assert_eq!(gateway.servers.len(), 1);
    }

    #[test]
    fn listener_names_and_port_hostnames_are_unique() {
        let (_, errors) = read(json!({"gatewayClassName": "c", "listeners": [
            {"name": "a", "port": 80, "protocol": "HTTP"},
            {"name": "a", "port": 81, "protocol": "HTTP"},
            {"name": "b", "port": 80, "protocol": "HTTP"}
        ]}));
        let fields: Vec<&str> = errors.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            vec!["spec.listeners[1].name", "spec.listeners[2].hostname"]
        );
    }
}
