//! Which proxies a `security.istio.io` policy applies to: `selector.matchLabels`, or
//! `targetRef` / `targetRefs` to Gateway API Gateways of the policy's namespace.

use crate::ingest::{Fields, Obj, Report};
use crate::model::{Kind, PolicyTarget, ResourceKey};

const SELECTOR: Fields = Fields::known(&["matchLabels"]);
const TARGET_REF: Fields = Fields::known(&["group", "kind", "name", "namespace"]);
const GATEWAY_API_GROUP: &str = "gateway.networking.k8s.io";

/// Reads `selector`, `targetRef` and `targetRefs` of a policy spec (at most one of
/// them; none selects every proxy).
pub(super) fn try_policy_target(
    spec: Obj<'_, '_>,
    key: &ResourceKey,
    r: &mut Report,
) -> PolicyTarget {
    let set: Vec<&str> = ["selector", "targetRef", "targetRefs"]
        .into_iter()
        .filter(|k| spec.has(k))
        .collect();
    if set.len() > 1 {
        let message = format!("only one of {} may be set", set.join(", "));
        r.push(spec.at(set[1]), message);
    }
    let mut target = PolicyTarget::default();
    if let Some(value) = spec.get("selector") {
        let path = spec.at("selector");
        if let Some(selector) = Obj::new(r, &path, value, SELECTOR) {
            target.selector = selector.string_map(r, "matchLabels");
        }
    }
    let mut refs: Vec<(String, &serde_json::Value)> = spec.list(r, "targetRefs");
    if let Some(value) = spec.get("targetRef") {
        refs.push((spec.at("targetRef"), value));
    }
    if spec.has("targetRefs") && refs.is_empty() {
        r.push(spec.at("targetRefs"), "must not be empty");
    }
    for (path, value) in refs {
        if let Some(gateway) = try_target_ref(&path, value, key, r) {
            target.gateways.push(gateway);
        }
    }
    target
}

/// A Gateway API Gateway in the policy's own namespace.
fn try_target_ref(
    path: &str,
    value: &serde_json::Value,
    key: &ResourceKey,
    r: &mut Report,
) -> Option<ResourceKey> {
    let t = Obj::new(r, path, value, TARGET_REF)?;
    let group = t.string(r, "group").unwrap_or_default();
    let kind = t.required_string(r, "kind");
    let name = t.required_string(r, "name");
    if let Some(namespace) = t.string(r, "namespace") {
        if namespace != key.namespace {
            r.push(t.at("namespace"), "must be the policy's own namespace");
        }
    }
    let kind = kind?;
    if group != GATEWAY_API_GROUP || kind != "Gateway" {
        r.push(
            path,
            format!(
                "not supported: {group}/{kind} (only gateway.networking.k8s.io Gateway)",
                group = if group.is_empty() { "core" } else { &group }
            ),
        );
        return None;
    }
    Some(ResourceKey::new(
        Kind::KubernetesGateway,
        key.namespace.clone(),
        name?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(spec: serde_json::Value) -> (PolicyTarget, Vec<(String, String)>) {
        let key = ResourceKey::new(Kind::RequestAuthentication, "edge", "jwt");
        let mut r = Report::new(key.to_string());
        let fields = Fields::known(&["selector", "targetRef", "targetRefs"]);
        let obj = Obj::new(&mut r, "spec", &spec, fields).unwrap();
        let target = try_policy_target(obj, &key, &mut r);
        let errors = r.errors.into_iter().map(|e| (e.field, e.message)).collect();
        (target, errors)
    }

    #[test]
    fn reads_labels_or_gateways() {
        let (target, errors) = read(json!({"selector": {"matchLabels": {"app": "edge"}}}));
        assert_eq!(errors, []);
        assert_eq!(target.selector["app"], "edge");
        let (target, errors) = read(json!({"targetRefs": [
            {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "web"}
        ]}));
        assert_eq!(errors, []);
        assert_eq!(
            target.gateways,
            [ResourceKey::new(Kind::KubernetesGateway, "edge", "web")]
        );
    }

    #[test]
    fn names_bad_targets() {
        let (_, errors) = read(json!({
            "selector": {"labels": {}},
            "targetRef": {"kind": "Service", "name": "web", "namespace": "other"}
        }));
        let fields: Vec<&str> = errors.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.targetRef",
                "spec.selector.labels",
                "spec.targetRef.namespace",
                "spec.targetRef"
            ]
        );
        assert_eq!(errors[0].1, "only one of selector, targetRef may be set");
        assert_eq!(
            errors[3].1,
            "not supported: core/Service (only gateway.networking.k8s.io Gateway)"
        );
    }
}
