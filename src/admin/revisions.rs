//! Revision endpoints: history, restore, and where the proxies stand on a revision.

use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use tokio::time::Instant;

use super::error::ApiError;
use super::resources::{answer, wait_of, ChangeParams};
use super::views::{rfc3339, RevisionEntry, RevisionList, RevisionStatus};
use super::AdminState;

#[utoipa::path(get, path = "/api/v1/revisions", responses((status = 200, body = RevisionList)))]
pub async fn list(State(state): State<AdminState>) -> Result<Json<RevisionList>, ApiError> {
    let desired = state.desired.clone();
    let infos = tokio::task::spawn_blocking(move || desired.revisions())
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    let revisions = infos
        .into_iter()
        .map(|r| RevisionEntry {
            revision: r.revision,
            created: rfc3339(r.created),
            summary: r.summary,
        })
        .collect();
    Ok(Json(RevisionList { revisions }))
}

#[utoipa::path(post, path = "/api/v1/revisions/{revision}/restore", params(ChangeParams),
    responses((status = 200, body = super::views::ApplyResponse), (status = 404, body = super::error::ErrorBody)))]
pub async fn restore(
    State(state): State<AdminState>,
    Path(revision): Path<u64>,
    Query(params): Query<ChangeParams>,
) -> Result<Response, ApiError> {
    let wait = wait_of(&params)?;
    let desired = state.desired.clone();
    let outcome = tokio::task::spawn_blocking(move || desired.restore(revision))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    answer(&state, outcome, wait).await
}

#[utoipa::path(get, path = "/api/v1/revisions/{revision}/status",
    responses((status = 200, body = RevisionStatus), (status = 404, body = super::error::ErrorBody)))]
pub async fn status(
    State(state): State<AdminState>,
    Path(revision): Path<u64>,
) -> Result<Json<RevisionStatus>, ApiError> {
    let current = state.desired.published().revision;
    if revision == 0 || revision > current {
        return Err(ApiError::not_found(format!(
            "revision {revision} not found"
        )));
    }
    Ok(Json(RevisionStatus::of(revision, &state.ledger.proxies())))
}

/// Waits until every connected proxy has ACKed `revision`, one has NACKed it, or the
/// timeout passes; returns where they stand then.
pub async fn wait_for(state: &AdminState, revision: u64, timeout: Duration) -> RevisionStatus {
    let deadline = Instant::now() + timeout;
    let mut changes = state.ledger.subscribe();
    loop {
        changes.borrow_and_update();
        let status = RevisionStatus::of(revision, &state.ledger.proxies());
        if status.complete() || !status.rejected.is_empty() {
            return status;
        }
        tokio::select! {
            changed = changes.changed() => if changed.is_err() { return status },
            _ = tokio::time::sleep_until(deadline) => return status,
        }
    }
}
