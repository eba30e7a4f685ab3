//! Splitting YAML or JSON text into Kubernetes-shaped documents and checking their
//! envelope (`apiVersion`, `kind`, `metadata`); the `spec` is read elsewhere.

use serde_json::Value;

use super::api::{Api, GATEWAY_API};
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

/// Checks the envelope of one document, naming it by its key once kind and name read.
fn try_document(mut value: Value, number: usize, errors: &mut Vec<FieldError>) -> Option<Document> {
    let mut key_report = Report::new("");
    let key = try_key(&value, &mut key_report);
    let mut report = match &key {
        Some(key) => Report::new(key.to_string()),
        None => Report::new(format!("document {number}")),
    };
    let envelope = Obj::new(&mut report, "", &value, ENVELOPE);
    report.adopt(key_report);
    let kind = key.as_ref().map(|key| key.kind);
    let api_version = envelope.and_then(|envelope| try_api_version(envelope, kind, &mut report));
    if let Some(envelope) = envelope {
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

/// The document's key; errors here carry no resource yet (the caller names it).
fn try_key(value: &Value, r: &mut Report) -> Option<ResourceKey> {
    let envelope = Obj::any(value)?;
    let api_version = envelope.get("apiVersion").and_then(Value::as_str);
    let kind = envelope
        .required_string(r, "kind")
        .and_then(|kind| try_kind(&kind, api_version, r));
    // Only name and namespace matter; labels, annotations, uid and the like are ignored.
    let metadata = match envelope.get("metadata") {
        None => {
            r.push("metadata", "required");
            return None;
        }
        Some(metadata) => Obj::any(metadata).map(|m| m.with_path("metadata")),
    };
    let Some(metadata) = metadata else {
        r.push("metadata", "must be an object");
        return None;
    };
    let name = metadata
        .required_string(r, "name")
        .filter(|name| check_name(r, "metadata.name", name, NameRule::Subdomain));
    let namespace = match metadata.string(r, "namespace") {
        None => Some("default".to_string()),
        Some(ns) if ns.is_empty() => Some("default".to_string()),
        Some(ns) => Some(ns).filter(|ns| check_name(r, "metadata.namespace", ns, NameRule::Label)),
    };
    Some(ResourceKey::new(kind?, namespace?, name?))
}

/// The kind a document's `kind` names: `Gateway` is the Gateway API's when its
/// apiVersion is in [`GATEWAY_API`]'s group, else Istio's.
fn try_kind(kind: &str, api_version: Option<&str>, r: &mut Report) -> Option<Kind> {
    let group = api_version.and_then(|v| v.split_once('/')).map(|(g, _)| g);
    if kind == Kind::KubernetesGateway.document_kind() && group == Some(GATEWAY_API.group) {
        return Some(Kind::KubernetesGateway);
    }
    let mut names: Vec<&str> = Vec::new();
    for k in Kind::ALL {
        if k == Kind::KubernetesGateway {
            continue;
        }
        if k.document_kind() == kind {
            return Some(k);
        }
        names.push(k.document_kind());
    }
    let (last, rest) = names.split_last().expect("kinds are listed");
    r.push(
        "kind",
        format!(
            "unsupported kind {kind:?} (expected {} or {last})",
            rest.join(", ")
        ),
    );
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

/// Each kind takes the versions of its group ([`Api::of`]); without a kind, Istio's.
fn try_api_version(envelope: Obj<'_, '_>, kind: Option<Kind>, r: &mut Report) -> Option<String> {
    let api_version = envelope.required_string(r, "apiVersion")?;
    let api = kind.map_or(super::api::ISTIO, Api::of);
    if api.accepts(&api_version) {
        return Some(api_version);
    }
    r.push(
        "apiVersion",
        format!(
            "unsupported apiVersion {api_version:?} (expected {})",
            api.expected()
        ),
    );
    None
}
