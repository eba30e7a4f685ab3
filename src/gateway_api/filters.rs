//! HTTPRoute `filters[]` (of a rule, or of one backendRef): header modifiers, URL
//! rewrite, request mirror, redirect and CORS. `ExtensionRef` and `ExternalAuth` are
//! "not supported" errors naming the field.

use serde_json::Value;

use super::backend_ref::{try_backend_ref, Backend};
use crate::ingest::{is_header_name, Fields, Obj, Report};
use crate::model::{CorsPolicy, HeaderOps, Headers, Redirect, StringMatch};

const FILTER: Fields = Fields {
    known: &[
        "type",
        "requestHeaderModifier",
        "responseHeaderModifier",
        "requestMirror",
        "requestRedirect",
        "urlRewrite",
        "cors",
    ],
    unsupported: &["extensionRef", "externalAuth"],
};
const CORS: Fields = Fields::known(&[
    "allowOrigins",
    "allowCredentials",
    "allowMethods",
    "allowHeaders",
    "exposeHeaders",
    "maxAge",
]);
const HEADER_MODIFIER: Fields = Fields::known(&["set", "add", "remove"]);
const HEADER: Fields = Fields::known(&["name", "value"]);
const REWRITE: Fields = Fields::known(&["hostname", "path"]);
const PATH_MODIFIER: Fields = Fields::known(&["type", "replaceFullPath", "replacePrefixMatch"]);
const MIRROR: Fields = Fields::known(&["backendRef", "percent", "fraction"]);
const MIRROR_BACKEND: Fields = Fields::known(&["group", "kind", "name", "namespace", "port"]);
const FRACTION: Fields = Fields::known(&["numerator", "denominator"]);
const REDIRECT: Fields = Fields::known(&["scheme", "hostname", "path", "port", "statusCode"]);

/// The filter types and the field each one's settings go in.
const TYPES: [(&str, &str); 6] = [
    ("RequestHeaderModifier", "requestHeaderModifier"),
    ("ResponseHeaderModifier", "responseHeaderModifier"),
    ("URLRewrite", "urlRewrite"),
    ("RequestMirror", "requestMirror"),
    ("RequestRedirect", "requestRedirect"),
    ("CORS", "cors"),
];

/// A path change, as URLRewrite and RequestRedirect write it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum PathModifier {
    Full(String),
    Prefix(String),
}

/// What a rule's filters ask for.
#[derive(Debug, Default)]
pub(super) struct Filters {
    pub headers: Headers,
    pub rewrite_host: Option<String>,
    pub rewrite_path: Option<(String, PathModifier)>,
    /// The mirror's backend, unresolved, with its path, and the share mirrored.
    pub mirror: Option<(String, Backend, Option<f64>)>,
    /// The redirect's path field, and the redirect.
    pub redirect: Option<(String, Redirect)>,
    pub cors: Option<CorsPolicy>,
}

impl Filters {
    pub(super) fn has_rewrite(&self) -> bool {
        self.rewrite_host.is_some() || self.rewrite_path.is_some()
    }
}

/// Where filters are written, which decides the types allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scope {
    /// An HTTPRoute rule: every type.
    HttpRule,
    /// A GRPCRoute rule: header modifiers and RequestMirror, as the Gateway API
    /// defines GRPCRoute's filters.
    GrpcRule,
    /// A backendRef of either route: header modifiers only.
    BackendRef,
}

