//! `RequestAuthentication` specs (`security.istio.io`) into
//! [`model::RequestAuthentication`](crate::model::RequestAuthentication): the proxies
//! it applies to and its `jwtRules`, keys inline (`jwks`) or fetched (`jwksUri`).

use serde_json::Value;

use super::policy_target::try_policy_target;
use crate::ingest::{is_header_name, Fields, Obj, Report};
use crate::model::{
    ClaimToHeader, Jwks, JwksUri, JwtHeader, JwtRule, RequestAuthentication, ResourceKey,
};

const SPEC: Fields = Fields::known(&["selector", "targetRef", "targetRefs", "jwtRules"]);
const JWT_RULE: Fields = Fields::known(&[
    "issuer",
    "audiences",
    "jwksUri",
    "jwks",
    "fromHeaders",
    "fromParams",
    "fromCookies",
    "outputPayloadToHeader",
    "forwardOriginalToken",
    "outputClaimToHeaders",
    "timeout",
]);
const FROM_HEADER: Fields = Fields::known(&["name", "prefix"]);
const CLAIM_TO_HEADER: Fields = Fields::known(&["header", "claim"]);

/// Reads a RequestAuthentication spec; every problem goes to `r`.
pub(crate) fn try_request_authentication(
    key: &ResourceKey,
    spec: &Value,
    r: &mut Report,
) -> Option<RequestAuthentication> {
    let spec = Obj::new(r, "spec", spec, SPEC)?;
    let target = try_policy_target(spec, key, r);
    let jwt_rules = spec
        .list(r, "jwtRules")
        .into_iter()
        .filter_map(|(path, value)| try_jwt_rule(&path, value, r))
        .collect();
    Some(RequestAuthentication {
        key: key.clone(),
        target,
        jwt_rules,
    })
}

fn try_jwt_rule(path: &str, value: &Value, r: &mut Report) -> Option<JwtRule> {
    let rule = Obj::new(r, path, value, JWT_RULE)?;
    let issuer = rule.required_string(r, "issuer");
    let jwks = try_jwks(rule, r);
    let mut from_headers = Vec::new();
    for (path, item) in rule.list(r, "fromHeaders") {
        let Some(h) = Obj::new(r, &path, item, FROM_HEADER) else {
            continue;
        };
        if let Some(name) = header_name(h, "name", r) {
            let prefix = h.string(r, "prefix").unwrap_or_default();
            from_headers.push(JwtHeader { name, prefix });
        }
    }
    let mut output_claim_to_headers = Vec::new();
    for (path, item) in rule.list(r, "outputClaimToHeaders") {
        let Some(c) = Obj::new(r, &path, item, CLAIM_TO_HEADER) else {
            continue;
        };
        let header = header_name(c, "header", r);
        let claim = c.required_string(r, "claim");
        if let (Some(header), Some(claim)) = (header, claim) {
            output_claim_to_headers.push(ClaimToHeader { header, claim });
        }
    }
    let output_payload_to_header = match rule.has("outputPayloadToHeader") {
        true => header_name(rule, "outputPayloadToHeader", r),
        false => None,
    };
    Some(JwtRule {
        issuer: issuer?,
        audiences: rule.strings(r, "audiences"),
        jwks: jwks?,
        from_headers,
        from_params: rule.strings(r, "fromParams"),
        from_cookies: rule.strings(r, "fromCookies"),
        forward_original_token: rule.boolean(r, "forwardOriginalToken").unwrap_or(false),
        output_payload_to_header,
        output_claim_to_headers,
        timeout: rule.duration(r, "timeout"),
    })
}

/// A required header name, lower-cased.
fn header_name(obj: Obj<'_, '_>, key: &str, r: &mut Report) -> Option<String> {
    let name = obj.required_string(r, key)?.to_ascii_lowercase();
    if is_header_name(&name) {
        Some(name)
    } else {
        r.push(obj.at(key), format!("{name:?} is not a valid header name"));
        None
    }
}

/// `jwks` (a JWKS document with at least one key) or `jwksUri`, exactly one.
fn try_jwks(rule: Obj<'_, '_>, r: &mut Report) -> Option<Jwks> {
    match (rule.string(r, "jwks"), rule.string(r, "jwksUri")) {
        (Some(_), Some(_)) => {
            r.push(
                rule.at("jwksUri"),
                "only one of jwks and jwksUri may be set",
            );
            None
        }
        (Some(jwks), None) => check_jwks(&rule.at("jwks"), &jwks, r).then_some(Jwks::Inline(jwks)),
        (None, Some(uri)) => try_jwks_uri(&rule.at("jwksUri"), &uri, r).map(Jwks::Uri),
        (None, None) => {
            let present = rule.has("jwks") || rule.has("jwksUri");
            if !present {
                r.push(
                    rule.at("jwksUri"),
                    "one of jwks or jwksUri is required (discovery from the issuer's \
                     OpenID configuration is not supported)",
                );
            }
            None
        }
    }
}

/// A JSON object with a non-empty `keys` list of objects each naming its `kty`.
fn check_jwks(path: &str, text: &str, r: &mut Report) -> bool {
    let keys = match serde_json::from_str::<Value>(text) {
        Ok(doc) => doc.get("keys").and_then(Value::as_array).cloned(),
        Err(e) => {
            r.push(path, format!("is not JSON: {e}"));
            return false;
        }
    };
    let valid = keys.is_some_and(|keys| {
        !keys.is_empty()
            && keys
                .iter()
                .all(|k| k.get("kty").is_some_and(Value::is_string))
    });
    if !valid {
        r.push(
            path,
            "must be a JWKS: an object whose \"keys\" list has each key's \"kty\"",
        );
    }
    valid
}

