//! The admin API under `serve --kubernetes`: the cluster is the source of truth for
//! resources, so the REST calls that would change them (apply, delete, restore)
//! answer `409 Conflict` with a clear error; reads, dry runs, proxies, revisions,
//! rollouts and probes work as always. A request without the right token still gets
//! its 401 first.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;

use super::ApiError;

/// The error every refused write answers.
pub const CLUSTER_IS_SOURCE: &str =
    "in --kubernetes mode the cluster is the source of truth: use kubectl apply";

/// Wraps the admin router so that resource writes are refused (see the module doc).
pub fn cluster_read_only(router: Router, token: Option<String>) -> Router {
    let token: Option<Arc<str>> = token.map(Arc::from);
    router.layer(middleware::from_fn(move |req: Request, next: Next| {
        let token = token.clone();
        async move {
            if is_write(&req) && super::authorized(&req, token.as_deref()) {
                return refuse();
            }
            next.run(req).await
        }
    }))
}

/// `POST /api/v1/apply` (not a dry run), `POST /api/v1/delete`,
/// `DELETE /api/v1/resources/...` and `POST /api/v1/revisions/{n}/restore`.
fn is_write(req: &Request) -> bool {
    let path = req.uri().path().trim_end_matches('/');
    let method = req.method();
    let dry_run = req
        .uri()
        .query()
        .is_some_and(|q| q.split('&').any(|p| p == "dryRun=true" || p == "dryRun=1"));
    match *method {
        Method::POST => {
            (path == "/api/v1/apply" && !dry_run)
                || path == "/api/v1/delete"
                || (path.starts_with("/api/v1/revisions/") && path.ends_with("/restore"))
        }
        Method::DELETE => path.starts_with("/api/v1/resources/"),
        _ => false,
    }
}

fn refuse() -> Response {
    ApiError::new(StatusCode::CONFLICT, CLUSTER_IS_SOURCE).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::routing::{delete, get, post};
    use tower::ServiceExt;

    fn mk_router(token: Option<&str>) -> Router {
        let ok = || async { "ok" };
        let inner = Router::new()
            .route("/api/v1/apply", post(ok))
            .route("/api/v1/delete", post(ok))
            .route("/api/v1/resources", get(ok))
            .route("/api/v1/resources/{k}/{ns}/{n}", delete(ok))
            .route("/api/v1/revisions/{n}/restore", post(ok));
        cluster_read_only(inner, token.map(str::to_string))
    }

    async fn status(router: Router, method: &str, uri: &str, bearer: Option<&str>) -> u16 {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(b) = bearer {
            req = req.header("authorization", format!("Bearer {b}"));
        }
        let resp = router
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap();
        resp.status().as_u16()
    }

    #[tokio::test]
    async fn writes_are_refused_and_reads_pass() {
        let r = || mk_router(None);
        assert_eq!(status(r(), "POST", "/api/v1/apply", None).await, 409);
        assert_eq!(status(r(), "POST", "/api/v1/delete", None).await, 409);
        assert_eq!(
            status(
                r(),
                "DELETE",
                "/api/v1/resources/VirtualService/default/web",
                None
            )
            .await,
            409
        );
        assert_eq!(
            status(r(), "POST", "/api/v1/revisions/3/restore", None).await,
            409
        );
        assert_eq!(
            status(r(), "POST", "/api/v1/apply?dryRun=true", None).await,
            200
        );
        assert_eq!(status(r(), "GET", "/api/v1/resources", None).await, 200);
    }

    #[tokio::test]
    async fn a_request_without_the_token_is_left_to_the_token_check() {
        let r = || mk_router(Some("s3cret"));
        assert_eq!(
            status(r(), "POST", "/api/v1/apply", Some("s3cret")).await,
            409
        );
        // The inner router (here without a token check) answers; the real one says 401.
        assert_eq!(
            status(r(), "POST", "/api/v1/apply", Some("wrong")).await,
            200
        );
    }

    #[tokio::test]
    async fn the_error_says_what_to_do() {
        let req = Request::builder()
            .method("POST")
            .uri("/api/v1/apply")
            .body(Body::empty())
            .unwrap();
        let resp = mk_router(None).oneshot(req).await.unwrap();
        let body = axum::body::to_bytes(resp.into_body(), 1 << 16)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"], CLUSTER_IS_SOURCE);
    }
}
