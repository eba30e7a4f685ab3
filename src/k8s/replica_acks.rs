//! ACKs of a release step across replicas, for `serve --kubernetes` with several
//! replicas: each Envoy holds one xDS stream to one replica, so only that replica's
//! ledger knows whether it ACKed. Every replica reports, per Rollout, whether all of
//! its proxies that carry the target route ACKed the route as it now stands, under
//! `status.replicas.<replica>` of the Rollout (a merge patch on `/status`: each replica
//! writes only its own key). The leader counts a step as ACKed only once every live
//! replica (one that reported within [`FRESH`]) reports the same route ACKed.
//!
//! A route is named by a hash of its route list as the cluster holds it (the same in
//! every replica, whatever its local revision numbers), so a replica that has not yet
//! seen a step reports the previous route and holds the step back.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::api::{DynamicObject, Patch, PatchParams};
use kube::{Api, Client};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::resources::resource_of;
use crate::ledger::ProxyStatus;
use crate::model::{Kind, ResourceKey};

/// Where in the Rollout's `status` replicas report.
pub const REPLICAS_FIELD: &str = "replicas";

/// A report older than this is from a replica that is gone: it no longer counts.
pub const FRESH: Duration = Duration::from_secs(15);

/// How often a replica repeats an unchanged report, so that the leader sees it alive.
pub const HEARTBEAT: Duration = Duration::from_secs(5);

/// What one replica says of its proxies and one release's target route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// [`route_hash`] of the target route this replica serves.
    pub route: String,
    /// Every proxy of this replica that carries the route ACKed it.
    pub acked: bool,
    /// A proxy rejected it: which, and Envoy's error text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected: Option<String>,
    /// When the replica wrote this (RFC 3339).
    #[serde(default)]
    pub at: String,
}

impl Report {
    pub fn new(route: String, status: &ProxyStatus) -> Report {
        Report {
            route,
            acked: *status == ProxyStatus::Acked,
            rejected: match status {
                ProxyStatus::Rejected(message) => Some(message.clone()),
                _ => None,
            },
            at: String::new(),
        }
    }
}

/// The hash that names a route list, independent of key order.
pub fn route_hash(routes: &Value) -> String {
    crate::snapshot::short_hash(canonical(routes).to_string().as_bytes())
}

