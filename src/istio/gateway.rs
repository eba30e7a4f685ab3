//! `Gateway` specs into [`model::Gateway`](crate::model::Gateway): selector, servers, ports and TLS.

use serde_json::Value;

use crate::ingest::{Fields, Obj, Report};
use crate::model::{Gateway, Protocol, ResourceKey, Server, ServerTls};

const SPEC: Fields = Fields::known(&["selector", "servers"]);
const SERVER: Fields = Fields {
    known: &["port", "hosts", "tls", "name"],
    unsupported: &["bind", "defaultEndpoint"],
};
const PORT: Fields = Fields {
    known: &["number", "name", "protocol"],
    unsupported: &["targetPort"],
};
const TLS: Fields = Fields {
    known: &["mode", "serverCertificate", "privateKey", "caCertificates"],
    unsupported: &[
        "credentialName",
        "credentialNames",
        "httpsRedirect",
        "subjectAltNames",
        "verifyCertificateSpki",
        "verifyCertificateHash",
        "minProtocolVersion",
        "maxProtocolVersion",
        "cipherSuites",
        "caCrl",
        "tlsCertificates",
    ],
};

/// Reads a Gateway spec; every problem goes to `r`.
pub(crate) fn try_gateway(key: &ResourceKey, spec: &Value, r: &mut Report) -> Option<Gateway> {
    let spec = Obj::new(r, "spec", spec, SPEC)?;
    let selector = spec.string_map(r, "selector");
    let mut servers: Vec<Server> = Vec::new();
    let items = spec.list(r, "servers");
    if items.is_empty() {
        r.push(spec.at("servers"), "at least one server is required");
    }
    for (path, item) in items {
        let Some(server) = try_server(&path, item, r) else {
            continue;
        };
        let same_port = servers.iter().position(|s| s.port == server.port);
        if let Some(other) = same_port.map(|i| (i, &servers[i])) {
            if other.1.protocol != server.protocol || other.1.tls != server.tls {
                r.push(
                    format!("{path}.port.number"),
                    format!(
                        "port {} is already used by spec.servers[{}] with another protocol \
                         or other tls settings",
                        server.port, other.0
                    ),
                );
            }
        }
        servers.push(server);
    }
    Some(Gateway {
        key: key.clone(),
        selector,
        servers,
    })
}

fn try_server(path: &str, value: &Value, r: &mut Report) -> Option<Server> {
    let server = Obj::new(r, path, value, SERVER)?;
    let port_path = server.at("port");
    let port = match server.get("port") {
        Some(port) => Obj::new(r, &port_path, port, PORT),
        None => {
            r.push(&port_path, "required");
            None
        }
    };
    let number = port.and_then(|p| p.uint(r, "number", 1, 65535));
    if port.is_some_and(|p| !p.has("number")) {
        r.push(format!("{port_path}.number"), "required");
    }
    let port_name = port.and_then(|p| p.string(r, "name"));
    let protocol = port.and_then(|p| try_protocol(p, r));
    let hosts = try_hosts(server, r);
    let tls = match (protocol, server.get("tls")) {
        (Some(Protocol::Https), Some(tls)) => try_tls(&server.at("tls"), tls, r),
        (Some(Protocol::Https), None) => {
            r.push(server.at("tls"), "required for an HTTPS server");
            None
        }
        (Some(Protocol::Http), Some(_)) => {
            r.push(
                server.at("tls"),
                "only an HTTPS server takes tls (httpsRedirect is not supported)",
            );
            None
        }
        _ => None,
    };
    let name = server.string(r, "name").or(port_name);
    Some(Server {
        name,
        port: number?,
        protocol: protocol?,
        hosts,
        tls,
    })
}

fn try_protocol(port: Obj<'_, '_>, r: &mut Report) -> Option<Protocol> {
    let protocol = port.required_string(r, "protocol")?;
    match protocol.to_ascii_uppercase().as_str() {
        "HTTP" => Some(Protocol::Http),
        "HTTPS" => Some(Protocol::Https),
        _ => {
            r.push(
                port.at("protocol"),
                format!("protocol {protocol:?} is not supported (HTTP or HTTPS)"),
            );
            None
        }
    }
}

/// Server hosts with any `namespace/` prefix removed.
fn try_hosts(server: Obj<'_, '_>, r: &mut Report) -> Vec<String> {
    let hosts = server.strings(r, "hosts");
    if hosts.is_empty() && !server.has("hosts") {
        r.push(server.at("hosts"), "required");
    } else if hosts.is_empty() {
        r.push(server.at("hosts"), "at least one host is required");
    }
    let mut out = Vec::new();
    for (i, host) in hosts.iter().enumerate() {
        let bare = host.rsplit_once('/').map_or(host.as_str(), |(_, h)| h);
        if bare.is_empty() {
            r.push(format!("{}[{i}]", server.at("hosts")), "must name a host");
        } else {
            out.push(bare.to_string());
        }
    }
    out
}

