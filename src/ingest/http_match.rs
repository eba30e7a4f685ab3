//! The `match[]` of a VirtualService HTTP route, and string matches with RE2 regexes.

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;

use serde_json::Value;

use super::error::Report;
use super::walk::{Fields, Obj};
use crate::model::{ClaimMatch, HeaderMatch, RouteMatch, StringMatch};

const MATCH: Fields = Fields {
    known: &[
        "name",
        "uri",
        "method",
        "authority",
        "headers",
        "withoutHeaders",
        "queryParams",
    ],
    unsupported: &[
        "scheme",
        "port",
        "sourceLabels",
        "gateways",
        "sourceNamespace",
        "ignoreUriCase",
        "statPrefix",
    ],
};
const STRING_MATCH: Fields = Fields::known(&["exact", "prefix", "regex"]);

/// Reads `match[]` of the route at `route`; absent means "every request".
pub(crate) fn try_matches(route: Obj<'_, '_>, r: &mut Report) -> Vec<RouteMatch> {
    let mut out = Vec::new();
    for (path, item) in route.list(r, "match") {
        let Some(m) = Obj::new(r, &path, item, MATCH) else {
            continue;
        };
        let string_match = |r: &mut Report, key: &str| {
            m.get(key)
                .and_then(|value| try_string_match(&m.at(key), value, r))
        };
        let uri = string_match(r, "uri");
        let method = string_match(r, "method");
        let authority = string_match(r, "authority");
        let mut query_params = BTreeMap::new();
        for (path, name, value) in m.entries(r, "queryParams") {
            if let Some(matcher) = try_string_match(&path, value, r) {
                query_params.insert(name.to_string(), matcher);
            }
        }
        let mut claims = Vec::new();
        out.push(RouteMatch {
            name: m.string(r, "name"),
            uri,
            method,
            authority,
            headers: try_header_matches(m, "headers", &mut claims, r),
            without_headers: try_header_matches(m, "withoutHeaders", &mut claims, r),
            query_params,
            claims,
            grpc: None,
        });
    }
    out
}

/// Header name (lower-cased) to condition; `{}` means the header is present.
/// `@request.auth.claims.NAME` keys go to `claims` instead (inverted under
/// `withoutHeaders`).
fn try_header_matches(
    m: Obj<'_, '_>,
    key: &str,
    claims: &mut Vec<ClaimMatch>,
    r: &mut Report,
) -> BTreeMap<String, HeaderMatch> {
    let mut out = BTreeMap::new();
    for (path, name, value) in m.entries(r, key) {
        let matcher = match value {
            Value::Object(map) if map.values().all(Value::is_null) => Some(HeaderMatch::Present),
            _ => try_string_match(&path, value, r).map(HeaderMatch::Value),
        };
        if let Some(claim) = name.strip_prefix(CLAIM_PREFIX) {
            match claim_path(claim) {
                Some(path) => claims.extend(matcher.map(|matcher| ClaimMatch {
                    path,
                    matcher,
                    invert: key == "withoutHeaders",
                })),
                None => r.push(
                    &path,
                    "is not a claim: @request.auth.claims.NAME, .A.B or .[A][B]",
                ),
            }
            continue;
        }
        let lower = name.to_ascii_lowercase();
        if !is_header_name(&lower) {
            r.push(&path, "is not a valid header name");
            continue;
        }
        match out.entry(lower) {
            Entry::Occupied(e) => r.push(&path, format!("header {:?} is matched twice", e.key())),
            Entry::Vacant(e) => {
                if let Some(matcher) = matcher {
                    e.insert(matcher);
                }
            }
        }
    }
    out
}

/// Istio's header key for a claim of the request's verified JWT.
const CLAIM_PREFIX: &str = "@request.auth.claims.";

/// `name`, `a.b` (nested) or `[a.b][c]` (names that hold dots): the claim's path.
fn claim_path(claim: &str) -> Option<Vec<String>> {
    let path: Vec<String> = match claim.strip_prefix('[').and_then(|c| c.strip_suffix(']')) {
        Some(inner) => inner.split("][").map(str::to_string).collect(),
        None => claim.split('.').map(str::to_string).collect(),
    };
    let valid = path
        .iter()
        .all(|p| !p.is_empty() && !p.contains(['[', ']']));
    valid.then_some(path)
}

/// An HTTP header name: one or more token characters (RFC 9110).
pub(crate) fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Reads `{exact|prefix|regex: "..."}`, exactly one of them; a regex must compile.
pub(crate) fn try_string_match(path: &str, value: &Value, r: &mut Report) -> Option<StringMatch> {
    let m = Obj::new(r, path, value, STRING_MATCH)?;
    let exact = m.string(r, "exact").map(StringMatch::Exact);
    let prefix = m.string(r, "prefix").map(StringMatch::Prefix);
    let regex = m.string(r, "regex");
    if let Some(regex) = &regex {
        check_regex(&m.at("regex"), regex, r);
    }
    let mut set: Vec<StringMatch> = [exact, prefix, regex.map(StringMatch::Regex)]
        .into_iter()
        .flatten()
        .collect();
    let present = STRING_MATCH.known.iter().filter(|k| m.has(k)).count();
    match present {
        0 => r.push(path, "one of exact, prefix or regex is required"),
        1 => return set.pop(),
        _ => r.push(path, "only one of exact, prefix or regex may be set"),
    }
    None
}

