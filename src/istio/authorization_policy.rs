//! `AuthorizationPolicy` specs (`security.istio.io`) into
//! [`model::AuthorizationPolicy`](crate::model::AuthorizationPolicy): the subset a
//! gateway uses (ALLOW / DENY; request principals; hosts, ports, methods and paths;
//! `when` on request headers and JWT claims). Every other field is an error naming it.

use serde_json::Value;

use super::policy_target::try_policy_target;
use crate::ingest::{is_header_name, Fields, Obj, Report};
use crate::model::{
    AuthAction, AuthRule, AuthSource, AuthorizationPolicy, Condition, ConditionKey, Operation,
    ResourceKey,
};

const SPEC: Fields = Fields {
    known: &["selector", "targetRef", "targetRefs", "action", "rules"],
    unsupported: &["provider"],
};
const RULE: Fields = Fields::known(&["from", "to", "when"]);
const FROM: Fields = Fields::known(&["source"]);
const SOURCE: Fields = Fields {
    known: &["requestPrincipals", "notRequestPrincipals"],
    unsupported: &[
        "principals",
        "notPrincipals",
        "namespaces",
        "notNamespaces",
        "serviceAccounts",
        "notServiceAccounts",
        "ipBlocks",
        "notIpBlocks",
        "remoteIpBlocks",
        "notRemoteIpBlocks",
    ],
};
const TO: Fields = Fields::known(&["operation"]);
const OPERATION: Fields = Fields::known(&[
    "hosts",
    "notHosts",
    "ports",
    "notPorts",
    "methods",
    "notMethods",
    "paths",
    "notPaths",
]);
const CONDITION: Fields = Fields::known(&["key", "values", "notValues"]);

/// Reads an AuthorizationPolicy spec; every problem goes to `r`.
pub(crate) fn try_authorization_policy(
    key: &ResourceKey,
    spec: &Value,
    r: &mut Report,
) -> Option<AuthorizationPolicy> {
    let spec = Obj::new(r, "spec", spec, SPEC)?;
    let target = try_policy_target(spec, key, r);
    let action = match spec.string(r, "action").as_deref() {
        None | Some("ALLOW") => Some(AuthAction::Allow),
        Some("DENY") => Some(AuthAction::Deny),
        Some(other @ ("AUDIT" | "CUSTOM")) => {
            r.push(
                spec.at("action"),
                format!("not supported: {other} (ALLOW or DENY)"),
            );
            None
        }
        Some(other) => {
            r.push(spec.at("action"), format!("{other:?} is not ALLOW or DENY"));
            None
        }
    };
    let rules = spec
        .list(r, "rules")
        .into_iter()
        .filter_map(|(path, value)| try_rule(&path, value, r))
        .collect();
    Some(AuthorizationPolicy {
        key: key.clone(),
        target,
        action: action?,
        rules,
    })
}

fn try_rule(path: &str, value: &Value, r: &mut Report) -> Option<AuthRule> {
    let rule = Obj::new(r, path, value, RULE)?;
    let mut out = AuthRule::default();
    for (path, item) in rule.list(r, "from") {
        let Some(from) = Obj::new(r, &path, item, FROM) else {
            continue;
        };
        let Some((path, value)) = inner(from, "source", r) else {
            continue;
        };
        let Some(s) = Obj::new(r, &path, value, SOURCE) else {
            continue;
        };
        out.from.push(AuthSource {
            request_principals: patterns(s, "requestPrincipals", r),
            not_request_principals: patterns(s, "notRequestPrincipals", r),
        });
    }
    for (path, item) in rule.list(r, "to") {
        let Some(to) = Obj::new(r, &path, item, TO) else {
            continue;
        };
        let Some((path, value)) = inner(to, "operation", r) else {
            continue;
        };
        let Some(o) = Obj::new(r, &path, value, OPERATION) else {
            continue;
        };
        out.to.push(Operation {
            hosts: patterns(o, "hosts", r),
            not_hosts: patterns(o, "notHosts", r),
            ports: ports(o, "ports", r),
            not_ports: ports(o, "notPorts", r),
            methods: patterns(o, "methods", r),
            not_methods: patterns(o, "notMethods", r),
            paths: paths(o, "paths", r),
            not_paths: paths(o, "notPaths", r),
        });
    }
    for (path, item) in rule.list(r, "when") {
        if let Some(condition) = try_condition(&path, item, r) {
            out.when.push(condition);
        }
    }
    Some(out)
}

