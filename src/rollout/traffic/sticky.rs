//! Sticky canaries (Flagger's `sessionAffinity`) in route terms: the cookie each side
//! of a release sets, and the match that keeps a cookie's holder on its side.
//!
//! The cookie's value is a token derived from the Rollout and its two destinations, so
//! every step of one release (and a restarted control plane) issues the same cookie,
//! while the next release, with a new canary, issues a new one and old cookies match
//! nothing.

use std::collections::BTreeMap;

use crate::model::{HeaderMatch, Rollout, RouteMatch, SessionAffinity, StringMatch};

/// The release's cookie value: 16 hex digits of an FNV-1a hash of the Rollout's key and
/// destinations.
pub(super) fn token(rollout: &Rollout) -> String {
    let text = format!(
        "{}|{}|{:?}|{}|{:?}",
        rollout.key,
        rollout.stable.host,
        rollout.stable.subset,
        rollout.canary.host,
        rollout.canary.subset
    );
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// The `Set-Cookie` value that pins a response's receiver to the side of `cookie`.
pub(super) fn set_cookie(cookie: &str, token: &str, affinity: &SessionAffinity) -> String {
    let max_age = affinity.max_age.as_secs();
    format!("{cookie}={token}; Max-Age={max_age}; Path=/")
}

/// Whether a `Set-Cookie` value is one that [`set_cookie`] wrote for `cookie`.
pub(super) fn is_ours(value: &str, cookie: &str) -> bool {
    value
        .strip_prefix(cookie)
        .is_some_and(|rest| rest.starts_with('=') && rest.ends_with("; Path=/"))
}

/// A match on a `Cookie` header that carries `cookie=token`, among any others.
pub(super) fn cookie_match(cookie: &str, token: &str) -> RouteMatch {
    let regex = format!("(.*;\\s*)?{}={token}(;.*)?", escape(cookie));
    RouteMatch {
        headers: BTreeMap::from([(
            "cookie".to_string(),
            HeaderMatch::Value(StringMatch::Regex(regex)),
        )]),
        ..RouteMatch::default()
    }
}

/// `text` with the characters RE2 gives a meaning escaped.
fn escape(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_round_trip_and_escape() {
        let affinity = SessionAffinity {
            cookie_name: "flagger-cookie".into(),
            primary_cookie_name: "primary".into(),
            max_age: std::time::Duration::from_secs(21600),
        };
        let value = set_cookie("flagger-cookie", "00ff", &affinity);
        assert_eq!(value, "flagger-cookie=00ff; Max-Age=21600; Path=/");
        assert!(is_ours(&value, "flagger-cookie"));
        assert!(!is_ours(&value, "flagger"));
        assert!(!is_ours("flagger-cookie=1; Path=/x", "flagger-cookie"));
        let m = cookie_match("a.b", "00ff");
        let HeaderMatch::Value(StringMatch::Regex(regex)) = &m.headers["cookie"] else {
            panic!("a regex match");
        };
        assert_eq!(regex, "(.*;\\s*)?a\\.b=00ff(;.*)?");
        let re = regex::Regex::new(&format!("^(?:{regex})$")).unwrap();
        assert!(re.is_match("a.b=00ff"));
        assert!(re.is_match("x=1; a.b=00ff; y=2"));
        assert!(!re.is_match("xa.b=00ff"));
        assert!(!re.is_match("a.b=00ffee"));
        assert!(!re.is_match("aXb=00ff"));
    }
}
