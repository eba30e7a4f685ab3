//! The OpenAPI document of the admin API, generated from the handlers' types, with
//! what the middleware adds to every `/api/` operation (the bearer token, 401 and 403).

use axum::Json;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use super::{error, probes, resources, revisions, rollouts, schemas, status, views};
use crate::desired;

/// The name of the bearer token scheme.
pub const BEARER: &str = "bearerAuth";

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
        document,
        probes::healthz,
        probes::readyz,
        probes::metrics,
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
        schemas::Resource,
        schemas::Resources,
        schemas::StoredResource,
        schemas::ApplyAnswer,
        schemas::Conflict,
        schemas::RolloutCommand,
    )),
    modifiers(&Guarded)
)]
pub struct ApiDoc;

/// Every `/api/` operation takes the bearer token (401 without it), and every one that
/// changes something refuses a cross-site browser request (403).
struct Guarded;

impl Modify for Guarded {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        for (path, item) in doc.paths.paths.iter_mut() {
            if !path.starts_with("/api/") {
                continue;
            }
            let reads = [&mut item.get, &mut item.head, &mut item.options];
            for op in reads.into_iter().flatten() {
                guard(op, false);
            }
            let writes = [
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ];
            for op in writes.into_iter().flatten() {
                guard(op, true);
            }
        }
    }
}

fn guard(op: &mut Operation, writes: bool) {
    op.security = Some(vec![SecurityRequirement::new(BEARER, Vec::<String>::new())]);
    let mut add = |status: &str, description: &str| {
        let body = ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("ErrorBody")))
            .build();
        let response = ResponseBuilder::new()
            .description(description)
            .content("application/json", body)
            .build();
        op.responses
            .responses
            .insert(status.to_string(), response.into());
    };
    add("401", "a missing or wrong bearer token");
    if writes {
        add(
            "403",
            "a cross-site browser request (a foreign `Origin` or `Sec-Fetch-Site`)",
        );
    }
}

#[utoipa::path(get, path = "/api/v1/openapi.json", operation_id = "openapi", tag = "openapi",
    responses((status = 200, description = "this document", body = Object)))]
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
