//! A release's progress kept in its Rollout's `status`, for `serve --kubernetes`: what
//! `kubectl get rollouts` shows (phase, weight, checks and steps, as the REST API
//! reports them), and, under `status.release`, the machine state with the fingerprint
//! of the spec it belongs to, which a new leader resumes from. Written by the leader
//! with a merge patch on the `/status` subresource; the `Accepted` condition beside it
//! is left alone.
//!
//! Any replica reads the status from here when it does not lead, and relays an
//! operator's command to the leader as `status.request` (`command`, `at`, `from`); the
//! leader carries it out and records `status.requestDone` (that `at`).

use kube::api::{DynamicObject, Patch, PatchParams};
use kube::{Api, Client};
use serde_json::{json, Value};

use super::resources::resource_of;
use crate::model::{Kind, ResourceKey};
use crate::rollout::RolloutStatus;

/// Where in `status` the resumable machine state goes.
pub const RELEASE_FIELD: &str = "release";

/// A command relayed to the leader, and the `at` of the last one it carried out.
pub const REQUEST_FIELD: &str = "request";
pub const REQUEST_DONE_FIELD: &str = "requestDone";

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

/// The release status in a Rollout's `status`, if the leader wrote one.
pub fn release_status(status: &Value) -> Option<RolloutStatus> {
    status.get("phase")?;
    serde_json::from_value(status.clone()).ok()
}

/// The patch that relays `command` to the leader, from replica `from`, at `at` (an
/// RFC 3339 time, unique per request).
pub fn request_patch(command: &str, at: &str, from: &str) -> Value {
    json!({"status": {REQUEST_FIELD: {"command": command, "at": at, "from": from}}})
}

/// `(command, at)` of a relayed command the leader has not carried out yet.
pub fn pending_request(status: &Value) -> Option<(String, String)> {
    let request = &status[REQUEST_FIELD];
    let command = request["command"].as_str()?;
    let at = request["at"].as_str()?;
    let done = status[REQUEST_DONE_FIELD].as_str();
    (done != Some(at)).then(|| (command.to_string(), at.to_string()))
}

/// The patch that records the relayed command of `at` as carried out.
pub fn done_patch(at: &str) -> Value {
    json!({"status": {REQUEST_DONE_FIELD: at}})
}

fn api(client: &Client, key: &ResourceKey) -> Api<DynamicObject> {
    let resource = resource_of(Kind::Rollout).expect("Rollouts are watched");
    Api::namespaced_with(client.clone(), &key.namespace, &resource)
}

/// Merges `patch` (`{"status": ...}`) into the Rollout's status.
pub async fn write(client: &Client, key: &ResourceKey, patch: &Value) -> kube::Result<()> {
    let params = PatchParams::default();
    api(client, key)
        .patch_status(&key.name, &params, &Patch::Merge(patch))
        .await
        .map(|_| ())
}

/// The Rollout's `status` as the cluster holds it now.
pub async fn read_status(client: &Client, key: &ResourceKey) -> kube::Result<Value> {
    let object = api(client, key).get_status(&key.name).await?;
    let value = serde_json::to_value(&object).unwrap_or_default();
    Ok(value["status"].clone())
}

/// The state saved in the Rollout's status, if it has one.
pub async fn read(client: &Client, key: &ResourceKey) -> kube::Result<Option<(String, String)>> {
    let status = read_status(client, key).await?;
    Ok(saved(&json!({ "status": status })))
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
        assert_eq!(release_status(&patch["status"]), Some(status));
        assert_eq!(release_status(&json!({"conditions": []})), None);
    }

    #[test]
    fn a_relayed_command_is_pending_until_done() {
        let mut status = json!({"phase": "Progressing"});
        assert_eq!(pending_request(&status), None);
        let request = request_patch("promote", "2026-11-22T05:00:00.1Z", "pod-b");
        status[REQUEST_FIELD] = request["status"][REQUEST_FIELD].clone();
        let want = ("promote".to_string(), "2026-11-22T05:00:00.1Z".to_string());
        assert_eq!(pending_request(&status), Some(want));
        let done = done_patch("2026-11-22T05:00:00.1Z");
        status[REQUEST_DONE_FIELD] = done["status"][REQUEST_DONE_FIELD].clone();
        assert_eq!(pending_request(&status), None);
    }
}
