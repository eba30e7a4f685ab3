//! The one bearer-token check of both ports: every `/api/` call of the admin API and
//! every CSDS call on the xDS port carry `authorization: Bearer <token>` when a token
//! is set. Compared in constant time.

/// Whether an `authorization` value (HTTP header or gRPC metadata) carries `token`.
pub fn carries(authorization: Option<&str>, token: &str) -> bool {
    let given = authorization
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    constant_time_eq(given.as_bytes(), token.as_bytes())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_bearer_token_passes() {
        assert!(carries(Some("Bearer s3cret"), "s3cret"));
        for wrong in [
            None,
            Some("s3cret"),
            Some("Bearer s3cre"),
            Some("Bearer s3cret "),
        ] {
            assert!(!carries(wrong, "s3cret"), "{wrong:?}");
        }
    }
}
