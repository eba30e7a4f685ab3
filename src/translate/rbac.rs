//! AuthorizationPolicies into Envoy's RBAC HTTP filter: one filter for the DENY
//! policies, then one for the ALLOW policies (present whenever an ALLOW policy
//! applies, so that a request no ALLOW rule matches is refused, as in Istio). Each
//! rule is one Envoy policy, named `namespace/name[index]`.
//!
//! A request principal is `issuer/subject` of the verified JWT, which `jwt_authn`
//! leaves in its dynamic metadata as two claims: principals are split at the
//! issuers the proxy's RequestAuthentications accept, so `https://a.test/x/alice`
//! means issuer `https://a.test/x` with subject `alice` when that issuer is one of
//! them.

use std::collections::HashMap;

use envoy_types::pb::envoy::config::rbac::v3::{
    permission, principal, rbac::Action, Permission, Policy, Principal, Rbac, SourcedMetadata,
};
use envoy_types::pb::envoy::config::route::v3::{
    header_matcher::HeaderMatchSpecifier, HeaderMatcher,
};
use envoy_types::pb::envoy::extensions::filters::http::rbac::v3::Rbac as RbacFilter;
use envoy_types::pb::envoy::r#type::matcher::v3::{
    path_matcher, string_matcher::MatchPattern, value_matcher, PathMatcher, StringMatcher,
    ValueMatcher,
};
use envoy_types::pb::google::protobuf::Any;

use super::jwt::{claim_matcher, present, string_or_item};
use super::packed::pack_merged;
use crate::model::{
    AuthAction, AuthRule, AuthSource, AuthorizationPolicy, Condition, ConditionKey, Operation,
};

pub(super) const RBAC_FILTER: &str = "envoy.filters.http.rbac";

/// The RBAC filters, DENY first, for these policies; `issuers` are those the
/// proxy's JWT rules accept.
pub(super) fn to_rbac_filters(policies: &[&AuthorizationPolicy], issuers: &[&str]) -> Vec<Any> {
    let mut out = Vec::new();
    for action in [AuthAction::Deny, AuthAction::Allow] {
        let of_action: Vec<&&AuthorizationPolicy> =
            policies.iter().filter(|p| p.action == action).collect();
        let rules: Vec<(String, Policy)> = of_action
            .iter()
            .flat_map(|p| {
                let name = format!("{}/{}", p.key.namespace, p.key.name);
                let rules = p.rules.iter().enumerate();
                rules.map(move |(i, rule)| (format!("{name}[{i}]"), to_policy(rule, issuers)))
            })
            .collect();
        // A DENY policy without rules denies nothing; any ALLOW policy limits access.
        let needed = match action {
            AuthAction::Deny => !rules.is_empty(),
            AuthAction::Allow => !of_action.is_empty(),
        };
        if needed {
            out.push(to_rbac(action, rules));
        }
    }
    out
}

fn to_rbac(action: AuthAction, policies: Vec<(String, Policy)>) -> Any {
    let action = match action {
        AuthAction::Allow => Action::Allow,
        AuthAction::Deny => Action::Deny,
    } as i32;
    let with = |policies: HashMap<String, Policy>| RbacFilter {
        rules: Some(Rbac {
            action,
            policies,
            ..Default::default()
        }),
        ..Default::default()
    };
    let entries = policies
        .into_iter()
        .map(|(name, policy)| (name.clone(), with(HashMap::from([(name, policy)]))))
        .collect();
    pack_merged(with(HashMap::new()), entries)
}

fn to_policy(rule: &AuthRule, issuers: &[&str]) -> Policy {
    let operations = rule.to.iter().map(to_permission).collect();
    let mut principals = Vec::new();
    if !rule.from.is_empty() {
        let sources = rule.from.iter().map(|s| to_source(s, issuers)).collect();
        principals.push(any_id(sources));
    }
    principals.extend(rule.when.iter().map(to_condition));
    Policy {
        permissions: vec![any_rule(operations)],
        principals: vec![all_ids(principals)],
        ..Default::default()
    }
}

