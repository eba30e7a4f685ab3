//! Proxy endpoints: the ACK ledger, and the resources one node is served.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::error::{ApiError, ErrorBody};
use super::extract::Query;
use super::views::{ProxyList, ProxyView};
use super::AdminState;
use crate::envoy_json;
use crate::snapshot::TypeKind;

#[utoipa::path(get, path = "/api/v1/proxies", operation_id = "list_proxies",
    responses((status = 200, description = "the connected proxies and their ledger", body = ProxyList)))]
pub async fn proxies(State(state): State<AdminState>) -> Json<ProxyList> {
    let proxies = state.ledger.proxies().iter().map(ProxyView::from).collect();
    Json(ProxyList { proxies })
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DumpParams {
    /// The node id of a connected proxy (required: without it the answer is 400).
    #[param(required = true, value_type = String)]
    pub node: Option<String>,
}

/// The Envoy resources a node is served, as Envoy prints them in its own config dump.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConfigDump {
    pub node: String,
    pub revision: u64,
    pub clusters: Vec<DumpEntry>,
    pub endpoints: Vec<DumpEntry>,
    pub listeners: Vec<DumpEntry>,
    pub routes: Vec<DumpEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DumpEntry {
    pub name: String,
    pub version: String,
    pub resource: serde_json::Value,
}

#[utoipa::path(get, path = "/api/v1/config_dump", params(DumpParams),
    responses((status = 200, description = "what that node is served", body = ConfigDump),
        (status = 400, description = "no `node` parameter", body = ErrorBody),
        (status = 404, description = "no connected proxy has that node id", body = ErrorBody)))]
pub async fn config_dump(
    State(state): State<AdminState>,
    Query(params): Query<DumpParams>,
) -> Result<Json<ConfigDump>, ApiError> {
    let node = params
        .node
        .ok_or_else(|| ApiError::bad_request("node: the query parameter is required"))?;
    let proxy = state
        .ledger
        .proxies()
        .into_iter()
        .find(|p| p.node.id == node)
        .ok_or_else(|| ApiError::not_found(format!("no connected proxy has node id {node:?}")))?;
    let snapshot = state.snapshots.borrow().clone();
    let view = proxy.node.view_of(&snapshot);
    let entries = |kind: TypeKind| -> Result<Vec<DumpEntry>, ApiError> {
        view.resources(kind)
            .values()
            .map(|r| {
                let resource = envoy_json::any_to_json(&r.any).map_err(|e| {
                    ApiError::new(
                        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                        format!("{}: {e}", r.name),
                    )
                })?;
                Ok(DumpEntry {
                    name: r.name.clone(),
                    version: r.version.clone(),
                    resource,
                })
            })
            .collect()
    };
    Ok(Json(ConfigDump {
        node,
        revision: snapshot.revision(),
        clusters: entries(TypeKind::Cluster)?,
        endpoints: entries(TypeKind::Endpoint)?,
        listeners: entries(TypeKind::Listener)?,
        routes: entries(TypeKind::Route)?,
    }))
}
