//! Resource endpoints: apply (with dry run and wait), delete, get and list.

use std::collections::{BTreeMap, BTreeSet};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::change::{answer, wait_of, ChangeParams};
use super::error::{ApiError, ErrorBody};
use super::extract::{Path, Query};
use super::schemas::{ApplyAnswer, Conflict, Resources, StoredResource};
use super::views::{ApplyResponse, DryRunResponse, EnvoyChange};
use super::AdminState;
use crate::ingest::{self, Document};
use crate::model::{Kind, ResourceKey};
use crate::snapshot::{self, Snapshot};
use crate::translate;

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only this kind (`VirtualService`, `vs`, `virtualservices`, ...).
    #[param(required = false, value_type = String, example = "VirtualService")]
    pub kind: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/apply", params(ChangeParams),
    request_body(description = "the resources to create or configure, as one revision",
        content((Resources = "application/json"), (Resources = "application/yaml"))),
    responses(
        (status = 200, description = "applied (or, dry run, what would change)", body = ApplyAnswer),
        (status = 400, description = "a document or parameter that does not parse", body = ErrorBody),
        (status = 409, description = "NACKed (with `wait`), or refused under --kubernetes", body = Conflict),
        (status = 413, description = "the body is too large", body = ErrorBody),
        (status = 422, description = "the set does not validate; nothing was applied", body = ErrorBody),
        (status = 504, description = "the wait ran out; the revision is stored", body = ApplyResponse)))]
pub async fn apply(
    State(state): State<AdminState>,
    Query(params): Query<ChangeParams>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let docs = documents(body).await?;
    if params.dry_run {
        let desired = state.desired.clone();
        let plan = blocking(move || desired.plan_apply(docs)).await?;
        let current = state.snapshots.borrow().clone();
        let next = Snapshot::new(plan.config.clone(), current.revision());
        let body = DryRunResponse {
            revision: state.desired.published().revision,
            dry_run: true,
            changed: envoy_diff(&state, &current, &next),
            resources: plan.changed,
        };
        return Ok(Json(body).into_response());
    }
    let wait = wait_of(&params)?;
    let desired = state.desired.clone();
    let outcome = blocking(move || desired.apply(docs)).await?;
    answer(&state, outcome, wait).await
}

#[utoipa::path(post, path = "/api/v1/delete", operation_id = "delete_resources", params(ChangeParams),
    request_body(description = "the resources to delete, as one revision (their kind, namespace and name)",
        content((Resources = "application/json"), (Resources = "application/yaml"))),
    responses(
        (status = 200, description = "deleted", body = ApplyResponse),
        (status = 400, description = "a document or parameter that does not parse", body = ErrorBody),
        (status = 404, description = "one of them is not stored; nothing was deleted", body = ErrorBody),
        (status = 409, description = "NACKed (with `wait`), or refused under --kubernetes", body = Conflict),
        (status = 413, description = "the body is too large", body = ErrorBody),
        (status = 422, description = "what is left does not validate; nothing was deleted", body = ErrorBody),
        (status = 504, description = "the wait ran out; the revision is stored", body = ApplyResponse)))]
pub async fn delete_documents(
    State(state): State<AdminState>,
    Query(params): Query<ChangeParams>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let keys: Vec<ResourceKey> = documents(body).await?.into_iter().map(|d| d.key).collect();
    let wait = wait_of(&params)?;
    let desired = state.desired.clone();
    let outcome = blocking(move || desired.delete(&keys)).await?;
    answer(&state, outcome, wait).await
}

#[utoipa::path(delete, path = "/api/v1/resources/{kind}/{namespace}/{name}", operation_id = "delete_resource",
    params(("kind" = String, Path, description = "a kind as `GET /api/v1/resources?kind=` takes it", example = "VirtualService"),
        ("namespace" = String, Path), ("name" = String, Path), ChangeParams),
    responses(
        (status = 200, description = "deleted", body = ApplyResponse),
        (status = 400, description = "a parameter that does not parse", body = ErrorBody),
        (status = 404, description = "no such kind or resource", body = ErrorBody),
        (status = 409, description = "NACKed (with `wait`), or refused under --kubernetes", body = Conflict),
        (status = 422, description = "what is left does not validate; nothing was deleted", body = ErrorBody),
        (status = 504, description = "the wait ran out; the revision is stored", body = ApplyResponse)))]
