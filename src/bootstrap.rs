//! The Envoy bootstrap that points a proxy at coalmine over ADS, and the gRPC xDS
//! bootstrap that points a proxyless gRPC client at it.
//!
//! Pure rendering: [`BootstrapOptions`] in, Envoy v3 bootstrap YAML out. The YAML is
//! produced by [`crate::yaml11`] from a JSON value (never by string formatting), so node ids
//! and label values with any characters stay safe, and the output is deterministic.
//! This module owns no I/O and no CLI parsing beyond the small helpers the CLI uses.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::{json, Value};

/// The name of the static cluster that carries ADS to coalmine.
pub const XDS_CLUSTER: &str = "coalmine_xds";

/// The node metadata key under which the proxy declares its labels.
pub const LABELS_KEY: &str = "labels";

/// The xDS port used when an address has none.
pub const DEFAULT_XDS_PORT: u16 = 18000;

/// Errors of the helpers that check CLI input before rendering.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("invalid xDS address {0:?}: expected HOST:PORT")]
    XdsAddr(String),
    #[error("invalid label {0:?}: expected KEY=VALUE with a non-empty key")]
    Label(String),
    #[error("node id must not be empty")]
    EmptyNodeId,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What an Envoy bootstrap needs to know about its proxy and its control plane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootstrapOptions {
    pub node_id: String,
    /// Envoy's `node.cluster`; `coalmine` by default.
    pub cluster: String,
    /// Declared in `node.metadata.labels`; Gateway selectors match against them.
    pub labels: BTreeMap<String, String>,
    /// `HOST:PORT` of coalmine's xDS server; a name is resolved by DNS.
    pub xds_addr: String,
    /// Envoy's admin port on 127.0.0.1; 0 lets the kernel pick one.
    pub admin_port: u16,
    /// Delta ADS (`DELTA_GRPC`) instead of state-of-the-world.
    pub delta: bool,
    /// xDS over TLS: how the proxy checks coalmine, and its own certificate for
    /// mutual TLS. Paths are as the proxy sees them.
    pub tls: Option<ClientTls>,
}

/// The client side of xDS over TLS.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientTls {
    /// PEM CA bundle that coalmine's certificate must chain to.
    pub ca: String,
    /// The proxy's PEM certificate chain and key, for `--xds-client-ca` (mutual TLS).
    pub cert: Option<String>,
    pub key: Option<String>,
}

impl Default for BootstrapOptions {
    fn default() -> Self {
        Self {
            node_id: String::new(),
            cluster: "coalmine".to_string(),
            labels: BTreeMap::new(),
            xds_addr: format!("127.0.0.1:{DEFAULT_XDS_PORT}"),
            admin_port: 9901,
            delta: false,
            tls: None,
        }
    }
}

impl BootstrapOptions {
    /// Checks what [`render`] would otherwise have to guess about.
    pub fn validate(&self) -> Result<()> {
        if self.node_id.is_empty() {
            return Err(Error::EmptyNodeId);
        }
        try_split_host_port(&self.xds_addr)?;
        Ok(())
    }
}

/// Splits `HOST:PORT` (or `[V6]:PORT`) into host and port.
pub fn try_split_host_port(addr: &str) -> Result<(String, u16)> {
    let err = || Error::XdsAddr(addr.to_string());
    let (host, port) = addr.rsplit_once(':').ok_or_else(err)?;
    let port: u16 = port.parse().map_err(|_| err())?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() || host.contains(['[', ']']) {
        return Err(err());
    }
    Ok((host.to_string(), port))
}

/// Parses one `--label KEY=VALUE`.
pub fn try_parse_label(s: &str) -> Result<(String, String)> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(Error::Label(s.to_string())),
    }
}

