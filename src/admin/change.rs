//! What a change answers: the `?dryRun` and `?wait` parameters, and the outcome with,
//! after a wait, where the proxies stand (200, 409 on a NACK, 504 when time ran out).

use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use tokio::time::Instant;

use super::error::ApiError;
use super::views::{ApplyResponse, RevisionStatus};
use super::AdminState;
use crate::desired::Outcome;

/// The longest `?wait=` honoured, and the wait of `?wait=true`.
const MAX_WAIT: Duration = Duration::from_secs(300);
const DEFAULT_WAIT: Duration = Duration::from_secs(60);

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChangeParams {
    /// Only report what would change (the Envoy-level diff); apply nothing.
    #[serde(rename = "dryRun", default)]
    pub dry_run: bool,
    /// Return only once every connected proxy has ACKed the new revision, or one has
    /// NACKed it, or this long has passed (`30s`, or `true` for 60s; at most 5m).
    #[param(required = false, value_type = String, example = "30s")]
    pub wait: Option<String>,
}

pub fn wait_of(params: &ChangeParams) -> Result<Option<Duration>, ApiError> {
    match params.wait.as_deref() {
        None | Some("false") | Some("") => Ok(None),
        Some("true") => Ok(Some(DEFAULT_WAIT)),
        Some(text) => humantime::parse_duration(text)
            .map(|d| Some(d.min(MAX_WAIT)))
            .map_err(|e| ApiError::bad_request(format!("wait: {e} (use e.g. 30s)"))),
    }
}

/// 200 with the outcome; with a wait, 409 when a proxy NACKed the revision and 504 when
/// the wait ran out (the revision is stored either way, and the body says so).
pub async fn answer(
    state: &AdminState,
    outcome: Outcome,
    wait: Option<Duration>,
) -> Result<Response, ApiError> {
    let status = match wait {
        Some(timeout) => Some(wait_for(state, outcome.revision, timeout).await),
        None => None,
    };
    let code = match &status {
        Some(s) if !s.rejected.is_empty() => StatusCode::CONFLICT,
        Some(s) if !s.complete() => StatusCode::GATEWAY_TIMEOUT,
        _ => StatusCode::OK,
    };
    let body = ApplyResponse {
        revision: outcome.revision,
        changed: outcome.changed,
        status,
    };
    Ok((code, Json(body)).into_response())
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
