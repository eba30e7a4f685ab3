//! Schemas written by hand where no Rust type says it: the resource documents a
//! request body holds or an answer lists, and the answers that are one of two shapes.

use serde_json::json;
use utoipa::openapi::schema::{
    AdditionalProperties, AnyOfBuilder, ArrayBuilder, ObjectBuilder, Schema, Type,
};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

use crate::controller::Command;
use crate::ingest::{COALMINE, GATEWAY_API, ISTIO, ISTIO_SECURITY};
use crate::model::Kind;

/// A DNS-1123 subdomain, as `metadata.name` must be.
const NAME_PATTERN: &str = "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$";
/// A DNS-1123 label, as `metadata.namespace` must be.
const NAMESPACE_PATTERN: &str = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";

/// One resource document as `apply` reads it: an Istio, Gateway API or coalmine kind.
pub struct Resource;

/// What `apply` and `delete` read: one document, an array of them, or a `List`
/// (JSON, or YAML with several `---` documents).
pub struct Resources;

/// A stored resource as the API lists it, with its `status`.
pub struct StoredResource;

/// The answer to an apply: the change made, or with `?dryRun=true` the change that
/// would be made.
pub struct ApplyAnswer;

/// A `409`: with `?wait=`, a proxy NACKed the revision (stored all the same); under
/// `--kubernetes`, a change refused because the cluster is the source of truth.
pub struct Conflict;

/// What `POST /api/v1/rollouts/{namespace}/{name}/{command}` does to a release.
pub struct RolloutCommand;

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

fn any_object() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .additional_properties(Some(AdditionalProperties::FreeForm(true)))
}

fn api_versions() -> Vec<String> {
    [ISTIO, ISTIO_SECURITY, GATEWAY_API, COALMINE]
        .into_iter()
        .flat_map(|api| api.api_versions())
        .collect()
}

fn kinds() -> Vec<&'static str> {
    let mut kinds: Vec<&str> = Kind::ALL.iter().map(|k| k.document_kind()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    kinds
}

fn metadata(namespace_required: bool) -> ObjectBuilder {
    let mut m = ObjectBuilder::new()
        .schema_type(Type::Object)
        .property(
            "name",
            string()
                .pattern(Some(NAME_PATTERN))
                .min_length(Some(1))
                .max_length(Some(253)),
        )
        .property(
            "namespace",
            string()
                .pattern(Some(NAMESPACE_PATTERN))
                .max_length(Some(63))
                .description(Some("`default` when left out")),
        )
        .required("name");
    if namespace_required {
        m = m.required("namespace");
    }
    m
}

fn envelope(namespace_required: bool) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .property("apiVersion", string().enum_values(Some(api_versions())))
        .property("kind", string().enum_values(Some(kinds())))
        .property("metadata", metadata(namespace_required))
        .property("spec", any_object())
        .required("apiVersion")
        .required("kind")
        .required("metadata")
        .required("spec")
}

impl PartialSchema for Resource {
    fn schema() -> RefOr<Schema> {
        envelope(false)
            .property("status", ObjectBuilder::new().description(Some("ignored")))
            .additional_properties(Some(AdditionalProperties::FreeForm(false)))
            .description(Some(
                "A resource: `spec` as the kind's documentation says (a spec that does not \
                 validate answers 400 or 422).",
            ))
            .into()
    }
}

impl ToSchema for Resource {}

/// A ServiceEntry that is valid on its own.
fn example() -> serde_json::Value {
    json!({
        "apiVersion": "networking.istio.io/v1",
        "kind": "ServiceEntry",
        "metadata": {"name": "example", "namespace": "default"},
        "spec": {
            "hosts": ["example"],
            "ports": [{"number": 80, "name": "http", "protocol": "HTTP"}],
            "resolution": "STATIC",
            "endpoints": [{"address": "127.0.0.1"}]
        }
    })
}

impl PartialSchema for Resources {
    fn schema() -> RefOr<Schema> {
        let list = ObjectBuilder::new()
            .schema_type(Type::Object)
            .property("apiVersion", string())
            .property("kind", string().enum_values(Some(["List"])))
            .property(
                "items",
                ArrayBuilder::new().items(Ref::from_schema_name("Resource")),
            )
            .required("kind")
            .required("items");
        AnyOfBuilder::new()
            .item(Ref::from_schema_name("Resource"))
            .item(
                ArrayBuilder::new()
                    .items(Ref::from_schema_name("Resource"))
                    .min_items(Some(1)),
            )
            .item(list)
            .description(Some(
                "One resource, an array of them or a `List` of `items`; in YAML, also \
                 several documents separated by `---`.",
            ))
            .examples([example()])
            .into()
    }
}

impl ToSchema for Resources {}

impl PartialSchema for StoredResource {
    fn schema() -> RefOr<Schema> {
        envelope(true)
            .property("status", Ref::from_schema_name("ResourceStatus"))
            .required("status")
            .into()
    }
}

impl ToSchema for StoredResource {}

impl PartialSchema for ApplyAnswer {
    fn schema() -> RefOr<Schema> {
        AnyOfBuilder::new()
            .item(Ref::from_schema_name("ApplyResponse"))
            .item(Ref::from_schema_name("DryRunResponse"))
            .into()
    }
}

impl ToSchema for ApplyAnswer {}

impl PartialSchema for Conflict {
    fn schema() -> RefOr<Schema> {
        AnyOfBuilder::new()
            .item(Ref::from_schema_name("ApplyResponse"))
            .item(Ref::from_schema_name("ErrorBody"))
            .into()
    }
}

impl ToSchema for Conflict {}

impl PartialSchema for RolloutCommand {
    fn schema() -> RefOr<Schema> {
        let all = [
            Command::Promote,
            Command::Abort,
            Command::Pause,
            Command::Resume,
        ];
        string().enum_values(Some(all.map(Command::as_str))).into()
    }
}

impl ToSchema for RolloutCommand {}
