//! Rewriting of a target VirtualService document (as stored: the JSON of an
//! [`crate::ingest::Document`]) for each traffic action of a release. Only the target
//! route's `route[]` and the A/B route change; every other field is kept as it is.
//!
//! The target route is chosen as [`Rollout::target_route`] chooses it on the model: the
//! first route (other than the A/B route) that sends traffic to the stable destination,
//! or else the first that sends traffic to the canary.

use serde_json::{json, Map, Value};

use super::rewrite::{self, Shape};
use super::{weight_json, Error, Result, StepOptions};
use crate::model::host_candidates;
use crate::model::{Destination, HeaderMatch, Rollout, RouteMatch, StringMatch, Weight};

/// The VirtualService format: `spec.http[]` routes, `route[]` entries with a
/// `destination`, weights in percent.
pub(super) struct VirtualService;

impl Shape for VirtualService {
    const KIND: &'static str = "VirtualService";
    const ROUTES_POINTER: &'static str = "/spec/http";
    const ROUTES_FIELD: &'static str = "spec.http";
    const ENTRIES: &'static str = "route";
    const MATCHES: &'static str = "match";

    fn find<'v>(route: &'v Value, d: &Destination, namespace: &str) -> Option<&'v Value> {
        find(route, d, namespace)
    }

    fn new_entry(d: &Destination, _namespace: &str) -> Value {
        json!({ "destination": destination_json(d) })
    }

    fn retarget(entry: &mut Value, d: &Destination, _namespace: &str) {
        entry["destination"] = destination_json(d);
    }

    fn weights(canary: Weight) -> (Value, Value) {
        let stable = Weight::from_units(Weight::FULL.units() - canary.units());
        (weight_json(stable), weight_json(canary))
    }

    fn whole() -> Value {
        weight_json(Weight::FULL)
    }

    fn merged_matches(original: Option<&Value>, ab: &[RouteMatch]) -> Value {
        merged_matches(original, ab)
    }

    /// `headers.response.add.Set-Cookie` of the destination.
    fn add_set_cookie(entry: &mut Value, value: &str) {
        let add = &mut entry["headers"]["response"]["add"];
        if !add.is_object() {
            *add = json!({});
        }
        add["Set-Cookie"] = Value::String(value.to_string());
    }

    fn remove_set_cookies(entry: &mut Value, ours: &dyn Fn(&str) -> bool) {
        let Some(add) = entry
            .pointer_mut("/headers/response/add")
            .and_then(Value::as_object_mut)
        else {
            return;
        };
        add.retain(|name, value| {
            !(name.eq_ignore_ascii_case("set-cookie") && value.as_str().is_some_and(ours))
        });
        prune(entry, &["headers", "response", "add"]);
    }

    fn add_mirror(
        route: &mut Value,
        d: &Destination,
        namespace: &str,
        share: Weight,
    ) -> Result<()> {
        if let Some(other) = route.get("mirror").filter(|m| !names(m, d, namespace)) {
            let host = other
                .get("host")
                .and_then(Value::as_str)
                .unwrap_or_default();
            return Err(Error::MirrorTaken("VirtualService", host.to_string()));
        }
        route["mirror"] = destination_json(d);
        route["mirrorPercentage"] = json!({ "value": weight_json(share) });
        Ok(())
    }

    fn remove_mirror(route: &mut Value, d: &Destination, namespace: &str) {
        if route.get("mirror").is_some_and(|m| names(m, d, namespace)) {
            let fields = route.as_object_mut().expect("a route is an object");
            fields.remove("mirror");
            fields.remove("mirrorPercentage");
        }
    }
}

/// Removes the object at the end of `path` when it is empty, then its parents while
/// they are left empty.
fn prune(value: &mut Value, path: &[&str]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut at = &mut *value;
    for key in parents {
        match at.get_mut(*key) {
            Some(next) => at = next,
            None => return,
        }
    }
    let Some(fields) = at.as_object_mut() else {
        return;
    };
    if fields
        .get(*last)
        .is_some_and(|v| v.as_object().is_some_and(|o| o.is_empty()))
    {
        fields.remove(*last);
        prune(value, parents);
    }
}

/// `canary` of the route to the canary, the rest to stable (both listed, a 0 weight
/// included). With `ab_match`, a copy of the route placed just before it sends the
/// requests that match the rollout's `match` (and the route's own) to the canary.
pub fn set_weight(
    vs: &Value,
    rollout: &Rollout,
    canary: Weight,
    options: StepOptions,
) -> Result<Value> {
    rewrite::set_weight::<VirtualService>(vs, rollout, canary, options)
}

/// All of the route's traffic to the canary's destination, which takes the stable's
/// place (keeping the canary entry's own fields, or else the stable entry's); no A/B
/// route.
pub fn finalize(vs: &Value, rollout: &Rollout) -> Result<Value> {
    rewrite::finalize::<VirtualService>(vs, rollout)
}

/// All of the route's traffic to stable, the canary entry and the A/B route removed.
pub fn rollback(vs: &Value, rollout: &Rollout) -> Result<Value> {
    rewrite::rollback::<VirtualService>(vs, rollout)
}

/// The route's `route[]` entry whose destination names `d`, as a VirtualService in
/// `namespace` resolves it (short host names, port optional).
fn find<'v>(route: &'v Value, d: &Destination, namespace: &str) -> Option<&'v Value> {
    let entries = route.get("route")?.as_array()?;
    entries.iter().find(|entry| {
        entry
            .get("destination")
            .is_some_and(|dest| names(dest, d, namespace))
    })
}

/// Whether a `destination` (or `mirror`) names `d`.
fn names(dest: &Value, d: &Destination, namespace: &str) -> bool {
    let host = dest.get("host").and_then(Value::as_str).unwrap_or_default();
    let subset = dest.get("subset").and_then(Value::as_str);
    let port = dest.pointer("/port/number").and_then(Value::as_u64);
    host_candidates(host, namespace).contains(&d.host)
        && subset == d.subset.as_deref()
        && port.is_none_or(|p| p == u64::from(d.port))
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
        StringMatch::Prefix(s) | StringMatch::PathPrefix(s) => json!({ "prefix": s }),
        StringMatch::Regex(s) => json!({ "regex": s }),
    }
}
