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

use super::rewrite::{self, Shape};
use super::{Error, Result, StepOptions};
use crate::gateway_api::match_json;
use crate::model::host_candidates;
use crate::model::{Destination, Rollout, RouteMatch, Weight};

/// The API group a backendRef names for a ServiceEntry host (`kind: Hostname`).
const HOSTNAME_GROUP: &str = "networking.istio.io";

/// The HTTPRoute format: `spec.rules[]`, `backendRefs[]` naming Services, relative
/// integer weights.
pub(super) struct HttpRoute;

impl Shape for HttpRoute {
    const KIND: &'static str = "HTTPRoute";
    const ROUTES_POINTER: &'static str = "/spec/rules";
    const ROUTES_FIELD: &'static str = "spec.rules";
    const ENTRIES: &'static str = "backendRefs";
    const MATCHES: &'static str = "matches";

    fn find<'v>(rule: &'v Value, d: &Destination, namespace: &str) -> Option<&'v Value> {
        find(rule, d, namespace)
    }

    fn new_entry(d: &Destination, namespace: &str) -> Value {
        new_backend(d, namespace)
    }

    /// The backendRef's own fields (filters, weight) kept, its target replaced.
    fn retarget(entry: &mut Value, d: &Destination, namespace: &str) {
        let fields = entry.as_object_mut().expect("a backendRef is an object");
        for key in ["group", "kind", "name", "namespace", "port"] {
            fields.remove(key);
        }
        let fresh = new_backend(d, namespace);
        fields.extend(fresh.as_object().expect("an object").clone());
    }

    fn weights(canary: Weight) -> (Value, Value) {
        let stable = Weight::FULL.units() - canary.units();
        let (stable, canary) = reduced(stable, canary.units());
        (Value::from(stable), Value::from(canary))
    }

    fn whole() -> Value {
        Value::from(1)
    }

    fn merged_matches(original: Option<&Value>, ab: &[RouteMatch]) -> Value {
        merged_matches(original, ab)
    }

    /// A `Set-Cookie` in the backendRef's ResponseHeaderModifier `add` list (the one
    /// filter of that type a backendRef may have, created when missing).
    fn add_set_cookie(entry: &mut Value, value: &str) {
        let filters = &mut entry["filters"];
        if !filters.is_array() {
            *filters = json!([]);
        }
        let filters = filters.as_array_mut().expect("an array");
        let kind = |f: &Value| f.get("type").and_then(Value::as_str) == Some(RESPONSE_HEADERS);
        let index = match filters.iter().position(kind) {
            Some(index) => index,
            None => {
                filters.push(json!({ "type": RESPONSE_HEADERS, "responseHeaderModifier": {} }));
                filters.len() - 1
            }
        };
        let add = &mut filters[index]["responseHeaderModifier"]["add"];
        if !add.is_array() {
            *add = json!([]);
        }
        let add = add.as_array_mut().expect("an array");
        add.push(json!({ "name": "Set-Cookie", "value": value }));
    }

    fn remove_set_cookies(entry: &mut Value, ours: &dyn Fn(&str) -> bool) {
        let Some(filters) = entry.get_mut("filters").and_then(Value::as_array_mut) else {
            return;
        };
        for filter in filters.iter_mut() {
            if filter.get("type").and_then(Value::as_str) != Some(RESPONSE_HEADERS) {
                continue;
            }
            let modifier = &mut filter["responseHeaderModifier"];
            if let Some(add) = modifier.get_mut("add").and_then(Value::as_array_mut) {
                add.retain(|header| {
                    let name = header
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    let value = header.get("value").and_then(Value::as_str);
                    !(name.eq_ignore_ascii_case("set-cookie") && value.is_some_and(ours))
                });
                if add.is_empty() {
                    modifier.as_object_mut().expect("an object").remove("add");
                }
            }
        }
        filters.retain(|filter| {
            filter.get("type").and_then(Value::as_str) != Some(RESPONSE_HEADERS)
                || filter["responseHeaderModifier"]
                    .as_object()
                    .is_some_and(|m| !m.is_empty())
        });
        if filters.is_empty() {
            entry.as_object_mut().expect("an object").remove("filters");
        }
    }

    /// A RequestMirror filter on the rule: `percent` when the share is whole, else a
    /// `fraction` in millionths.
    fn add_mirror(rule: &mut Value, d: &Destination, namespace: &str, share: Weight) -> Result<()> {
        let filters = rule.get("filters").and_then(Value::as_array);
        let taken = filters.into_iter().flatten().find(|f| {
            f.get("type").and_then(Value::as_str) == Some(MIRROR) && !mirrors_to(f, d, namespace)
        });
        if let Some(other) = taken {
            let name = other.pointer("/requestMirror/backendRef/name");
            let name = name.and_then(Value::as_str).unwrap_or_default();
            return Err(Error::MirrorTaken("HTTPRoute", name.to_string()));
        }
        let mut mirror = json!({ "backendRef": new_backend(d, namespace) });
        let units = share.units();
        if units.is_multiple_of(Weight::PER_PERCENT) {
            mirror["percent"] = Value::from(units / Weight::PER_PERCENT);
        } else {
            mirror["fraction"] = json!({ "numerator": units, "denominator": Weight::FULL.units() });
        }
        let filters = &mut rule["filters"];
        if !filters.is_array() {
            *filters = json!([]);
        }
        let filters = filters.as_array_mut().expect("an array");
        filters.push(json!({ "type": MIRROR, "requestMirror": mirror }));
        Ok(())
    }

    fn remove_mirror(rule: &mut Value, d: &Destination, namespace: &str) {
        let Some(filters) = rule.get_mut("filters").and_then(Value::as_array_mut) else {
            return;
        };
        let before = filters.len();
        filters.retain(|f| {
            f.get("type").and_then(Value::as_str) != Some(MIRROR) || !mirrors_to(f, d, namespace)
        });
        if filters.is_empty() && before > 0 {
            rule.as_object_mut().expect("an object").remove("filters");
        }
    }
}

