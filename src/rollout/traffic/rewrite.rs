//! The rewrites every route format shares: find the target route (the first one, the
//! A/B route aside, with an entry for the stable destination, else for the canary, as
//! [`Rollout::target_route`] picks it on the model), then set its weighted entries, or
//! put the A/B route before it. What differs between a VirtualService and an HTTPRoute
//! (field names, how an entry names a destination, how weights are written) is a
//! [`Shape`].

use serde_json::Value;

use super::{sticky, Error, Result, StepOptions};
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
    /// Adds a `Set-Cookie` response header to the responses that `entry` serves.
    fn add_set_cookie(entry: &mut Value, value: &str);
    /// Removes the `Set-Cookie` headers for which `ours` holds, and what held only them.
    fn remove_set_cookies(entry: &mut Value, ours: &dyn Fn(&str) -> bool);
    /// Copies `share` of the route's requests to `d`; an error when the route already
    /// mirrors elsewhere and cannot mirror twice.
    fn add_mirror(route: &mut Value, d: &Destination, namespace: &str, share: Weight)
        -> Result<()>;
    /// Removes the route's mirror to `d` (and nothing else).
    fn remove_mirror(route: &mut Value, d: &Destination, namespace: &str);
}

/// `canary` of the route's traffic to the canary, the rest to stable (both listed, a 0
/// weight included). With `ab_match`, a copy of the route placed just before it sends
/// the requests that match the rollout's `match` (and the route's own) to the canary.
///
/// With `sessionAffinity`, each side's entry sets its cookie, and two routes placed
/// before the target route (copies of it, with a match on each cookie) keep the
/// cookies' holders on their side. With `mirror`, the route copies its requests to the
/// canary.
pub(super) fn set_weight<S: Shape>(
    doc: &Value,
    rollout: &Rollout,
    canary: Weight,
    options: StepOptions,
) -> Result<Value> {
    let mut doc = doc.clone();
    let (routes, mut index, namespace) = target::<S>(&mut doc, rollout)?;
    S::remove_mirror(&mut routes[index], &rollout.canary, &namespace);
    if options.mirror {
        let share = rollout.analysis.mirror.unwrap_or(Weight::FULL);
        S::add_mirror(&mut routes[index], &rollout.canary, &namespace, share)?;
    }
    let (stable_w, canary_w) = S::weights(canary);
    let mut stable = entry::<S>(&routes[index], &rollout.stable, &namespace, stable_w);
    let mut canary = canary_entry::<S>(&routes[index], rollout, &namespace, canary_w);
    if let Some(affinity) = &rollout.analysis.session_affinity {
        let token = sticky::token(rollout);
        let sides = [
            (&mut canary, &affinity.cookie_name),
            (&mut stable, &affinity.primary_cookie_name),
        ];
        let mut pinned = Vec::new();
        for (side, cookie) in sides {
            S::remove_set_cookies(side, &|value| {
                sticky::is_ours(value, &affinity.cookie_name)
                    || sticky::is_ours(value, &affinity.primary_cookie_name)
            });
            S::add_set_cookie(side, &sticky::set_cookie(cookie, &token, affinity));
            let mut route = routes[index].clone();
            S::remove_mirror(&mut route, &rollout.canary, &namespace);
            let only = sticky::cookie_match(cookie, &token);
            let matches = S::merged_matches(route.get(S::MATCHES), &[only]);
            let mut whole = side.clone();
            whole["weight"] = S::whole();
            let fields = route.as_object_mut().expect("a route is an object");
            fields.insert(S::MATCHES.into(), matches);
            fields.insert(S::ENTRIES.into(), Value::Array(vec![whole]));
            pinned.push(route);
        }
        let names = rollout.sticky_route_names();
        for (route, name) in pinned.iter_mut().zip(names) {
            route["name"] = Value::String(name);
        }
        routes.splice(index..index, pinned);
        index += 2;
    }
    if options.ab_match {
        let mut ab = routes[index].clone();
        let matches = S::merged_matches(ab.get(S::MATCHES), &rollout.analysis.matches);
        let ab_canary = canary_entry::<S>(&routes[index], rollout, &namespace, S::whole());
        let fields = ab.as_object_mut().expect("a route is an object");
        fields.insert("name".into(), Value::String(rollout.ab_route_name()));
        fields.insert(S::MATCHES.into(), matches);
        fields.insert(S::ENTRIES.into(), Value::Array(vec![ab_canary]));
        routes.insert(index, ab);
        routes[index + 1][S::ENTRIES] = Value::Array(vec![stable, canary]);
    } else {
        routes[index][S::ENTRIES] = Value::Array(vec![stable, canary]);
    }
    Ok(doc)
}

