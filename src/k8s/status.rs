//! Status of the cluster resources coalmine reads: a Kubernetes-style `Accepted`
//! condition (`True` / reason `Accepted`, or `False` / reason `Invalid` with every
//! error, field path first, in the message), written with a merge patch on the
//! `/status` subresource, by the leader only.
//!
//! Where it goes: `status.conditions` (other condition types are kept); Gateway API
//! Gateways and HTTPRoutes get the Gateway API's own status instead
//! ([`super::gateway_api_status`]). [`to_patch`] is pure and answers `None` when the
//! object already says what it should, so a status write, echoed back by the watch,
//! writes nothing.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::api::{DynamicObject, Patch, PatchParams};
use kube::core::ApiResource;
use kube::{Api, Client};
use serde_json::{json, Value};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::judge::ObjectId;
use crate::ingest::FieldError;

/// The condition type written.
pub const CONDITION: &str = "Accepted";

/// coalmine's name where Gateway API wants a controller name.
pub const CONTROLLER: &str = "coalmine.dev/controller";

/// How often pending writes are retried when nothing else happens.
const RETRY: Duration = Duration::from_secs(10);

/// Whether a resource is served, and why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub accepted: bool,
    pub message: String,
}

impl Verdict {
    /// `None` errors: accepted.
    pub fn new(errors: Option<&[FieldError]>) -> Verdict {
        match errors {
            None | Some([]) => Verdict {
                accepted: true,
                message: "accepted by coalmine and served".into(),
            },
            Some(errors) => {
                let parts: Vec<String> = errors
                    .iter()
                    .map(|e| match e.field.is_empty() {
                        true => e.message.clone(),
                        false => format!("{}: {}", e.field, e.message),
                    })
                    .collect();
                Verdict {
                    accepted: false,
                    message: parts.join("; "),
                }
            }
        }
    }

    fn condition(&self, generation: Option<i64>, since: &str) -> Value {
        let (status, reason) = match self.accepted {
            true => ("True", "Accepted"),
            false => ("False", "Invalid"),
        };
        let mut c = json!({"type": CONDITION, "status": status, "reason": reason,
                           "message": self.message, "lastTransitionTime": since});
        if let Some(generation) = generation {
            c["observedGeneration"] = json!(generation);
        }
        c
    }
}

/// One status write to make.
#[derive(Debug, Clone, PartialEq)]
pub struct Wanted {
    pub resource: ApiResource,
    pub id: ObjectId,
    /// The object's resourceVersion when the patch was computed.
    pub resource_version: String,
    pub verdict: Verdict,
    /// The merge patch (`{"status": ...}`).
    pub patch: Value,
    /// A cluster-scoped object (a GatewayClass): no namespace in its path.
    pub cluster_scoped: bool,
}

/// The status patch that makes `object` say `verdict`, or `None` when it already does
/// (compared without `lastTransitionTime`, which is kept while the status stays).
pub fn to_patch(object: &Value, verdict: &Verdict, now: Timestamp) -> Option<Value> {
    let generation = object["metadata"]["generation"].as_i64();
    let status = &object["status"];
    let conditions = status["conditions"].as_array().cloned().unwrap_or_default();
    let (ours, mut theirs): (Vec<Value>, Vec<Value>) =
        conditions.into_iter().partition(|c| c["type"] == CONDITION);
    let since = since(Some(&Value::Array(ours.clone())), verdict, now);
    let mine = verdict.condition(generation, &since);
    if same(&ours, std::slice::from_ref(&mine)) {
        return None;
    }
    theirs.push(mine);
    Some(json!({"status": {"conditions": theirs}}))
}

/// The transition time to write: the old one while the condition's status stays.
fn since(old: Option<&Value>, verdict: &Verdict, now: Timestamp) -> String {
    let status = if verdict.accepted { "True" } else { "False" };
    since_for(old, CONDITION, status, now)
}

/// The transition time for a condition of `kind` going to `status`: the old one while
/// `old` (a conditions array) has it with that status, else `now`.
pub(super) fn since_for(old: Option<&Value>, kind: &str, status: &str, now: Timestamp) -> String {
    let old = old
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["type"] == kind))
        .filter(|c| c["status"] == status)
        .and_then(|c| c["lastTransitionTime"].as_str());
    match old {
        Some(t) => t.to_string(),
        None => now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
    }
}

