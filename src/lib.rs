//! coalmine: an Envoy xDS control plane for safe releases.
//!
//! Data flows one way, and so do imports: each layer below names only the layers
//! under it (`tests/layers.rs` fails on an import going up or sideways; the one
//! exception, Istio and Gateway API sharing field walking both ways, is listed there).
//!
//! ```text
//!  13 cli                 the client commands, `serve`, `bootstrap`
//!  12 serve               wiring: stores, sources, publisher, servers, supervised tasks
//!  11 admin               REST API, dashboard, OpenAPI
//!  10 controller          releases: decide under a lock, act after it
//!   9 xds · k8s           ADS streams (sans-IO + tonic edge) · Kubernetes discovery/resources
//!   8 stats               Envoy's pushed stats, for built-in analysis
//!   7 ledger · listen · source · bootstrap
//!                         ACK ledger · TLS, identity, limits · --config files · bootstraps
//!   6 node · metrics      who a proxy is · Prometheus counters
//!   5 snapshot            encoded, versioned resources shared by every stream
//!   4 rollout · desired · translate
//!                         release state machine · revisions · model → Envoy resources
//!   3 istio · gateway_api documents (dialects) into the model, errors naming the field
//!   2 yaml11 · model      YAML for Envoy · the validated domain
//!   1 yaml · envoy_json · store
//!                         bounded YAML reader · Envoy proto3 JSON · SQLite
//! ```
//!
//! Modules are `pub` only where the binary, the load generator, benches, tests or fuzz
//! targets use them; the rest are `pub(crate)`, so the compiler reports what nothing
//! uses.
//!
//! files (`--config`), REST applies and Kubernetes objects → `istio`/`gateway_api` →
//! `model::Config` → `desired` (a revision) → `translate` per proxy class → `snapshot`
//! → `xds` → Envoy; ACKs and NACKs → `ledger` → `admin`, `controller`.
#![forbid(unsafe_code)]

pub(crate) mod admin;
pub mod bootstrap;
pub mod cli;
pub(crate) mod controller;
pub(crate) mod desired;
pub(crate) mod envoy_json;
pub mod gateway_api;
pub mod istio;
pub mod k8s;
pub(crate) mod ledger;
pub(crate) mod listen;
pub(crate) mod metrics;
pub mod model;
pub mod node;
pub(crate) mod rollout;
pub(crate) mod serve;
pub mod snapshot;
pub(crate) mod source;
pub mod stats;
pub(crate) mod store;
pub mod translate;
pub mod xds;
pub mod yaml;
pub mod yaml11;
