//! Cross checks of Rollouts: stable and canary resolve as VirtualService destinations
//! do, the target VirtualService (or HTTPRoute) exists and routes to them, and no two
//! Rollouts target the same route. An HTTPRoute target names Services, not subsets, and
//! its A/B matches must be ones an HTTPRoute can express.

use std::collections::{BTreeMap, BTreeSet};

use super::resolve::{resolve, Known};
use crate::gateway_api::match_json;
use crate::ingest::{FieldError, Report};
use crate::model::{Kind, ResourceKey, Rollout, RouteAction, VirtualService};

/// The Rollouts that pass every check; errors for the others go to `errors`.
pub(super) fn check_rollouts(
    rollouts: Vec<Rollout>,
    virtual_services: &[VirtualService],
    broken_virtual_services: &BTreeSet<ResourceKey>,
    known: &Known<'_>,
    errors: &mut Vec<FieldError>,
) -> Vec<Rollout> {
    let by_key: BTreeMap<&ResourceKey, &VirtualService> =
        virtual_services.iter().map(|vs| (&vs.key, vs)).collect();
    let mut targeted: BTreeMap<ResourceKey, ResourceKey> = BTreeMap::new();
    let mut out = Vec::new();
    for mut rollout in rollouts {
        let mut r = Report::new(rollout.key.to_string());
        let namespace = rollout.key.namespace.clone();
        resolve(
            &mut rollout.stable,
            "spec.stable",
            &namespace,
            known,
            &mut r,
        );
        let resolved = r.is_clean();
        resolve(
            &mut rollout.canary,
            "spec.canary",
            &namespace,
            known,
            &mut r,
        );
        if rollout.target.kind == Kind::HttpRoute {
            check_http_route_target(&rollout, &mut r);
        }
        if r.is_clean() && rollout.stable == rollout.canary {
            r.push("spec.canary", "must differ from spec.stable");
        }
        match by_key.get(&rollout.target) {
            None if broken_virtual_services.contains(&rollout.target) => {}
            None => r.push(
                "spec.target.name",
                format!("{} is not defined", rollout.target),
            ),
            Some(vs) if resolved && r.is_clean() => check_route(&rollout, vs, &mut r),
            Some(_) => {}
        }
        match targeted.get(&rollout.target) {
            Some(other) => r.push(
                "spec.target",
                format!("{} is already the target of {other}", rollout.target),
            ),
            None => {
                targeted.insert(rollout.target.clone(), rollout.key.clone());
            }
        }
        if r.is_clean() {
            out.push(rollout);
        }
        errors.extend(r.errors);
    }
    out
}

/// What an HTTPRoute target needs beyond a VirtualService's: backendRefs name whole
/// Services (no subsets), and the A/B matches become HTTPRoute matches.
fn check_http_route_target(rollout: &Rollout, r: &mut Report) {
    for (field, d) in [
        ("spec.stable", &rollout.stable),
        ("spec.canary", &rollout.canary),
    ] {
        if d.subset.is_some() {
            r.push(
                format!("{field}.subset"),
                "an HTTPRoute backendRef names a Service, not a subset: name the version's \
                 own Service as the host",
            );
        }
    }
    for (i, m) in rollout.analysis.matches.iter().enumerate() {
        if let Err(message) = match_json(m) {
            let (field, message) = message.split_once(": ").unwrap_or(("", &message));
            r.push(format!("spec.analysis.match[{i}].{field}"), message);
        }
    }
}

/// The target route (see [`Rollout::target_route`]) must exist and send traffic only
/// to the stable and the canary destination.
fn check_route(rollout: &Rollout, vs: &VirtualService, r: &mut Report) {
    let (routes, entries, noun) = match vs.key.kind {
        Kind::HttpRoute => ("rules", "backendRefs", "rule"),
        _ => ("http", "route", "http route"),
    };
    let Some(index) = rollout.target_route(vs) else {
        r.push(
            "spec.target",
            format!(
                "{} has no {noun} to the stable or the canary destination",
                vs.key
            ),
        );
        return;
    };
    let RouteAction::Route(destinations) = &vs.http[index].action else {
        return;
    };
    for (j, weighted) in destinations.iter().enumerate() {
        let d = &weighted.destination;
        if d != &rollout.stable && d != &rollout.canary {
            let subset = d
                .subset
                .as_deref()
                .map(|s| format!(" subset {s:?}"))
                .unwrap_or_default();
            r.push(
                "spec.target",
                format!(
                    "spec.{routes}[{index}].{entries}[{j}] of {} sends traffic to host {:?}{subset}, \
                     which is neither the stable nor the canary destination",
                    vs.key, d.host
                ),
            );
        }
    }
    // A route mirrors to one place; a release's mirror would take another's.
    let mirror = vs.http[index].mirror.as_ref();
    if let Some(m) =
        mirror.filter(|m| rollout.analysis.mirror.is_some() && m.destination != rollout.canary)
    {
        r.push(
            "spec.analysis.mirror",
            format!(
                "spec.{routes}[{index}] of {} already mirrors to host {:?}; a release that \
                 mirrors needs a target route without a mirror of its own",
                vs.key, m.destination.host
            ),
        );
    }
}
