//! Cross checks of Rollouts: stable and canary resolve as VirtualService destinations
//! do, the target VirtualService exists and routes to them, and no two Rollouts
//! target the same VirtualService.

use std::collections::{BTreeMap, BTreeSet};

use super::check::{resolve, Known};
use super::error::{FieldError, Report};
use crate::model::{ResourceKey, Rollout, RouteAction, VirtualService};

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

/// The target route (see [`Rollout::target_route`]) must exist and send traffic only
/// to the stable and the canary destination.
fn check_route(rollout: &Rollout, vs: &VirtualService, r: &mut Report) {
    let Some(index) = rollout.target_route(vs) else {
        r.push(
            "spec.target",
            format!(
                "{} has no http route to the stable or the canary destination",
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
                    "spec.http[{index}].route[{j}] of {} sends traffic to host {:?}{subset}, \
                     which is neither the stable nor the canary destination",
                    vs.key, d.host
                ),
            );
        }
    }
}
