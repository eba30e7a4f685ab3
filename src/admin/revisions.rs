//! Revision endpoints: history, restore, and where the proxies stand on a revision.

use axum::extract::State;
use axum::response::Response;
use axum::Json;

use super::change::{answer, wait_of, ChangeParams};
use super::error::{ApiError, ErrorBody};
use super::extract::{Path, Query};
use super::schemas::Conflict;
use super::views::{rfc3339, RevisionEntry, RevisionList, RevisionStatus};
use super::AdminState;

#[utoipa::path(get, path = "/api/v1/revisions", operation_id = "list_revisions",
    responses((status = 200, description = "every stored revision, oldest first", body = RevisionList)))]
pub async fn list(State(state): State<AdminState>) -> Result<Json<RevisionList>, ApiError> {
    let desired = state.desired.clone();
    let infos = crate::desired::blocking(move || desired.revisions()).await?;
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

#[utoipa::path(post, path = "/api/v1/revisions/{revision}/restore", operation_id = "restore_revision", params(("revision" = u64, Path, description = "a revision number (1 is the first)", minimum = 1), ChangeParams),
    responses(
        (status = 200, description = "a new revision equal to that one (or none if equal already)", body = super::views::ApplyResponse),
        (status = 400, description = "a parameter that does not parse", body = ErrorBody),
        (status = 404, description = "no such revision", body = ErrorBody),
        (status = 409, description = "NACKed (with `wait`), or refused under --kubernetes", body = Conflict),
        (status = 422, description = "that revision no longer validates", body = ErrorBody),
        (status = 504, description = "the wait ran out; the revision is stored", body = super::views::ApplyResponse)))]
pub async fn restore(
    State(state): State<AdminState>,
    Path(revision): Path<u64>,
    Query(params): Query<ChangeParams>,
) -> Result<Response, ApiError> {
    let wait = wait_of(&params)?;
    let desired = state.desired.clone();
    let outcome = crate::desired::blocking(move || desired.restore(revision)).await?;
    answer(&state, outcome, wait).await
}

#[utoipa::path(get, path = "/api/v1/revisions/{revision}/status", operation_id = "revision_status", params(("revision" = u64, Path, description = "a revision number (1 is the first)", minimum = 1)),
    responses((status = 200, description = "where the connected proxies stand on it", body = RevisionStatus),
        (status = 400, description = "a parameter that does not parse", body = ErrorBody),
        (status = 404, description = "no such revision", body = ErrorBody)))]
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
