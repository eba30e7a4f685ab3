//! Which Kubernetes Secrets coalmine reads: only those a Gateway of the set names for
//! TLS (Istio's `credentialName`, and its `<name>-cacert` companion; the Gateway API's
//! `certificateRefs`), and those a Flagger AlertProvider's `secretRef` names for its
//! webhook address. Every other Secret of the cluster (tokens, Helm releases) is
//! never parsed, judged or kept.

use std::collections::BTreeSet;

use serde_json::Value;

/// An object as these functions see it: its kind, namespace and value.
pub type Object<'a> = (&'a str, &'a str, &'a Value);

/// `namespace/name` of the Secrets the Gateways among `objects` name.
pub fn named_by_gateways<'a>(objects: impl Iterator<Item = Object<'a>>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (kind, namespace, value) in objects {
        // A Flagger AlertProvider's webhook address (key `address`).
        if kind == "AlertProvider" {
            if let Some(name) = value["spec"]["secretRef"]["name"].as_str() {
                out.insert(format!("{namespace}/{name}"));
            }
            continue;
        }
        if kind != "Gateway" {
            continue;
        }
        let spec = &value["spec"];
        for server in spec["servers"].as_array().into_iter().flatten() {
            if let Some(name) = server["tls"]["credentialName"].as_str() {
                out.insert(format!("{namespace}/{name}"));
                out.insert(format!("{namespace}/{name}-cacert"));
            }
        }
        for listener in spec["listeners"].as_array().into_iter().flatten() {
            let refs = listener["tls"]["certificateRefs"].as_array();
            for r in refs.into_iter().flatten() {
                let (Some(name), kind) = (r["name"].as_str(), r["kind"].as_str()) else {
                    continue;
                };
                if kind.is_some_and(|k| k != "Secret") {
                    continue;
                }
                let namespace = r["namespace"].as_str().unwrap_or(namespace);
                out.insert(format!("{namespace}/{name}"));
            }
        }
    }
    out
}

/// Whether an object of this apiVersion and kind is a core Secret.
pub fn is_secret(api_version: &str, kind: &str) -> bool {
    kind == "Secret" && api_version == "v1"
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn gateways_name_their_secrets() {
        let istio_spec = json!({"spec": {"servers": [
            {"tls": {"mode": "SIMPLE", "credentialName": "web-cert"}},
            {"port": {"number": 80}}
        ]}});
        let gapi_spec = json!({"spec": {"listeners": [
            {"tls": {"certificateRefs": [{"name": "api-cert"},
                                         {"name": "shared", "namespace": "certs", "kind": "Secret"},
                                         {"name": "cm", "kind": "ConfigMap"}]}}
        ]}});
        let route_spec = json!({"spec": {"servers": [{"tls": {"credentialName": "no"}}]}});
        let alerts_spec = json!({"spec": {"type": "slack", "secretRef": {"name": "hook"}}});
        let names = named_by_gateways(
            [
                ("Gateway", "edge", &istio_spec),
                ("Gateway", "edge", &gapi_spec),
                ("HTTPRoute", "edge", &route_spec),
                ("AlertProvider", "shop", &alerts_spec),
            ]
            .into_iter(),
        );
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "certs/shared",
                "edge/api-cert",
                "edge/web-cert",
                "edge/web-cert-cacert",
                "shop/hook"
            ]
        );
    }
}
