//! The way back: a model route match written as a Gateway API HTTPRoute match (what a
//! release writes into a target route's A/B rule), or the field an HTTPRoute cannot
//! express.

use serde_json::{json, Map, Value};

use crate::model::{HeaderMatch, RouteMatch, StringMatch};

/// A rollout match as an HTTPRoute match, or what of it an HTTPRoute cannot express
/// (an `authority` or `withoutHeaders` condition, a header, query or method that is
/// not an exact or regex match), named by its field.
pub fn match_json(m: &RouteMatch) -> std::result::Result<Value, String> {
    let mut out = Map::new();
    if m.authority.is_some() {
        return Err("authority: an HTTPRoute match has no authority condition".into());
    }
    if !m.without_headers.is_empty() {
        return Err("withoutHeaders: an HTTPRoute match has no such condition".into());
    }
    if let Some(uri) = &m.uri {
        let (kind, value) = match uri {
            StringMatch::Exact(s) => ("Exact", s),
            StringMatch::Prefix(s) | StringMatch::PathPrefix(s) => ("PathPrefix", s),
            StringMatch::Regex(s) => ("RegularExpression", s),
        };
        out.insert("path".into(), json!({ "type": kind, "value": value }));
    }
    if let Some(method) = &m.method {
        match method {
            StringMatch::Exact(s) => out.insert("method".into(), Value::String(s.clone())),
            _ => return Err("method: an HTTPRoute matches a method exactly".into()),
        };
    }
    let mut headers = Vec::new();
    for (name, h) in &m.headers {
        let (kind, value) = match h {
            HeaderMatch::Present => ("RegularExpression", ".*"),
            HeaderMatch::Value(s) => named(s).ok_or_else(|| {
                format!("headers.{name}: an HTTPRoute matches a header exactly or by regex")
            })?,
        };
        headers.push(json!({ "name": name, "type": kind, "value": value }));
    }
    if !headers.is_empty() {
        out.insert("headers".into(), Value::Array(headers));
    }
    let mut params = Vec::new();
    for (name, s) in &m.query_params {
        let (kind, value) = named(s).ok_or_else(|| {
            format!(
                "queryParams.{name}: an HTTPRoute matches a query parameter exactly or by regex"
            )
        })?;
        params.push(json!({ "name": name, "type": kind, "value": value }));
    }
    if !params.is_empty() {
        out.insert("queryParams".into(), Value::Array(params));
    }
    Ok(Value::Object(out))
}

/// The Gateway API match type and value of a header or query condition.
fn named(s: &StringMatch) -> Option<(&'static str, &str)> {
    match s {
        StringMatch::Exact(v) => Some(("Exact", v)),
        StringMatch::Regex(v) => Some(("RegularExpression", v)),
        StringMatch::Prefix(_) | StringMatch::PathPrefix(_) => None,
    }
}
