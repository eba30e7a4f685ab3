//! A release's progress kept in its Rollout's `status`, for `serve --kubernetes`: what
//! `kubectl get rollouts` shows (phase, weight, checks and steps, as the REST API
//! reports them), and, under `status.release`, the machine state with the fingerprint
//! of the spec it belongs to, which a new leader resumes from. Written by the leader
//! with a merge patch on the `/status` subresource; the `Accepted` condition beside it
//! is left alone.

use kube::api::{DynamicObject, Patch, PatchParams};
use kube::{Api, Client};
use serde_json::{json, Value};

use super::resources::resource_of;
use crate::model::{Kind, ResourceKey};
use crate::rollout::RolloutStatus;

/// Where in `status` the resumable machine state goes.
pub const RELEASE_FIELD: &str = "release";

/// The status patch for a release: its status, and its state to resume from.
pub fn to_patch(status: &RolloutStatus, spec: &str, state: &str) -> Value {
    let mut out = serde_json::to_value(status).expect("a status serializes");
    out[RELEASE_FIELD] = json!({"spec": spec, "state": state});
    json!({ "status": out })
}

/// `(spec fingerprint, state)` saved in an object's status, if any.
pub fn saved(object: &Value) -> Option<(String, String)> {
    let release = &object["status"][RELEASE_FIELD];
    let spec = release["spec"].as_str()?;
    let state = release["state"].as_str()?;
    Some((spec.to_string(), state.to_string()))
}

fn api(client: &Client, key: &ResourceKey) -> Api<DynamicObject> {
    let resource = resource_of(Kind::Rollout).expect("Rollouts are watched");
    Api::namespaced_with(client.clone(), &key.namespace, &resource)
}

/// Writes `patch` (from [`to_patch`]) to the Rollout's status.
pub async fn write(client: &Client, key: &ResourceKey, patch: &Value) -> kube::Result<()> {
    let params = PatchParams::default();
    api(client, key)
        .patch_status(&key.name, &params, &Patch::Merge(patch))
        .await
        .map(|_| ())
}

/// The state saved in the Rollout's status, if it has one.
pub async fn read(client: &Client, key: &ResourceKey) -> kube::Result<Option<(String, String)>> {
    let object = api(client, key).get_status(&key.name).await?;
    let value = serde_json::to_value(&object).unwrap_or_default();
    Ok(saved(&value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::Phase;

    #[test]
    fn the_status_carries_what_kubectl_shows_and_the_state_to_resume() {
        let status = RolloutStatus {
            phase: Phase::Progressing,
            strategy: crate::model::Strategy::Canary,
            canary_weight: 10.0,
            failed_checks: 1,
            threshold: 5,
            iteration: 2,
            total_iterations: 3,
            metrics: Vec::new(),
            steps: Vec::new(),
            message: "step 2/3".into(),
            last_transition_time: "2026-11-22T05:00:00Z".into(),
        };
        let patch = to_patch(&status, "abc", "{\"x\":1}");
        assert_eq!(patch["status"]["phase"], "Progressing");
        assert_eq!(patch["status"]["canaryWeight"], 10.0);
        assert_eq!(patch["status"]["failedChecks"], 1);
        assert!(
            patch["status"].get("conditions").is_none(),
            "conditions left alone"
        );
        assert_eq!(saved(&patch), Some(("abc".into(), "{\"x\":1}".into())));
        assert_eq!(saved(&json!({"status": {"phase": "Progressing"}})), None);
    }
}
