//! Parses Istio networking documents and coalmine's own `Rollout` (YAML/JSON) into the
//! validated model.
//!
//! [`parse_documents`] splits text into documents and checks their envelope;
//! [`build_config`] reads each spec by kind, runs the cross-resource checks, and
//! returns a consistent [`crate::model::Config`] or every error found, each naming
//! the resource and the field path. A field coalmine does not support is an error,
//! never silently dropped. Nothing here talks to Envoy, Kubernetes or the store.

mod build;
mod check;
mod destination_rule;
mod document;
mod duration;
mod error;
mod gateway;
mod http_match;
mod http_policy;
mod resolve;
mod rollout;
mod rollout_check;
mod service_entry;
mod virtual_service;
mod walk;

#[cfg(test)]
mod tests;

pub use build::build_config;
pub use document::{parse_documents, Document, API_GROUP, API_VERSIONS, COALMINE_API_VERSION};
pub use error::{Errors, FieldError, Result};

// Shared with the Gateway API dialect (`crate::gateway_api`), read into the same model.
pub(crate) use check::Read;
pub(crate) use error::Report;
pub(crate) use http_match::{check_regex, is_header_name};
pub(crate) use virtual_service::check_host;
pub(crate) use walk::{Fields, Obj};
