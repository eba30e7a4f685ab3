//! What a VirtualService HTTP route does besides choosing destinations: rewrite,
//! redirect, retries, fault injection, CORS and header changes.

use serde_json::Value;

use crate::ingest::{is_header_name, try_string_match, Fields, Obj, Report};
use crate::model::{
    Abort, CorsPolicy, Delay, Fault, HeaderOps, Headers, Redirect, Retries, Rewrite,
};

const REWRITE: Fields = Fields {
    known: &["uri", "authority"],
    unsupported: &["uriRegexRewrite"],
};
const REDIRECT: Fields = Fields {
    known: &["uri", "authority", "scheme", "port", "redirectCode"],
    unsupported: &["derivePort"],
};
const RETRIES: Fields = Fields {
    known: &["attempts", "perTryTimeout", "retryOn"],
    unsupported: &[
        "retryRemoteLocalities",
        "retryIgnorePreviousHosts",
        "backoff",
    ],
};
const FAULT: Fields = Fields::known(&["delay", "abort"]);
const DELAY: Fields = Fields {
    known: &["fixedDelay", "percentage"],
    unsupported: &["percent", "exponentialDelay"],
};
const ABORT: Fields = Fields {
    known: &["httpStatus", "percentage"],
    unsupported: &["grpcStatus", "http2Error"],
};
const CORS: Fields = Fields {
    known: &[
        "allowOrigins",
        "allowMethods",
        "allowHeaders",
        "exposeHeaders",
        "maxAge",
        "allowCredentials",
    ],
    unsupported: &["allowOrigin", "unmatchedPreflights"],
};
const HEADERS: Fields = Fields::known(&["request", "response"]);
const HEADER_OPS: Fields = Fields::known(&["set", "add", "remove"]);

/// Reads the object at `key` of `parent` with `fields`, if present.
fn child<'v>(parent: &Obj<'v, '_>, key: &str) -> Option<(String, &'v Value)> {
    parent.get(key).map(|value| (parent.at(key), value))
}

pub(crate) fn try_rewrite(route: Obj<'_, '_>, r: &mut Report) -> Option<Rewrite> {
    let (path, value) = child(&route, "rewrite")?;
    let rewrite = Obj::new(r, &path, value, REWRITE)?;
    Some(Rewrite {
        uri: rewrite.string(r, "uri"),
        authority: rewrite.string(r, "authority"),
    })
}

pub(crate) fn try_redirect(path: &str, value: &Value, r: &mut Report) -> Option<Redirect> {
    let redirect = Obj::new(r, path, value, REDIRECT)?;
    let scheme = redirect.string(r, "scheme");
    if let Some(scheme) = scheme.as_deref() {
        if !matches!(scheme, "http" | "https") {
            r.push(redirect.at("scheme"), "must be http or https");
        }
    }
    let status = match redirect.uint(r, "redirectCode", 0, 999) {
        None => 301,
        Some(code @ (301 | 302 | 303 | 307 | 308)) => code,
        Some(_) => {
            r.push(
                redirect.at("redirectCode"),
                "must be 301, 302, 303, 307 or 308",
            );
            301
        }
    };
    Some(Redirect {
        uri: redirect.string(r, "uri"),
        prefix: None,
        authority: redirect.string(r, "authority"),
        scheme,
        port: redirect.uint(r, "port", 1, 65535),
        status,
        port_follows_scheme: false,
    })
}

/// Retries; `attempts` left out is 0, which (as in Istio) disables retries.
pub(crate) fn try_retries(route: Obj<'_, '_>, r: &mut Report) -> Option<Retries> {
    let (path, value) = child(&route, "retries")?;
    let retries = Obj::new(r, &path, value, RETRIES)?;
    let retry_on = retries.string(r, "retryOn");
    if let Some(retry_on) = &retry_on {
        if retry_on.split(',').any(|c| c.trim().is_empty()) {
            r.push(
                retries.at("retryOn"),
                "must be a comma-separated list of conditions",
            );
        }
    }
    Some(Retries {
        attempts: retries.uint(r, "attempts", 0, i32::MAX as u32).unwrap_or(0),
        per_try_timeout: retries.duration(r, "perTryTimeout"),
        retry_on,
    })
}