fn try_tls(path: &str, value: &Value, r: &mut Report) -> Option<ServerTls> {
    let tls = Obj::new(r, path, value, TLS)?;
    match tls.string(r, "mode").as_deref() {
        Some("SIMPLE") => {}
        None => r.push(tls.at("mode"), "required (only SIMPLE is supported)"),
        Some(mode) => r.push(
            tls.at("mode"),
            format!("mode {mode:?} is not supported (only SIMPLE)"),
        ),
    }
    let server_certificate = tls.required_string(r, "serverCertificate");
    let private_key = tls.required_string(r, "privateKey");
    let ca_certificates = tls.string(r, "caCertificates").filter(|s| !s.is_empty());
    Some(ServerTls {
        server_certificate: server_certificate?,
        private_key: private_key?,
        ca_certificates,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Kind;
    use serde_json::json;

    fn read(spec: Value) -> (Option<Gateway>, Vec<(String, String)>) {
        let key = ResourceKey::new(Kind::Gateway, "default", "gw");
        let mut r = Report::new(key.to_string());
        let gateway = try_gateway(&key, &spec, &mut r);
        let errors = r.errors.into_iter().map(|e| (e.field, e.message)).collect();
        (gateway, errors)
    }

    #[test]
    fn reads_a_full_gateway() {
        let (gateway, errors) = read(json!({
            "selector": {"istio": "ingressgateway"},
            "servers": [
                {"port": {"number": 80, "name": "http", "protocol": "http"},
                 "hosts": ["default/web.example.com", "*"]},
                {"name": "secure", "port": {"number": 443, "name": "https", "protocol": "HTTPS"},
                 "hosts": ["./web.example.com"],
                 "tls": {"mode": "SIMPLE", "serverCertificate": "/certs/tls.crt",
                         "privateKey": "/certs/tls.key", "caCertificates": "/certs/ca.crt"}}
            ]
        }));
        assert_eq!(errors, vec![]);
        let gateway = gateway.unwrap();
        assert_eq!(gateway.selector["istio"], "ingressgateway");
        assert_eq!(
            gateway.servers[0],
            Server {
                name: Some("http".into()),
                port: 80,
                protocol: Protocol::Http,
                hosts: vec!["web.example.com".into(), "*".into()],
                tls: None,
            }
        );
        let https = &gateway.servers[1];
        assert_eq!(https.name.as_deref(), Some("secure"));
        assert_eq!(https.hosts, vec!["web.example.com".to_string()]);
        assert_eq!(
            https.tls,
            Some(ServerTls {
                server_certificate: "/certs/tls.crt".into(),
                private_key: "/certs/tls.key".into(),
                ca_certificates: Some("/certs/ca.crt".into()),
            })
        );
    }

    #[test]
    fn names_every_bad_field() {
        let (_, errors) = read(json!({
            "servers": [
                {"port": {"number": 0, "protocol": "TCP"}, "hosts": []},
                {"port": {"number": 443, "protocol": "HTTPS"}, "hosts": ["a"]},
                {"port": {"number": 8443, "protocol": "HTTPS"}, "hosts": ["a"],
                 "tls": {"mode": "MUTUAL", "credentialName": "cert"}},
                {"port": {"number": 80, "protocol": "HTTP"}, "hosts": ["a"],
                 "tls": {"httpsRedirect": true}}
            ]
        }));
        let fields: Vec<(&str, &str)> = errors
            .iter()
            .map(|(f, m)| (f.as_str(), m.as_str()))
            .collect();
        assert_eq!(
            fields,
            vec![
                (
                    "spec.servers[0].port.number",
                    "must be an integer between 1 and 65535"
                ),
                (
                    "spec.servers[0].port.protocol",
                    "protocol \"TCP\" is not supported (HTTP or HTTPS)"
                ),
                ("spec.servers[0].hosts", "at least one host is required"),
                ("spec.servers[1].tls", "required for an HTTPS server"),
                ("spec.servers[2].tls.credentialName", "not supported"),
                (
                    "spec.servers[2].tls.mode",
                    "mode \"MUTUAL\" is not supported (only SIMPLE)"
                ),
                ("spec.servers[2].tls.serverCertificate", "required"),
                ("spec.servers[2].tls.privateKey", "required"),
                (
                    "spec.servers[3].tls",
                    "only an HTTPS server takes tls (httpsRedirect is not supported)"
                ),
            ]
        );
    }

    #[test]
    fn servers_sharing_a_port_must_agree() {
        let (_, errors) = read(json!({"servers": [
            {"port": {"number": 80, "protocol": "HTTP"}, "hosts": ["a"]},
            {"port": {"number": 80, "protocol": "HTTP"}, "hosts": ["b"]},
            {"port": {"number": 80, "protocol": "HTTPS"}, "hosts": ["c"],
             "tls": {"mode": "SIMPLE", "serverCertificate": "c", "privateKey": "k"}}
        ]}));
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].0, "spec.servers[2].port.number");
    }
}