/// `http://host[:port]/path` or `https://...`; the port defaults to the scheme's.
fn try_jwks_uri(path: &str, uri: &str, r: &mut Report) -> Option<JwksUri> {
    let parsed = uri.split_once("://").and_then(|(scheme, rest)| {
        let tls = match scheme.to_ascii_lowercase().as_str() {
            "http" => false,
            "https" => true,
            _ => return None,
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let (host, port) = split_host_port(authority)?;
        let port = match port {
            Some(p) => p.parse::<u32>().ok().filter(|p| (1..=65535).contains(p))?,
            None if tls => 443,
            None => 80,
        };
        (!host.is_empty() && !host.contains('@')).then(|| JwksUri {
            uri: uri.to_string(),
            host: host.to_ascii_lowercase(),
            port,
            tls,
        })
    });
    if parsed.is_none() {
        r.push(
            path,
            format!("{uri:?} is not an http:// or https:// URL with a host (and a port from 1 to 65535)"),
        );
    }
    parsed
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`.
fn split_host_port(authority: &str) -> Option<(&str, Option<&str>)> {
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return match after {
            "" => Some((host, None)),
            _ => Some((host, Some(after.strip_prefix(':')?))),
        };
    }
    match authority.split_once(':') {
        Some((host, port)) => Some((host, Some(port))),
        None => Some((authority, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Kind;
    use serde_json::json;

    fn read(spec: Value) -> (Option<RequestAuthentication>, Vec<(String, String)>) {
        let key = ResourceKey::new(Kind::RequestAuthentication, "default", "jwt");
        let mut r = Report::new(key.to_string());
        let ra = try_request_authentication(&key, &spec, &mut r);
        let errors = r.errors.into_iter().map(|e| (e.field, e.message)).collect();
        (ra, errors)
    }

    const JWKS: &str = r#"{"keys":[{"kty":"EC","crv":"P-256","x":"a","y":"b"}]}"#;

    #[test]
    fn reads_every_field() {
        let (ra, errors) = read(json!({
            "selector": {"matchLabels": {"app": "edge"}},
            "jwtRules": [{
                "issuer": "https://issuer.test",
                "audiences": ["petstore"],
                "jwks": JWKS,
                "fromHeaders": [{"name": "X-Jwt", "prefix": "Token "}],
                "fromParams": ["token"],
                "forwardOriginalToken": true,
                "outputPayloadToHeader": "x-jwt-payload",
                "outputClaimToHeaders": [{"header": "x-group", "claim": "group"}],
            }, {
                "issuer": "other",
                "jwksUri": "http://127.0.0.1:8081/keys.json",
                "timeout": "2s",
            }, {
                "issuer": "third",
                "jwksUri": "https://keys.example.com/.well-known/jwks.json",
            }]
        }));
        assert_eq!(errors, []);
        let ra = ra.unwrap();
        assert_eq!(ra.target.selector["app"], "edge");
        let first = &ra.jwt_rules[0];
        assert_eq!(first.audiences, ["petstore"]);
        assert_eq!(first.jwks, Jwks::Inline(JWKS.into()));
        assert_eq!(
            first.from_headers,
            [JwtHeader {
                name: "x-jwt".into(),
                prefix: "Token ".into()
            }]
        );
        assert!(first.forward_original_token);
        assert_eq!(
            first.output_payload_to_header.as_deref(),
            Some("x-jwt-payload")
        );
        assert_eq!(first.output_claim_to_headers[0].claim, "group");
        let Jwks::Uri(uri) = &ra.jwt_rules[1].jwks else {
            panic!("a uri");
        };
        assert_eq!(
            (uri.host.as_str(), uri.port, uri.tls),
            ("127.0.0.1", 8081, false)
        );
        assert_eq!(
            ra.jwt_rules[1].timeout,
            Some(std::time::Duration::from_secs(2))
        );
        let Jwks::Uri(uri) = &ra.jwt_rules[2].jwks else {
            panic!("a uri");
        };
        assert_eq!(
            (uri.host.as_str(), uri.port, uri.tls),
            ("keys.example.com", 443, true)
        );
    }

    #[test]
    fn names_bad_fields() {
        let (_, errors) = read(json!({
            "jwtRules": [
                {"audiences": ["a"], "jwks": "{not json"},
                {"issuer": "i", "jwksUri": "ftp://x/keys", "fromHeaders": [{"prefix": "B"}]},
                {"issuer": "i", "outputClaimToHeaders": [{"header": "bad header", "claim": "c"}]},
                {"issuer": "i", "jwks": "{\"keys\": []}", "jwksUri": "http://a/b", "extra": 1},
            ]
        }));
        let fields: Vec<&str> = errors.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.jwtRules[0].issuer",
                "spec.jwtRules[0].jwks",
                "spec.jwtRules[1].jwksUri",
                "spec.jwtRules[1].fromHeaders[0].name",
                "spec.jwtRules[2].jwksUri",
                "spec.jwtRules[2].outputClaimToHeaders[0].header",
                "spec.jwtRules[3].extra",
                "spec.jwtRules[3].jwksUri",
            ]
        );
        assert!(errors[1].1.starts_with("is not JSON"), "{}", errors[1].1);
        assert!(errors[4].1.contains("OpenID"), "{}", errors[4].1);
        assert_eq!(errors[6].1, "unknown field");
    }
}
