//! The Gateway API's own status, as its specification writes it: per HTTPRoute parent
//! `Accepted` and `ResolvedRefs` with the spec's reasons, and on a Gateway `Accepted`,
//! `Programmed`, its `status.addresses` and one `status.listeners[]` entry per listener
//! (`attachedRoutes`, `supportedKinds`, `Accepted`, `Programmed`, `ResolvedRefs`,
//! `Conflicted`). Pure:
//! [`route_patch`] and [`gateway_patch`] answer `None` when the object already says it.

use k8s_openapi::jiff::Timestamp;
use serde_json::{json, Value};

use super::status::{same, since_for, CONTROLLER};
use crate::ingest::FieldError;
use crate::model::{GatewayAddress, ListenerStatus, NotTrue, UnresolvedRef};

/// One condition: `Ok` is `True` with the condition's own reason.
pub type Outcome = Result<(), NotTrue>;

/// What one parentRef's entry says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParentState {
    pub accepted: Outcome,
    pub resolved_refs: Outcome,
}

/// Each parentRef's state: an accepted route's from how it attached (`parents`) and its
/// unresolved references; a rejected route's from its errors, the reason of an error on
/// that parentRef first, else `UnsupportedValue` with every error.
pub fn route_parents(
    count: usize,
    parents: Option<&[Option<NotTrue>]>,
    unresolved: &[&UnresolvedRef],
    errors: Option<&[FieldError]>,
) -> Vec<ParentState> {
    let resolved_refs = match unresolved {
        [] => Ok(()),
        [first, ..] => Err(NotTrue {
            reason: first.reason,
            message: unresolved
                .iter()
                .map(|u| format!("{}: {}", u.field, u.message))
                .collect::<Vec<_>>()
                .join("; "),
        }),
    };
    (0..count)
        .map(|i| {
            let accepted = match errors {
                Some(errors) if !errors.is_empty() => Err(rejected(i, errors)),
                _ => match parents.and_then(|p| p.get(i)).cloned().flatten() {
                    None => Ok(()),
                    Some(not_true) => Err(not_true),
                },
            };
            ParentState {
                accepted,
                resolved_refs: resolved_refs.clone(),
            }
        })
        .collect()
}

fn rejected(i: usize, errors: &[FieldError]) -> NotTrue {
    let prefix = format!("spec.parentRefs[{i}]");
    let own = errors.iter().find(|e| {
        e.reason.is_some()
            && (e.field == prefix
                || e.field.starts_with(&format!("{prefix}."))
                || e.field.starts_with(&format!("{prefix}[")))
    });
    match own {
        Some(e) => NotTrue {
            reason: e.reason.unwrap_or("UnsupportedValue"),
            message: e.message.clone(),
        },
        None => NotTrue {
            reason: "UnsupportedValue",
            message: errors
                .iter()
                .map(|e| match e.field.is_empty() {
                    true => e.message.clone(),
                    false => format!("{}: {}", e.field, e.message),
                })
                .collect::<Vec<_>>()
                .join("; "),
        },
    }
}

/// A condition of `kind`; `since` is kept from `old` while its status stays.
fn condition(
    kind: &str,
    outcome: &Outcome,
    generation: Option<i64>,
    old: Option<&Value>,
    now: Timestamp,
) -> Value {
    let (status, reason, message) = match outcome {
        Ok(()) => ("True", kind.to_string(), String::new()),
        Err(n) => ("False", n.reason.to_string(), n.message.clone()),
    };
    let message = if message.is_empty() {
        format!("{kind} by coalmine")
    } else {
        message
    };
    let since = since_for(old, kind, status, now);
    let mut c = json!({"type": kind, "status": status, "reason": reason,
                       "message": message, "lastTransitionTime": since});
    if let Some(generation) = generation {
        c["observedGeneration"] = json!(generation);
    }
    c
}

