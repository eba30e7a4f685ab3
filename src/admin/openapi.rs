//! The OpenAPI document of the admin API, generated from the handlers' types.

use axum::Json;
use utoipa::OpenApi;

use super::{error, resources, revisions, rollouts, status, views};
use crate::desired;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "coalmine admin API",
        description = "Resources, revisions, proxies and their ACK ledger."
    ),
    paths(
        resources::apply,
        resources::delete_documents,
        resources::list,
        resources::get_one,
        resources::delete_one,
        status::proxies,
        status::config_dump,
        revisions::list,
        revisions::restore,
        revisions::status,
        rollouts::list,
        rollouts::get_one,
        rollouts::command,
    ),
    components(schemas(
        error::ErrorBody,
        error::ErrorDetail,
        desired::Change,
        desired::Action,
        views::ApplyResponse,
        views::DryRunResponse,
        views::EnvoyChange,
        views::RevisionList,
        views::RevisionEntry,
        views::RevisionStatus,
        views::Rejection,
        views::ProxyList,
        views::ProxyView,
        views::TypeView,
        views::NackView,
        resources::ResourceList,
        resources::ResourceStatus,
        status::ConfigDump,
        status::DumpEntry,
        rollouts::RolloutList,
        rollouts::RolloutEntry,
        crate::rollout::RolloutStatus,
    ))
)]
pub struct ApiDoc;

pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
