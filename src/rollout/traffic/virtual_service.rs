//! Rewriting of a target VirtualService document (as stored: the JSON of an
//! [`crate::istio::Document`]) for each traffic action of a release. Only the target
//! route's `route[]` and the A/B route change; every other field is kept as it is.
//!
//! The target route is chosen as [`Rollout::target_route`] chooses it on the model: the
//! first route (other than the A/B route) that sends traffic to the stable destination,
//! or else the first that sends traffic to the canary.

use serde_json::{json, Map, Value};

use super::{weight_json, Error, Result};
use crate::istio::host_candidates;
use crate::model::{Destination, HeaderMatch, Rollout, RouteMatch, StringMatch, Weight};

const KIND: &str = "VirtualService";

/// `canary` of the route to the canary, the rest to stable (both listed, a 0 weight
/// included). With `ab_match`, a copy of the route placed just before it sends the
/// requests that match the rollout's `match` (and the route's own) to the canary.
pub fn set_weight(vs: &Value, rollout: &Rollout, canary: Weight, ab_match: bool) -> Result<Value> {
    let mut doc = vs.clone();
    let (http, index, namespace) = target(&mut doc, rollout)?;
    let stable_weight = Weight::from_units(Weight::FULL.units() - canary.units());
    let stable = entry(&http[index], &rollout.stable, &namespace, stable_weight);
    let canary_entry = entry(&http[index], &rollout.canary, &namespace, canary);
    if ab_match {
        let mut ab = http[index].clone();
        let original = ab.get("match").cloned();
        let ab_canary = entry(&http[index], &rollout.canary, &namespace, Weight::FULL);
        let fields = ab.as_object_mut().expect("a route is an object");
        fields.insert("name".into(), Value::String(rollout.ab_route_name()));
        let matches = merged_matches(original.as_ref(), &rollout.analysis.matches);
        fields.insert("match".into(), matches);
        fields.insert("route".into(), Value::Array(vec![ab_canary]));
        http[index]["route"] = Value::Array(vec![stable, canary_entry]);
        http.insert(index, ab);
    } else {
        http[index]["route"] = Value::Array(vec![stable, canary_entry]);
    }
    Ok(doc)
}

/// All of the route's traffic to the canary's destination, which takes the stable's
/// place (keeping the canary entry's own fields, or else the stable entry's); no A/B
/// route.
pub fn finalize(vs: &Value, rollout: &Rollout) -> Result<Value> {
    let mut doc = vs.clone();
    let (http, index, namespace) = target(&mut doc, rollout)?;
    let route = &http[index];
    let canary = match find(route, &rollout.canary, &namespace) {
        Some(_) => entry(route, &rollout.canary, &namespace, Weight::FULL),
        None => {
            let mut moved = entry(route, &rollout.stable, &namespace, Weight::FULL);
            moved["destination"] = destination_json(&rollout.canary);
            moved
        }
    };
    http[index]["route"] = Value::Array(vec![canary]);
    Ok(doc)
}

/// All of the route's traffic to stable, the canary entry and the A/B route removed.
pub fn rollback(vs: &Value, rollout: &Rollout) -> Result<Value> {
    let mut doc = vs.clone();
    let (http, index, namespace) = target(&mut doc, rollout)?;
    let stable = entry(&http[index], &rollout.stable, &namespace, Weight::FULL);
    http[index]["route"] = Value::Array(vec![stable]);
    Ok(doc)
}

/// The document's `spec.http` with the A/B route removed, the target route's index in
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
    let http = doc
        .pointer_mut("/spec/http")
        .and_then(Value::as_array_mut)
        .ok_or(Error::NoRoutes(KIND, "spec.http"))?;
    let ab = rollout.ab_route_name();
    http.retain(|route| route.get("name").and_then(Value::as_str) != Some(ab.as_str()));
    let first_to = |d: &Destination| {
        http.iter()
            .position(|route| find(route, d, &namespace).is_some())
    };
    let index = first_to(&rollout.stable)
        .or_else(|| first_to(&rollout.canary))
        .ok_or(Error::NoTargetRoute(KIND))?;
    Ok((http, index, namespace))
}