/// The object under `key` (`source`, `operation`), required, with its path.
fn inner<'v>(obj: Obj<'v, '_>, key: &str, r: &mut Report) -> Option<(String, &'v Value)> {
    match obj.get(key) {
        Some(value) => Some((obj.at(key), value)),
        None => {
            r.push(obj.at(key), "required");
            None
        }
    }
}

/// Istio's string patterns: exact, `*`, `prefix*` or `*suffix`.
fn patterns(obj: Obj<'_, '_>, key: &str, r: &mut Report) -> Vec<String> {
    let values = obj.strings(r, key);
    for (i, value) in values.iter().enumerate() {
        if let Some(message) = pattern_problem(value) {
            r.push(format!("{}[{i}]", obj.at(key)), message);
        }
    }
    values
}

fn pattern_problem(value: &str) -> Option<String> {
    let inner = value.trim_start_matches('*').trim_end_matches('*');
    let stars = value.len() - inner.len();
    let bad = inner.contains('*') || (stars > 1 && value != "*");
    bad.then(|| format!("{value:?}: `*` may only start or end a value, once"))
}

/// Paths: patterns that start with `/` unless they start with `*`; no `{*}` templates.
fn paths(obj: Obj<'_, '_>, key: &str, r: &mut Report) -> Vec<String> {
    let values = obj.strings(r, key);
    for (i, value) in values.iter().enumerate() {
        let problem = if value.contains('{') {
            Some(format!("{value:?}: path templates are not supported"))
        } else if !value.starts_with('/') && !value.starts_with('*') {
            Some(format!("{value:?} must start with / or *"))
        } else {
            pattern_problem(value)
        };
        if let Some(message) = problem {
            r.push(format!("{}[{i}]", obj.at(key)), message);
        }
    }
    values
}

/// Ports as Istio writes them (strings), or as numbers.
fn ports(obj: Obj<'_, '_>, key: &str, r: &mut Report) -> Vec<u32> {
    let mut out = Vec::new();
    for (path, item) in obj.list(r, key) {
        let port = match item {
            Value::String(s) => s.parse::<u32>().ok(),
            Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
            _ => None,
        };
        match port.filter(|p| (1..=65535).contains(p)) {
            Some(p) => out.push(p),
            None => r.push(path, "must be a port from 1 to 65535"),
        }
    }
    out
}

fn try_condition(path: &str, value: &Value, r: &mut Report) -> Option<Condition> {
    let c = Obj::new(r, path, value, CONDITION)?;
    let name = c.required_string(r, "key")?;
    let values = patterns(c, "values", r);
    let not_values = patterns(c, "notValues", r);
    if values.is_empty() && not_values.is_empty() {
        r.push(path, "one of values or notValues is required");
    }
    let Some(key) = condition_key(&name) else {
        let message = format!(
            "not supported: {name:?} (supported: request.headers[NAME], request.auth.claims[NAME])"
        );
        r.push(c.at("key"), message);
        return None;
    };
    Some(Condition {
        key,
        values,
        not_values,
    })
}