pub async fn delete_one(
    State(state): State<AdminState>,
    Path((kind, namespace, name)): Path<(String, String, String)>,
    Query(params): Query<ChangeParams>,
) -> Result<Response, ApiError> {
    let key = key_of(&kind, namespace, name)?;
    let wait = wait_of(&params)?;
    let desired = state.desired.clone();
    let outcome = blocking(move || desired.delete(&[key])).await?;
    answer(&state, outcome, wait).await
}

/// A stored resource with its status.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ResourceList {
    /// Whole documents, each with a `status` (see `ResourceStatus`).
    #[schema(value_type = Vec<StoredResource>)]
    pub resources: Vec<serde_json::Value>,
}

/// Whether the proxies took a resource, and which proxies serve it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ResourceStatus {
    /// `Accepted`, or `Rejected` when a proxy it reaches NACKed the current revision.
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Node ids of the connected proxies it reaches.
    pub proxies: Vec<String>,
    pub revision: u64,
    /// A Rollout's release progress.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollout: Option<crate::rollout::RolloutStatus>,
}

#[utoipa::path(get, path = "/api/v1/resources", operation_id = "list_resources", params(ListParams),
    responses((status = 200, description = "the stored resources", body = ResourceList),
        (status = 400, description = "an unknown kind", body = ErrorBody)))]
pub async fn list(
    State(state): State<AdminState>,
    Query(params): Query<ListParams>,
) -> Result<Json<ResourceList>, ApiError> {
    let kind = match &params.kind {
        Some(k) => Some(
            Kind::from_name(k)
                .ok_or_else(|| ApiError::bad_request(format!("unknown kind {k:?}")))?,
        ),
        None => None,
    };
    let mut resources = Vec::new();
    for doc in state.desired.documents() {
        if kind.is_none_or(|k| doc.key.kind == k) {
            resources.push(with_status(&state, doc).await);
        }
    }
    Ok(Json(ResourceList { resources }))
}

#[utoipa::path(get, path = "/api/v1/resources/{kind}/{namespace}/{name}", operation_id = "get_resource",
    params(("kind" = String, Path, description = "a kind as `GET /api/v1/resources?kind=` takes it", example = "VirtualService"),
        ("namespace" = String, Path), ("name" = String, Path)),
    responses((status = 200, description = "the resource with its status", body = StoredResource),
        (status = 400, description = "a parameter that does not parse", body = ErrorBody),
        (status = 404, description = "no such kind or resource", body = ErrorBody)))]
pub async fn get_one(
    State(state): State<AdminState>,
    Path((kind, namespace, name)): Path<(String, String, String)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let key = key_of(&kind, namespace, name)?;
    let doc = state
        .desired
        .get(&key)
        .ok_or_else(|| ApiError::not_found(format!("{key} not found")))?;
    Ok(Json(with_status(&state, doc).await))
}

/// The documents of a request body. Parsing runs on a blocking thread: it is linear
/// and bounded (see [`crate::yaml`]), but a 4 MiB body still takes milliseconds that
/// `/healthz` and xDS should not wait for.
async fn documents(body: Result<Bytes, BytesRejection>) -> Result<Vec<Document>, ApiError> {
    let body = body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "request body is larger than {} bytes: nothing was applied",
                super::MAX_BODY_BYTES
            ),
        ),
        status => ApiError::new(status, rejection.body_text()),
    })?;
    let parsed = tokio::task::spawn_blocking(move || {
        let text = std::str::from_utf8(&body)
            .map_err(|_| ApiError::bad_request("request body is not UTF-8"))?;
        ingest::parse_documents(text).map_err(|e| ApiError::invalid(StatusCode::BAD_REQUEST, e))
    });
    let docs = parsed
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    if docs.is_empty() {
        return Err(ApiError::bad_request("the request holds no resources"));
    }
    Ok(docs)
}

