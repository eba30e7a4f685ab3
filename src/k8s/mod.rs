//! Kubernetes discovery: Services, EndpointSlices and Pod labels into
//! `model::Service`s, for `coalmine serve --kubernetes`.
//!
//! - [`index`]: the pure reduction (`apply` / `delete` / `replace`), tested without a
//!   cluster.
//! - [`discovery`]: the kube-runtime watchers that feed it and publish the services
//!   map through a `watch` channel.
//!
//! Nothing here knows about Envoy, the store or revisions: the wiring hands the map to
//! `Desired::set_discovered`.

mod convert;
pub mod discovery;
pub mod index;

pub use discovery::{discover, follow, Services};
pub use index::{host, Index, Indexed};
