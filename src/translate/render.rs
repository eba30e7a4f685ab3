//! Test-only: [`Resources`] as readable text for golden files. Prost types have no
//! serde, so this is their `{:#?}` output with every `Any` decoded in place and
//! default-valued fields (as proto3 JSON would omit them) left out.

use envoy_types::pb::envoy::extensions::filters::http::cors::v3::{Cors, CorsPolicy};
use envoy_types::pb::envoy::extensions::filters::http::fault::v3::HttpFault;
use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager;
use envoy_types::pb::envoy::extensions::retry::host::previous_hosts::v3::PreviousHostsPredicate;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::DownstreamTlsContext;
use envoy_types::pb::envoy::extensions::upstreams::http::v3::HttpProtocolOptions;
use prost::{Message, Name};

use super::Resources;

pub(super) fn render(resources: &Resources) -> String {
    let mut out = String::new();
    let mut section = |kind: &str, items: Vec<(&String, String)>| {
        for (name, debug) in items {
            out.push_str(&format!("--- {kind} {name}\n{}\n", clean(&expand(&debug))));
        }
    };
    section(
        "listener",
        resources
            .listeners
            .iter()
            .map(|(n, r)| (n, format!("{r:#?}")))
            .collect(),
    );
    section(
        "route",
        resources
            .routes
            .iter()
            .map(|(n, r)| (n, format!("{r:#?}")))
            .collect(),
    );
    section(
        "cluster",
        resources
            .clusters
            .iter()
            .map(|(n, r)| (n, format!("{r:#?}")))
            .collect(),
    );
    section(
        "endpoints",
        resources
            .endpoints
            .iter()
            .map(|(n, r)| (n, format!("{r:#?}")))
            .collect(),
    );
    out
}

fn decode_any(type_url: &str, bytes: &[u8]) -> Option<String> {
    macro_rules! try_decode {
        ($($t:ty),*) => {$(
            if type_url == <$t as Name>::type_url() {
                return <$t>::decode(bytes).ok().map(|m| format!("{m:#?}"));
            }
        )*};
    }
    try_decode!(
        HttpConnectionManager,
        Router,
        HttpFault,
        Cors,
        CorsPolicy,
        DownstreamTlsContext,
        HttpProtocolOptions,
        PreviousHostsPredicate
    );
    None
}

/// Replaces each `Any`'s byte list with the decoded message, recursively.
fn expand(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let url = line
            .trim()
            .strip_prefix("type_url: \"")
            .and_then(|rest| rest.strip_suffix("\","));
        let next = lines.get(i + 1).map(|l| l.trim()).unwrap_or("");
        let (Some(url), true) = (url, next.starts_with("value: [")) else {
            out.push(line.to_string());
            i += 1;
            continue;
        };
        let indent = &line[..line.len() - line.trim_start().len()];
        let mut bytes = Vec::new();
        let mut j = i + 2;
        if next != "value: []," {
            while lines[j].trim() != "]," {
                bytes.push(lines[j].trim().trim_end_matches(',').parse::<u8>().unwrap());
                j += 1;
            }
            j += 1;
        }
        out.push(line.to_string());
        match decode_any(url, &bytes) {
            Some(debug) => {
                let expanded = expand(&debug);
                for (k, l) in expanded.lines().enumerate() {
                    let prefix = if k == 0 { "value: " } else { "" };
                    out.push(format!("{indent}{prefix}{l}"));
                }
                if let Some(last) = out.last_mut() {
                    last.push(',');
                }
            }
            None => out.push(format!("{indent}value: <{} bytes>,", bytes.len())),
        }
        i = j;
    }
    out.join("\n")
}

/// Drops fields that hold their default value (enums too, except ones worth seeing).
fn clean(text: &str) -> String {
    const DEFAULTS: [&str; 7] = [
        ": None,", ": [],", ": {},", ": \"\",", ": 0,", ": false,", ": 0.0,",
    ];
    const DEFAULT_ENUMS: [&str; 14] = [
        "protocol: Tcp,",
        "drain_type: Default,",
        "traffic_direction: Unspecified,",
        "codec_type: Auto,",
        "server_header_transformation: Overwrite,",
        "forward_client_cert_details: Sanitize,",
        "path_with_escaped_slashes_action: ImplementationSpecificDefault,",
        "cluster_not_found_response_code: ServiceUnavailable,",
        "priority: Default,",
        "internal_redirect_action: PassThroughInternalRedirect,",
        "dns_lookup_family: Auto,",
        "protocol_selection: UseConfiguredProtocol,",
        "ocsp_staple_policy: LenientStapling,",
        "headers_with_underscores_action: Allow,",
    ];
    text.lines()
        .filter(|l| !DEFAULTS.iter().any(|d| l.ends_with(d)))
        .filter(|l| !DEFAULT_ENUMS.contains(&l.trim()))
        .collect::<Vec<_>>()
        .join("\n")
}
