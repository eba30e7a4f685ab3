//! The ADS protocol: a sans-IO per-stream state machine and its tonic edge.
//!
//! [`sotw::SotwStream`] holds everything one State-of-the-World ADS stream knows
//! (subscriptions, nonces, what was sent, ACKed and NACKed) and turns requests and new
//! views into responses; it does no IO and is tested with plain `#[test]`s.
//! [`server`] is the only place that touches tonic: it reads requests, watches for new
//! snapshots, and writes what the state machine returns. `warm` decides, for both
//! protocols and per proxy, what may be sent now (make-before-break). [`codec`] writes
//! responses from the shared, already-encoded resource bytes; [`request`] reads SotW
//! requests without an allocation per resource name. [`csds`] answers the Client Status
//! Discovery Service from the ledger, per proxy and resource.

mod body;
pub mod codec;
pub mod csds;
pub mod delta;
mod held;
mod inbound;
mod names;
pub use crate::node;
pub mod request;
pub mod server;
pub mod sotw;
mod warm;

pub use node::NodeInfo;
pub use request::SotwRequest;
pub use server::{AdsService, XdsState};
pub use sotw::{Event, Response, SotwStream};