/// Equal once every `lastTransitionTime` is left out.
pub(super) fn same(a: &[Value], b: &[Value]) -> bool {
    fn strip(v: &Value) -> Value {
        match v {
            Value::Object(m) => Value::Object(
                m.iter()
                    .filter(|(k, _)| *k != "lastTransitionTime")
                    .map(|(k, v)| (k.clone(), strip(v)))
                    .collect(),
            ),
            Value::Array(items) => Value::Array(items.iter().map(strip).collect()),
            other => other.clone(),
        }
    }
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| strip(x) == strip(y))
}

/// Writes the wanted statuses while `leader` is true: on every change of either, and
/// every [`RETRY`] for writes that failed. A write already made for the same object
/// version and verdict is not made again.
pub async fn write(
    client: Client,
    mut wanted: watch::Receiver<Vec<Wanted>>,
    mut leader: watch::Receiver<bool>,
) {
    let mut written: BTreeMap<ObjectId, (String, Value)> = BTreeMap::new();
    loop {
        if *leader.borrow_and_update() {
            let list = wanted.borrow_and_update().clone();
            for w in list {
                let done = (w.resource_version.clone(), w.patch.clone());
                if written.get(&w.id) == Some(&done) {
                    continue;
                }
                let api: Api<DynamicObject> = match w.cluster_scoped {
                    true => Api::all_with(client.clone(), &w.resource),
                    false => Api::namespaced_with(client.clone(), &w.id.namespace, &w.resource),
                };
                let pp = PatchParams::default();
                match api
                    .patch_status(&w.id.name, &pp, &Patch::Merge(&w.patch))
                    .await
                {
                    Ok(_) => {
                        info!(resource = %w.id, accepted = w.verdict.accepted, "status written");
                        if !w.verdict.accepted {
                            debug!(resource = %w.id, "rejected: {}", w.verdict.message);
                        }
                        written.insert(w.id, done);
                    }
                    Err(e) => warn!(resource = %w.id, "cannot write status, will retry: {e}"),
                }
            }
        } else {
            written.clear();
        }
        tokio::select! {
            changed = wanted.changed() => if changed.is_err() { return },
            changed = leader.changed() => if changed.is_err() { return },
            _ = tokio::time::sleep(RETRY) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + s).unwrap()
    }

    fn bad() -> Verdict {
        Verdict::new(Some(&[FieldError {
            resource: "VirtualService default/web".into(),
            field: "spec.http[0].route[0].weight".into(),
            message: "must be at most 100".into(),
            reason: None,
        }]))
    }

    fn vs(status: Value) -> Value {
        json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
               "metadata": {"name": "web", "generation": 3}, "spec": {}, "status": status})
    }

    #[test]
    fn an_invalid_resource_gets_a_condition_naming_the_field() {
        let patch = to_patch(&vs(json!({})), &bad(), at(0)).unwrap();
        let c = &patch["status"]["conditions"][0];
        assert_eq!(c["type"], "Accepted");
        assert_eq!(c["status"], "False");
        assert_eq!(c["reason"], "Invalid");
        assert_eq!(c["observedGeneration"], 3);
        assert_eq!(
            c["message"],
            "spec.http[0].route[0].weight: must be at most 100"
        );
    }

    #[test]
    fn a_status_already_written_writes_nothing_and_keeps_other_conditions() {
        let other = json!({"type": "Reconciled", "status": "True"});
        let patch = to_patch(&vs(json!({"conditions": [other]})), &bad(), at(0)).unwrap();
        let echoed = vs(patch["status"].clone());
        assert_eq!(to_patch(&echoed, &bad(), at(60)), None);
        let fixed = to_patch(&echoed, &Verdict::new(None), at(60)).unwrap();
        let conditions = fixed["status"]["conditions"].as_array().unwrap();
        assert_eq!(conditions.len(), 2);
        assert_eq!(conditions[0]["type"], "Reconciled");
        assert_eq!(conditions[1]["status"], "True");
        assert_eq!(conditions[1]["lastTransitionTime"], "2023-11-14T22:14:20Z");
    }

    #[test]
    fn a_changed_message_keeps_the_transition_time() {
        let first = to_patch(&vs(json!({})), &bad(), at(0)).unwrap();
        let mut other = bad();
        other.message = "spec.hosts: required".into();
        let second = to_patch(&vs(first["status"].clone()), &other, at(99)).unwrap();
        assert_eq!(
            second["status"]["conditions"][0]["lastTransitionTime"],
            first["status"]["conditions"][0]["lastTransitionTime"]
        );
    }
}
