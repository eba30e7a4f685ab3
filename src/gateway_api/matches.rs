//! The `matches[]` of an HTTPRoute rule into [`RouteMatch`]es: path, headers, query
//! parameters and method.
//!
//! `PathPrefix` becomes a [`StringMatch::PathPrefix`] of whole path elements with any
//! trailing `/` removed, so `/api` and `/api/` both match `/api` and `/api/pets` but
//! not `/apis`; `/` is every path. Of several header or query conditions with one name
//! only the first counts, as the Gateway API requires.

use serde_json::Value;

use crate::ingest::{check_regex, is_header_name, Fields, Obj, Report};
use crate::model::{HeaderMatch, RouteMatch, StringMatch};

const MATCH: Fields = Fields::known(&["path", "headers", "queryParams", "method"]);
const PATH: Fields = Fields::known(&["type", "value"]);
const NAMED: Fields = Fields::known(&["type", "name", "value"]);
const METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

/// Reads `matches[]` of the rule at `rule`; absent or empty means "every request".
pub(super) fn try_matches(rule: Obj<'_, '_>, r: &mut Report) -> Vec<RouteMatch> {
    let mut out = Vec::new();
    for (path, item) in rule.list(r, "matches") {
        let Some(m) = Obj::new(r, &path, item, MATCH) else {
            continue;
        };
        let uri = match m.get("path") {
            Some(value) => try_path(&m.at("path"), value, r),
            None => Some(StringMatch::Prefix("/".into())),
        };
        let method = m.string(r, "method");
        if let Some(method) = &method {
            if !METHODS.contains(&method.as_str()) {
                let message = format!("{method:?} is not an HTTP method ({})", METHODS.join(", "));
                r.push(m.at("method"), message);
            }
        }
        let mut out_match = RouteMatch {
            uri,
            method: method.map(StringMatch::Exact),
            ..RouteMatch::default()
        };
        for (name, matcher) in try_named(m, "headers", r) {
            let lower = name.to_ascii_lowercase();
            let matcher = HeaderMatch::Value(matcher);
            out_match.headers.entry(lower).or_insert(matcher);
        }
        for (name, matcher) in try_named(m, "queryParams", r) {
            out_match.query_params.entry(name).or_insert(matcher);
        }
        out.push(out_match);
    }
    out
}

/// `{type: Exact | PathPrefix | RegularExpression, value}`; PathPrefix and `/` are
/// the defaults.
fn try_path(path: &str, value: &Value, r: &mut Report) -> Option<StringMatch> {
    let p = Obj::new(r, path, value, PATH)?;
    let value = p.string(r, "value").unwrap_or_else(|| "/".into());
    let kind = p.string(r, "type").unwrap_or_else(|| "PathPrefix".into());
    if kind != "RegularExpression" && !value.starts_with('/') {
        r.push(p.at("value"), "must start with /");
        return None;
    }
    match kind.as_str() {
        "Exact" => Some(StringMatch::Exact(value)),
        "PathPrefix" => {
            let trimmed = value.trim_end_matches('/');
            Some(match trimmed {
                "" => StringMatch::Prefix("/".into()),
                _ => StringMatch::PathPrefix(trimmed.to_string()),
            })
        }
        "RegularExpression" => {
            check_regex(&p.at("value"), &value, r).then_some(StringMatch::Regex(value))
        }
        other => {
            let message =
                format!("{other:?} is not supported (Exact, PathPrefix or RegularExpression)");
            r.push(p.at("type"), message);
            None
        }
    }
}

/// `[{type: Exact | RegularExpression, name, value}]` as (name, match), in order.
pub(super) fn try_named(m: Obj<'_, '_>, key: &str, r: &mut Report) -> Vec<(String, StringMatch)> {
    let mut out = Vec::new();
    for (path, item) in m.list(r, key) {
        let Some(item) = Obj::new(r, &path, item, NAMED) else {
            continue;
        };
        let name = item.required_string(r, "name");
        if let Some(name) = &name {
            if !is_header_name(name) {
                r.push(item.at("name"), format!("{name:?} is not a valid name"));
            }
        }
        let value = item.string(r, "value");
        if !item.has("value") {
            r.push(item.at("value"), "required");
        }
        let matcher = match item.string(r, "type").as_deref() {
            None | Some("Exact") => value.map(StringMatch::Exact),
            Some("RegularExpression") => value
                .filter(|v| check_regex(&item.at("value"), v, r))
                .map(StringMatch::Regex),
            Some(other) => {
                let message = format!("{other:?} is not supported (Exact or RegularExpression)");
                r.push(item.at("type"), message);
                None
            }
        };
        if let (Some(name), Some(matcher)) = (name, matcher) {
            out.push((name, matcher));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(rule: Value) -> (Vec<RouteMatch>, Vec<(String, String)>) {
        let mut r = Report::new("HTTPRoute default/web");
        let fields = Fields::known(&["matches"]);
        let rule = Obj::new(&mut r, "spec.rules[0]", &rule, fields).unwrap();
        let matches = try_matches(rule, &mut r);
        let errors = r.errors.into_iter().map(|e| (e.field, e.message)).collect();
        (matches, errors)
    }

    #[test]
    fn reads_every_condition() {
        let (matches, errors) = read(json!({"matches": [
            {"path": {"type": "Exact", "value": "/login"}, "method": "POST",
             "headers": [{"name": "X-Canary", "value": "true"},
                         {"type": "RegularExpression", "name": "x-user", "value": "a.*"},
                         {"name": "x-canary", "value": "ignored"}],
             "queryParams": [{"name": "v", "value": "2"}]},
            {"path": {"value": "/api/"}},
            {"headers": [{"name": "x-a", "value": "b"}]}
        ]}));
        assert_eq!(errors, vec![]);
        let m = &matches[0];
        assert_eq!(m.uri, Some(StringMatch::Exact("/login".into())));
        assert_eq!(m.method, Some(StringMatch::Exact("POST".into())));
        let exact = |v: &str| HeaderMatch::Value(StringMatch::Exact(v.into()));
        assert_eq!(m.headers["x-canary"], exact("true"));
        assert_eq!(
            m.headers["x-user"],
            HeaderMatch::Value(StringMatch::Regex("a.*".into()))
        );
        assert_eq!(m.query_params["v"], StringMatch::Exact("2".into()));
        assert_eq!(matches[1].uri, Some(StringMatch::PathPrefix("/api".into())));
        assert_eq!(matches[2].uri, Some(StringMatch::Prefix("/".into())));
    }

    #[test]
    fn names_bad_matches() {
        let (_, errors) = read(json!({"matches": [
            {"path": {"type": "Prefix", "value": "/a"}, "method": "FETCH"},
            {"path": {"value": "api"}, "headers": [{"name": "x a", "value": "1"}]},
            {"queryParams": [{"type": "RegularExpression", "name": "q", "value": "("}],
             "extra": true}
        ]}));
        let fields: Vec<&str> = errors.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            vec![
                "spec.rules[0].matches[0].path.type",
                "spec.rules[0].matches[0].method",
                "spec.rules[0].matches[1].path.value",
                "spec.rules[0].matches[1].headers[0].name",
                "spec.rules[0].matches[2].extra",
                "spec.rules[0].matches[2].queryParams[0].value",
            ]
        );
    }
}
