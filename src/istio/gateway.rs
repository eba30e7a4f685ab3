//! `Gateway` specs into [`model::Gateway`](crate::model::Gateway): selector, servers, ports and TLS.

use serde_json::Value;

use super::server_tls::{try_tls, Tls};
use crate::ingest::{Fields, Obj, Report};
use crate::model::{Gateway, Protocol, ResourceKey, Server};

const SPEC: Fields = Fields::known(&["selector", "servers"]);
const SERVER: Fields = Fields {
    known: &["port", "hosts", "tls", "name"],
    unsupported: &["bind", "defaultEndpoint"],
};
const PORT: Fields = Fields {
    known: &["number", "name", "protocol"],
    unsupported: &["targetPort"],
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
        let Some(server) = try_server(&path, item, &key.namespace, r) else {
            continue;
        };
        check_port(&path, &server, &servers, r);
        servers.push(server);
    }
    Some(Gateway {
        key: key.clone(),
        selector,
        servers,
    })
}

/// Servers on one port share its protocol; HTTPS servers with other TLS settings need
/// hosts SNI tells apart (no host in common, no `*` on either).
fn check_port(path: &str, server: &Server, servers: &[Server], r: &mut Report) {
    for (i, other) in servers.iter().enumerate() {
        if other.port != server.port {
            continue;
        }
        let message = if other.protocol != server.protocol {
            format!(
                "port {} is already used by spec.servers[{i}] with another protocol",
                server.port
            )
        } else if other.tls != server.tls && shares_a_host(other, server) {
            format!(
                "port {} is already used by spec.servers[{i}] with other tls settings for a \
                 host of this server (TLS clients choose a certificate by host name: give \
                 each its own hosts, without *)",
                server.port
            )
        } else if other.https_redirect != server.https_redirect {
            format!(
                "port {} is already used by spec.servers[{i}] with another httpsRedirect",
                server.port
            )
        } else {
            continue;
        };
        r.push(format!("{path}.port.number"), message);
        return;
    }
}

fn shares_a_host(a: &Server, b: &Server) -> bool {
    let wild = |s: &Server| s.hosts.iter().any(|h| h == "*");
    wild(a)
        || wild(b)
        || a.hosts
            .iter()
            .any(|h| b.hosts.iter().any(|o| o.eq_ignore_ascii_case(h)))
}

fn try_server(path: &str, value: &Value, namespace: &str, r: &mut Report) -> Option<Server> {
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
    let https = protocol == Some(Protocol::Https);
    let tls = match server.get("tls") {
        Some(tls) => try_tls(&server.at("tls"), tls, namespace, https, r),
        None => {
            if https {
                r.push(server.at("tls"), "required for an HTTPS server");
            }
            None
        }
    };
    let (tls, https_redirect) = match tls {
        Some(Tls::Terminate(tls)) => (Some(tls), false),
        Some(Tls::Redirect) => (None, true),
        None => (None, false),
    };
    let name = server.string(r, "name").or(port_name);
    Some(Server {
        name,
        port: number?,
        protocol: protocol?,
        hosts,
        tls,
        https_redirect,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CaSource, CertificateSource, Kind, ServerTls, TlsVersion};
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
                 "hosts": ["default/web.example.com", "*"], "tls": {"httpsRedirect": true}},
                {"name": "secure", "port": {"number": 443, "name": "https", "protocol": "HTTPS"},
                 "hosts": ["./web.example.com"],
                 "tls": {"mode": "MUTUAL", "serverCertificate": "/certs/tls.crt",
                         "privateKey": "/certs/tls.key", "caCertificates": "/certs/ca.crt",
                         "subjectAltNames": ["client.example.com"],
                         "minProtocolVersion": "TLSV1_2", "maxProtocolVersion": "TLSV1_3",
                         "cipherSuites": ["ECDHE-RSA-AES256-GCM-SHA384"]}},
                {"port": {"number": 443, "name": "https-api", "protocol": "HTTPS"},
                 "hosts": ["api.example.com"],
                 "tls": {"mode": "SIMPLE", "credentialName": "api-cert"}}
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
                https_redirect: true,
            }
        );
        let https = &gateway.servers[1];
        assert_eq!(https.name.as_deref(), Some("secure"));
        assert_eq!(https.hosts, vec!["web.example.com".to_string()]);
        let mut mutual = ServerTls::simple(CertificateSource::Files {
            certificate: "/certs/tls.crt".into(),
            private_key: "/certs/tls.key".into(),
        });
        mutual.client_ca = Some(CaSource::File("/certs/ca.crt".into()));
        mutual.subject_alt_names = vec!["client.example.com".into()];
        mutual.min_version = Some(TlsVersion::V1_2);
        mutual.max_version = Some(TlsVersion::V1_3);
        mutual.cipher_suites = vec!["ECDHE-RSA-AES256-GCM-SHA384".into()];
        assert_eq!(https.tls, Some(mutual));
        let api = gateway.servers[2].tls.clone().unwrap();
        assert_eq!(
            api.certificate,
            CertificateSource::Secret("default/api-cert".into())
        );
    }

    #[test]
    fn names_every_bad_field() {
        let (_, errors) = read(json!({
            "servers": [
                {"port": {"number": 0, "protocol": "TCP"}, "hosts": []},
                {"port": {"number": 443, "protocol": "HTTPS"}, "hosts": ["a"]},
                {"port": {"number": 8443, "protocol": "HTTPS"}, "hosts": ["a"],
                 "tls": {"mode": "PASSTHROUGH", "credentialName": "cert", "privateKey": "k"}},
                {"port": {"number": 80, "protocol": "HTTP"}, "hosts": ["a"],
                 "tls": {"mode": "SIMPLE"}},
                {"port": {"number": 8443, "protocol": "HTTPS"}, "hosts": ["*"],
                 "tls": {"mode": "SIMPLE", "credentialName": "other"}}
            ]
        }));
        let fields: Vec<(&str, &str)> = errors
            .iter()
            .map(|(f, m)| (f.as_str(), m.as_str()))
            .collect();
        assert_eq!(
            fields[..4].to_vec(),
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
            ]
        );
        let only: Vec<&str> = fields[4..].iter().map(|(f, _)| *f).collect();
        assert_eq!(
            only,
            [
                "spec.servers[2].tls.mode",
                "spec.servers[2].tls.credentialName",
                "spec.servers[3].tls.mode",
                "spec.servers[4].port.number",
            ]
        );
        assert!(fields[4].1.contains("PASSTHROUGH") || fields[4].1.contains("not supported"));
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
