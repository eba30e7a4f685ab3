//! coalmine: an Envoy xDS control plane for safe releases.
//!
//! Data flows one way:
//!
//! ```text
//!  sources                 pure core                               edges that talk
//!  files (--config) ──► istio (parse, validate) ──► model::Config
//!                                                     │
//!                                  translate (per proxy class) ──► snapshot ──► xds ──► Envoy
//! ```
//!
//! - [`model`]: the validated domain; no protobuf, no Kubernetes.
//! - [`istio`]: Istio-style YAML documents into the model, with errors naming the field.
//! - [`gateway_api`]: Gateway API `Gateway` / `HTTPRoute` documents into the same model.
//! - [`k8s`]: Kubernetes discovery (Services, EndpointSlices, Pod labels) into services.
//! - [`rollout`]: automated releases' decisions, as a pure state machine.
//! - [`translate`]: pure, deterministic model → Envoy v3 resources.
//! - [`snapshot`]: encoded resources with content-hash versions, shared by every stream.
//! - [`xds`]: the ADS protocol as a sans-IO state machine, and its tonic edge.
//! - [`serve`]: the wiring of `coalmine serve`.
#![forbid(unsafe_code)]

pub mod admin;
pub mod bootstrap;
pub mod cli;
pub mod controller;
pub mod desired;
pub mod envoy_json;
pub mod gateway_api;
pub mod istio;
pub mod k8s;
pub mod ledger;
pub mod listen;
pub mod metrics;
pub mod model;
pub mod node;
pub mod rollout;
pub mod serve;
pub mod snapshot;
pub mod source;
pub mod stats;
pub mod store;
pub mod translate;
pub mod xds;
pub mod yaml;
pub mod yaml11;
