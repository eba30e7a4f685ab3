//! A release's traffic step written into the cluster, for `serve --kubernetes`: a JSON
//! merge patch of the target VirtualService's `spec.http` or HTTPRoute's `spec.rules`
//! (the whole list, which a merge patch replaces). The watchers then bring the change
//! back as a revision like any other edit.

use kube::api::{DynamicObject, Patch, PatchParams};
use kube::{Api, Client};
use serde_json::{json, Value};

use super::resources::resource_of;
use crate::model::{Kind, ResourceKey};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("a {0} is not a route a release can move")]
    NotARoute(&'static str),
    #[error("the new {0} has no spec.{1}")]
    NoRoutes(&'static str, &'static str),
    #[error("patching {0}: {1}")]
    Patch(String, kube::Error),
}

/// The route list a release rewrites in a document of this kind.
pub fn routes_field(kind: Kind) -> Option<&'static str> {
    match kind {
        Kind::VirtualService => Some("http"),
        Kind::HttpRoute => Some("rules"),
        _ => None,
    }
}

/// The merge patch that makes the object's route list `next`'s.
pub fn to_patch(kind: Kind, next: &Value) -> Result<Value, Error> {
    let field = routes_field(kind).ok_or(Error::NotARoute(kind.as_str()))?;
    let routes = next
        .pointer(&format!("/spec/{field}"))
        .ok_or(Error::NoRoutes(kind.as_str(), field))?;
    Ok(json!({ "spec": { field: routes } }))
}

/// Patches `key`'s route list to `next`'s; returns the list as the API server stored
/// it (with its defaults filled in), to recognise the change when it comes back.
pub async fn patch_routes(
    client: &Client,
    key: &ResourceKey,
    next: &Value,
) -> Result<Value, Error> {
    let patch = to_patch(key.kind, next)?;
    let field = routes_field(key.kind).expect("to_patch checked the kind");
    let resource = resource_of(key.kind).ok_or(Error::NotARoute(key.kind.as_str()))?;
    let api = Api::<DynamicObject>::namespaced_with(client.clone(), &key.namespace, &resource);
    let params = PatchParams::default();
    let object = api
        .patch(&key.name, &params, &Patch::Merge(&patch))
        .await
        .map_err(|e| Error::Patch(key.to_string(), e))?;
    Ok(object.data["spec"][field].clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_patch_replaces_only_the_route_list() {
        let next = json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": "p"}, "spec": {"hosts": ["p"], "http": [{"route": []}]}});
        assert_eq!(
            to_patch(Kind::VirtualService, &next).unwrap(),
            json!({"spec": {"http": [{"route": []}]}})
        );
        let route = json!({"spec": {"rules": [{"backendRefs": [{"name": "a", "weight": 1}]}]}});
        assert_eq!(
            to_patch(Kind::HttpRoute, &route).unwrap(),
            json!({"spec": {"rules": [{"backendRefs": [{"name": "a", "weight": 1}]}]}})
        );
        assert!(matches!(
            to_patch(Kind::DestinationRule, &next),
            Err(Error::NotARoute("DestinationRule"))
        ));
        assert!(matches!(
            to_patch(Kind::HttpRoute, &next),
            Err(Error::NoRoutes("HTTPRoute", "rules"))
        ));
    }
}
