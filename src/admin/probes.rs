//! The open endpoints beside the API: liveness, readiness and Prometheus metrics.

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use super::AdminState;

#[utoipa::path(get, path = "/healthz", tag = "probes", security(()),
    responses((status = 200, description = "the process is up", body = String, content_type = "text/plain")))]
pub async fn healthz() -> &'static str {
    "ok"
}

#[utoipa::path(get, path = "/readyz", tag = "probes", security(()),
    responses(
        (status = 200, description = "the store is loaded and the xDS port listens", body = String, content_type = "text/plain"),
        (status = 503, description = "not ready yet", body = String, content_type = "text/plain")))]
pub async fn readyz(State(state): State<AdminState>) -> Response {
    if state.ready.load(Ordering::SeqCst) {
        "ready".into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready").into_response()
    }
}

#[utoipa::path(get, path = "/metrics", tag = "probes", security(()),
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
pub async fn metrics(State(state): State<AdminState>) -> Response {
    let config = state.desired.published().config;
    let mut releases = Vec::new();
    for rollout in &config.rollouts {
        if let Some(status) = state.rollouts.status(&rollout.key).await {
            releases.push((rollout.key.clone(), status));
        }
    }
    let mut text = state.metrics.render();
    text.push_str(&crate::rollout::series::render(&releases));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}
