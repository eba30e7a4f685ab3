//! coalmine: an Envoy xDS control plane for safe releases.
//!
//! Data flows one way, and so do imports: each layer below names only the layers
//! under it (`tests/layers.rs` fails on an import going up or sideways).
//!
//! ```text
//!  15 cli                 the client commands, `serve`, `bootstrap`
//!  14 serve               wiring: stores, sources, publisher, servers, supervised tasks
//!  13 admin               REST API, dashboard, OpenAPI
//!  12 controller          releases: decide under a lock, act after it
//!  11 xds · k8s           ADS streams (sans-IO + tonic edge) · Kubernetes discovery/resources
//!  10 stats               Envoy's pushed stats, for built-in analysis
//!   9 ledger · listen · source · bootstrap
//!                         ACK ledger · TLS, identity, limits · --config files · bootstraps
//!   8 node · metrics      who a proxy is · Prometheus counters
//!   7 snapshot            encoded, versioned resources shared by every stream
//!   6 rollout · desired · translate
//!                         release state machine · revisions · model → Envoy resources
//!   5 resource_set        a whole set of documents → one cross-checked model::Config
//!   4 istio · gateway_api · rollout_kind
//!                         the dialects: each kind's spec into the model
//!   3 ingest              documents, field walking, errors naming the field, shared syntax
//!   2 yaml11 · model      YAML for Envoy · the validated domain
//!   1 yaml · envoy_json · store
//!                         bounded YAML reader · Envoy proto3 JSON · SQLite
//! ```
//!
//! Modules are `pub` only where the binary, the load generator, benches, tests or fuzz
//! targets use them; the rest are `pub(crate)`, so the compiler reports what nothing
//! uses.
//!
//! files (`--config`), REST applies and Kubernetes objects → `ingest` (documents) →
//! `istio`/`gateway_api`/`rollout_kind` (specs) → `resource_set` → `model::Config` → `desired` (a revision) → `translate` per proxy class → `snapshot`
//! → `xds` → Envoy; ACKs and NACKs → `ledger` → `admin`, `controller`.
#![forbid(unsafe_code)]
// The docs are for the people working on coalmine: `cargo doc --document-private-items`.
#![allow(rustdoc::private_intra_doc_links)]

pub(crate) mod admin;
pub mod bootstrap;
pub mod cli;
pub(crate) mod controller;
pub(crate) mod desired;
pub(crate) mod envoy_json;
pub mod gateway_api;
pub mod ingest;
pub(crate) mod istio;
pub mod k8s;
pub(crate) mod ledger;
pub(crate) mod listen;
pub(crate) mod metrics;
pub mod model;
pub mod node;
pub mod resource_set;
pub(crate) mod rollout;
pub(crate) mod rollout_kind;
pub(crate) mod serve;
pub mod snapshot;
pub(crate) mod source;
pub mod stats;
pub(crate) mod store;
pub mod translate;
pub mod xds;
pub mod yaml;
pub mod yaml11;