fn canonical(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let sorted: Map<String, Value> = keys
                .into_iter()
                .map(|k| (k.clone(), canonical(&map[k])))
                .collect();
            Value::Object(sorted)
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

/// The status patch of one replica's report.
pub fn to_patch(replica: &str, report: &Report) -> Value {
    json!({ "status": { REPLICAS_FIELD: { replica: report } } })
}

/// What the other live replicas say of `route`, from a Rollout's `status`: Rejected
/// when one rejected it, Pending while one has not ACKed it (or serves another route),
/// Acked when all did (or there are no others). Reports older than [`FRESH`] at `now`
/// are from gone replicas and do not count.
pub fn others(status: &Value, me: &str, route: &str, now: Timestamp) -> ProxyStatus {
    let reports = status[REPLICAS_FIELD].as_object();
    let mut out = ProxyStatus::Acked;
    for (replica, value) in reports.into_iter().flatten() {
        if replica == me {
            continue;
        }
        let Ok(report) = serde_json::from_value::<Report>(value.clone()) else {
            continue;
        };
        if !fresh(&report, now) {
            continue;
        }
        if report.route != route {
            out = ProxyStatus::Pending;
            continue;
        }
        if let Some(message) = report.rejected {
            return ProxyStatus::Rejected(format!("{message} (on replica {replica})"));
        }
        if !report.acked {
            out = ProxyStatus::Pending;
        }
    }
    out
}

/// Whether another replica has reported on this Rollout within [`FRESH`] of `now`.
pub fn any_other(status: &Value, me: &str, now: Timestamp) -> bool {
    let reports = status[REPLICAS_FIELD].as_object();
    reports.into_iter().flatten().any(|(replica, value)| {
        replica != me
            && serde_json::from_value::<Report>(value.clone()).is_ok_and(|r| fresh(&r, now))
    })
}

/// Whether a report was written within [`FRESH`] of `now` (its replica is alive).
fn fresh(report: &Report, now: Timestamp) -> bool {
    (report.at.parse::<Timestamp>()).is_ok_and(|at| now.duration_since(at).unsigned_abs() <= FRESH)
}

fn api(client: &Client, key: &ResourceKey) -> Api<DynamicObject> {
    let resource = resource_of(Kind::Rollout).expect("Rollouts are watched");
    Api::namespaced_with(client.clone(), &key.namespace, &resource)
}

/// Writes this replica's report, stamped with the time now.
pub async fn write(
    client: &Client,
    key: &ResourceKey,
    replica: &str,
    report: &Report,
) -> kube::Result<()> {
    let stamped = Report {
        at: Timestamp::now().to_string(),
        ..report.clone()
    };
    let patch = to_patch(replica, &stamped);
    let params = PatchParams::default();
    api(client, key)
        .patch_status(&key.name, &params, &Patch::Merge(&patch))
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(route: &str, acked: bool, rejected: Option<&str>, at: Timestamp) -> Value {
        serde_json::to_value(Report {
            route: route.into(),
            acked,
            rejected: rejected.map(str::to_string),
            at: at.to_string(),
        })
        .unwrap()
    }

    #[test]
    fn route_hashes_ignore_key_order() {
        let a = json!([{"route": [{"destination": {"host": "p", "subset": "v1"}, "weight": 90}]}]);
        let b = serde_json::from_str::<Value>(
            r#"[{"route": [{"weight": 90, "destination": {"subset": "v1", "host": "p"}}]}]"#,
        )
        .unwrap();
        assert_eq!(route_hash(&a), route_hash(&b));
        let c = json!([{"route": [{"destination": {"host": "p", "subset": "v1"}, "weight": 80}]}]);
        assert_ne!(route_hash(&a), route_hash(&c));
    }

    #[test]
    fn every_live_replica_must_ack_the_same_route() {
        let now: Timestamp = "2026-11-22T05:00:00Z".parse().unwrap();
        let recent: Timestamp = "2026-11-22T04:59:58Z".parse().unwrap();
        let gone: Timestamp = "2026-11-22T04:59:00Z".parse().unwrap();
        let status = |reports: Value| json!({ "phase": "Progressing", REPLICAS_FIELD: reports });
        let check = |s: &Value| others(s, "a", "r2", now);
        assert_eq!(check(&json!({})), ProxyStatus::Acked, "no other replica");
        let mine_only = status(json!({"a": report("r1", false, None, recent)}));
        assert_eq!(check(&mine_only), ProxyStatus::Acked, "own report ignored");
        let behind = status(json!({"b": report("r1", true, None, recent)}));
        assert_eq!(
            check(&behind),
            ProxyStatus::Pending,
            "b serves the old route"
        );
        let pending = status(json!({"b": report("r2", false, None, recent)}));
        assert_eq!(check(&pending), ProxyStatus::Pending);
        let acked = status(json!({
            "b": report("r2", true, None, recent),
            "c": report("r1", false, None, gone),
        }));
        assert_eq!(
            check(&acked),
            ProxyStatus::Acked,
            "c is gone: it does not count"
        );
        let rejected = status(json!({
            "b": report("r2", true, None, recent),
            "c": report("r2", false, Some("envoy-1: bad route"), recent),
        }));
        assert_eq!(
            check(&rejected),
            ProxyStatus::Rejected("envoy-1: bad route (on replica c)".into())
        );
    }

    #[test]
    fn only_fresh_reports_of_other_replicas_say_others_exist() {
        let now: Timestamp = "2026-11-22T05:00:00Z".parse().unwrap();
        let recent: Timestamp = "2026-11-22T04:59:58Z".parse().unwrap();
        let gone: Timestamp = "2026-11-22T04:59:00Z".parse().unwrap();
        let status = |reports: Value| json!({ REPLICAS_FIELD: reports });
        assert!(!any_other(&json!({}), "a", now));
        assert!(!any_other(
            &status(json!({"a": report("r", true, None, recent)})),
            "a",
            now
        ));
        assert!(!any_other(
            &status(json!({"b": report("r", true, None, gone)})),
            "a",
            now
        ));
        assert!(any_other(
            &status(json!({"b": report("r", false, None, recent)})),
            "a",
            now
        ));
    }

    #[test]
    fn a_replica_patches_only_its_own_key() {
        let r = Report::new("r2".into(), &ProxyStatus::Rejected("bad".into()));
        let patch = to_patch("pod-b", &r);
        assert_eq!(patch["status"][REPLICAS_FIELD]["pod-b"]["route"], "r2");
        assert_eq!(patch["status"][REPLICAS_FIELD]["pod-b"]["acked"], false);
        assert_eq!(patch["status"][REPLICAS_FIELD]["pod-b"]["rejected"], "bad");
        assert_eq!(patch["status"].as_object().unwrap().len(), 1);
    }
}
