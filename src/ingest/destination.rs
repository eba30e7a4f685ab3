//! Destinations and hosts as Istio writes them (`host`, `subset`, `port.number`), the
//! syntax VirtualService routes and coalmine's Rollout share; and the host check every
//! dialect applies to the hosts it routes.

use serde_json::Value;

use super::error::Report;
use super::walk::{Fields, Obj};
use crate::model::Destination;

const DESTINATION: Fields = Fields::known(&["host", "subset", "port"]);
const PORT: Fields = Fields::known(&["number"]);

/// A host as a route matches it: a DNS name, `*`, or `*.suffix`.
pub(crate) fn check_host(host: &str) -> Result<(), String> {
    let name = host.strip_prefix("*.").unwrap_or(host);
    let valid = host == "*"
        || !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._:".contains(&b));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "{host:?} is not a valid host (a DNS name, `*` or `*.suffix`)"
        ))
    }
}

/// A destination as written: `port` is 0 when not given, resolved later.
pub(crate) fn try_destination(path: &str, value: &Value, r: &mut Report) -> Option<Destination> {
    let destination = Obj::new(r, path, value, DESTINATION)?;
    let host = destination.required_string(r, "host");
    let subset = destination.string(r, "subset");
    if subset.as_deref() == Some("") {
        r.push(destination.at("subset"), "must not be empty");
    }
    let port = match destination.get("port") {
        None => Some(0),
        Some(port) => {
            let port_path = destination.at("port");
            let port = Obj::new(r, &port_path, port, PORT);
            let number = port.and_then(|port| port.uint(r, "number", 1, 65535));
            if port.is_some_and(|port| !port.has("number")) {
                r.push(format!("{port_path}.number"), "required");
            }
            number
        }
    };
    Some(Destination {
        host: host?,
        subset,
        port: port?,
    })
}
