//! The admin REST API (SPEC section 3): `fn router(state) -> axum::Router`.
//!
//! Handlers only translate HTTP to calls on [`Desired`], the [`Ledger`] and the current
//! [`Snapshot`]; every domain error becomes an [`ApiError`] with per-field details.
//! Every `/api/` route requires the bearer token when one is configured; the probes,
//! `/metrics` and the dashboard (`/`, `/dashboard`: a page without data) stay open.

mod change;
mod dashboard;
mod error;
mod extract;
mod openapi;
mod probes;
mod read_only;
mod resources;
mod revisions;
mod rollouts;
mod schemas;
mod status;
pub(crate) mod views;

pub use error::ApiError;
pub use read_only::cluster_read_only;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tokio::sync::watch;

use crate::controller::Controller;
use crate::desired::Desired;
use crate::ledger::Ledger;
use crate::metrics::Metrics;
use crate::snapshot::Snapshot;

/// The largest request body accepted (a clear 413 past it).
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct AdminState {
    pub desired: Arc<Desired>,
    pub rollouts: Arc<Controller>,
    pub ledger: Arc<Ledger>,
    pub metrics: Arc<Metrics>,
    pub snapshots: watch::Receiver<Arc<Snapshot>>,
    /// Required as `Authorization: Bearer <token>` on `/api/` when set.
    pub token: Option<Arc<str>>,
    /// True once the store is loaded and the xDS port listens.
    pub ready: Arc<AtomicBool>,
}

pub fn router(state: AdminState) -> Router {
    let api = Router::new()
        .route("/api/v1/apply", post(resources::apply))
        .route("/api/v1/delete", post(resources::delete_documents))
        .route("/api/v1/resources", get(resources::list))
        .route(
            "/api/v1/resources/{kind}/{namespace}/{name}",
            get(resources::get_one).delete(resources::delete_one),
        )
        .route("/api/v1/proxies", get(status::proxies))
        .route("/api/v1/config_dump", get(status::config_dump))
        .route("/api/v1/revisions", get(revisions::list))
        .route(
            "/api/v1/revisions/{revision}/restore",
            post(revisions::restore),
        )
        .route(
            "/api/v1/revisions/{revision}/status",
            get(revisions::status),
        )
        .route("/api/v1/rollouts", get(rollouts::list))
        .route(
            "/api/v1/rollouts/{namespace}/{name}",
            get(rollouts::get_one),
        )
        .route(
            "/api/v1/rollouts/{namespace}/{name}/{command}",
            post(rollouts::command),
        )
        .route("/api/v1/openapi.json", get(openapi::document))
        .layer(middleware::from_fn_with_state(state.clone(), require_token))
        .layer(middleware::from_fn(refuse_cross_site));
    Router::new()
        .merge(api)
        .route("/", get(dashboard::page))
        .route("/dashboard", get(dashboard::page))
        .route("/healthz", get(probes::healthz))
        .route("/readyz", get(probes::readyz))
        .route("/metrics", get(probes::metrics))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

async fn require_token(State(state): State<AdminState>, req: Request, next: Next) -> Response {
    if !authorized(&req, state.token.as_deref()) {
        return ApiError::unauthorized().into_response();
    }
    next.run(req).await
}

/// Whether the request carries the bearer token (always, when none is set): the one
/// token check of the admin API.
pub(crate) fn authorized(req: &Request, token: Option<&str>) -> bool {
    let Some(token) = token else { return true };
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    crate::listen::bearer::carries(given, token)
}

/// Refuses a browser's cross-site request that changes something (any method but
/// GET, HEAD and OPTIONS): an `Origin` other than this server's own, or
/// `Sec-Fetch-Site: cross-site|same-site`. So a web page cannot drive a loopback admin
/// API (abort a release, restore a revision) through the operator's browser, even
/// without a token. The CLI and scripts send neither header.
async fn refuse_cross_site(req: Request, next: Next) -> Response {
    if matches!(req.method().as_str(), "GET" | "HEAD" | "OPTIONS") {
        return next.run(req).await;
    }
    let headers = req.headers();
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let fetch_site = text(header::HeaderName::from_static("sec-fetch-site"));
    let host = text(header::HOST);
    let foreign_origin = text(header::ORIGIN).is_some_and(|origin| {
        let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
        host != Some(origin_host)
    });
    if foreign_origin || matches!(fetch_site, Some("cross-site" | "same-site")) {
        let error = ApiError::new(
            StatusCode::FORBIDDEN,
            "cross-site request refused: the admin API takes changes only from its own \
             dashboard, the CLI or scripts (no foreign Origin)",
        );
        return error.into_response();
    }
    next.run(req).await
}

#[cfg(test)]
mod tests;
