//! Kubernetes discovery: Services, EndpointSlices and Pod labels into
//! `model::Service`s, and Namespace labels and Gateway addresses for the Gateway API,
//! for `coalmine serve --kubernetes`.
//!
//! - [`index`]: the pure reduction (`apply` / `delete` / `replace`), tested without a
//!   cluster.
//! - [`discovery`]: the kube-runtime watchers that feed it and publish the services
//!   map through a `watch` channel.
//!
//! - [`resources`]: route resources (Istio, Gateway API, coalmine's Rollout) read from
//!   their CRDs; the cluster is the document set. [`judge`] decides what is served,
//!   [`status`] reports it in each resource's `status`, on the leader only.
//! - [`leader`]: the `coordination.k8s.io` Lease election among replicas.
//! - [`route_patch`]: a release's traffic step, patched into its target route;
//!   [`rollout_status`]: its progress, in the Rollout's `status`; [`replica_acks`]:
//!   each replica's proxies' ACKs of it, there too.
//! - [`crd`]: coalmine's own CRDs, generated for `coalmine crdgen`.
//!
//! Discovery knows nothing about Envoy, the store or revisions: the wiring hands the
//! map to `Desired::set_discovered`; [`resources`] hands its set to `Desired::replace_all`.

mod convert;
pub mod crd;
pub mod discovery;
pub mod gateway_api_status;
pub mod gateway_class;
pub mod index;
pub mod judge;
pub mod leader;
pub mod replica_acks;
pub mod resources;
pub mod rollout_status;
pub mod route_patch;
pub mod secrets;
pub mod status;
mod status_patch;

pub use discovery::{discover, follow, Discovery, Services};
pub use index::{host, Cluster, Index, Indexed};