/// Reports `regex` at `path` unless it compiles as RE2 syntax.
pub(crate) fn check_regex(path: &str, regex: &str, r: &mut Report) -> bool {
    match regex::Regex::new(regex) {
        Ok(_) => true,
        Err(e) => {
            let text = e.to_string();
            let reason = text
                .lines()
                .rev()
                .find_map(|line| line.strip_prefix("error: "))
                .unwrap_or(text.lines().next().unwrap_or_default());
            r.push(path, format!("invalid regex {regex:?}: {reason}"));
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(route: Value) -> (Vec<RouteMatch>, Vec<(String, String)>) {
        let mut r = Report::new("VirtualService default/web");
        let route = Obj::new(&mut r, "spec.http[0]", &route, Fields::known(&["match"])).unwrap();
        let matches = try_matches(route, &mut r);
        let errors = r.errors.into_iter().map(|e| (e.field, e.message)).collect();
        (matches, errors)
    }

    #[test]
    fn reads_every_condition() {
        let (matches, errors) = read(json!({"match": [{
            "name": "canary",
            "uri": {"prefix": "/api"},
            "method": {"exact": "GET"},
            "authority": {"regex": "web\\..*"},
            "headers": {"X-Canary": {"exact": "true"}, "x-user": {}},
            "withoutHeaders": {"x-debug": {"prefix": "1"}},
            "queryParams": {"v": {"exact": "2"}}
        }]}));
        assert_eq!(errors, vec![]);
        let m = &matches[0];
        assert_eq!(m.name.as_deref(), Some("canary"));
        assert_eq!(m.uri, Some(StringMatch::Prefix("/api".into())));
        assert_eq!(m.method, Some(StringMatch::Exact("GET".into())));
        assert_eq!(m.authority, Some(StringMatch::Regex("web\\..*".into())));
        assert_eq!(
            m.headers["x-canary"],
            HeaderMatch::Value(StringMatch::Exact("true".into()))
        );
        assert_eq!(m.headers["x-user"], HeaderMatch::Present);
        assert_eq!(
            m.without_headers["x-debug"],
            HeaderMatch::Value(StringMatch::Prefix("1".into()))
        );
        assert_eq!(m.query_params["v"], StringMatch::Exact("2".into()));
    }

    #[test]
    fn claims_are_read_apart_from_headers() {
        let (matches, errors) = read(json!({"match": [{
            "headers": {
                "@request.auth.claims.group": {"exact": "beta-testers"},
                "@request.auth.claims.realm.role": {"prefix": "ops"},
                "@request.auth.claims.[example.com/tier][level]": {},
                "@request.auth.claims.": {"exact": "x"},
            },
            "withoutHeaders": {"@request.auth.claims.banned": {}}
        }]}));
        assert_eq!(
            errors,
            [(
                "spec.http[0].match[0].headers.@request.auth.claims.".to_string(),
                "is not a claim: @request.auth.claims.NAME, .A.B or .[A][B]".to_string()
            )]
        );
        let m = &matches[0];
        assert!(m.headers.is_empty() && m.without_headers.is_empty());
        let mut got: Vec<(Vec<&str>, bool)> = m
            .claims
            .iter()
            .map(|c| (c.path.iter().map(String::as_str).collect(), c.invert))
            .collect();
        got.sort();
        assert_eq!(
            got,
            [
                (vec!["banned"], true),
                (vec!["example.com/tier", "level"], false),
                (vec!["group"], false),
                (vec!["realm", "role"], false),
            ]
        );
        let group = m.claims.iter().find(|c| c.path == ["group"]).unwrap();
        assert_eq!(
            group.matcher,
            HeaderMatch::Value(StringMatch::Exact("beta-testers".into()))
        );
    }

    #[test]
    fn names_bad_matches() {
        let (_, errors) = read(json!({"match": [
            {"uri": {}, "method": {"exact": "GET", "prefix": "G"}},
            {"headers": {"x-a": {"regex": "(unclosed"}}, "sourceLabels": {"a": "b"}},
            {"queryParams": {"q": {"suffix": "x"}}}
        ]}));
        let got: Vec<&str> = errors.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            got,
            vec![
                "spec.http[0].match[0].uri",
                "spec.http[0].match[0].method",
                "spec.http[0].match[1].sourceLabels",
                "spec.http[0].match[1].headers.x-a.regex",
                "spec.http[0].match[2].queryParams.q.suffix",
                "spec.http[0].match[2].queryParams.q",
            ]
        );
        assert_eq!(errors[1].1, "only one of exact, prefix or regex may be set");
        assert_eq!(errors[2].1, "not supported");
        assert_eq!(errors[3].1, "invalid regex \"(unclosed\": unclosed group");
    }
}