/// Renders the bootstrap as YAML. An address without a valid port uses
/// [`DEFAULT_XDS_PORT`]; call [`BootstrapOptions::validate`] first to refuse it instead.
/// Every string that YAML 1.1 (Envoy's reader) could take for another type is quoted.
pub fn render(opts: &BootstrapOptions) -> String {
    crate::yaml11::to_string(&to_value(opts))
}

/// The bootstrap as JSON, which Envoy also reads (`-c envoy.json`).
pub fn render_json(opts: &BootstrapOptions) -> String {
    let mut text = serde_json::to_string_pretty(&to_value(opts)).expect("JSON serializes");
    text.push('\n');
    text
}

/// The bootstrap as a JSON value (the same document [`render`] prints).
pub fn to_value(opts: &BootstrapOptions) -> Value {
    let api_type = if opts.delta { "DELTA_GRPC" } else { "GRPC" };
    let ads_source = json!({ "ads": {}, "resource_api_version": "V3" });
    json!({
        "node": {
            "id": opts.node_id,
            "cluster": opts.cluster,
            "metadata": { LABELS_KEY: opts.labels },
        },
        "admin": { "address": socket_address("127.0.0.1", opts.admin_port) },
        "dynamic_resources": {
            "ads_config": {
                "api_type": api_type,
                "transport_api_version": "V3",
                "grpc_services": [{ "envoy_grpc": { "cluster_name": XDS_CLUSTER } }],
                "set_node_on_first_message_only": true,
            },
            "cds_config": ads_source,
            "lds_config": ads_source,
        },
        "static_resources": { "clusters": [xds_cluster(&opts.xds_addr, opts.tls.as_ref())] },
        "stats_sinks": [stats_sink()],
        "stats_flush_interval": STATS_FLUSH_INTERVAL,
    })
}

/// The gRPC xDS bootstrap (the JSON file `GRPC_XDS_BOOTSTRAP` names) of a proxyless
/// gRPC client: coalmine as its one xDS server (insecure, xDS v3), and a node whose
/// metadata says `GENERATOR: grpc` (Istio's marker) beside its labels.
pub fn render_grpc(opts: &BootstrapOptions) -> String {
    let json = serde_json::to_string_pretty(&to_grpc_value(opts));
    json.expect("a JSON value always serializes") + "\n"
}

/// The gRPC bootstrap as a JSON value (the document [`render_grpc`] prints).
pub fn to_grpc_value(opts: &BootstrapOptions) -> Value {
    json!({
        "xds_servers": [{
            "server_uri": opts.xds_addr,
            "channel_creds": [grpc_channel_creds(opts.tls.as_ref())],
            "server_features": ["xds_v3"],
        }],
        "node": {
            "id": opts.node_id,
            "cluster": opts.cluster,
            "metadata": { LABELS_KEY: opts.labels, GENERATOR_KEY: "grpc" },
        },
    })
}

/// gRPC's bootstrap credentials (gRFC A65): `tls` with file paths, or `insecure`.
fn grpc_channel_creds(tls: Option<&ClientTls>) -> Value {
    let Some(tls) = tls else {
        return json!({ "type": "insecure" });
    };
    let mut config = json!({ "ca_certificate_file": tls.ca });
    if let (Some(cert), Some(key)) = (&tls.cert, &tls.key) {
        config["certificate_file"] = json!(cert);
        config["private_key_file"] = json!(key);
    }
    json!({ "type": "tls", "config": config })
}

/// Envoy's TLS transport socket to coalmine: the server's certificate must chain to
/// the CA and name the host dialled (its DNS name, or its IP address); the proxy's own
/// certificate goes along for mutual TLS.
fn xds_transport_socket(host: &str, is_ip: bool, tls: &ClientTls) -> Value {
    let san = match is_ip {
        true => json!({ "san_type": "IP_ADDRESS", "matcher": { "exact": host } }),
        false => json!({ "san_type": "DNS", "matcher": { "exact": host } }),
    };
    let mut common = json!({
        "alpn_protocols": ["h2"],
        "validation_context": {
            "trusted_ca": { "filename": tls.ca },
            "match_typed_subject_alt_names": [san],
        },
    });
    if let (Some(cert), Some(key)) = (&tls.cert, &tls.key) {
        common["tls_certificates"] = json!([{
            "certificate_chain": { "filename": cert },
            "private_key": { "filename": key },
        }]);
    }
    let mut context = json!({
        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
        "common_tls_context": common,
    });
    if !is_ip {
        context["sni"] = json!(host);
    }
    json!({ "name": "envoy.transport_sockets.tls", "typed_config": context })
}