fn key_of(kind: &str, namespace: String, name: String) -> Result<ResourceKey, ApiError> {
    let kind = Kind::from_name(kind)
        .ok_or_else(|| ApiError::not_found(format!("unknown kind {kind:?}")))?;
    Ok(ResourceKey::new(kind, namespace, name))
}

/// Runs a store-touching call off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> crate::desired::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    crate::desired::blocking(f).await.map_err(ApiError::from)
}

/// The Envoy-level diff between two snapshots for every class of proxy: the classes of
/// the connected proxies, every single Gateway's, and the unselected one.
fn envoy_diff(state: &AdminState, current: &Snapshot, next: &Snapshot) -> Vec<EnvoyChange> {
    let proxies = state.ledger.proxies();
    let mut classes: BTreeMap<BTreeSet<ResourceKey>, Vec<String>> = BTreeMap::new();
    classes.entry(BTreeSet::new()).or_default();
    for config in [current.config(), next.config()] {
        for gw in &config.gateways {
            classes.entry(BTreeSet::from([gw.key.clone()])).or_default();
        }
    }
    for p in &proxies {
        let mut gateways = translate::select_gateways(current.config(), &p.node.labels);
        gateways.extend(translate::select_gateways(next.config(), &p.node.labels));
        classes.entry(gateways).or_default().push(p.node.id.clone());
    }
    let mut out = Vec::new();
    for (gateways, nodes) in classes {
        let before = current.view_for_gateways(gateways.clone());
        let after = next.view_for_gateways(gateways.clone());
        for (kind, name, action) in snapshot::diff(&before, &after) {
            out.push(EnvoyChange {
                type_name: kind.message_name().to_string(),
                name,
                action: action.as_str().to_string(),
                proxies: nodes.clone(),
                gateways: gateways
                    .iter()
                    .map(|k| format!("{}/{}", k.namespace, k.name))
                    .collect(),
            });
        }
    }
    out
}

/// A Secret as the API shows it: its name and type, and in place of its keys a hash
/// of them (`dataHash`, SHA-256 of `data` and `stringData` as stored), so a rotation
/// shows without the keys ever leaving the server.
fn redacted(mut secret: serde_json::Value) -> serde_json::Value {
    use sha2::{Digest, Sha256};
    let Some(obj) = secret.as_object_mut() else {
        return secret;
    };
    let data = obj.remove("data").unwrap_or_default();
    let string_data = obj.remove("stringData").unwrap_or_default();
    let bytes = serde_json::to_vec(&(data, string_data)).unwrap_or_default();
    let hash = hex::encode(Sha256::digest(&bytes));
    obj.insert("dataHash".into(), format!("sha256:{hash}").into());
    secret
}

/// The document with its `status`: accepted or rejected by the proxies it reaches and,
/// for a Rollout, the release's progress under `status.rollout`.
async fn with_status(state: &AdminState, doc: Document) -> serde_json::Value {
    let rollout = match doc.key.kind {
        Kind::Rollout => state.rollouts.status(&doc.key).await,
        _ => None,
    };
    let snapshot = state.snapshots.borrow().clone();
    let revision = snapshot.revision();
    let proxies = state.ledger.proxies();
    let reached: Vec<_> = proxies
        .iter()
        .filter(|p| {
            translate::reaches(
                snapshot.config(),
                &doc.key,
                &translate::select_gateways(snapshot.config(), &p.node.labels),
            )
        })
        .collect();
    let rejection = reached.iter().find_map(|p| match p.status_of(revision) {
        crate::ledger::ProxyStatus::Rejected(message) => Some(format!("{}: {message}", p.node.id)),
        _ => None,
    });
    let status = ResourceStatus {
        state: if rejection.is_some() {
            "Rejected"
        } else {
            "Accepted"
        }
        .to_string(),
        reason: rejection,
        proxies: reached.iter().map(|p| p.node.id.clone()).collect(),
        revision,
        rollout,
    };
    let status = serde_json::to_value(status).expect("status serializes");
    let mut value = match doc.key.kind {
        Kind::Secret => redacted(doc.value),
        _ => doc.value,
    };
    if let Some(obj) = value.as_object_mut() {
        obj.insert("status".into(), status);
    }
    value
}
