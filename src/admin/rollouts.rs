//! Rollout endpoints: a release's status, and promote / abort / pause / resume.

use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::error::ApiError;
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

#[utoipa::path(get, path = "/api/v1/rollouts", responses((status = 200, body = RolloutList)))]
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

#[utoipa::path(get, path = "/api/v1/rollouts/{namespace}/{name}",
    responses((status = 200, body = RolloutStatus), (status = 404, body = super::error::ErrorBody)))]
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

#[utoipa::path(post, path = "/api/v1/rollouts/{namespace}/{name}/{command}",
    params(("command" = String, Path, description = "promote, abort, pause or resume")),
    responses((status = 200, body = RolloutStatus), (status = 404, body = super::error::ErrorBody),
        (status = 504, description = "relayed to the leader (--kubernetes), which did not carry it out in time", body = super::error::ErrorBody)))]
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