/// Istio's node metadata key naming the kind of client; `grpc` for proxyless gRPC.
pub const GENERATOR_KEY: &str = "GENERATOR";

/// How often Envoy pushes its stats to coalmine: the resolution of built-in analysis.
pub const STATS_FLUSH_INTERVAL: &str = "1s";

/// Envoy's metrics service sink, over the same connection as ADS: the source of
/// coalmine's built-in analysis (request success rate and duration per cluster).
/// Counters stay cumulative and histograms are sent as buckets, so coalmine computes
/// any window by difference.
fn stats_sink() -> Value {
    json!({
        "name": "envoy.stat_sinks.metrics_service",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.config.metrics.v3.MetricsServiceConfig",
            "transport_api_version": "V3",
            "grpc_service": { "envoy_grpc": { "cluster_name": XDS_CLUSTER } },
            "histogram_emit_mode": "HISTOGRAM",
        },
    })
}

fn socket_address(address: &str, port: u16) -> Value {
    json!({ "socket_address": { "address": address, "port_value": port } })
}

/// The static cluster to coalmine: HTTP/2 with keepalive, STATIC for an IP address,
/// STRICT_DNS for a name (so every replica behind a headless service is used).
fn xds_cluster(xds_addr: &str, tls: Option<&ClientTls>) -> Value {
    let (host, port) =
        try_split_host_port(xds_addr).unwrap_or_else(|_| (xds_addr.to_string(), DEFAULT_XDS_PORT));
    let is_ip = host.parse::<IpAddr>().is_ok();
    let mut cluster = json!({
        "name": XDS_CLUSTER,
        "type": if is_ip { "STATIC" } else { "STRICT_DNS" },
        "connect_timeout": "1s",
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {
                    "http2_protocol_options": {
                        "connection_keepalive": { "interval": "30s", "timeout": "5s" },
                    },
                },
            },
        },
        "upstream_connection_options": { "tcp_keepalive": {} },
        "load_assignment": {
            "cluster_name": XDS_CLUSTER,
            "endpoints": [{
                "lb_endpoints": [{ "endpoint": { "address": socket_address(&host, port) } }],
            }],
        },
    });
    if !is_ip {
        cluster["dns_lookup_family"] = json!("V4_PREFERRED");
    }
    if let Some(tls) = tls {
        cluster["transport_socket"] = xds_transport_socket(&host, is_ip, tls);
    }
    cluster
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mk_opts() -> BootstrapOptions {
        BootstrapOptions {
            node_id: "edge-1".into(),
            labels: BTreeMap::from([("app".into(), "web".into())]),
            ..Default::default()
        }
    }

    fn parse(yaml: &str) -> Value {
        crate::yaml::value(yaml).expect("rendered YAML parses")
    }

    #[test]
    fn defaults_match_the_cli() {
        let d = BootstrapOptions::default();
        assert_eq!(d.cluster, "coalmine");
        assert_eq!(d.xds_addr, "127.0.0.1:18000");
        assert_eq!(d.admin_port, 9901);
        assert!(!d.delta);
    }

    #[test]
    fn node_carries_id_cluster_and_labels() {
        let v = parse(&render(&mk_opts()));
        assert_eq!(v["node"]["id"], "edge-1");
        assert_eq!(v["node"]["cluster"], "coalmine");
        assert_eq!(v["node"]["metadata"]["labels"], json!({ "app": "web" }));
        assert_eq!(
            v["admin"]["address"]["socket_address"],
            json!({ "address": "127.0.0.1", "port_value": 9901 })
        );
    }

    #[test]
    fn ads_is_sotw_by_default_and_delta_on_request() {
        let v = parse(&render(&mk_opts()));
        let ads = &v["dynamic_resources"]["ads_config"];
        assert_eq!(ads["api_type"], "GRPC");
        assert_eq!(ads["transport_api_version"], "V3");
        assert_eq!(ads["set_node_on_first_message_only"], true);
        assert_eq!(
            ads["grpc_services"][0]["envoy_grpc"]["cluster_name"],
            XDS_CLUSTER
        );
        for key in ["cds_config", "lds_config"] {
            assert_eq!(
                v["dynamic_resources"][key],
                json!({ "ads": {}, "resource_api_version": "V3" })
            );
        }
        let delta = parse(&render(&BootstrapOptions {
            delta: true,
            ..mk_opts()
        }));
        assert_eq!(
            delta["dynamic_resources"]["ads_config"]["api_type"],
            "DELTA_GRPC"
        );
    }

    #[test]
    fn tls_checks_the_server_name_and_sends_the_client_certificate() {
        let tls = ClientTls {
            ca: "/etc/coalmine/ca.pem".into(),
            cert: Some("/etc/envoy/tls.crt".into()),
            key: Some("/etc/envoy/tls.key".into()),
        };
        let mut opts = BootstrapOptions {
            xds_addr: "coalmine.coalmine.svc:18000".into(),
            tls: Some(tls.clone()),
            ..mk_opts()
        };
        let c = parse(&render(&opts))["static_resources"]["clusters"][0].clone();
        let context = &c["transport_socket"]["typed_config"];
        assert_eq!(context["sni"], "coalmine.coalmine.svc");
        let common = &context["common_tls_context"];
        assert_eq!(
            common["validation_context"]["trusted_ca"]["filename"],
            "/etc/coalmine/ca.pem"
        );
        assert_eq!(
            common["validation_context"]["match_typed_subject_alt_names"][0],
            json!({"san_type": "DNS", "matcher": {"exact": "coalmine.coalmine.svc"}})
        );
        assert_eq!(
            common["tls_certificates"][0]["private_key"]["filename"],
            "/etc/envoy/tls.key"
        );
        opts.xds_addr = "127.0.0.1:18000".into();
        let c = parse(&render(&opts))["static_resources"]["clusters"][0].clone();
        let context = &c["transport_socket"]["typed_config"];
        assert!(context.get("sni").is_none(), "no SNI for an IP address");
        assert_eq!(
            context["common_tls_context"]["validation_context"]["match_typed_subject_alt_names"][0]
                ["san_type"],
            "IP_ADDRESS"
        );
        let grpc = to_grpc_value(&opts);
        assert_eq!(
            grpc["xds_servers"][0]["channel_creds"][0],
            json!({"type": "tls", "config": {
                "ca_certificate_file": "/etc/coalmine/ca.pem",
                "certificate_file": "/etc/envoy/tls.crt",
                "private_key_file": "/etc/envoy/tls.key",
            }})
        );
    }

    #[test]
    fn xds_cluster_is_static_http2_to_the_address() {
        let v = parse(&render(&BootstrapOptions {
            xds_addr: "10.1.2.3:19000".into(),
            ..mk_opts()
        }));
        let c = &v["static_resources"]["clusters"][0];
        assert_eq!(c["name"], XDS_CLUSTER);
        assert_eq!(c["type"], "STATIC");
        let opts = &c["typed_extension_protocol_options"]
            ["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"];
        assert!(
            opts["explicit_http_config"]["http2_protocol_options"]["connection_keepalive"]
                .is_object()
        );
        let addr = &c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"];
        assert_eq!(
            addr["socket_address"],
            json!({ "address": "10.1.2.3", "port_value": 19000 })
        );
    }

    #[test]
    fn a_host_name_is_resolved_by_dns() {
        let v = parse(&render(&BootstrapOptions {
            xds_addr: "coalmine.system.svc:18000".into(),
            ..mk_opts()
        }));
        let c = &v["static_resources"]["clusters"][0];
        assert_eq!(c["type"], "STRICT_DNS");
        let v6 = parse(&render(&BootstrapOptions {
            xds_addr: "[::1]:18000".into(),
            ..mk_opts()
        }));
        let c = &v6["static_resources"]["clusters"][0];
        assert_eq!(c["type"], "STATIC");
        let sa = &c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
            ["socket_address"];
        assert_eq!(sa["address"], "::1");
    }

    #[test]
    fn strings_envoy_would_read_as_booleans_are_quoted() {
        let labels = BTreeMap::from([
            ("canary".into(), "yes".into()),
            ("off".into(), "no".into()),
            ("port".into(), "8080".into()),
        ]);
        let yaml = render(&BootstrapOptions {
            node_id: "on".into(),
            labels,
            ..mk_opts()
        });
        for line in [
            r#"canary: "yes""#,
            r#""off": "no""#,
            r#"port: "8080""#,
            r#"id: "on""#,
        ] {
            assert!(yaml.contains(line), "{line} in\n{yaml}");
        }
        let json: Value = serde_json::from_str(&render_json(&mk_opts())).expect("JSON");
        assert_eq!(json, to_value(&mk_opts()));
    }

    #[test]
    fn awkward_label_values_round_trip() {
        let labels = BTreeMap::from([
            ("version".into(), "1.0".into()),
            ("yes".into(), "true".into()),
            ("odd".into(), "a: b # c\n- 'd\"".into()),
            ("empty".into(), String::new()),
        ]);
        let v = parse(&render(&BootstrapOptions {
            labels: labels.clone(),
            ..mk_opts()
        }));
        assert_eq!(v["node"]["metadata"]["labels"], json!(labels));
    }

    #[test]
    fn grpc_bootstrap_names_coalmine_as_its_xds_server() {
        let v: Value = serde_json::from_str(&render_grpc(&BootstrapOptions {
            xds_addr: "coalmine.system.svc:18000".into(),
            ..mk_opts()
        }))
        .expect("rendered JSON parses");
        assert_eq!(
            v["xds_servers"],
            json!([{
                "server_uri": "coalmine.system.svc:18000",
                "channel_creds": [{ "type": "insecure" }],
                "server_features": ["xds_v3"],
            }])
        );
        assert_eq!(v["node"]["id"], "edge-1");
        assert_eq!(v["node"]["cluster"], "coalmine");
        assert_eq!(v["node"]["metadata"]["labels"], json!({ "app": "web" }));
        assert_eq!(v["node"]["metadata"]["GENERATOR"], "grpc");
    }

    #[test]
    fn rendering_is_deterministic() {
        assert_eq!(render(&mk_opts()), render(&mk_opts()));
    }

    #[test]
    fn cli_helpers_check_their_input() {
        assert_eq!(
            try_split_host_port("localhost:1"),
            Ok(("localhost".into(), 1))
        );
        assert!(try_split_host_port("localhost").is_err());
        assert!(try_split_host_port(":80").is_err());
        assert!(try_split_host_port("h:99999").is_err());
        assert_eq!(try_parse_label("a=b=c"), Ok(("a".into(), "b=c".into())));
        assert_eq!(try_parse_label("a="), Ok(("a".into(), String::new())));
        assert!(try_parse_label("=b").is_err());
        assert!(try_parse_label("ab").is_err());
        assert_eq!(
            BootstrapOptions::default().validate(),
            Err(Error::EmptyNodeId)
        );
        assert!(mk_opts().validate().is_ok());
    }
}
