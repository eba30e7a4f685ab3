//! Rewriting of a target Gateway API HTTPRoute document for each traffic action of a
//! release: the target rule's `backendRefs[]` and the A/B rule change; every other
//! field is kept as it is.
//!
//! The target rule is the first rule (other than the A/B rule) with a backendRef to the
//! stable Service, or else the first with one to the canary, as
//! [`Rollout::target_route`] picks it on the model. backendRef weights are relative
//! integers: a step writes the stable's and the canary's share in millionths of the
//! whole, reduced by their greatest common divisor (10 % is `9` and `1`, 0.01 % is
//! `9999` and `1`), which reads back as exactly the step's weight. The A/B rule is
//! named (`rules[].name`) so that the next step finds and replaces it.

use serde_json::{json, Map, Value};

use super::{Error, Result};
use crate::istio::host_candidates;
use crate::model::{Destination, HeaderMatch, Rollout, RouteMatch, StringMatch, Weight};

const KIND: &str = "HTTPRoute";

/// The API group a backendRef names for a ServiceEntry host (`kind: Hostname`).
const HOSTNAME_GROUP: &str = "networking.istio.io";

/// `canary` of the rule's traffic to the canary, the rest to stable (both listed, a 0
/// weight included). With `ab_match`, a copy of the rule placed just before it sends
/// the requests that match the rollout's `match` (and the rule's own) to the canary.
pub fn set_weight(
    route: &Value,
    rollout: &Rollout,
    canary: Weight,
    ab_match: bool,
) -> Result<Value> {
    let mut doc = route.clone();
    let (rules, index, namespace) = target(&mut doc, rollout)?;
    let stable_units = Weight::FULL.units() - canary.units();
    let (stable_w, canary_w) = reduced(stable_units, canary.units());
    let stable = backend(&rules[index], &rollout.stable, &namespace, stable_w);
    let canary_ref = backend(&rules[index], &rollout.canary, &namespace, canary_w);
    if ab_match {
        let mut ab = rules[index].clone();
        let matches = merged_matches(ab.get("matches"), &rollout.analysis.matches);
        let ab_canary = backend(&rules[index], &rollout.canary, &namespace, 1);
        let fields = ab.as_object_mut().expect("a rule is an object");
        fields.insert("name".into(), Value::String(rollout.ab_route_name()));
        fields.insert("matches".into(), matches);
        fields.insert("backendRefs".into(), Value::Array(vec![ab_canary]));
        rules[index]["backendRefs"] = Value::Array(vec![stable, canary_ref]);
        rules.insert(index, ab);
    } else {
        rules[index]["backendRefs"] = Value::Array(vec![stable, canary_ref]);
    }
    Ok(doc)
}

/// All of the rule's traffic to the canary Service, which takes the stable's place
/// (keeping the canary backendRef's own fields, or else the stable's); no A/B rule.
pub fn finalize(route: &Value, rollout: &Rollout) -> Result<Value> {
    let mut doc = route.clone();
    let (rules, index, namespace) = target(&mut doc, rollout)?;
    let rule = &rules[index];
    let canary = match find(rule, &rollout.canary, &namespace) {
        Some(_) => backend(rule, &rollout.canary, &namespace, 1),
        None => {
            let mut moved = backend(rule, &rollout.stable, &namespace, 1);
            let fresh = new_backend(&rollout.canary, &namespace);
            let fields = moved.as_object_mut().expect("a backendRef is an object");
            for key in ["group", "kind", "name", "namespace", "port"] {
                fields.remove(key);
            }
            fields.extend(fresh.as_object().expect("an object").clone());
            moved
        }
    };
    rules[index]["backendRefs"] = Value::Array(vec![canary]);
    Ok(doc)
}

/// All of the rule's traffic to stable, the canary backendRef and the A/B rule removed.
pub fn rollback(route: &Value, rollout: &Rollout) -> Result<Value> {
    let mut doc = route.clone();
    let (rules, index, namespace) = target(&mut doc, rollout)?;
    let stable = backend(&rules[index], &rollout.stable, &namespace, 1);
    rules[index]["backendRefs"] = Value::Array(vec![stable]);
    Ok(doc)
}

/// The two relative weights, divided by their greatest common divisor.
fn reduced(a: u32, b: u32) -> (u32, u32) {
    let (mut x, mut y) = (a, b);
    while y != 0 {
        (x, y) = (y, x % y);
    }
    match x {
        0 => (a, b),
        g => (a / g, b / g),
    }
}

/// The document's `spec.rules` with the A/B rule removed, the target rule's index in
/// it, and the document's namespace.
fn target<'a>(
    doc: &'a mut Value,
    rollout: &Rollout,
) -> Result<(&'a mut Vec<Value>, usize, String)> {
    let namespace = doc
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("default")
        .to_string();
    let rules = doc
        .pointer_mut("/spec/rules")
        .and_then(Value::as_array_mut)
        .ok_or(Error::NoRoutes(KIND, "spec.rules"))?;
    let ab = rollout.ab_route_name();
    rules.retain(|rule| rule.get("name").and_then(Value::as_str) != Some(ab.as_str()));
    let first_to = |d: &Destination| {
        rules
            .iter()
            .position(|rule| find(rule, d, &namespace).is_some())
    };
    let index = first_to(&rollout.stable)
        .or_else(|| first_to(&rollout.canary))
        .ok_or(Error::NoTargetRoute(KIND))?;
    Ok((rules, index, namespace))
}