/// `request.headers[name]` or `request.auth.claims[a][b]...`.
fn condition_key(name: &str) -> Option<ConditionKey> {
    if let Some(header) = name
        .strip_prefix("request.headers[")
        .and_then(|s| s.strip_suffix(']'))
    {
        let lower = header.to_ascii_lowercase();
        return is_header_name(&lower).then_some(ConditionKey::Header(lower));
    }
    let claims = name
        .strip_prefix("request.auth.claims[")?
        .strip_suffix(']')?;
    let path: Vec<String> = claims.split("][").map(str::to_string).collect();
    let valid = path
        .iter()
        .all(|p| !p.is_empty() && !p.contains(['[', ']']));
    valid.then_some(ConditionKey::Claim(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Kind;
    use serde_json::json;

    fn read(spec: Value) -> (Option<AuthorizationPolicy>, Vec<(String, String)>) {
        let key = ResourceKey::new(Kind::AuthorizationPolicy, "default", "authz");
        let mut r = Report::new(key.to_string());
        let ap = try_authorization_policy(&key, &spec, &mut r);
        let errors = r.errors.into_iter().map(|e| (e.field, e.message)).collect();
        (ap, errors)
    }

    #[test]
    fn reads_the_gateway_subset() {
        let (ap, errors) = read(json!({
            "action": "DENY",
            "rules": [{
                "from": [{"source": {"requestPrincipals": ["https://issuer.test/*"],
                                     "notRequestPrincipals": ["*"]}}],
                "to": [{"operation": {"paths": ["/admin*"], "notPaths": ["/admin/health"],
                                      "methods": ["POST"], "notMethods": ["GET"],
                                      "hosts": ["*.example.com"], "ports": ["8080", 9090]}}],
                "when": [{"key": "request.auth.claims[groups]", "values": ["admins"]},
                         {"key": "request.headers[X-Env]", "notValues": ["prod*"]},
                         {"key": "request.auth.claims[realm][role]", "values": ["ops"]}]
            }]
        }));
        assert_eq!(errors, []);
        let ap = ap.unwrap();
        assert_eq!(ap.action, AuthAction::Deny);
        let rule = &ap.rules[0];
        assert_eq!(rule.from[0].request_principals, ["https://issuer.test/*"]);
        assert_eq!(rule.from[0].not_request_principals, ["*"]);
        assert_eq!(rule.to[0].paths, ["/admin*"]);
        assert_eq!(rule.to[0].ports, [8080, 9090]);
        assert_eq!(rule.when[0].key, ConditionKey::Claim(vec!["groups".into()]));
        assert_eq!(rule.when[1].key, ConditionKey::Header("x-env".into()));
        assert_eq!(
            rule.when[2].key,
            ConditionKey::Claim(vec!["realm".into(), "role".into()])
        );
        let (ap, errors) = read(json!({}));
        assert_eq!(errors, []);
        let ap = ap.unwrap();
        assert_eq!((ap.action, ap.rules.len()), (AuthAction::Allow, 0));
    }

    #[test]
    fn names_what_is_not_supported() {
        let (_, errors) = read(json!({
            "action": "CUSTOM",
            "provider": {"name": "ext"},
            "rules": [{
                "from": [{"source": {"namespaces": ["a"]}}, {}],
                "to": [{"operation": {"paths": ["no-slash", "/a/{*}/b", "/a*b"]}}],
                "when": [{"key": "source.ip", "values": ["10.0.0.1"]}, {"key": "request.headers[a]"}]
            }]
        }));
        let got: Vec<(&str, &str)> = errors
            .iter()
            .map(|(f, m)| (f.as_str(), m.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("spec.provider", "not supported"),
                ("spec.action", "not supported: CUSTOM (ALLOW or DENY)"),
                ("spec.rules[0].from[0].source.namespaces", "not supported"),
                ("spec.rules[0].from[1].source", "required"),
                (
                    "spec.rules[0].to[0].operation.paths[0]",
                    "\"no-slash\" must start with / or *"
                ),
                (
                    "spec.rules[0].to[0].operation.paths[1]",
                    "\"/a/{*}/b\": path templates are not supported"
                ),
                (
                    "spec.rules[0].to[0].operation.paths[2]",
                    "\"/a*b\": `*` may only start or end a value, once"
                ),
                (
                    "spec.rules[0].when[0].key",
                    "not supported: \"source.ip\" (supported: request.headers[NAME], \
                     request.auth.claims[NAME])"
                ),
                (
                    "spec.rules[0].when[1]",
                    "one of values or notValues is required"
                ),
            ]
        );
    }
}
