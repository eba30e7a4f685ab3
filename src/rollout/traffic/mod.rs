//! Pure rewriting of a release's target document (as stored: the JSON of an
//! [`crate::ingest::Document`]) for each traffic action: a VirtualService's `http[]`
//! routes ([`virtual_service`]) or an HTTPRoute's `rules[]` ([`http_route`]). Only the
//! target route and the A/B route change; every other field is kept as it is.

pub mod http_route;
mod rewrite;
mod sticky;
pub mod virtual_service;

#[cfg(test)]
mod http_route_tests;
#[cfg(test)]
mod options_tests;
#[cfg(test)]
pub(crate) mod virtual_service_tests;

use serde_json::Value;

use super::state::Action;
use crate::model::{Kind, Rollout, Weight};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("the {0} has no {1} list")]
    NoRoutes(&'static str, &'static str),
    #[error("the {0} has no route to the stable or the canary destination")]
    NoTargetRoute(&'static str),
    #[error("the {0}'s target route already mirrors to {1}; mirror: true needs a route without a mirror")]
    MirrorTaken(&'static str, String),
    #[error("a Rollout cannot target a {0}")]
    UnsupportedTarget(&'static str),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The document after `action`, or `None` for an action that changes no traffic.
pub fn apply(doc: &Value, rollout: &Rollout, action: &Action) -> Result<Option<Value>> {
    let (set_weight, finalize, rollback): Rewrites = match rollout.target.kind {
        Kind::VirtualService => (
            virtual_service::set_weight,
            virtual_service::finalize,
            virtual_service::rollback,
        ),
        Kind::HttpRoute => (
            http_route::set_weight,
            http_route::finalize,
            http_route::rollback,
        ),
        other => return Err(Error::UnsupportedTarget(other.as_str())),
    };
    Ok(Some(match action {
        Action::ApplyTraffic {
            canary_weight,
            ab_match,
            mirror,
        } => {
            let options = StepOptions {
                ab_match: *ab_match,
                mirror: *mirror,
            };
            set_weight(doc, rollout, *canary_weight, options)?
        }
        Action::Finalize => finalize(doc, rollout)?,
        Action::Rollback => rollback(doc, rollout)?,
        _ => return Ok(None),
    }))
}

/// What a traffic step asks of the target route besides its weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StepOptions {
    /// Put the A/B route, for the rollout's `match`, before the target route.
    pub ab_match: bool,
    /// Mirror the analysis' `mirrorWeight` of the route's requests to the canary.
    pub mirror: bool,
}

impl StepOptions {
    /// Only the A/B route.
    #[cfg(test)]
    pub const AB: StepOptions = StepOptions {
        ab_match: true,
        mirror: false,
    };
}

type Rewrites = (
    fn(&Value, &Rollout, Weight, StepOptions) -> Result<Value>,
    fn(&Value, &Rollout) -> Result<Value>,
    fn(&Value, &Rollout) -> Result<Value>,
);

/// A percentage as JSON: an integer when whole, else a number with up to 4 decimals
/// that reads back as exactly this weight.
pub fn weight_json(weight: Weight) -> Value {
    let units = weight.units();
    if units.is_multiple_of(Weight::PER_PERCENT) {
        Value::from(units / Weight::PER_PERCENT)
    } else {
        Value::from(weight.percent())
    }
}