/// Reads `filters[]` of `parent`, the types `scope` allows.
pub(super) fn try_filters(
    parent: Obj<'_, '_>,
    namespace: &str,
    scope: Scope,
    r: &mut Report,
) -> Filters {
    let mut out = Filters::default();
    for (path, item) in parent.list(r, "filters") {
        let Some(filter) = Obj::new(r, &path, item, FILTER) else {
            continue;
        };
        let Some(kind) = filter.required_string(r, "type") else {
            continue;
        };
        let Some((_, field)) = TYPES.iter().find(|(t, _)| *t == kind) else {
            let names: Vec<&str> = TYPES.iter().map(|(t, _)| *t).collect();
            let message = format!("{kind:?} is not supported ({})", names.join(", "));
            r.push(filter.at("type"), message);
            continue;
        };
        for (_, other) in TYPES.iter().filter(|(_, f)| f != field) {
            if filter.has(other) {
                r.push(filter.at(other), format!("does not go with type {kind}"));
            }
        }
        let Some(value) = filter.get(field) else {
            r.push(filter.at(field), format!("required for type {kind}"));
            continue;
        };
        let at = filter.at(field);
        let headers = kind.ends_with("HeaderModifier");
        if scope == Scope::BackendRef && !headers {
            r.push(&at, "not supported on a backendRef (only header modifiers)");
            continue;
        }
        if scope == Scope::GrpcRule && !headers && kind != "RequestMirror" {
            let message = format!(
                "{kind:?} is not a GRPCRoute filter (RequestHeaderModifier, \
                 ResponseHeaderModifier, RequestMirror)"
            );
            r.push(filter.at("type"), message);
            continue;
        }
        let once = |r: &mut Report, taken: bool| {
            if taken {
                r.push(&path, format!("only one {kind} filter is allowed"));
            }
            !taken
        };
        match kind.as_str() {
            "RequestHeaderModifier" => {
                merge(&mut out.headers.request, try_header_ops(&at, value, r))
            }
            "ResponseHeaderModifier" => {
                merge(&mut out.headers.response, try_header_ops(&at, value, r))
            }
            "URLRewrite" => {
                if once(r, out.rewrite_host.is_some() || out.rewrite_path.is_some()) {
                    if let Some(rewrite) = Obj::new(r, &at, value, REWRITE) {
                        out.rewrite_host = rewrite.string(r, "hostname");
                        out.rewrite_path = try_path_modifier(rewrite, r);
                    }
                }
            }
            "RequestMirror" => {
                if once(r, out.mirror.is_some()) {
                    out.mirror = try_mirror(&at, value, namespace, r);
                }
            }
            "CORS" => {
                if once(r, out.cors.is_some()) {
                    out.cors = try_cors(&at, value, r);
                }
            }
            _ => {
                if once(r, out.redirect.is_some()) {
                    out.redirect = try_redirect(&at, value, r).map(|redirect| (at, redirect));
                }
            }
        }
    }
    out
}

/// The CORS filter: origins exact (`*` for any, or with a `*` in the host matching
/// any characters there), methods, headers, `maxAge` in seconds (5 when absent, as
/// the Gateway API says).
fn try_cors(path: &str, value: &Value, r: &mut Report) -> Option<CorsPolicy> {
    let cors = Obj::new(r, path, value, CORS)?;
    let allow_origins = cors
        .strings(r, "allowOrigins")
        .into_iter()
        .map(|origin| match origin.as_str() {
            "*" => StringMatch::Regex(".*".into()),
            o if o.contains('*') => {
                let parts: Vec<String> = o.split('*').map(regex::escape).collect();
                StringMatch::Regex(parts.join(".*"))
            }
            _ => StringMatch::Exact(origin),
        })
        .collect();
    let max_age = cors.uint(r, "maxAge", 1, u32::MAX).unwrap_or(5);
    Some(CorsPolicy {
        allow_origins,
        allow_methods: cors.strings(r, "allowMethods"),
        allow_headers: cors.strings(r, "allowHeaders"),
        expose_headers: cors.strings(r, "exposeHeaders"),
        max_age: Some(std::time::Duration::from_secs(u64::from(max_age))),
        allow_credentials: cors.boolean(r, "allowCredentials"),
    })
}

fn merge(into: &mut HeaderOps, ops: HeaderOps) {
    into.set.extend(ops.set);
    into.add.extend(ops.add);
    into.remove.extend(ops.remove);
}

/// `{set: [{name, value}], add: [{name, value}], remove: [name]}`.
fn try_header_ops(path: &str, value: &Value, r: &mut Report) -> HeaderOps {
    let Some(ops) = Obj::new(r, path, value, HEADER_MODIFIER) else {
        return HeaderOps::default();
    };
    let mut out = HeaderOps::default();
    for (key, into) in [("set", &mut out.set), ("add", &mut out.add)] {
        for (item_path, item) in ops.list(r, key) {
            let Some(header) = Obj::new(r, &item_path, item, HEADER) else {
                continue;
            };
            let name = header.required_string(r, "name").filter(|name| {
                let valid = is_header_name(name);
                if !valid {
                    r.push(header.at("name"), "is not a valid header name");
                }
                valid
            });
            let value = header.string(r, "value");
            if !header.has("value") {
                r.push(header.at("value"), "required");
            }
            if let (Some(name), Some(value)) = (name, value) {
                into.insert(name.to_ascii_lowercase(), value);
            }
        }
    }
    for (i, name) in ops.strings(r, "remove").into_iter().enumerate() {
        if is_header_name(&name) {
            out.remove.push(name.to_ascii_lowercase());
        } else {
            let message = "is not a valid header name";
            r.push(format!("{}[{i}]", ops.at("remove")), message);
        }
    }
    out
}