/// The HTTPRoute status patch: one `status.parents[]` entry per parentRef, with
/// `controllerName` [`CONTROLLER`]; other controllers' entries are kept.
pub fn route_patch(object: &Value, states: &[ParentState], now: Timestamp) -> Option<Value> {
    let generation = object["metadata"]["generation"].as_i64();
    let refs = object["spec"]["parentRefs"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let parents = object["status"]["parents"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let (ours, theirs): (Vec<Value>, Vec<Value>) = parents
        .into_iter()
        .partition(|p| p["controllerName"] == CONTROLLER);
    let mine: Vec<Value> = refs
        .iter()
        .zip(states)
        .enumerate()
        .map(|(i, (parent_ref, state))| {
            let old = ours.get(i).map(|p| &p["conditions"]);
            json!({"parentRef": parent_ref, "controllerName": CONTROLLER, "conditions": [
                condition("Accepted", &state.accepted, generation, old, now),
                condition("ResolvedRefs", &state.resolved_refs, generation, old, now),
            ]})
        })
        .collect();
    if same(&ours, &mine) {
        return None;
    }
    let all: Vec<Value> = theirs.into_iter().chain(mine).collect();
    Some(json!({"status": {"parents": all}}))
}

/// What a Gateway's status says.
#[derive(Debug, Clone, Copy)]
pub struct Gateway<'a> {
    /// `Accepted`: a rejected Gateway's reason (`Invalid`, `UnsupportedAddress`);
    /// `Programmed` is then `Invalid`.
    pub outcome: &'a Outcome,
    pub listeners: &'a [ListenerStatus],
    /// `status.addresses`: none is an absent list.
    pub addresses: &'a [GatewayAddress],
}

/// The Gateway status patch: `Accepted` and `Programmed`, its addresses, and per
/// listener its attached routes and conditions. Conditions of other types are kept.
pub fn gateway_patch(object: &Value, gateway: &Gateway<'_>, now: Timestamp) -> Option<Value> {
    let Gateway {
        outcome,
        listeners,
        addresses,
    } = *gateway;
    let generation = object["metadata"]["generation"].as_i64();
    let status = &object["status"];
    let conditions = status["conditions"].as_array().cloned().unwrap_or_default();
    let ours_type = |c: &Value| c["type"] == "Accepted" || c["type"] == "Programmed";
    let (ours, mut theirs): (Vec<Value>, Vec<Value>) = conditions.into_iter().partition(ours_type);
    let old = Value::Array(ours.clone());
    let programmed = outcome.clone().map_err(|n| NotTrue {
        reason: "Invalid",
        message: n.message,
    });
    let mine = vec![
        condition("Accepted", outcome, generation, Some(&old), now),
        condition("Programmed", &programmed, generation, Some(&old), now),
    ];
    let old_addresses = status["addresses"].as_array().cloned().unwrap_or_default();
    let addresses: Vec<Value> = addresses
        .iter()
        .map(|a| json!({"type": a.kind, "value": a.value}))
        .collect();
    let old_listeners = status["listeners"].as_array().cloned().unwrap_or_default();
    let listeners: Vec<Value> = listeners
        .iter()
        .map(|l| {
            let old = old_listeners
                .iter()
                .find(|o| o["name"] == l.name.as_str())
                .map(|o| &o["conditions"]);
            let no_conflict = Err(NotTrue {
                reason: "NoConflicts",
                message: "no conflicts".into(),
            });
            // A certificate that does not resolve is `ResolvedRefs: False`, a port
            // taken by another protocol `Conflicted: True`; the listener is accepted
            // either way and not programmed. Anything else is not accepted.
            let problem = l.problem.clone();
            let reason = problem.as_ref().map(|p| p.reason);
            let refs = matches!(reason, Some("InvalidCertificateRef" | "RefNotPermitted"));
            let conflicted = reason == Some("ProtocolConflict");
            let (served, resolved) = match problem.clone() {
                None => (Ok(()), Ok(())),
                Some(p) if refs => (Ok(()), Err(p)),
                Some(_) if conflicted => (Ok(()), Ok(())),
                Some(p) => (Err(p), Ok(())),
            };
            let programmed = match problem {
                None => Ok(()),
                Some(p) => Err(NotTrue {
                    reason: "Invalid",
                    message: p.message,
                }),
            };
            let mut conflict = condition("Conflicted", &no_conflict, generation, old, now);
            if let (true, Some(p)) = (conflicted, &l.problem) {
                conflict["status"] = json!("True");
                conflict["reason"] = json!(p.reason);
                conflict["message"] = json!(p.message);
            }
            json!({
                "name": l.name,
                "attachedRoutes": l.attached_routes,
                "supportedKinds": l
                    .kinds
                    .iter()
                    .map(|kind| json!({"group": "gateway.networking.k8s.io", "kind": kind}))
                    .collect::<Vec<_>>(),
                "conditions": [
                    condition("Accepted", &served, generation, old, now),
                    condition("Programmed", &programmed, generation, old, now),
                    condition("ResolvedRefs", &resolved, generation, old, now),
                    conflict,
                ],
            })
        })
        .collect();
    if same(&ours, &mine) && same(&old_listeners, &listeners) && old_addresses == addresses {
        return None;
    }
    theirs.extend(mine);
    // A merge patch: `null` takes away addresses written before.
    let addresses = match addresses.is_empty() {
        true => Value::Null,
        false => Value::Array(addresses),
    };
    Some(json!({"status": {"conditions": theirs, "listeners": listeners, "addresses": addresses}}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Kind, ResourceKey};

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + s).unwrap()
    }

    fn route() -> Value {
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "web", "generation": 2},
            "spec": {"parentRefs": [{"name": "gw", "sectionName": "nope"}, {"name": "gw"}]}})
    }

    #[test]
    fn each_parent_says_whether_it_attached_and_what_did_not_resolve() {
        let parents = [
            Some(NotTrue {
                reason: "NoMatchingParent",
                message: "the Gateway has no listener named \"nope\"".into(),
            }),
            None,
        ];
        let missing = UnresolvedRef {
            resource: ResourceKey::new(Kind::HttpRoute, "default", "web"),
            field: "spec.rules[0].backendRefs[0]".into(),
            reason: "BackendNotFound",
            message: "no such Service".into(),
        };
        let states = route_parents(2, Some(&parents), &[&missing], None);
        let patch = route_patch(&route(), &states, at(0)).unwrap();
        let entries = patch["status"]["parents"].as_array().unwrap();
        let accepted = |i: usize| &entries[i]["conditions"][0];
        let resolved = |i: usize| &entries[i]["conditions"][1];
        assert_eq!(accepted(0)["status"], "False");
        assert_eq!(accepted(0)["reason"], "NoMatchingParent");
        assert_eq!(accepted(1)["status"], "True");
        assert_eq!(accepted(1)["reason"], "Accepted");
        assert_eq!(accepted(1)["observedGeneration"], 2);
        assert_eq!(resolved(1)["type"], "ResolvedRefs");
        assert_eq!(resolved(1)["status"], "False");
        assert_eq!(resolved(1)["reason"], "BackendNotFound");
        // Written once: the echo writes nothing.
        let mut echoed = route();
        echoed["status"] = patch["status"].clone();
        assert_eq!(route_patch(&echoed, &states, at(9)), None);
    }

    #[test]
    fn a_rejected_route_takes_the_reason_of_its_parent_error() {
        let errors = [FieldError {
            resource: "HTTPRoute default/web".into(),
            field: "spec.parentRefs[1].name".into(),
            message: "not defined".into(),
            reason: Some("NoMatchingParent"),
        }];
        let states = route_parents(2, None, &[], Some(&errors));
        assert_eq!(
            states[1].accepted.as_ref().unwrap_err().reason,
            "NoMatchingParent"
        );
        let first = states[0].accepted.as_ref().unwrap_err();
        assert_eq!(first.reason, "UnsupportedValue");
        assert_eq!(first.message, "spec.parentRefs[1].name: not defined");
    }

    #[test]
    fn a_gateway_lists_its_listeners_with_attached_routes() {
        let gateway = json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
            "metadata": {"name": "gw", "generation": 1}, "spec": {},
            "status": {"conditions": [{"type": "Other", "status": "True"}]}});
        let listeners = [ListenerStatus {
            name: "http".into(),
            attached_routes: 3,
            kinds: vec!["HTTPRoute", "GRPCRoute"],
            problem: None,
        }];
        let addresses = [GatewayAddress {
            kind: "IPAddress",
            value: "203.0.113.7".into(),
        }];
        let state = Gateway {
            outcome: &Ok(()),
            listeners: &listeners,
            addresses: &addresses,
        };
        let patch = gateway_patch(&gateway, &state, at(0)).unwrap();
        let status = &patch["status"];
        let types: Vec<&str> = status["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["type"].as_str().unwrap())
            .collect();
        assert_eq!(types, ["Other", "Accepted", "Programmed"]);
        assert_eq!(status["listeners"][0]["attachedRoutes"], 3);
        assert_eq!(
            status["addresses"],
            json!([{"type": "IPAddress", "value": "203.0.113.7"}])
        );
        assert_eq!(
            status["listeners"][0]["supportedKinds"][0]["kind"],
            "HTTPRoute"
        );
        assert_eq!(
            status["listeners"][0]["supportedKinds"][1]["kind"],
            "GRPCRoute"
        );
        assert_eq!(
            status["listeners"][0]["conditions"][3]["type"],
            "Conflicted"
        );
        assert_eq!(status["listeners"][0]["conditions"][3]["status"], "False");
        let mut echoed = gateway.clone();
        echoed["status"] = patch["status"].clone();
        assert_eq!(gateway_patch(&echoed, &state, at(5)), None);
        // Addresses gone (the fronting Service lost its ingress and IPs): written away.
        let bare = Gateway {
            addresses: &[],
            ..state
        };
        let patch = gateway_patch(&echoed, &bare, at(6)).unwrap();
        assert_eq!(patch["status"]["addresses"], Value::Null);
        assert!(patch["status"]
            .as_object()
            .unwrap()
            .contains_key("addresses"));
    }

    #[test]
    fn a_gateway_with_an_unsupported_address_is_not_accepted_with_that_reason() {
        let gateway = json!({"metadata": {"name": "gw", "generation": 1}, "spec": {}});
        let outcome = Err(NotTrue {
            reason: "UnsupportedAddress",
            message: "spec.addresses[0].type: address type \"NamedAddress\" is not supported"
                .into(),
        });
        let state = Gateway {
            outcome: &outcome,
            listeners: &[],
            addresses: &[],
        };
        let patch = gateway_patch(&gateway, &state, at(0)).unwrap();
        let conditions = &patch["status"]["conditions"];
        assert_eq!(conditions[0]["type"], "Accepted");
        assert_eq!(conditions[0]["reason"], "UnsupportedAddress");
        assert_eq!(conditions[1]["type"], "Programmed");
        assert_eq!(conditions[1]["reason"], "Invalid");
        assert_eq!(conditions[1]["status"], "False");
    }

    #[test]
    fn listener_certificates_and_conflicts_have_their_own_conditions() {
        let gateway = json!({"metadata": {"name": "gw", "generation": 2}, "spec": {}});
        let listener = |name: &str, reason: &'static str| ListenerStatus {
            name: name.into(),
            attached_routes: 0,
            kinds: vec!["HTTPRoute"],
            problem: Some(NotTrue {
                reason,
                message: format!("{name} is not served"),
            }),
        };
        let listeners = [
            listener("missing", "InvalidCertificateRef"),
            listener("ungranted", "RefNotPermitted"),
            listener("clash", "ProtocolConflict"),
        ];
        let state = Gateway {
            outcome: &Ok(()),
            listeners: &listeners,
            addresses: &[],
        };
        let patch = gateway_patch(&gateway, &state, at(0)).unwrap();
        let get = |i: usize, kind: &str| {
            let conditions = patch["status"]["listeners"][i]["conditions"]
                .as_array()
                .unwrap();
            let c = conditions.iter().find(|c| c["type"] == kind).unwrap();
            (
                c["status"].as_str().unwrap().to_string(),
                c["reason"].as_str().unwrap().to_string(),
            )
        };
        let pair = |status: &str, reason: &str| (status.to_string(), reason.to_string());
        assert_eq!(get(0, "Accepted"), pair("True", "Accepted"));
        assert_eq!(
            get(0, "ResolvedRefs"),
            pair("False", "InvalidCertificateRef")
        );
        assert_eq!(get(0, "Programmed"), pair("False", "Invalid"));
        assert_eq!(get(1, "ResolvedRefs"), pair("False", "RefNotPermitted"));
        assert_eq!(get(2, "Conflicted"), pair("True", "ProtocolConflict"));
        assert_eq!(get(2, "ResolvedRefs"), pair("True", "ResolvedRefs"));
        assert_eq!(get(2, "Programmed"), pair("False", "Invalid"));
    }
}
