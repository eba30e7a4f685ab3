//! The dialect-neutral half of reading resources: splitting text into Kubernetes-shaped
//! documents and checking their envelope ([`parse_documents`]), walking a spec field by
//! field with every error named by resource and path ([`Obj`], [`Report`]), the syntax
//! several dialects share (string and header matches, destinations, durations), and the
//! [`Read`] each dialect fills in.
//!
//! The dialects sit on top: [`crate::istio`], [`crate::gateway_api`] and
//! [`crate::rollout_kind`] each read their kinds' specs with these pieces, and
//! [`crate::resource_set`] assembles and cross-checks the whole set. Nothing here knows
//! a dialect, Envoy, Kubernetes or the store.

mod address_secret;
mod api;
mod destination;
mod document;
mod duration;
mod error;
mod http_match;
mod read;
mod secret;
mod walk;

pub use api::{Api, COALMINE, COALMINE_API_VERSION, CORE, GATEWAY_API, ISTIO, ISTIO_SECURITY};
pub use document::{parse_documents, Document};
pub use error::{Errors, FieldError, Result};

pub(crate) use address_secret::try_address_secret;
pub(crate) use destination::{check_host, try_destination};
pub(crate) use error::Report;
pub(crate) use http_match::{check_regex, is_header_name, try_matches, try_string_match};
pub(crate) use read::Read;
pub(crate) use secret::try_secret;
pub(crate) use walk::{Fields, Obj};