fn to_source(source: &AuthSource, issuers: &[&str]) -> Principal {
    let mut ids = Vec::new();
    let principal = |p: &String| request_principal(p, issuers);
    if !source.request_principals.is_empty() {
        ids.push(any_id(
            source.request_principals.iter().map(principal).collect(),
        ));
    }
    if !source.not_request_principals.is_empty() {
        let any = any_id(
            source
                .not_request_principals
                .iter()
                .map(principal)
                .collect(),
        );
        ids.push(not_id(any));
    }
    all_ids(ids)
}

fn to_permission(op: &Operation) -> Permission {
    let mut rules = Vec::new();
    let mut both = |values: Vec<Permission>, negated: Vec<Permission>| {
        if !values.is_empty() {
            rules.push(any_rule(values));
        }
        if !negated.is_empty() {
            rules.push(Permission {
                rule: Some(permission::Rule::NotRule(Box::new(any_rule(negated)))),
            });
        }
    };
    let host = |h: &String| header_rule(":authority", h, true);
    both(
        op.hosts.iter().map(host).collect(),
        op.not_hosts.iter().map(host).collect(),
    );
    let port = |p: &u32| Permission {
        rule: Some(permission::Rule::DestinationPort(*p)),
    };
    both(
        op.ports.iter().map(port).collect(),
        op.not_ports.iter().map(port).collect(),
    );
    let method = |m: &String| header_rule(":method", m, false);
    both(
        op.methods.iter().map(method).collect(),
        op.not_methods.iter().map(method).collect(),
    );
    both(
        op.paths.iter().map(|p| path_rule(p)).collect(),
        op.not_paths.iter().map(|p| path_rule(p)).collect(),
    );
    all_rules(rules)
}

fn to_condition(c: &Condition) -> Principal {
    let one = |value: &String| match &c.key {
        ConditionKey::Header(name) => Principal {
            identifier: Some(principal::Identifier::Header(header_matcher(
                name, value, false,
            ))),
        },
        ConditionKey::Claim(path) => match pattern(value, false) {
            None => claim(path, present()),
            Some(m) => claim(path, string_or_item(m)),
        },
    };
    let mut ids = Vec::new();
    if !c.values.is_empty() {
        ids.push(any_id(c.values.iter().map(one).collect()));
    }
    if !c.not_values.is_empty() {
        ids.push(not_id(any_id(c.not_values.iter().map(one).collect())));
    }
    all_ids(ids)
}

/// `issuer/subject` as claims of the verified JWT: `*` is any verified JWT; an exact,
/// `prefix*` or `*suffix` value is split at each issuer it can begin with.
pub(super) fn request_principal(value: &str, issuers: &[&str]) -> Principal {
    if value == "*" {
        return claim(&[], present());
    }
    let exact = |s: &str| string(MatchPattern::Exact(s.to_string()));
    let mut options = Vec::new();
    for issuer in issuers {
        let head = format!("{issuer}/");
        let iss = || claim(&["iss".into()], string_value(exact(issuer)));
        let sub = |m: StringMatcher| claim(&["sub".into()], string_value(m));
        if let Some(prefix) = value.strip_suffix('*') {
            match prefix.strip_prefix(&head) {
                Some("") => options.push(iss()),
                Some(rest) => {
                    let m = string(MatchPattern::Prefix(rest.to_string()));
                    options.push(all_ids(vec![iss(), sub(m)]));
                }
                None if head.starts_with(prefix) => options.push(iss()),
                None => {}
            }
        } else if let Some(suffix) = value.strip_prefix('*') {
            let m = string(MatchPattern::Suffix(suffix.to_string()));
            options.push(all_ids(vec![iss(), sub(m)]));
            // The suffix may reach into the issuer: `*er.test/alice`.
            for (at, _) in suffix.match_indices('/') {
                let (end, subject) = (&suffix[..at], &suffix[at + 1..]);
                if issuer.ends_with(end) {
                    options.push(all_ids(vec![iss(), sub(exact(subject))]));
                }
            }
        } else if let Some(subject) = value.strip_prefix(&head) {
            options.push(all_ids(vec![iss(), sub(exact(subject))]));
        }
    }
    match options.is_empty() {
        true => not_id(any_principal()),
        false => any_id(options),
    }
}

