//! The dashboard (SPEC section 1): one self-contained HTML page at `/` and `/dashboard`,
//! open like the probes since it holds no data. Its script polls the `/api/v1/...`
//! endpoints (with the bearer token the operator enters) and never loads anything from
//! elsewhere; this module only serves the page and must not grow data of its own.

use axum::http::header;
use axum::response::IntoResponse;

/// The page, embedded in the binary.
pub const PAGE: &str = include_str!("dashboard.html");

/// The page may run only its own inline script and style and talk only to this server;
/// it may not be framed (its buttons drive releases).
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'unsafe-inline'; \
    style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'";

pub async fn page() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::X_FRAME_OPTIONS, "DENY"),
        ],
        PAGE,
    )
}
