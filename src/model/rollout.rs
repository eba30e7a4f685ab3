//! Rollouts (`coalmine.dev/v1alpha1`): an automated release that moves the traffic of
//! one VirtualService route from a stable destination to a canary destination, with
//! Flagger's analysis model. Only the validated shape lives here; the decisions are in
//! [`crate::rollout`], the parsing in [`crate::rollout_kind`].

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{
    Destination, ResourceKey, RouteAction, RouteMatch, VirtualService, Weight, WeightedDestination,
};

/// A validated Rollout. `stable` and `canary` are resolved like VirtualService
/// destinations (full host, port filled in) and the target exists and routes to them.
#[derive(Debug, Clone, PartialEq)]
pub struct Rollout {
    pub key: ResourceKey,
    /// The VirtualService whose route moves (kind VirtualService; the namespace defaults
    /// to the Rollout's).
    pub target: ResourceKey,
    pub stable: Destination,
    pub canary: Destination,
    pub strategy: Strategy,
    pub analysis: Analysis,
    /// `skipAnalysis`, `progressDeadlineSeconds` and `onFailure`.
    pub controls: super::ReleaseControls,
}

impl Rollout {
    /// The name of the extra HTTP route that A/B testing puts before the target route
    /// (and that promotion and rollback remove again).
    pub fn ab_route_name(&self) -> String {
        format!("coalmine-ab-{}", self.key.name)
    }

    /// The names of the routes sticky sessions put before the target route, for the
    /// canary's cookie and for the stable's.
    pub fn sticky_route_names(&self) -> [String; 2] {
        [
            format!("coalmine-sticky-canary-{}", self.key.name),
            format!("coalmine-sticky-stable-{}", self.key.name),
        ]
    }

    /// Whether `name` is one of the routes a release adds (removed again on promotion
    /// and rollback).
    pub fn is_release_route(&self, name: Option<&str>) -> bool {
        let Some(name) = name else { return false };
        name == self.ab_route_name() || self.sticky_route_names().iter().any(|n| n == name)
    }

    /// The index in `vs.http` of the route this rollout moves: among the routes with
    /// destinations (the routes a release adds excepted), the first one that sends traffic to the
    /// stable destination, or failing that the first that sends traffic to the canary
    /// (as after a promotion).
    pub fn target_route(&self, vs: &VirtualService) -> Option<usize> {
        let routes = || {
            vs.http
                .iter()
                .enumerate()
                .filter(|(_, route)| !self.is_release_route(route.name.as_deref()))
                .filter_map(|(i, route)| match &route.action {
                    RouteAction::Route(destinations) => Some((i, destinations)),
                    _ => None,
                })
        };
        let sends_to = |destinations: &Vec<WeightedDestination>, d: &Destination| {
            destinations.iter().any(|w| &w.destination == d)
        };
        let to_stable = routes().find(|(_, ds)| sends_to(ds, &self.stable));
        let to_canary = || routes().find(|(_, ds)| sends_to(ds, &self.canary));
        to_stable.or_else(to_canary).map(|(i, _)| i)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Strategy {
    /// Canary weight raised step by step up to the maximum, then promotion.
    Canary,
    /// The canary gets no user traffic for `iterations` passing checks, then all of it
    /// at once.
    BlueGreen,
    /// Requests that match `analysis.match` go to the canary for `iterations` passing
    /// checks, then promotion.
    ABTesting,
}

impl Strategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Canary => "Canary",
            Strategy::BlueGreen => "BlueGreen",
            Strategy::ABTesting => "ABTesting",
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Flagger's `Canary.analysis`, with every default filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    /// How long each step is held (after its ACK) before its checks; default 1m.
    pub interval: Duration,
    /// Failed checks before rollback; default 5.
    pub threshold: u32,
    /// Canary: the canary weight of each step, strictly increasing, the last one the
    /// maximum (from `stepWeights`, or `stepWeight` repeated up to `maxWeight`, default
    /// 50). Empty for BlueGreen and ABTesting.
    pub steps: Vec<Weight>,
    /// BlueGreen / ABTesting: passing checks before promotion. 0 for Canary.
    pub iterations: u32,
    /// ABTesting (required) and BlueGreen (optional, for test traffic): requests that
    /// these match go to the canary.
    pub matches: Vec<RouteMatch>,
    pub metrics: Vec<Metric>,
    pub webhooks: Vec<Webhook>,
    /// Canary: sticky sessions (Flagger's `sessionAffinity`).
    pub session_affinity: Option<SessionAffinity>,
    /// `mirror: true`: the share of stable traffic copied to the canary
    /// (`mirrorWeight`, default 100 %). A Canary mirrors before its first weighted
    /// step, a BlueGreen release during all its iterations.
    pub mirror: Option<Weight>,
    /// Flagger's `alerts`: where release events are posted.
    pub alerts: Vec<super::Alert>,
    /// Canary: `stepWeightPromotion`, the weight added per step of a gradual
    /// promotion from the last analysis step to 100 % (none: promotion at once).
    pub step_weight_promotion: Option<Weight>,
}

/// Flagger's `analysis.sessionAffinity`: a user who got a response from one side of a
/// release gets a cookie that keeps them there until the release ends.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionAffinity {
    /// The canary side's cookie (`cookieName`).
    pub cookie_name: String,
    /// The stable side's cookie (`primaryCookieName`, default `<cookieName>-primary`).
    pub primary_cookie_name: String,
    /// The cookies' `Max-Age` (`maxAge`, default 86400 s).
    pub max_age: Duration,
}