fn claim(path: &[String], value: ValueMatcher) -> Principal {
    Principal {
        identifier: Some(principal::Identifier::SourcedMetadata(SourcedMetadata {
            metadata_matcher: Some(claim_matcher(path, value)),
            ..Default::default()
        })),
    }
}

fn string_value(m: StringMatcher) -> ValueMatcher {
    ValueMatcher {
        match_pattern: Some(value_matcher::MatchPattern::StringMatch(m)),
    }
}

fn string(pattern: MatchPattern) -> StringMatcher {
    StringMatcher {
        match_pattern: Some(pattern),
        ..Default::default()
    }
}

/// Istio's value syntax as a string matcher; `None` for `*` (any value).
fn pattern(value: &str, ignore_case: bool) -> Option<StringMatcher> {
    let p = if value == "*" {
        return None;
    } else if let Some(prefix) = value.strip_suffix('*') {
        MatchPattern::Prefix(prefix.to_string())
    } else if let Some(suffix) = value.strip_prefix('*') {
        MatchPattern::Suffix(suffix.to_string())
    } else {
        MatchPattern::Exact(value.to_string())
    };
    Some(StringMatcher {
        match_pattern: Some(p),
        ignore_case,
    })
}

fn header_matcher(name: &str, value: &str, ignore_case: bool) -> HeaderMatcher {
    let specifier = match pattern(value, ignore_case) {
        None => HeaderMatchSpecifier::PresentMatch(true),
        Some(m) => HeaderMatchSpecifier::StringMatch(m),
    };
    HeaderMatcher {
        name: name.to_string(),
        header_match_specifier: Some(specifier),
        ..Default::default()
    }
}

fn header_rule(name: &str, value: &str, ignore_case: bool) -> Permission {
    Permission {
        rule: Some(permission::Rule::Header(header_matcher(
            name,
            value,
            ignore_case,
        ))),
    }
}

/// The path without its query string, as Istio matches it.
fn path_rule(value: &str) -> Permission {
    let Some(m) = pattern(value, false) else {
        return any_permission();
    };
    Permission {
        rule: Some(permission::Rule::UrlPath(PathMatcher {
            rule: Some(path_matcher::Rule::Path(m)),
        })),
    }
}

fn any_permission() -> Permission {
    Permission {
        rule: Some(permission::Rule::Any(true)),
    }
}

fn any_principal() -> Principal {
    Principal {
        identifier: Some(principal::Identifier::Any(true)),
    }
}

fn not_id(p: Principal) -> Principal {
    Principal {
        identifier: Some(principal::Identifier::NotId(Box::new(p))),
    }
}

/// Any of `rules`; none is every request.
fn any_rule(mut rules: Vec<Permission>) -> Permission {
    match rules.len() {
        0 => any_permission(),
        1 => rules.remove(0),
        _ => Permission {
            rule: Some(permission::Rule::OrRules(permission::Set { rules })),
        },
    }
}

/// All of `rules`; none is every request.
fn all_rules(mut rules: Vec<Permission>) -> Permission {
    match rules.len() {
        0 => any_permission(),
        1 => rules.remove(0),
        _ => Permission {
            rule: Some(permission::Rule::AndRules(permission::Set { rules })),
        },
    }
}

/// Any of `ids`; none is every request.
fn any_id(mut ids: Vec<Principal>) -> Principal {
    match ids.len() {
        0 => any_principal(),
        1 => ids.remove(0),
        _ => Principal {
            identifier: Some(principal::Identifier::OrIds(principal::Set { ids })),
        },
    }
}

/// All of `ids`; none is every request.
fn all_ids(mut ids: Vec<Principal>) -> Principal {
    match ids.len() {
        0 => any_principal(),
        1 => ids.remove(0),
        _ => Principal {
            identifier: Some(principal::Identifier::AndIds(principal::Set { ids })),
        },
    }
}