pub(crate) fn try_fault(route: Obj<'_, '_>, r: &mut Report) -> Option<Fault> {
    let (path, value) = child(&route, "fault")?;
    let fault = Obj::new(r, &path, value, FAULT)?;
    let delay = child(&fault, "delay").and_then(|(path, value)| {
        let delay = Obj::new(r, &path, value, DELAY)?;
        let fixed = delay.duration(r, "fixedDelay");
        if !delay.has("fixedDelay") {
            r.push(delay.at("fixedDelay"), "required");
        }
        let percent = delay.percentage(r, "percentage");
        Some(Delay {
            fixed: fixed?,
            percent,
        })
    });
    let abort = child(&fault, "abort").and_then(|(path, value)| {
        let abort = Obj::new(r, &path, value, ABORT)?;
        let http_status = abort.uint(r, "httpStatus", 200, 599);
        if !abort.has("httpStatus") {
            r.push(abort.at("httpStatus"), "required");
        }
        let percent = abort.percentage(r, "percentage");
        Some(Abort {
            http_status: http_status?,
            percent,
        })
    });
    if !fault.has("delay") && !fault.has("abort") {
        r.push(&path, "one of delay or abort is required");
    }
    Some(Fault { delay, abort })
}

pub(crate) fn try_cors(route: Obj<'_, '_>, r: &mut Report) -> Option<CorsPolicy> {
    let (path, value) = child(&route, "corsPolicy")?;
    let cors = Obj::new(r, &path, value, CORS)?;
    let allow_origins = cors
        .list(r, "allowOrigins")
        .into_iter()
        .filter_map(|(path, value)| try_string_match(&path, value, r))
        .collect();
    Some(CorsPolicy {
        allow_origins,
        allow_methods: cors.strings(r, "allowMethods"),
        allow_headers: cors.strings(r, "allowHeaders"),
        expose_headers: cors.strings(r, "exposeHeaders"),
        max_age: cors.duration(r, "maxAge"),
        allow_credentials: cors.boolean(r, "allowCredentials"),
    })
}

/// `headers.request` / `headers.response` of a route or of one destination.
pub(crate) fn try_headers(parent: Obj<'_, '_>, r: &mut Report) -> Headers {
    let Some((path, value)) = child(&parent, "headers") else {
        return Headers::default();
    };
    let Some(headers) = Obj::new(r, &path, value, HEADERS) else {
        return Headers::default();
    };
    Headers {
        request: try_header_ops(headers, "request", r),
        response: try_header_ops(headers, "response", r),
    }
}

fn try_header_ops(headers: Obj<'_, '_>, key: &str, r: &mut Report) -> HeaderOps {
    let path = headers.at(key);
    let Some(ops) = headers
        .get(key)
        .and_then(|value| Obj::new(r, &path, value, HEADER_OPS))
    else {
        return HeaderOps::default();
    };
    let out = HeaderOps {
        set: ops.string_map(r, "set"),
        add: ops.string_map(r, "add"),
        remove: ops.strings(r, "remove"),
    };
    let names = out.set.keys().map(|n| ("set", n.as_str()));
    let names = names.chain(out.add.keys().map(|n| ("add", n.as_str())));
    for (op, name) in names {
        if !is_header_name(name) {
            r.push(
                ops.at(&format!("{op}.{name}")),
                "is not a valid header name",
            );
        }
    }
    for (i, name) in out.remove.iter().enumerate() {
        if !is_header_name(name) {
            r.push(
                format!("{}[{i}]", ops.at("remove")),
                "is not a valid header name",
            );
        }
    }
    out
}
