//! GatewayClasses under `--kubernetes`: which Gateway API Gateways are coalmine's, and
//! the status of its own classes. Pure.
//!
//! A class is coalmine's when its `spec.controllerName` is [`CONTROLLER`]; it gets
//! `Accepted: True` and the features coalmine supports. A Gateway whose
//! `gatewayClassName` names another controller's class is left alone: not served, no
//! status written, and the parentRefs of routes that point at it are not coalmine's
//! either (no status entry; a route whose every parent is such a Gateway is left alone
//! too). A Gateway whose class has no GatewayClass object is served, as in file and
//! REST mode, where no GatewayClass exists.

use std::collections::BTreeSet;

use k8s_openapi::jiff::Timestamp;
use serde_json::{json, Value};

use super::judge::ObjectId;
use super::status::{same, since_for, CONTROLLER};

/// The Gateway API features coalmine implements, as a class's `supportedFeatures`.
pub const SUPPORTED_FEATURES: &[&str] = &[
    "Gateway",
    "GRPCRoute",
    "HTTPRoute",
    "HTTPRouteBackendTimeout",
    "HTTPRouteHostRewrite",
    "HTTPRouteMethodMatching",
    "HTTPRoutePathRedirect",
    "HTTPRoutePathRewrite",
    "HTTPRoutePortRedirect",
    "HTTPRouteQueryParamMatching",
    "HTTPRouteRequestMirror",
    "HTTPRouteRequestTimeout",
    "HTTPRouteResponseHeaderModification",
    "HTTPRouteSchemeRedirect",
    "ReferenceGrant",
];

const GROUP: &str = "gateway.networking.k8s.io";

/// Whether an object id is of the Gateway API group and `kind`.
pub fn is(id: &ObjectId, kind: &str) -> bool {
    id.kind == kind && id.api_version.starts_with(&format!("{GROUP}/"))
}

/// The names of the GatewayClasses of other controllers.
pub fn foreign_classes<'a>(
    objects: impl Iterator<Item = (&'a ObjectId, &'a Value)>,
) -> BTreeSet<String> {
    objects
        .filter(|(id, _)| is(id, "GatewayClass"))
        .filter(|(_, v)| v["spec"]["controllerName"] != CONTROLLER)
        .map(|(id, _)| id.name.clone())
        .collect()
}

/// Whether a Gateway API Gateway belongs to another controller.
pub fn is_foreign_gateway(gateway: &Value, foreign: &BTreeSet<String>) -> bool {
    gateway["spec"]["gatewayClassName"]
        .as_str()
        .is_some_and(|class| foreign.contains(class))
}

/// The indices of a route's parentRefs that are coalmine's: not a Gateway of
/// `foreign_gateways` (`namespace/name`).
pub fn own_parents(
    route: &Value,
    namespace: &str,
    foreign_gateways: &BTreeSet<String>,
) -> Vec<usize> {
    let refs = route["spec"]["parentRefs"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    refs.iter()
        .enumerate()
        .filter(|(_, r)| {
            let ns = r["namespace"].as_str().unwrap_or(namespace);
            let name = r["name"].as_str().unwrap_or_default();
            let gateway = r["kind"].as_str().is_none_or(|k| k == "Gateway");
            !(gateway && foreign_gateways.contains(&format!("{ns}/{name}")))
        })
        .map(|(i, _)| i)
        .collect()
}

/// The route with only the parentRefs at `keep`.
pub fn with_parents(route: &Value, keep: &[usize]) -> Value {
    let mut out = route.clone();
    if let Some(refs) = route["spec"]["parentRefs"].as_array() {
        let kept: Vec<Value> = keep.iter().filter_map(|&i| refs.get(i).cloned()).collect();
        out["spec"]["parentRefs"] = Value::Array(kept);
    }
    out
}

/// The status patch of one of coalmine's GatewayClasses, or `None` when it says it.
pub fn class_patch(class: &Value, now: Timestamp) -> Option<Value> {
    if class["spec"]["controllerName"] != CONTROLLER {
        return None;
    }
    let generation = class["metadata"]["generation"].as_i64();
    let conditions = class["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let (ours, mut theirs): (Vec<Value>, Vec<Value>) = conditions
        .into_iter()
        .partition(|c| c["type"] == "Accepted");
    let since = since_for(Some(&Value::Array(ours.clone())), "Accepted", "True", now);
    let mut accepted = json!({"type": "Accepted", "status": "True", "reason": "Accepted",
        "message": "handled by coalmine", "lastTransitionTime": since});
    if let Some(generation) = generation {
        accepted["observedGeneration"] = json!(generation);
    }
    let features: Vec<Value> = SUPPORTED_FEATURES
        .iter()
        .map(|f| json!({"name": f}))
        .collect();
    let old_features = class["status"]["supportedFeatures"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if same(&ours, std::slice::from_ref(&accepted)) && old_features == features {
        return None;
    }
    theirs.push(accepted);
    Some(json!({"status": {"conditions": theirs, "supportedFeatures": features}}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + s).unwrap()
    }

    fn id(kind: &str, name: &str) -> ObjectId {
        ObjectId {
            api_version: "gateway.networking.k8s.io/v1".into(),
            kind: kind.into(),
            namespace: "default".into(),
            name: name.into(),
        }
    }

    #[test]
    fn only_coalmines_classes_are_accepted() {
        let ours = json!({"metadata": {"name": "coalmine", "generation": 2},
                          "spec": {"controllerName": CONTROLLER}});
        let patch = class_patch(&ours, at(0)).unwrap();
        let c = &patch["status"]["conditions"][0];
        assert_eq!(
            (c["type"].as_str(), c["status"].as_str()),
            (Some("Accepted"), Some("True"))
        );
        assert_eq!(c["observedGeneration"], 2);
        assert!(patch["status"]["supportedFeatures"]
            .as_array()
            .unwrap()
            .contains(&json!({"name": "HTTPRoute"})));
        let mut echoed = ours.clone();
        echoed["status"] = patch["status"].clone();
        assert_eq!(class_patch(&echoed, at(9)), None);
        let istio = json!({"metadata": {"name": "istio"},
                           "spec": {"controllerName": "istio.io/gateway-controller"}});
        assert_eq!(class_patch(&istio, at(0)), None);
        let (a, b) = (id("GatewayClass", "coalmine"), id("GatewayClass", "istio"));
        let foreign = foreign_classes([(&a, &ours), (&b, &istio)].into_iter());
        assert_eq!(foreign, BTreeSet::from(["istio".to_string()]));
    }

    #[test]
    fn parents_on_other_controllers_gateways_are_not_ours() {
        let foreign = BTreeSet::from(["istio".to_string()]);
        let theirs = json!({"spec": {"gatewayClassName": "istio"}});
        let mine = json!({"spec": {"gatewayClassName": "coalmine"}});
        assert!(is_foreign_gateway(&theirs, &foreign));
        assert!(!is_foreign_gateway(&mine, &foreign));
        let route = json!({"spec": {"parentRefs": [
            {"name": "istio-gw"}, {"name": "edge"}, {"name": "istio-gw", "namespace": "other"}]}});
        let gateways = BTreeSet::from(["default/istio-gw".to_string()]);
        let keep = own_parents(&route, "default", &gateways);
        assert_eq!(keep, [1, 2]);
        let kept = with_parents(&route, &keep);
        assert_eq!(kept["spec"]["parentRefs"][0]["name"], "edge");
        assert_eq!(kept["spec"]["parentRefs"].as_array().unwrap().len(), 2);
    }
}
