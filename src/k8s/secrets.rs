//! Which Kubernetes Secrets coalmine reads: only those a Gateway of the set names for
//! TLS (Istio's `credentialName`, and its `<name>-cacert` companion; the Gateway API's
//! `certificateRefs`). Every other Secret of the cluster (tokens, Helm releases) is
//! never parsed, judged or kept.

use std::collections::BTreeSet;

use serde_json::Value;

use super::judge::ObjectId;

/// `namespace/name` of the Secrets the Gateways among `objects` name.
pub fn named_by_gateways<'a>(
    objects: impl Iterator<Item = (&'a ObjectId, &'a Value)>,
) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (id, value) in objects {
        if id.kind != "Gateway" {
            continue;
        }
        let spec = &value["spec"];
        for server in spec["servers"].as_array().into_iter().flatten() {
            if let Some(name) = server["tls"]["credentialName"].as_str() {
                out.insert(format!("{}/{name}", id.namespace));
                out.insert(format!("{}/{name}-cacert", id.namespace));
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
                let namespace = r["namespace"].as_str().unwrap_or(&id.namespace);
                out.insert(format!("{namespace}/{name}"));
            }
        }
    }
    out
}

/// Whether `id` is a core Secret.
pub fn is_secret(id: &ObjectId) -> bool {
    id.kind == "Secret" && id.api_version == "v1"
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn id(api_version: &str, kind: &str, name: &str) -> ObjectId {
        ObjectId {
            api_version: api_version.into(),
            kind: kind.into(),
            namespace: "edge".into(),
            name: name.into(),
        }
    }

    #[test]
    fn gateways_name_their_secrets() {
        let istio = id("networking.istio.io/v1", "Gateway", "a");
        let istio_spec = json!({"spec": {"servers": [
            {"tls": {"mode": "SIMPLE", "credentialName": "web-cert"}},
            {"port": {"number": 80}}
        ]}});
        let gapi = id("gateway.networking.k8s.io/v1", "Gateway", "b");
        let gapi_spec = json!({"spec": {"listeners": [
            {"tls": {"certificateRefs": [{"name": "api-cert"},
                                         {"name": "shared", "namespace": "certs", "kind": "Secret"},
                                         {"name": "cm", "kind": "ConfigMap"}]}}
        ]}});
        let route = id("gateway.networking.k8s.io/v1", "HTTPRoute", "c");
        let route_spec = json!({"spec": {"servers": [{"tls": {"credentialName": "no"}}]}});
        let names = named_by_gateways(
            [
                (&istio, &istio_spec),
                (&gapi, &gapi_spec),
                (&route, &route_spec),
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
                "edge/web-cert-cacert"
            ]
        );
    }
}