/// `path: {type: ReplaceFullPath | ReplacePrefixMatch, replaceFullPath | replacePrefixMatch}`
/// of `parent`, with the path of the field.
fn try_path_modifier(parent: Obj<'_, '_>, r: &mut Report) -> Option<(String, PathModifier)> {
    let path = parent.at("path");
    let modifier = Obj::new(r, &path, parent.get("path")?, PATH_MODIFIER)?;
    let kind = modifier.required_string(r, "type")?;
    let (field, other, make): (_, _, fn(String) -> PathModifier) = match kind.as_str() {
        "ReplaceFullPath" => ("replaceFullPath", "replacePrefixMatch", PathModifier::Full),
        "ReplacePrefixMatch" => (
            "replacePrefixMatch",
            "replaceFullPath",
            PathModifier::Prefix,
        ),
        _ => {
            let message =
                format!("{kind:?} is not supported (ReplaceFullPath or ReplacePrefixMatch)");
            r.push(modifier.at("type"), message);
            return None;
        }
    };
    if modifier.has(other) {
        r.push(modifier.at(other), format!("does not go with type {kind}"));
    }
    let value = modifier.required_string(r, field)?;
    if !value.starts_with('/') {
        r.push(modifier.at(field), "must start with /");
        return None;
    }
    Some((path, make(value)))
}

fn try_mirror(
    path: &str,
    value: &Value,
    namespace: &str,
    r: &mut Report,
) -> Option<(String, Backend, Option<f64>)> {
    let mirror = Obj::new(r, path, value, MIRROR)?;
    let percent = mirror.uint(r, "percent", 0, 100).map(f64::from);
    let fraction_path = mirror.at("fraction");
    let fraction = mirror.get("fraction").and_then(|value| {
        let fraction = Obj::new(r, &fraction_path, value, FRACTION)?;
        let numerator = fraction.uint(r, "numerator", 0, u32::MAX);
        if !fraction.has("numerator") {
            r.push(fraction.at("numerator"), "required");
        }
        let denominator = fraction.uint(r, "denominator", 1, u32::MAX).unwrap_or(100);
        match numerator? {
            n if n > denominator => {
                r.push(fraction.at("numerator"), "must not exceed the denominator");
                None
            }
            n => Some(f64::from(n) * 100.0 / f64::from(denominator)),
        }
    });
    if percent.is_some() && fraction.is_some() {
        r.push(
            mirror.at("fraction"),
            "only one of percent or fraction may be set",
        );
    }
    let backend_path = mirror.at("backendRef");
    let Some(backend) = mirror.get("backendRef") else {
        r.push(backend_path, "required");
        return None;
    };
    let backend = Obj::new(r, &backend_path, backend, MIRROR_BACKEND)?;
    let backend = try_backend_ref(backend, namespace, r)?;
    Some((backend_path, backend, percent.or(fraction)))
}

/// A redirect: status 302 unless `statusCode` says another of 301, 303, 307 and 308;
/// the path replaced whole or by prefix (checked against the rule's matches later).
fn try_redirect(path: &str, value: &Value, r: &mut Report) -> Option<Redirect> {
    let redirect = Obj::new(r, path, value, REDIRECT)?;
    let scheme = redirect.string(r, "scheme");
    if scheme
        .as_deref()
        .is_some_and(|s| s != "http" && s != "https")
    {
        r.push(redirect.at("scheme"), "must be http or https");
    }
    let status = match redirect.uint(r, "statusCode", 0, 999) {
        None => 302,
        Some(code @ (301 | 302 | 303 | 307 | 308)) => code,
        Some(_) => {
            r.push(
                redirect.at("statusCode"),
                "must be 301, 302, 303, 307 or 308",
            );
            302
        }
    };
    let (uri, prefix) = match try_path_modifier(redirect, r) {
        Some((_, PathModifier::Full(path))) => (Some(path), None),
        Some((_, PathModifier::Prefix(prefix))) => (None, Some(prefix)),
        None => (None, None),
    };
    Some(Redirect {
        uri,
        prefix,
        authority: redirect.string(r, "hostname"),
        scheme,
        port: redirect.uint(r, "port", 1, 65535),
        status,
        port_follows_scheme: true,
    })
}
