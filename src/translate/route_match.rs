//! Request matching: model `RouteMatch` conditions into Envoy route, header and query
//! parameter matchers.

use envoy_types::pb::envoy::config::route::v3::{
    header_matcher::HeaderMatchSpecifier, query_parameter_matcher::QueryParameterMatchSpecifier,
    route_match::PathSpecifier, HeaderMatcher, QueryParameterMatcher,
    RouteMatch as EnvoyRouteMatch,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{
    string_matcher::MatchPattern, MetadataMatcher, RegexMatcher, StringMatcher,
};

use super::jwt;
use crate::model::{ClaimMatch, GrpcMethod, HeaderMatch, RouteMatch, StringMatch};

/// Every request: the match of a route that has no `match` entries.
pub(super) fn match_all() -> EnvoyRouteMatch {
    EnvoyRouteMatch {
        path_specifier: Some(PathSpecifier::Prefix("/".into())),
        ..Default::default()
    }
}

/// A prefix of whole path elements: Envoy's `path_separated_prefix`, which takes no
/// trailing `/` (`/` itself is every path).
fn path_elements(prefix: &str) -> PathSpecifier {
    match prefix.trim_end_matches('/') {
        "" => PathSpecifier::Prefix("/".into()),
        trimmed => PathSpecifier::PathSeparatedPrefix(trimmed.to_string()),
    }
}

/// A gRPC method match as a match of the path `/service/method` (the Gateway API's
/// table): both names exactly, the service's prefix `/service/`, or a regular
/// expression, where an absent name is any one path element.
fn grpc_path(g: &GrpcMethod) -> PathSpecifier {
    let part = |name: &Option<String>| match name {
        Some(name) if g.regex => format!("(?:{name})"),
        Some(name) => regex::escape(name),
        None => "[^/]+".to_string(),
    };
    match (&g.service, &g.method, g.regex) {
        (Some(service), Some(method), false) => PathSpecifier::Path(format!("/{service}/{method}")),
        (Some(service), None, false) => PathSpecifier::Prefix(format!("/{service}/")),
        _ => {
            let regex = format!("/{}/{}", part(&g.service), part(&g.method));
            PathSpecifier::SafeRegex(to_regex_matcher(&regex))
        }
    }
}

/// One Envoy match for one model match; all of its conditions must hold.
pub(super) fn to_route_match(m: &RouteMatch) -> EnvoyRouteMatch {
    let path_specifier = match (&m.grpc, &m.uri) {
        (Some(g), _) => grpc_path(g),
        (None, None) => PathSpecifier::Prefix("/".into()),
        (None, Some(StringMatch::Exact(path))) => PathSpecifier::Path(path.clone()),
        (None, Some(StringMatch::Prefix(prefix))) => PathSpecifier::Prefix(prefix.clone()),
        (None, Some(StringMatch::PathPrefix(prefix))) => path_elements(prefix),
        (None, Some(StringMatch::Regex(regex))) => {
            PathSpecifier::SafeRegex(to_regex_matcher(regex))
        }
    };
    let mut headers = Vec::new();
    if let Some(method) = &m.method {
        headers.push(to_header_matcher(
            ":method",
            &HeaderMatch::Value(method.clone()),
            false,
        ));
    }
    if let Some(authority) = &m.authority {
        let value = HeaderMatch::Value(authority.clone());
        headers.push(to_header_matcher(":authority", &value, false));
    }
    headers.extend(
        m.headers
            .iter()
            .map(|(name, hm)| to_header_matcher(name, hm, false)),
    );
    headers.extend(
        m.without_headers
            .iter()
            .map(|(name, hm)| to_header_matcher(name, hm, true)),
    );
    let query_parameters = m
        .query_params
        .iter()
        .map(|(name, sm)| QueryParameterMatcher {
            name: name.clone(),
            query_parameter_match_specifier: Some(QueryParameterMatchSpecifier::StringMatch(
                to_string_matcher(sm),
            )),
        })
        .collect();
    let dynamic_metadata = m.claims.iter().map(to_claim_matcher).collect();
    EnvoyRouteMatch {
        path_specifier: Some(path_specifier),
        headers,
        query_parameters,
        dynamic_metadata,
        ..Default::default()
    }
}

/// A claim of the verified JWT, from the payload `jwt_authn` leaves in the dynamic
/// metadata (its providers clear the route cache, so routes are matched again once
/// it is there). A list claim matches when one of its items does.
fn to_claim_matcher(c: &ClaimMatch) -> MetadataMatcher {
    let value = match &c.matcher {
        HeaderMatch::Present => jwt::present(),
        HeaderMatch::Value(sm) => jwt::string_or_item(to_string_matcher(sm)),
    };
    MetadataMatcher {
        invert: c.invert,
        ..jwt::claim_matcher(&c.path, value)
    }
}

/// A header condition; `invert` for `withoutHeaders` (absent, or not matching).
pub(super) fn to_header_matcher(name: &str, m: &HeaderMatch, invert: bool) -> HeaderMatcher {
    let specifier = match m {
        HeaderMatch::Present => HeaderMatchSpecifier::PresentMatch(true),
        HeaderMatch::Value(sm) => HeaderMatchSpecifier::StringMatch(to_string_matcher(sm)),
    };
    HeaderMatcher {
        name: name.to_string(),
        invert_match: invert,
        header_match_specifier: Some(specifier),
        ..Default::default()
    }
}

pub(super) fn to_string_matcher(m: &StringMatch) -> StringMatcher {
    let pattern = match m {
        StringMatch::Exact(s) => MatchPattern::Exact(s.clone()),
        StringMatch::Prefix(s) | StringMatch::PathPrefix(s) => MatchPattern::Prefix(s.clone()),
        StringMatch::Regex(s) => MatchPattern::SafeRegex(to_regex_matcher(s)),
    };
    StringMatcher {
        match_pattern: Some(pattern),
        ignore_case: false,
    }
}

/// RE2 is Envoy's default (and only non-deprecated) engine, so only the regex is set.
pub(super) fn to_regex_matcher(regex: &str) -> RegexMatcher {
    RegexMatcher {
        regex: regex.to_string(),
        engine_type: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn exact(s: &str) -> StringMatch {
        StringMatch::Exact(s.into())
    }

    #[test]
    fn uri_matches_become_path_specifiers() {
        let m = |uri| {
            to_route_match(&RouteMatch {
                uri: Some(uri),
                ..Default::default()
            })
        };
        assert_eq!(
            m(exact("/a")).path_specifier,
            Some(PathSpecifier::Path("/a".into()))
        );
        assert_eq!(
            m(StringMatch::Prefix("/p".into())).path_specifier,
            Some(PathSpecifier::Prefix("/p".into()))
        );
        assert_eq!(
            m(StringMatch::Regex("/r/.*".into())).path_specifier,
            Some(PathSpecifier::SafeRegex(RegexMatcher {
                regex: "/r/.*".into(),
                engine_type: None
            }))
        );
        assert_eq!(to_route_match(&RouteMatch::default()), match_all());
    }

    #[test]
    fn method_authority_headers_and_query_params() {
        let m = RouteMatch {
            method: Some(exact("GET")),
            authority: Some(StringMatch::Prefix("api.".into())),
            headers: BTreeMap::from([("x-canary".to_string(), HeaderMatch::Value(exact("true")))]),
            without_headers: BTreeMap::from([
                ("x-debug".to_string(), HeaderMatch::Present),
                ("x-env".to_string(), HeaderMatch::Value(exact("prod"))),
            ]),
            query_params: BTreeMap::from([("v".to_string(), StringMatch::Regex("[0-9]+".into()))]),
            ..Default::default()
        };
        let got = to_route_match(&m);
        let summary: Vec<(&str, bool, bool)> = got
            .headers
            .iter()
            .map(|h| {
                let present = matches!(
                    h.header_match_specifier,
                    Some(HeaderMatchSpecifier::PresentMatch(true))
                );
                (h.name.as_str(), h.invert_match, present)
            })
            .collect();
        assert_eq!(
            summary,
            [
                (":method", false, false),
                (":authority", false, false),
                ("x-canary", false, false),
                ("x-debug", true, true),
                ("x-env", true, false),
            ]
        );
        assert_eq!(
            got.headers[2].header_match_specifier,
            Some(HeaderMatchSpecifier::StringMatch(StringMatcher {
                match_pattern: Some(MatchPattern::Exact("true".into())),
                ignore_case: false,
            }))
        );
        assert_eq!(got.query_parameters.len(), 1);
        assert_eq!(got.query_parameters[0].name, "v");
        assert_eq!(got.path_specifier, Some(PathSpecifier::Prefix("/".into())));
    }
}