/// The route's `route[]` entry whose destination names `d`, as a VirtualService in
/// `namespace` resolves it (short host names, port optional).
fn find<'v>(route: &'v Value, d: &Destination, namespace: &str) -> Option<&'v Value> {
    let entries = route.get("route")?.as_array()?;
    entries.iter().find(|entry| {
        let Some(dest) = entry.get("destination") else {
            return false;
        };
        let host = dest.get("host").and_then(Value::as_str).unwrap_or_default();
        let subset = dest.get("subset").and_then(Value::as_str);
        let port = dest.pointer("/port/number").and_then(Value::as_u64);
        host_candidates(host, namespace).contains(&d.host)
            && subset == d.subset.as_deref()
            && port.is_none_or(|p| p == u64::from(d.port))
    })
}

/// The route's entry for `d` with `weight` (its other fields kept), or a new one.
fn entry(route: &Value, d: &Destination, namespace: &str, weight: Weight) -> Value {
    let mut out = match find(route, d, namespace) {
        Some(existing) => existing.clone(),
        None => json!({ "destination": destination_json(d) }),
    };
    out["weight"] = weight_json(weight);
    out
}

fn destination_json(d: &Destination) -> Value {
    let mut out = Map::new();
    out.insert("host".into(), Value::String(d.host.clone()));
    if let Some(subset) = &d.subset {
        out.insert("subset".into(), Value::String(subset.clone()));
    }
    out.insert("port".into(), json!({ "number": d.port }));
    Value::Object(out)
}

/// Every route match ANDed with every rollout match (the rollout's conditions win on the
/// same field or header); the rollout's matches alone when the route has none.
fn merged_matches(original: Option<&Value>, ab: &[RouteMatch]) -> Value {
    let ab: Vec<Value> = ab.iter().map(match_json).collect();
    let originals = original.and_then(Value::as_array).filter(|o| !o.is_empty());
    let Some(originals) = originals else {
        return Value::Array(ab);
    };
    let mut out = Vec::new();
    for o in originals {
        for a in &ab {
            let mut merged = o.as_object().cloned().unwrap_or_default();
            for (key, value) in a.as_object().into_iter().flatten() {
                match (merged.get_mut(key), value) {
                    (Some(Value::Object(mine)), Value::Object(theirs)) => {
                        mine.extend(theirs.clone());
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

fn match_json(m: &RouteMatch) -> Value {
    let mut out = Map::new();
    if let Some(name) = &m.name {
        out.insert("name".into(), Value::String(name.clone()));
    }
    for (key, value) in [
        ("uri", &m.uri),
        ("method", &m.method),
        ("authority", &m.authority),
    ] {
        if let Some(value) = value {
            out.insert(key.into(), string_match_json(value));
        }
    }
    let headers = |map: &std::collections::BTreeMap<String, HeaderMatch>| {
        let entries = map.iter().map(|(name, h)| {
            let value = match h {
                HeaderMatch::Present => json!({}),
                HeaderMatch::Value(s) => string_match_json(s),
            };
            (name.clone(), value)
        });
        Value::Object(entries.collect())
    };
    if !m.headers.is_empty() {
        out.insert("headers".into(), headers(&m.headers));
    }
    if !m.without_headers.is_empty() {
        out.insert("withoutHeaders".into(), headers(&m.without_headers));
    }
    if !m.query_params.is_empty() {
        let params = m.query_params.iter();
        let params = params.map(|(k, v)| (k.clone(), string_match_json(v)));
        out.insert("queryParams".into(), Value::Object(params.collect()));
    }
    Value::Object(out)
}

fn string_match_json(m: &StringMatch) -> Value {
    match m {
        StringMatch::Exact(s) => json!({ "exact": s }),
        StringMatch::Prefix(s) => json!({ "prefix": s }),
        StringMatch::Regex(s) => json!({ "regex": s }),
    }
}