impl Analysis {
    /// Passing checks needed from the first step to promotion.
    pub fn total_iterations(&self) -> u32 {
        if self.steps.is_empty() {
            self.iterations
        } else {
            // A mirrored first step is a step of its own.
            self.steps.len() as u32 + u32::from(self.mirror.is_some())
        }
    }

    pub fn webhooks_of(&self, kind: WebhookType) -> impl Iterator<Item = &Webhook> {
        self.webhooks.iter().filter(move |w| w.kind == kind)
    }

    pub fn has_webhooks(&self, kind: WebhookType) -> bool {
        self.webhooks_of(kind).next().is_some()
    }
}

/// One metric checked at every step.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    pub name: String,
    pub source: MetricSource,
    pub threshold_range: ThresholdRange,
    /// The window the value is computed over; defaults to the analysis interval.
    pub interval: Duration,
    /// Built-in metrics: fewer requests than this in the window make the check
    /// inconclusive (never a pass); default 10. Always 0 for provider metrics, whose
    /// "no data" is an empty query result.
    pub min_samples: u64,
    /// Inconclusive checks of this metric in a row that count as one failed check;
    /// default 3 (a scrape gap is not a failure, a quiet canary is).
    pub inconclusive_limit: u32,
    /// Argo's `dryRun`: evaluated and shown, never failing or holding the release.
    pub dry_run: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum MetricSource {
    Builtin(BuiltinMetric),
    /// A PromQL query (Flagger's `{{ namespace }}`, `{{ target }}`, `{{ interval }}`
    /// variables are the IO layer's business) against a Prometheus HTTP API.
    Prometheus {
        address: String,
        query: String,
    },
    /// A Flagger `MetricTemplate` (`namespace/name`), looked up at each check, so a
    /// changed template is used from the next check on without restarting the release;
    /// `variables` fill its `{{ variables.NAME }}` (Flagger's `templateVariables`).
    Template {
        template: String,
        variables: std::collections::BTreeMap<String, String>,
    },
}

/// A Flagger `MetricTemplate` (`flagger.app/v1beta1`): a query that releases' metrics
/// name by `templateRef`.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricTemplate {
    pub key: super::ResourceKey,
    pub source: TemplateSource,
}

/// Where a MetricTemplate's value comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum TemplateSource {
    /// `provider: {type: prometheus, address}`, `query` in PromQL.
    Prometheus { address: String, query: String },
    /// `provider: {type: coalmine}`, `query` naming a built-in metric: measured from
    /// Envoy's own stats for the canary, as when the metric is named directly.
    Builtin(BuiltinMetric),
}

/// Metrics coalmine computes from Envoy's own stats for the canary destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BuiltinMetric {
    /// Percent of requests not answered with a 5xx.
    #[serde(rename = "request-success-rate")]
    RequestSuccessRate,
    /// 99th percentile of request duration, in milliseconds.
    #[serde(rename = "request-duration")]
    RequestDuration,
}

impl BuiltinMetric {
    pub const ALL: [BuiltinMetric; 2] = [
        BuiltinMetric::RequestSuccessRate,
        BuiltinMetric::RequestDuration,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BuiltinMetric::RequestSuccessRate => "request-success-rate",
            BuiltinMetric::RequestDuration => "request-duration",
        }
    }

    pub fn from_name(name: &str) -> Option<BuiltinMetric> {
        Self::ALL.into_iter().find(|m| m.as_str() == name)
    }
}

/// Inclusive bounds a value must lie within; at least one is set, `min <= max`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ThresholdRange {
    pub min: Option<f64>,
    pub max: Option<f64>,
}

impl ThresholdRange {
    pub fn contains(&self, value: f64) -> bool {
        self.min.is_none_or(|min| value >= min) && self.max.is_none_or(|max| value <= max)
    }
}

impl fmt::Display for ThresholdRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.min, self.max) {
            (Some(min), Some(max)) => write!(f, "[{min}, {max}]"),
            (Some(min), None) => write!(f, ">= {min}"),
            (None, Some(max)) => write!(f, "<= {max}"),
            (None, None) => f.write_str("any"),
        }
    }
}

/// An HTTP call at a point of the rollout, as Flagger's webhooks.
#[derive(Debug, Clone, PartialEq)]
pub struct Webhook {
    pub name: String,
    pub kind: WebhookType,
    pub url: String,
    /// Default 10s.
    pub timeout: Duration,
    /// Further attempts after a failed one; default 0.
    pub retries: u32,
    pub metadata: BTreeMap<String, String>,
}

/// Flagger's webhook types; the decision each one drives is documented in
/// [`crate::rollout::machine`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WebhookType {
    ConfirmRollout,
    PreRollout,
    Rollout,
    ConfirmPromotion,
    PostRollout,
    Rollback,
    Event,
}

impl WebhookType {
    pub const ALL: [WebhookType; 7] = [
        WebhookType::ConfirmRollout,
        WebhookType::PreRollout,
        WebhookType::Rollout,
        WebhookType::ConfirmPromotion,
        WebhookType::PostRollout,
        WebhookType::Rollback,
        WebhookType::Event,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WebhookType::ConfirmRollout => "confirm-rollout",
            WebhookType::PreRollout => "pre-rollout",
            WebhookType::Rollout => "rollout",
            WebhookType::ConfirmPromotion => "confirm-promotion",
            WebhookType::PostRollout => "post-rollout",
            WebhookType::Rollback => "rollback",
            WebhookType::Event => "event",
        }
    }

    pub fn from_name(name: &str) -> Option<WebhookType> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

impl fmt::Display for WebhookType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
