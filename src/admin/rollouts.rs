//! Rollout endpoints: a release's status, and promote / abort / pause / resume.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::error::{ApiError, ErrorBody};
use super::extract::Path;
use super::schemas::RolloutCommand;
use super::AdminState;
use axum::http::StatusCode;

use crate::controller::{Command, CommandError};
use crate::model::{Kind, ResourceKey};
use crate::rollout::RolloutStatus;

/// Every release the controller drives.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RolloutList {
    pub rollouts: Vec<RolloutEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RolloutEntry {
    pub namespace: String,
    pub name: String,
    pub status: RolloutStatus,
}

#[utoipa::path(get, path = "/api/v1/rollouts", operation_id = "list_rollouts",
    responses((status = 200, description = "every release the controller drives", body = RolloutList)))]
pub async fn list(State(state): State<AdminState>) -> Json<RolloutList> {
    let config = state.desired.published().config;
    let mut rollouts = Vec::new();
    for r in &config.rollouts {
        if let Some(status) = state.rollouts.status(&r.key).await {
            rollouts.push(RolloutEntry {
                namespace: r.key.namespace.clone(),
                name: r.key.name.clone(),
                status,
            });
        }
    }
    Json(RolloutList { rollouts })
}

#[utoipa::path(get, path = "/api/v1/rollouts/{namespace}/{name}", operation_id = "get_rollout",
    params(("namespace" = String, Path), ("name" = String, Path)),
    responses((status = 200, description = "the release's status", body = RolloutStatus),
        (status = 400, description = "a parameter that does not parse", body = ErrorBody),
        (status = 404, description = "no such Rollout", body = ErrorBody)))]
pub async fn get_one(
    State(state): State<AdminState>,
    Path((namespace, name)): Path<(String, String)>,
) -> Result<Json<RolloutStatus>, ApiError> {
    let key = ResourceKey::new(Kind::Rollout, namespace, name);
    let status = state
        .rollouts
        .status(&key)
        .await
        .ok_or_else(|| not_found(&key))?;
    Ok(Json(status))
}

#[utoipa::path(post, path = "/api/v1/rollouts/{namespace}/{name}/{command}", operation_id = "rollout_command",
    params(("namespace" = String, Path), ("name" = String, Path), ("command" = RolloutCommand, Path)),
    responses((status = 200, description = "the release's status after the command", body = RolloutStatus),
        (status = 400, description = "a parameter that does not parse", body = ErrorBody),
        (status = 404, description = "no such Rollout or command", body = ErrorBody),
        (status = 504, description = "relayed to the leader (--kubernetes), which did not carry it out in time", body = ErrorBody)))]
pub async fn command(
    State(state): State<AdminState>,
    Path((namespace, name, command)): Path<(String, String, String)>,
) -> Result<Json<RolloutStatus>, ApiError> {
    let key = ResourceKey::new(Kind::Rollout, namespace, name);
    let command = Command::from_name(&command).ok_or_else(|| {
        ApiError::not_found(format!(
            "unknown rollout command {command:?}: use promote, abort, pause or resume"
        ))
    })?;
    match state.rollouts.command(&key, command).await {
        Ok(status) => Ok(Json(status)),
        Err(CommandError::NotFound(key)) => Err(not_found(&key)),
        Err(e @ CommandError::NotTaken(_)) => {
            Err(ApiError::new(StatusCode::GATEWAY_TIMEOUT, e.to_string()))
        }
    }
}

fn not_found(key: &ResourceKey) -> ApiError {
    ApiError::not_found(format!("{key} not found"))
}
