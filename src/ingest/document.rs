//! Splitting YAML or JSON text into Kubernetes-shaped documents and checking their
//! envelope (`apiVersion`, `kind`, `metadata`); the `spec` is read elsewhere.

use serde_json::Value;

use super::api::{self, Api};
use super::error::{Errors, FieldError, Report, Result};
use super::walk::{Fields, Obj};
use crate::model::{Kind, ResourceKey};

/// A Kubernetes-shaped document as stored: its key and the whole document as JSON.
///
/// `value` has `metadata.namespace` filled in and no `status`.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub key: ResourceKey,
    pub api_version: String,
    pub value: Value,
}

/// Splits YAML (multi-document, `---`) or JSON (one object, several objects in a row,
/// a JSON array, or a `List` kind with `items`) into documents.
///
/// Checks `apiVersion`, `kind` and `metadata.name`, and fills `metadata.namespace`
/// with `default` when absent. Empty documents are skipped. Documents are numbered
/// from 1 in the order they appear (the items of an array or `List` each count as
/// one), and errors name a document by that number until it has a kind and a name.
pub fn parse_documents(text: &str) -> Result<Vec<Document>> {
    let mut errors = Vec::new();
    let mut documents = Vec::new();
    let values = split(text, &mut errors);
    // Where each resource was first defined: the same one twice is an error, never
    // "the last wins".
    let mut first: std::collections::BTreeMap<String, usize> = Default::default();
    for (index, value) in values.into_iter().enumerate() {
        if let Some(document) = try_document(value, index + 1, &mut errors) {
            let key = document.key.to_string();
            match first.get(&key) {
                Some(earlier) => errors.push(FieldError {
                    resource: key,
                    field: "metadata.name".into(),
                    message: format!(
                        "another document has the same kind, namespace and name \
                         (documents {earlier} and {})",
                        index + 1
                    ),
                    reason: None,
                }),
                None => {
                    first.insert(key, index + 1);
                    documents.push(document);
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(documents)
    } else {
        Err(Errors(errors))
    }
}

/// Every non-empty document in `text`, arrays and `List`s flattened into their items.
///
/// Text that starts like JSON is read as a stream of JSON values; should that fail,
/// it may still be YAML in flow style, and only when both fail is the JSON error
/// reported.
fn split(text: &str, errors: &mut Vec<FieldError>) -> Vec<Value> {
    let trimmed = text.trim_start();
    let looks_like_json = trimmed.starts_with('{') || trimmed.starts_with('[');
    let result = if looks_like_json {
        split_json(text).or_else(|json_error| split_yaml(text).map_err(|_| json_error))
    } else {
        split_yaml(text)
    };
    match result {
        Ok(values) => values,
        Err((document, message)) => {
            errors.push(FieldError {
                resource: format!("document {document}"),
                field: String::new(),
                message,
                reason: None,
            });
            Vec::new()
        }
    }
}

/// The values read, or the 1-based document a syntax error is in and the error.
type Split = std::result::Result<Vec<Value>, (usize, String)>;

fn split_json(text: &str) -> Split {
    let mut values = Vec::new();
    for value in serde_json::Deserializer::from_str(text).into_iter::<Value>() {
        match value {
            Ok(value) => flatten(value, &mut values),
            Err(e) => return Err((values.len() + 1, format!("invalid JSON: {e}"))),
        }
    }
    Ok(values)
}

fn split_yaml(text: &str) -> Split {
    match crate::yaml::documents(text) {
        Ok(docs) => {
            let mut values = Vec::new();
            docs.into_iter().for_each(|doc| flatten(doc, &mut values));
            Ok(values)
        }
        Err(e) => Err((e.document.unwrap_or(1), format!("invalid YAML: {e}"))),
    }
}

fn flatten(value: Value, out: &mut Vec<Value>) {
    match value {
        Value::Null => {}
        Value::Array(items) => items.into_iter().for_each(|item| flatten(item, out)),
        Value::Object(mut map) if map.get("kind").and_then(Value::as_str) == Some("List") => {
            match map.remove("items") {
                Some(items @ Value::Array(_)) => flatten(items, out),
                Some(Value::Null) | None => {}
                Some(other) => out.push(other),
            }
        }
        other => out.push(other),
    }
}

const ENVELOPE: Fields = Fields::known(&["apiVersion", "kind", "metadata", "spec", "status"]);
/// A Secret has no spec: its contents sit at the top (read by [`super::try_secret`]).
const SECRET_ENVELOPE: Fields = Fields::known(&[
    "apiVersion",
    "kind",
    "metadata",
    "type",
    "data",
    "stringData",
    "immutable",
]);

/// Checks the envelope of one document, naming it by its key once kind and name read.
fn try_document(mut value: Value, number: usize, errors: &mut Vec<FieldError>) -> Option<Document> {
    let mut key_report = Report::new("");
    let (kind, key) = try_key(&value, &mut key_report);
    let mut report = match &key {
        Some(key) => Report::new(key.to_string()),
        None => Report::new(format!("document {number}")),
    };
    let secret = kind == Some(Kind::Secret);
    let fields = if secret { SECRET_ENVELOPE } else { ENVELOPE };
    let envelope = Obj::new(&mut report, "", &value, fields);
    report.adopt(key_report);
    let api_version = envelope.and_then(|envelope| try_api_version(envelope, kind, &mut report));
    if let Some(envelope) = envelope.filter(|_| !secret) {
        match envelope.get("spec") {
            None => report.push("spec", "required"),
            Some(Value::Object(_)) => {}
            Some(_) => report.push("spec", "must be an object"),
        }
    }
    let clean = report.is_clean();
    errors.extend(report.errors);
    let (key, api_version) = (key?, api_version?);
    if !clean {
        return None;
    }
    let map = value.as_object_mut()?;
    map.remove("status");
    map.get_mut("metadata")?
        .as_object_mut()?
        .insert("namespace".into(), Value::String(key.namespace.clone()));
    Some(Document {
        key,
        api_version,
        value,
    })
}

/// The document's kind and key (the kind even when the name is wrong, so that the
/// apiVersion is checked against its group); errors here carry no resource yet (the
/// caller names it).
fn try_key(value: &Value, r: &mut Report) -> (Option<Kind>, Option<ResourceKey>) {
    let Some(envelope) = Obj::any(value) else {
        return (None, None);
    };
    let api_version = envelope.get("apiVersion").and_then(Value::as_str);
    let kind = envelope
        .required_string(r, "kind")
        .and_then(|kind| try_kind(&kind, api_version, r));
    // Only name and namespace matter; labels, annotations, uid and the like are ignored.
    let metadata = match envelope.get("metadata") {
        None => {
            r.push("metadata", "required");
            return (kind, None);
        }
        Some(metadata) => Obj::any(metadata).map(|m| m.with_path("metadata")),
    };
    let Some(metadata) = metadata else {
        r.push("metadata", "must be an object");
        return (kind, None);
    };
    let name = metadata
        .required_string(r, "name")
        .filter(|name| check_name(r, "metadata.name", name, NameRule::Subdomain));
    let namespace = match metadata.string(r, "namespace") {
        None => Some("default".to_string()),
        Some(ns) if ns.is_empty() => Some("default".to_string()),
        Some(ns) => Some(ns).filter(|ns| check_name(r, "metadata.namespace", ns, NameRule::Label)),
    };
    let key = match (kind, namespace, name) {
        (Some(kind), Some(namespace), Some(name)) => Some(ResourceKey::new(kind, namespace, name)),
        _ => None,
    };
    (kind, key)
}

/// The kind a document's `kind` names: first among the kinds of the group its
/// apiVersion names (so `Gateway` is the Gateway API's in that group), else any kind
/// of that name (Istio's `Gateway`), whose group [`try_api_version`] then checks.
///
/// A kind coalmine does not read is reported as such, with the kinds of the group the
/// apiVersion names when it names a known one; the apiVersion is not blamed for it.
fn try_kind(kind: &str, api_version: Option<&str>, r: &mut Report) -> Option<Kind> {
    let group = api_version.and_then(Api::named_by);
    let in_group = |k: &Kind| group.is_some_and(|api| Api::of(*k) == api);
    let found = Kind::ALL
        .into_iter()
        .filter(|k| k.document_kind() == kind)
        .max_by_key(|k| (in_group(k), *k != Kind::KubernetesGateway));
    if found.is_some() {
        return found;
    }
    let message = match group {
        Some(api) => format!(
            "unsupported kind {kind:?} of {} (supported: {})",
            api.group,
            api.kinds().join(", ")
        ),
        None => {
            let mut names: Vec<&str> = Kind::ALL
                .into_iter()
                .filter(|k| *k != Kind::KubernetesGateway)
                .map(Kind::document_kind)
                .collect();
            let last = names.pop().expect("kinds are listed");
            format!(
                "unsupported kind {kind:?} (expected {} or {last})",
                names.join(", ")
            )
        }
    };
    r.push("kind", message);
    None
}

/// What a Kubernetes name may look like.
#[derive(Clone, Copy, PartialEq)]
enum NameRule {
    /// An object name: a DNS subdomain, up to 253 characters, dots allowed.
    Subdomain,
    /// A namespace: a DNS label, up to 63 characters, no dots.
    Label,
}

/// Checks a Kubernetes name: lower-case letters, digits and `-` (and `.` in a
/// subdomain), starting and ending with a letter or digit.
fn check_name(r: &mut Report, field: &str, name: &str, rule: NameRule) -> bool {
    let (max, dots) = match rule {
        NameRule::Subdomain => (253, true),
        NameRule::Label => (63, false),
    };
    let allowed =
        |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || (dots && c == '.');
    let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    let valid = name.len() <= max
        && name.chars().all(allowed)
        && edge_ok(name.chars().next())
        && edge_ok(name.chars().last());
    if !valid {
        r.push(
            field,
            format!(
                "{name:?} is not a valid name: lower-case letters, digits and '-'{}, \
                 starting and ending with a letter or digit, at most {max} characters",
                if dots { " or '.'" } else { "" }
            ),
        );
    }
    valid
}

/// Each kind takes the versions of its group ([`Api::of`]). Without a kind (missing,
/// or one coalmine does not read, which `kind` reports), the apiVersion is only wrong
/// when it names no known group or a version that group does not have.
fn try_api_version(envelope: Obj<'_, '_>, kind: Option<Kind>, r: &mut Report) -> Option<String> {
    let api_version = envelope.required_string(r, "apiVersion")?;
    let api = kind.map(Api::of).or_else(|| Api::named_by(&api_version));
    let expected = match api {
        Some(api) if api.accepts(&api_version) => return Some(api_version),
        Some(api) => api.expected(),
        None => {
            let groups: Vec<&str> = api::ALL
                .iter()
                .map(|api| match api.group {
                    "" => "v1 (Secret)",
                    group => group,
                })
                .collect();
            let (last, rest) = groups.split_last().expect("groups are listed");
            format!("a version of {} or {last}", rest.join(", "))
        }
    };
    r.push(
        "apiVersion",
        format!("unsupported apiVersion {api_version:?} (expected {expected})"),
    );
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(field, message)` of each error of one document.
    fn errors_of(api_version: &str, kind: &str, name: &str) -> Vec<(String, String)> {
        let text = format!(
            "apiVersion: {api_version}\nkind: {kind}\nmetadata: {{name: {name}}}\nspec: {{}}\n"
        );
        let errors = parse_documents(&text).unwrap_err();
        errors.0.into_iter().map(|e| (e.field, e.message)).collect()
    }

    fn kind_error(message: &str) -> Vec<(String, String)> {
        vec![("kind".into(), message.into())]
    }

    #[test]
    fn an_unknown_kind_of_a_known_group_names_only_the_kind() {
        assert_eq!(
            errors_of("gateway.networking.k8s.io/v1", "TCPRoute", "a"),
            kind_error(
                "unsupported kind \"TCPRoute\" of gateway.networking.k8s.io \
                 (supported: Gateway, HTTPRoute, ReferenceGrant, GRPCRoute)"
            )
        );
        assert_eq!(
            errors_of("networking.istio.io/v1", "Foo", "a"),
            kind_error(
                "unsupported kind \"Foo\" of networking.istio.io \
                 (supported: Gateway, VirtualService, DestinationRule, ServiceEntry)"
            )
        );
    }

    #[test]
    fn an_unknown_kind_with_a_wrong_api_version_names_both() {
        let all_kinds = "unsupported kind \"Deployment\" (expected Gateway, VirtualService, \
                         DestinationRule, ServiceEntry, Rollout, HTTPRoute, ReferenceGrant, \
                         GRPCRoute, Secret, RequestAuthentication, AuthorizationPolicy, \
                         MetricTemplate or AlertProvider)";
        let any_group = "(expected a version of networking.istio.io, security.istio.io, \
                         gateway.networking.k8s.io, coalmine.dev, flagger.app or v1 (Secret))";
        assert_eq!(
            errors_of("apps/v1", "Deployment", "a"),
            vec![
                ("kind".into(), all_kinds.into()),
                (
                    "apiVersion".into(),
                    format!("unsupported apiVersion \"apps/v1\" {any_group}")
                ),
            ]
        );
        assert_eq!(
            errors_of("v2", "Deployment", "a")[1].1,
            format!("unsupported apiVersion \"v2\" {any_group}")
        );
        // A known group with a version it does not have.
        assert_eq!(
            errors_of("gateway.networking.k8s.io/v9", "TCPRoute", "a")[1].1,
            "unsupported apiVersion \"gateway.networking.k8s.io/v9\" \
             (expected gateway.networking.k8s.io/v1 or v1beta1)"
        );
    }

    #[test]
    fn a_known_kind_in_another_group_blames_the_api_version() {
        assert_eq!(
            errors_of("networking.istio.io/v1", "HTTPRoute", "a"),
            vec![(
                "apiVersion".into(),
                "unsupported apiVersion \"networking.istio.io/v1\" \
                 (expected gateway.networking.k8s.io/v1 or v1beta1)"
                    .into()
            )]
        );
    }

    #[test]
    fn a_bad_name_does_not_make_the_api_version_wrong() {
        let errors = errors_of("gateway.networking.k8s.io/v1", "HTTPRoute", "Bad_Name");
        let fields: Vec<&str> = errors.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(fields, ["metadata.name"]);
    }

    #[test]
    fn gateway_is_told_apart_by_its_group() {
        let doc = |api_version: &str| {
            let text = format!(
                "apiVersion: {api_version}\nkind: Gateway\nmetadata: {{name: a}}\nspec: {{}}\n"
            );
            parse_documents(&text).unwrap()[0].key.kind
        };
        assert_eq!(doc("gateway.networking.k8s.io/v1"), Kind::KubernetesGateway);
        assert_eq!(doc("networking.istio.io/v1beta1"), Kind::Gateway);
    }
}