const RESPONSE_HEADERS: &str = "ResponseHeaderModifier";
const MIRROR: &str = "RequestMirror";

/// Whether a RequestMirror filter mirrors to `d`.
fn mirrors_to(filter: &Value, d: &Destination, namespace: &str) -> bool {
    filter
        .pointer("/requestMirror/backendRef")
        .is_some_and(|backend| names(backend, d, namespace))
}

/// `canary` of the rule's traffic to the canary, the rest to stable (both listed, a 0
/// weight included). With `ab_match`, a copy of the rule placed just before it sends
/// the requests that match the rollout's `match` (and the rule's own) to the canary.
pub fn set_weight(
    route: &Value,
    rollout: &Rollout,
    canary: Weight,
    options: StepOptions,
) -> Result<Value> {
    rewrite::set_weight::<HttpRoute>(route, rollout, canary, options)
}

/// All of the rule's traffic to the canary Service, which takes the stable's place
/// (keeping the canary backendRef's own fields, or else the stable's); no A/B rule.
pub fn finalize(route: &Value, rollout: &Rollout) -> Result<Value> {
    rewrite::finalize::<HttpRoute>(route, rollout)
}

/// All of the rule's traffic to stable, the canary backendRef and the A/B rule removed.
pub fn rollback(route: &Value, rollout: &Rollout) -> Result<Value> {
    rewrite::rollback::<HttpRoute>(route, rollout)
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

/// The rule's backendRef that names `d` as the route in `namespace` resolves it (a
/// Service name of the namespace or a ServiceEntry host; port optional).
fn find<'v>(rule: &'v Value, d: &Destination, namespace: &str) -> Option<&'v Value> {
    let refs = rule.get("backendRefs")?.as_array()?;
    refs.iter().find(|r| names(r, d, namespace))
}

/// Whether a backendRef names `d`.
fn names(backend: &Value, d: &Destination, namespace: &str) -> bool {
    let name = backend
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let ns = backend
        .get("namespace")
        .and_then(Value::as_str)
        .unwrap_or(namespace);
    let port = backend.get("port").and_then(Value::as_u64);
    host_candidates(name, ns).contains(&d.host) && port.is_none_or(|p| p == u64::from(d.port))
}

/// A backendRef naming `d`: a Service by its short name when `d` is a Service of the
/// route's namespace, or a host without a dot (which a bare name resolves to, as the
/// route's own backendRefs are read), else a ServiceEntry host.
fn new_backend(d: &Destination, namespace: &str) -> Value {
    let suffix = format!(".{namespace}.svc.cluster.local");
    let short = d.host.strip_suffix(&suffix).unwrap_or(&d.host);
    match short {
        name if !name.contains('.') => json!({ "name": name, "port": d.port }),
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