/// All of the route's traffic to the canary, which takes the stable's place (keeping
/// the canary entry's own fields, or else the stable entry's); no A/B or sticky route,
/// no mirror.
pub(super) fn finalize<S: Shape>(doc: &Value, rollout: &Rollout) -> Result<Value> {
    let mut doc = doc.clone();
    let (routes, index, namespace) = target::<S>(&mut doc, rollout)?;
    let canary = canary_entry::<S>(&routes[index], rollout, &namespace, S::whole());
    routes[index][S::ENTRIES] = Value::Array(vec![settled::<S>(canary, rollout)]);
    S::remove_mirror(&mut routes[index], &rollout.canary, &namespace);
    Ok(doc)
}

/// All of the route's traffic to stable, the canary entry and the A/B route removed.
pub(super) fn rollback<S: Shape>(doc: &Value, rollout: &Rollout) -> Result<Value> {
    let mut doc = doc.clone();
    let (routes, index, namespace) = target::<S>(&mut doc, rollout)?;
    let stable = entry::<S>(&routes[index], &rollout.stable, &namespace, S::whole());
    routes[index][S::ENTRIES] = Value::Array(vec![settled::<S>(stable, rollout)]);
    S::remove_mirror(&mut routes[index], &rollout.canary, &namespace);
    Ok(doc)
}

/// The one entry left after a release, as a user writes it: without the cookies the
/// release set, and without a weight (a lone entry takes all the traffic whatever its
/// weight), so that the route reads as it did before the release.
fn settled<S: Shape>(mut entry: Value, rollout: &Rollout) -> Value {
    if let Some(affinity) = &rollout.analysis.session_affinity {
        let cookies = [&affinity.cookie_name, &affinity.primary_cookie_name];
        S::remove_set_cookies(&mut entry, &|value| {
            cookies.iter().any(|cookie| sticky::is_ours(value, cookie))
        });
    }
    if let Some(fields) = entry.as_object_mut() {
        fields.remove("weight");
    }
    entry
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
    routes.retain(|route| !rollout.is_release_route(route.get("name").and_then(Value::as_str)));
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

/// The route's entry for the canary with `weight`; when it has none, a copy of the
/// stable's entry (its header changes and filters too) naming the canary, so that the
/// route after promotion reads as before it but for the destination.
fn canary_entry<S: Shape>(
    route: &Value,
    rollout: &Rollout,
    namespace: &str,
    weight: Value,
) -> Value {
    match S::find(route, &rollout.canary, namespace) {
        Some(_) => entry::<S>(route, &rollout.canary, namespace, weight),
        None => {
            let mut moved = entry::<S>(route, &rollout.stable, namespace, weight);
            S::retarget(&mut moved, &rollout.canary, namespace);
            moved
        }
    }
}

/// The route's entry for `d` with `weight` (its other fields kept, the cookies of an
/// earlier step removed), or a new one.
fn entry<S: Shape>(route: &Value, d: &Destination, namespace: &str, weight: Value) -> Value {
    let mut out = match S::find(route, d, namespace) {
        Some(existing) => existing.clone(),
        None => S::new_entry(d, namespace),
    };
    out["weight"] = weight;
    out
}
