//! Test-only: [`Resources`] as Envoy's own proto3 JSON (what `config_dump` shows, every
//! `Any` decoded by type), one section per resource, for golden files.

use std::collections::BTreeMap;

use super::Resources;
use crate::envoy_json::to_json;

pub(super) fn render(resources: &Resources) -> String {
    let mut out = String::new();
    section(&mut out, "listener", &resources.listeners);
    section(&mut out, "route", &resources.routes);
    section(&mut out, "cluster", &resources.clusters);
    section(&mut out, "endpoints", &resources.endpoints);
    out
}

fn section<M: prost::Name>(out: &mut String, kind: &str, items: &BTreeMap<String, M>) {
    for (name, resource) in items {
        let json = to_json(resource).expect("every resource type is in the descriptor pool");
        let pretty = serde_json::to_string_pretty(&json).expect("JSON serializes");
        out.push_str(&format!("--- {kind} {name}\n{pretty}\n"));
    }
}
