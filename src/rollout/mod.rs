//! Automated releases, the pure core: the decisions of a [`machine::Machine`], the
//! judging of metric values ([`analysis`]), the VirtualService and HTTPRoute rewrites that
//! carry each step ([`traffic`]) and the status that reports it all ([`status`]).
//!
//! No IO here: the controller that stores revisions, waits for ACKs, measures metrics
//! and calls webhooks drives a `Machine` with what happened and does what its
//! [`Action`]s say.

pub mod analysis;
mod control;
pub mod machine;
mod phase;
pub mod series;
pub mod state;
pub mod status;
pub mod traffic;

#[cfg(test)]
mod control_tests;
#[cfg(test)]
mod machine_tests;
#[cfg(test)]
mod release_controls_tests;

pub use analysis::MetricResult;
#[cfg(test)]
pub use analysis::Verdict;
pub use machine::Machine;
pub use state::Action;
#[cfg(test)]
pub use status::Phase;
pub use status::RolloutStatus;