/// The rule's backendRef that names `d` as the route in `namespace` resolves it (a
/// Service name of the namespace or a ServiceEntry host; port optional).
fn find<'v>(rule: &'v Value, d: &Destination, namespace: &str) -> Option<&'v Value> {
    let refs = rule.get("backendRefs")?.as_array()?;
    refs.iter().find(|r| {
        let name = r.get("name").and_then(Value::as_str).unwrap_or_default();
        let ns = r
            .get("namespace")
            .and_then(Value::as_str)
            .unwrap_or(namespace);
        let port = r.get("port").and_then(Value::as_u64);
        host_candidates(name, ns).contains(&d.host) && port.is_none_or(|p| p == u64::from(d.port))
    })
}

/// The rule's backendRef for `d` with `weight` (its other fields kept), or a new one.
fn backend(rule: &Value, d: &Destination, namespace: &str, weight: u32) -> Value {
    let mut out = match find(rule, d, namespace) {
        Some(existing) => existing.clone(),
        None => new_backend(d, namespace),
    };
    out["weight"] = Value::from(weight);
    out
}

/// A backendRef naming `d`: a Service by its short name when `d` is a Service of the
/// route's namespace, else a ServiceEntry host.
fn new_backend(d: &Destination, namespace: &str) -> Value {
    let suffix = format!(".{namespace}.svc.cluster.local");
    match d.host.strip_suffix(&suffix) {
        Some(name) if !name.contains('.') => json!({ "name": name, "port": d.port }),
        _ => json!({
            "group": HOSTNAME_GROUP,
            "kind": "Hostname",
            "name": d.host,
            "port": d.port,
        }),
    }
}

/// Every rule match ANDed with every rollout match (the rollout's conditions win on
/// the same path, method, header or query parameter); the rollout's matches alone when
/// the rule has none. Rollout matches that an HTTPRoute cannot express were rejected
/// when the Rollout was validated ([`match_json`]); they are left out here.
fn merged_matches(original: Option<&Value>, ab: &[RouteMatch]) -> Value {
    let ab: Vec<Map<String, Value>> = ab
        .iter()
        .filter_map(|m| match_json(m).ok())
        .filter_map(|v| v.as_object().cloned())
        .collect();
    let originals: Vec<Map<String, Value>> = original
        .and_then(Value::as_array)
        .map(|o| o.iter().filter_map(|m| m.as_object().cloned()).collect())
        .unwrap_or_default();
    if originals.is_empty() {
        return Value::Array(ab.into_iter().map(Value::Object).collect());
    }
    let mut out = Vec::new();
    for o in &originals {
        for a in &ab {
            let mut merged = o.clone();
            for (key, value) in a {
                match (key.as_str(), merged.get_mut(key), value) {
                    ("headers" | "queryParams", Some(Value::Array(mine)), Value::Array(theirs)) => {
                        let insensitive = key == "headers";
                        mine.retain(|m| !theirs.iter().any(|t| same_name(m, t, insensitive)));
                        mine.extend(theirs.iter().cloned());
                    }
                    _ => {
                        merged.insert(key.clone(), value.clone());
                    }
                }
            }
            out.push(Value::Object(merged));
        }
    }
    Value::Array(out)
}

fn same_name(a: &Value, b: &Value, case_insensitive: bool) -> bool {
    let name = |v: &Value| v.get("name").and_then(Value::as_str).map(str::to_string);
    match (name(a), name(b)) {
        (Some(x), Some(y)) if case_insensitive => x.eq_ignore_ascii_case(&y),
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// A rollout match as an HTTPRoute match, or what of it an HTTPRoute cannot express
/// (an `authority` or `withoutHeaders` condition, a header, query or method that is
/// not an exact or regex match), named by its field.
pub fn match_json(m: &RouteMatch) -> std::result::Result<Value, String> {
    let mut out = Map::new();
    if m.authority.is_some() {
        return Err("authority: an HTTPRoute match has no authority condition".into());
    }
    if !m.without_headers.is_empty() {
        return Err("withoutHeaders: an HTTPRoute match has no such condition".into());
    }
    if let Some(uri) = &m.uri {
        let (kind, value) = match uri {
            StringMatch::Exact(s) => ("Exact", s),
            StringMatch::Prefix(s) => ("PathPrefix", s),
            StringMatch::Regex(s) => ("RegularExpression", s),
        };
        out.insert("path".into(), json!({ "type": kind, "value": value }));
    }
    if let Some(method) = &m.method {
        match method {
            StringMatch::Exact(s) => out.insert("method".into(), Value::String(s.clone())),
            _ => return Err("method: an HTTPRoute matches a method exactly".into()),
        };
    }
    let mut headers = Vec::new();
    for (name, h) in &m.headers {
        let (kind, value) = match h {
            HeaderMatch::Present => ("RegularExpression", ".*"),
            HeaderMatch::Value(s) => named(s).ok_or_else(|| {
                format!("headers.{name}: an HTTPRoute matches a header exactly or by regex")
            })?,
        };
        headers.push(json!({ "name": name, "type": kind, "value": value }));
    }
    if !headers.is_empty() {
        out.insert("headers".into(), Value::Array(headers));
    }
    let mut params = Vec::new();
    for (name, s) in &m.query_params {
        let (kind, value) = named(s).ok_or_else(|| {
            format!(
                "queryParams.{name}: an HTTPRoute matches a query parameter exactly or by regex"
            )
        })?;
        params.push(json!({ "name": name, "type": kind, "value": value }));
    }
    if !params.is_empty() {
        out.insert("queryParams".into(), Value::Array(params));
    }
    Ok(Value::Object(out))
}

/// The Gateway API match type and value of a header or query condition.
fn named(s: &StringMatch) -> Option<(&'static str, &str)> {
    match s {
        StringMatch::Exact(v) => Some(("Exact", v)),
        StringMatch::Regex(v) => Some(("RegularExpression", v)),
        StringMatch::Prefix(_) => None,
    }
}
