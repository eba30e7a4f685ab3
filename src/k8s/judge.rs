//! Which cluster resources are served: the pure rule, tested without a cluster.
//!
//! Every resource is first read alone (its envelope and spec); one with errors is
//! rejected with them. The rest are validated as a set, with the discovered services:
//! each error names its resource, and every resource named is rejected with those
//! errors and dropped; the set is validated again without them, round after round,
//! until what is left validates (at most as many rounds as there are resources). So a
//! VirtualService whose only fault is a host that a rejected ServiceEntry would have
//! defined is rejected too, naming that host, while every other resource is served.
//!
//! Nothing here talks to the cluster or writes status.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::Services;
use crate::gateway_api::NamespaceLabels;
use crate::ingest::{self, Document, FieldError};
use crate::resource_set;

/// A cluster object by `apiVersion`, `kind`, namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectId {
    pub api_version: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

impl std::fmt::Display for ObjectId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}/{} ({})",
            self.kind, self.namespace, self.name, self.api_version
        )
    }
}

/// The outcome: documents to serve, and the rejected resources with their errors.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Judged {
    pub accepted: BTreeMap<ObjectId, Document>,
    pub rejected: BTreeMap<ObjectId, Vec<FieldError>>,
}

/// The document coalmine reads from a cluster object: `apiVersion`, `kind`,
/// `metadata.name`, `metadata.namespace` and every top-level field but `status` and
/// `metadata` (so an unsupported one is still reported). Nothing that changes on every
/// write (`resourceVersion`, `managedFields`, status) is kept, so a status write never
/// looks like a change of configuration.
pub fn to_document_value(id: &ObjectId, object: &Value) -> Value {
    let mut doc = Map::new();
    doc.insert("apiVersion".into(), json!(id.api_version));
    doc.insert("kind".into(), json!(id.kind));
    let mut metadata = json!({"name": id.name, "namespace": id.namespace});
    // The Gateway API orders equally specific matches of two routes by age.
    if let Some(created) = object["metadata"].get("creationTimestamp") {
        metadata["creationTimestamp"] = created.clone();
    }
    doc.insert("metadata".into(), metadata);
    if let Some(fields) = object.as_object() {
        for (k, v) in fields {
            if !matches!(k.as_str(), "apiVersion" | "kind" | "metadata" | "status") {
                doc.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(doc)
}

/// Applies the rule of this module to `objects` (document values, see
/// [`to_document_value`]), with the namespaces' labels.
pub fn judge(
    objects: &BTreeMap<ObjectId, Value>,
    discovered: &Services,
    namespaces: &NamespaceLabels,
) -> Judged {
    let mut judged = Judged::default();
    let mut candidates: Vec<(ObjectId, Document)> = Vec::new();
    for (id, value) in objects {
        match ingest::parse_documents(&value.to_string()) {
            Ok(mut docs) if docs.len() == 1 => candidates.push((id.clone(), docs.remove(0))),
            Ok(_) => {
                let error = FieldError {
                    resource: id.to_string(),
                    field: String::new(),
                    message: "not one document".into(),
                    reason: None,
                };
                judged.rejected.insert(id.clone(), vec![error]);
            }
            Err(errors) => {
                judged.rejected.insert(id.clone(), errors.0);
            }
        }
    }
    while !candidates.is_empty() {
        let docs: Vec<Document> = candidates.iter().map(|(_, d)| d.clone()).collect();
        let Err(errors) = resource_set::build_config_with(&docs, discovered, namespaces) else {
            break;
        };
        let mut named: BTreeMap<ObjectId, Vec<FieldError>> = BTreeMap::new();
        for error in errors.0 {
            let matching = candidates
                .iter()
                .filter(|(_, d)| d.key.to_string() == error.resource);
            for (id, _) in matching {
                named.entry(id.clone()).or_default().push(error.clone());
            }
        }
        if named.is_empty() {
            // Errors that name no resource: nothing left can be trusted.
            for (id, _) in candidates.drain(..) {
                let error = FieldError {
                    resource: id.to_string(),
                    field: String::new(),
                    message: "the set of resources does not validate".into(),
                    reason: None,
                };
                judged.rejected.insert(id, vec![error]);
            }
            break;
        }
        candidates.retain(|(id, _)| !named.contains_key(id));
        judged.rejected.extend(named);
    }
    judged.accepted = candidates.into_iter().collect();
    judged
}

/// An object whose new version is rejected keeps its last accepted version served
/// (from `last`), when the set still validates with it: bad input changes nothing, and
/// a route edited to a Service not seen yet (watch events come one object at a time)
/// keeps sending traffic where it did. Each one kept gets a note in its errors. Objects
/// gone from the cluster are not kept, except a Secret a Gateway still names for TLS:
/// its listener keeps its last certificate (and the Gateway's status says the Secret
/// is gone) until the Gateway stops naming it.
pub fn keep_last_accepted(
    judged: &mut Judged,
    last: &BTreeMap<ObjectId, Document>,
    discovered: &Services,
    namespaces: &NamespaceLabels,
) {
    let mut kept: BTreeMap<ObjectId, Document> = judged
        .rejected
        .keys()
        .filter_map(|id| Some((id.clone(), last.get(id)?.clone())))
        .collect();
    let named = super::secrets::named_by_gateways(
        last.iter()
            .map(|(id, d)| (id.kind.as_str(), id.namespace.as_str(), &d.value)),
    );
    for (id, doc) in last {
        let gone = !judged.accepted.contains_key(id) && !judged.rejected.contains_key(id);
        let name = format!("{}/{}", id.namespace, id.name);
        if gone && super::secrets::is_secret(&id.api_version, &id.kind) && named.contains(&name) {
            kept.insert(id.clone(), doc.clone());
        }
    }
    while !kept.is_empty() {
        let docs: Vec<Document> = judged
            .accepted
            .values()
            .chain(kept.values())
            .cloned()
            .collect();
        let Err(errors) = resource_set::build_config_with(&docs, discovered, namespaces) else {
            break;
        };
        let before = kept.len();
        kept.retain(|_, d| !errors.0.iter().any(|e| e.resource == d.key.to_string()));
        if kept.len() == before {
            kept.clear(); // the set fails for another reason: keep nothing
        }
    }
    for (id, doc) in kept {
        if let Some(errors) = judged.rejected.get_mut(&id) {
            errors.push(FieldError {
                resource: id.to_string(),
                field: String::new(),
                message: "its last accepted version is still served".into(),
                reason: None,
            });
        }
        judged.accepted.insert(id, doc);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mk(kind: &str, name: &str, spec: Value) -> (ObjectId, Value) {
        let id = ObjectId {
            api_version: "networking.istio.io/v1".into(),
            kind: kind.into(),
            namespace: "default".into(),
            name: name.into(),
        };
        let object = json!({"metadata": {"name": name, "resourceVersion": "7"},
                            "spec": spec, "status": {"x": 1}});
        let value = to_document_value(&id, &object);
        (id, value)
    }

    fn entry(name: &str, host: &str, address: &str) -> (ObjectId, Value) {
        mk(
            "ServiceEntry",
            name,
            json!({"hosts": [host], "ports": [{"number": 80, "name": "http", "protocol": "HTTP"}],
                   "resolution": "STATIC", "endpoints": [{"address": address}]}),
        )
    }

    fn route(name: &str, host: &str) -> (ObjectId, Value) {
        mk(
            "VirtualService",
            name,
            json!({"hosts": [format!("{name}.example")],
                   "http": [{"route": [{"destination": {"host": host}}]}]}),
        )
    }

    fn names(ids: impl Iterator<Item = ObjectId>) -> Vec<String> {
        ids.map(|id| id.name).collect()
    }

    #[test]
    fn the_document_drops_status_and_volatile_metadata() {
        let (_, value) = route("web", "a.example");
        assert!(value.get("status").is_none());
        assert_eq!(
            value["metadata"],
            json!({"name": "web", "namespace": "default"})
        );
    }

    #[test]
    fn a_valid_set_is_accepted_whole() {
        let objects = BTreeMap::from([
            entry("a", "a.example", "10.0.0.1"),
            route("web", "a.example"),
        ]);
        let judged = judge(&objects, &Services::new(), &NamespaceLabels::new());
        assert_eq!(names(judged.accepted.into_keys()), ["a", "web"]);
        assert!(judged.rejected.is_empty());
    }

    #[test]
    fn an_invalid_resource_is_rejected_naming_the_field_and_the_rest_served() {
        let mut bad = route("bad", "a.example");
        bad.1["spec"]["http"][0]["route"][0]["weight"] = json!(500);
        let objects = BTreeMap::from([
            entry("a", "a.example", "10.0.0.1"),
            route("web", "a.example"),
            bad,
        ]);
        let judged = judge(&objects, &Services::new(), &NamespaceLabels::new());
        assert_eq!(names(judged.accepted.into_keys()), ["a", "web"]);
        let errors = judged.rejected.values().next().unwrap();
        assert_eq!(names(judged.rejected.keys().cloned()), ["bad"]);
        assert!(
            errors.iter().any(|e| e.field.contains("weight")),
            "{errors:?}"
        );
    }

    #[test]
    fn a_route_that_only_fails_through_a_rejected_entry_is_dropped_in_a_later_round() {
        let mut broken = entry("a", "a.example", "10.0.0.1");
        broken.1["spec"]["resolution"] = json!("SOMETIMES");
        let objects = BTreeMap::from([
            broken,
            route("web", "a.example"),
            entry("b", "b.example", "10.0.0.2"),
            route("other", "b.example"),
        ]);
        let judged = judge(&objects, &Services::new(), &NamespaceLabels::new());
        assert_eq!(names(judged.accepted.into_keys()), ["b", "other"]);
        assert_eq!(names(judged.rejected.keys().cloned()), ["a", "web"]);
        let web = judged
            .rejected
            .iter()
            .find(|(id, _)| id.name == "web")
            .unwrap()
            .1;
        assert!(
            web.iter().any(|e| e.message.contains("a.example")),
            "{web:?}"
        );
    }

    #[test]
    fn a_rejected_edit_keeps_the_last_accepted_version_served() {
        let first = BTreeMap::from([
            entry("a", "a.example", "10.0.0.1"),
            route("web", "a.example"),
        ]);
        let judged = judge(&first, &Services::new(), &NamespaceLabels::new());
        // The route moves to a host not known yet (its Service is on its way).
        let second = BTreeMap::from([
            entry("a", "a.example", "10.0.0.1"),
            route("web", "b.example"),
        ]);
        let mut again = judge(&second, &Services::new(), &NamespaceLabels::new());
        keep_last_accepted(
            &mut again,
            &judged.accepted,
            &Services::new(),
            &NamespaceLabels::new(),
        );
        let served = &again.accepted[&route("web", "a.example").0];
        assert_eq!(served, &judged.accepted[&route("web", "a.example").0]);
        let errors = &again.rejected[&route("web", "a.example").0];
        assert!(
            errors.iter().any(|e| e.message.contains("b.example")),
            "{errors:?}"
        );
        assert!(errors.iter().any(|e| e.message.contains("last accepted")));
        // A route that was never accepted has nothing to keep.
        let mut fresh = judge(&second, &Services::new(), &NamespaceLabels::new());
        keep_last_accepted(
            &mut fresh,
            &BTreeMap::new(),
            &Services::new(),
            &NamespaceLabels::new(),
        );
        assert_eq!(names(fresh.accepted.into_keys()), ["a"]);
    }

    #[test]
    fn an_unsupported_field_is_rejected() {
        let mut bad = route("web", "a.example");
        bad.1["spec"]["tcp"] = json!([]);
        let objects = BTreeMap::from([entry("a", "a.example", "10.0.0.1"), bad]);
        let judged = judge(&objects, &Services::new(), &NamespaceLabels::new());
        assert_eq!(names(judged.rejected.keys().cloned()), ["web"]);
        assert_eq!(names(judged.accepted.into_keys()), ["a"]);
    }
}
