//! A Gateway's `spec.addresses`: `{type, value}` entries, `type` `IPAddress` (the
//! default) or `Hostname`. coalmine assigns no address itself: what the spec lists is
//! what the status reports (`k8s::gateway_api_status`). An unknown type is an error
//! with the Gateway API's reason `UnsupportedAddress` (the Gateway's `Accepted` is false
//! with it); a value that is not an IP address, or not a DNS name, is an error too.

use std::net::IpAddr;

use crate::ingest::{Fields, Obj, Report};
use crate::model::GatewayAddress;

const ADDRESS: Fields = Fields::known(&["type", "value"]);

/// Reads `spec.addresses`; every problem goes to `r`.
pub(super) fn try_addresses(spec: &Obj<'_, '_>, r: &mut Report) -> Vec<GatewayAddress> {
    let mut out: Vec<GatewayAddress> = Vec::new();
    for (path, item) in spec.list(r, "addresses") {
        let Some(address) = Obj::new(r, &path, item, ADDRESS) else {
            continue;
        };
        let kind = address.string(r, "type");
        let value = address.required_string(r, "value");
        let kind = match kind.as_deref() {
            None | Some("IPAddress") => "IPAddress",
            Some("Hostname") => "Hostname",
            Some(other) => {
                let message =
                    format!("address type {other:?} is not supported (IPAddress or Hostname)");
                r.push_reason(address.at("type"), "UnsupportedAddress", message);
                continue;
            }
        };
        let Some(value) = value else {
            continue;
        };
        let valid = match kind {
            "IPAddress" => value.parse::<IpAddr>().is_ok(),
            _ => is_dns_name(&value),
        };
        let address_value = address.at("value");
        if !valid {
            let expected = match kind {
                "IPAddress" => "an IPv4 or IPv6 address",
                _ => "a DNS name (lower case, no wildcard)",
            };
            r.push(address_value, format!("{value:?} is not {expected}"));
            continue;
        }
        let address = GatewayAddress { kind, value };
        if let Some(i) = out.iter().position(|a| a == &address) {
            r.push(
                address_value,
                format!("already listed by spec.addresses[{i}]"),
            );
            continue;
        }
        out.push(address);
    }
    out
}

/// A DNS name as RFC 1123 has it (what the Gateway API's `Hostname` address allows):
/// dot-separated labels of lower-case letters, digits and inner `-`.
fn is_dns_name(name: &str) -> bool {
    name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn read(spec: Value) -> (Vec<GatewayAddress>, Vec<(String, Option<&'static str>)>) {
        let mut r = Report::new("Gateway default/edge");
        let fields = Fields::known(&["addresses"]);
        let spec = Obj::new(&mut r, "spec", &spec, fields).unwrap();
        let out = try_addresses(&spec, &mut r);
        let errors = r.errors.into_iter().map(|e| (e.field, e.reason)).collect();
        (out, errors)
    }

    #[test]
    fn ip_addresses_by_default_and_hostnames() {
        let (out, errors) = read(json!({"addresses": [
            {"value": "10.0.0.7"},
            {"type": "IPAddress", "value": "2001:db8::1"},
            {"type": "Hostname", "value": "edge.example.com"}
        ]}));
        assert_eq!(errors, []);
        let got: Vec<(&str, &str)> = out.iter().map(|a| (a.kind, a.value.as_str())).collect();
        assert_eq!(
            got,
            [
                ("IPAddress", "10.0.0.7"),
                ("IPAddress", "2001:db8::1"),
                ("Hostname", "edge.example.com")
            ]
        );
    }

    #[test]
    fn an_unknown_type_is_unsupported_and_bad_values_are_named() {
        let (out, errors) = read(json!({"addresses": [
            {"type": "example.com/custom", "value": "x"},
            {"type": "IPAddress", "value": "edge.example.com"},
            {"type": "Hostname", "value": "*.example.com"},
            {"type": "Hostname", "value": "-bad.example.com"},
            {"type": "Hostname"},
            {"value": "10.0.0.7"},
            {"value": "10.0.0.7"}
        ]}));
        assert_eq!(
            errors,
            [
                (
                    "spec.addresses[0].type".to_string(),
                    Some("UnsupportedAddress")
                ),
                ("spec.addresses[1].value".to_string(), None),
                ("spec.addresses[2].value".to_string(), None),
                ("spec.addresses[3].value".to_string(), None),
                ("spec.addresses[4].value".to_string(), None),
                ("spec.addresses[6].value".to_string(), None),
            ]
        );
        assert_eq!(out.len(), 1);
    }
}
