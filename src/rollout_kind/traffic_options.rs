//! The analysis fields that shape a release's traffic beyond its weights: Flagger's
//! `sessionAffinity` (sticky canaries) and `mirror` / `mirrorWeight`.

use std::time::Duration;

use crate::ingest::{Fields, Obj, Report};
use crate::model::{SessionAffinity, Strategy, Weight};

const SESSION_AFFINITY: Fields = Fields::known(&["cookieName", "maxAge", "primaryCookieName"]);

/// Flagger's default `maxAge`: a day.
const DEFAULT_MAX_AGE: Duration = Duration::from_secs(86_400);

/// `sessionAffinity` (Canary only, as in Flagger): `cookieName` required, `maxAge` in
/// seconds, `primaryCookieName` defaulting to `<cookieName>-primary`. Flagger pins only
/// the canary's users unless `primaryCookieName` is given; coalmine always pins both
/// sides, so a user who landed on stable stays there for the whole release too.
pub(super) fn try_session_affinity(
    a: Obj<'_, '_>,
    strategy: Strategy,
    r: &mut Report,
) -> Option<SessionAffinity> {
    let value = a.get("sessionAffinity")?;
    let path = a.at("sessionAffinity");
    if strategy != Strategy::Canary {
        r.push(&path, "applies to Canary only");
        return None;
    }
    let s = Obj::new(r, &path, value, SESSION_AFFINITY)?;
    let cookie = s
        .required_string(r, "cookieName")
        .filter(|name| check_cookie_name(r, &s.at("cookieName"), name));
    let primary = s
        .string(r, "primaryCookieName")
        .filter(|name| check_cookie_name(r, &s.at("primaryCookieName"), name));
    let max_age = s
        .uint(r, "maxAge", 1, u32::MAX)
        .map(|seconds| Duration::from_secs(u64::from(seconds)))
        .unwrap_or(DEFAULT_MAX_AGE);
    let cookie_name = cookie?;
    let primary_cookie_name = primary.unwrap_or_else(|| format!("{cookie_name}-primary"));
    if primary_cookie_name == cookie_name {
        r.push(s.at("primaryCookieName"), "must differ from cookieName");
        return None;
    }
    Some(SessionAffinity {
        cookie_name,
        primary_cookie_name,
        max_age,
    })
}

/// A cookie name as RFC 6265 allows it: a token of letters, digits and `!#$%&'*+-.^_`|~`.
fn check_cookie_name(r: &mut Report, path: &str, name: &str) -> bool {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c));
    if !ok {
        r.push(
            path,
            format!("{name:?} is not a cookie name (letters, digits and !#$%&'*+-.^_`|~)"),
        );
    }
    ok
}

/// `mirror: true` with `mirrorWeight` (a percentage over 0, default 100), for Canary
/// and BlueGreen as in Flagger; `mirrorWeight` without `mirror: true` is an error.
pub(super) fn try_mirror(a: Obj<'_, '_>, strategy: Strategy, r: &mut Report) -> Option<Weight> {
    let mirror = a.boolean(r, "mirror").unwrap_or(false);
    let weight = a.get("mirrorWeight").map(|value| {
        value
            .as_f64()
            .and_then(Weight::from_percent)
            .filter(|w| *w > Weight::ZERO)
            .ok_or(())
    });
    if let Some(Err(())) = weight {
        r.push(
            a.at("mirrorWeight"),
            "must be a number over 0 and at most 100, with at most 4 decimals",
        );
    }
    if !mirror {
        if weight.is_some() {
            r.push(a.at("mirrorWeight"), "only with mirror: true");
        }
        return None;
    }
    if strategy == Strategy::ABTesting {
        r.push(a.at("mirror"), "applies to Canary and BlueGreen only");
        return None;
    }
    match weight {
        None => Some(Weight::FULL),
        Some(Ok(w)) => Some(w),
        Some(Err(())) => None,
    }
}
