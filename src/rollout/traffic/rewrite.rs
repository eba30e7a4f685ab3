//! The rewrites every route format shares: find the target route (the first one, the
//! A/B route aside, with an entry for the stable destination, else for the canary, as
//! [`Rollout::target_route`] picks it on the model), then set its weighted entries, or
//! put the A/B route before it. What differs between a VirtualService and an HTTPRoute
//! (field names, how an entry names a destination, how weights are written) is a
//! [`Shape`].

use serde_json::Value;

use super::{Error, Result};
use crate::model::{Destination, Rollout, RouteMatch, Weight};

/// One route format's fields and entries.
pub(super) trait Shape {
    const KIND: &'static str;
    /// Where the routes are: a JSON pointer, and the field as errors name it.
    const ROUTES_POINTER: &'static str;
    const ROUTES_FIELD: &'static str;
    /// A route's weighted entries, and its matches.
    const ENTRIES: &'static str;
    const MATCHES: &'static str;

    /// The route's entry that names `d`, as a document in `namespace` resolves it.
    fn find<'v>(route: &'v Value, d: &Destination, namespace: &str) -> Option<&'v Value>;
    /// A new entry naming `d`.
    fn new_entry(d: &Destination, namespace: &str) -> Value;
    /// `entry` (its other fields kept) made to name `d` instead.
    fn retarget(entry: &mut Value, d: &Destination, namespace: &str);
    /// The stable's and the canary's weights for a canary share of `canary`.
    fn weights(canary: Weight) -> (Value, Value);
    /// The weight of an entry that takes all of the route's traffic.
    fn whole() -> Value;
    /// The route's matches ANDed with the rollout's.
    fn merged_matches(original: Option<&Value>, ab: &[RouteMatch]) -> Value;
}

/// `canary` of the route's traffic to the canary, the rest to stable (both listed, a 0
/// weight included). With `ab_match`, a copy of the route placed just before it sends
/// the requests that match the rollout's `match` (and the route's own) to the canary.
pub(super) fn set_weight<S: Shape>(
    doc: &Value,
    rollout: &Rollout,
    canary: Weight,
    ab_match: bool,
) -> Result<Value> {
    let mut doc = doc.clone();
    let (routes, index, namespace) = target::<S>(&mut doc, rollout)?;
    let (stable_w, canary_w) = S::weights(canary);
    let stable = entry::<S>(&routes[index], &rollout.stable, &namespace, stable_w);
    let canary_entry = entry::<S>(&routes[index], &rollout.canary, &namespace, canary_w);
    if ab_match {
        let mut ab = routes[index].clone();
        let matches = S::merged_matches(ab.get(S::MATCHES), &rollout.analysis.matches);
        let ab_canary = entry::<S>(&routes[index], &rollout.canary, &namespace, S::whole());
        let fields = ab.as_object_mut().expect("a route is an object");
        fields.insert("name".into(), Value::String(rollout.ab_route_name()));
        fields.insert(S::MATCHES.into(), matches);
        fields.insert(S::ENTRIES.into(), Value::Array(vec![ab_canary]));
        routes.insert(index, ab);
        routes[index + 1][S::ENTRIES] = Value::Array(vec![stable, canary_entry]);
    } else {
        routes[index][S::ENTRIES] = Value::Array(vec![stable, canary_entry]);
    }
    Ok(doc)
}

/// All of the route's traffic to the canary, which takes the stable's place (keeping
/// the canary entry's own fields, or else the stable entry's); no A/B route.
pub(super) fn finalize<S: Shape>(doc: &Value, rollout: &Rollout) -> Result<Value> {
    let mut doc = doc.clone();
    let (routes, index, namespace) = target::<S>(&mut doc, rollout)?;
    let route = &routes[index];
    let canary = match S::find(route, &rollout.canary, &namespace) {
        Some(_) => entry::<S>(route, &rollout.canary, &namespace, S::whole()),
        None => {
            let mut moved = entry::<S>(route, &rollout.stable, &namespace, S::whole());
            S::retarget(&mut moved, &rollout.canary, &namespace);
            moved
        }
    };
    routes[index][S::ENTRIES] = Value::Array(vec![canary]);
    Ok(doc)
}

/// All of the route's traffic to stable, the canary entry and the A/B route removed.
pub(super) fn rollback<S: Shape>(doc: &Value, rollout: &Rollout) -> Result<Value> {
    let mut doc = doc.clone();
    let (routes, index, namespace) = target::<S>(&mut doc, rollout)?;
    let stable = entry::<S>(&routes[index], &rollout.stable, &namespace, S::whole());
    routes[index][S::ENTRIES] = Value::Array(vec![stable]);
    Ok(doc)
}

/// The document's routes with the A/B route removed, the target route's index in them,
/// and the document's namespace.
fn target<'a, S: Shape>(
    doc: &'a mut Value,
    rollout: &Rollout,
) -> Result<(&'a mut Vec<Value>, usize, String)> {
    let namespace = doc
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("default")
        .to_string();
    let routes = doc
        .pointer_mut(S::ROUTES_POINTER)
        .and_then(Value::as_array_mut)
        .ok_or(Error::NoRoutes(S::KIND, S::ROUTES_FIELD))?;
    let ab = rollout.ab_route_name();
    routes.retain(|route| route.get("name").and_then(Value::as_str) != Some(ab.as_str()));
    let first_to = |d: &Destination| {
        routes
            .iter()
            .position(|route| S::find(route, d, &namespace).is_some())
    };
    let index = first_to(&rollout.stable)
        .or_else(|| first_to(&rollout.canary))
        .ok_or(Error::NoTargetRoute(S::KIND))?;
    Ok((routes, index, namespace))
}

/// The route's entry for `d` with `weight` (its other fields kept), or a new one.
fn entry<S: Shape>(route: &Value, d: &Destination, namespace: &str, weight: Value) -> Value {
    let mut out = match S::find(route, d, namespace) {
        Some(existing) => existing.clone(),
        None => S::new_entry(d, namespace),
    };
    out["weight"] = weight;
    out
}
