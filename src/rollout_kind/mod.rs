//! The Rollout dialect: `coalmine.dev/v1alpha1` `Rollout` specs into [`model::Rollout`](crate::model::Rollout),
//! with Flagger's analysis field names and every default filled in. Its stable and
//! canary destinations and A/B matches are written in the syntax Istio's routes use
//! ([`crate::ingest`] holds it for both).
//!
//! Destinations come out unresolved (as for VirtualService destinations) and the
//! target is not looked up: [`crate::resource_set`] does both.

mod alerts;
mod controls;
mod metric_template;
mod traffic_options;

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;

pub(crate) use alerts::try_alert_provider;
pub(crate) use metric_template::try_metric_template;
use traffic_options::{try_mirror, try_session_affinity};

use crate::ingest::{try_destination, try_matches, Fields, Obj, Report};
use crate::model::{
    Analysis, BuiltinMetric, Kind, Metric, MetricSource, ResourceKey, Rollout, Strategy,
    ThresholdRange, Webhook, WebhookType, Weight,
};

const SPEC: Fields = Fields::known(&[
    "target",
    "stable",
    "canary",
    "strategy",
    "analysis",
    controls::FIELDS[0],
    controls::FIELDS[1],
    controls::FIELDS[2],
]);
const TARGET: Fields = Fields::known(&["kind", "name", "namespace"]);
const ANALYSIS: Fields = Fields {
    known: &[
        "interval",
        "threshold",
        "stepWeight",
        "stepWeights",
        "maxWeight",
        "iterations",
        "match",
        "metrics",
        "webhooks",
        "sessionAffinity",
        "mirror",
        "mirrorWeight",
        "alerts",
        "stepWeightPromotion",
    ],
    unsupported: &["primaryReadyThreshold", "canaryReadyThreshold"],
};
const METRIC: Fields = Fields {
    known: &[
        "name",
        "thresholdRange",
        "interval",
        "provider",
        "query",
        "minSamples",
        "inconclusiveLimit",
        "templateRef",
        "templateVariables",
        "dryRun",
    ],
    unsupported: &["threshold"],
};
const TEMPLATE_REF: Fields = Fields::known(&["name", "namespace"]);
const RANGE: Fields = Fields::known(&["min", "max"]);
const PROVIDER: Fields = Fields::known(&["type", "address"]);
const WEBHOOK: Fields = Fields {
    known: &["name", "type", "url", "timeout", "retries", "metadata"],
    unsupported: &["muteAlert"],
};

/// Defaults, as Flagger has them where Flagger has one.
pub(crate) const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
pub(crate) const DEFAULT_THRESHOLD: u32 = 5;
pub(crate) const DEFAULT_MAX_WEIGHT: Weight = Weight::from_units(50 * Weight::PER_PERCENT);
pub(crate) const DEFAULT_MIN_SAMPLES: u64 = 10;
pub(crate) const DEFAULT_INCONCLUSIVE_LIMIT: u32 = 3;
pub(crate) const DEFAULT_WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads a Rollout spec; every problem goes to `r`.
pub(crate) fn try_rollout(key: &ResourceKey, spec: &Value, r: &mut Report) -> Option<Rollout> {
    let spec = Obj::new(r, "spec", spec, SPEC)?;
    let target = try_target(spec, &key.namespace, r);
    let mut destination = |name: &str| match spec.get(name) {
        Some(value) => try_destination(&spec.at(name), value, r),
        None => {
            r.push(spec.at(name), "required");
            None
        }
    };
    let stable = destination("stable");
    let canary = destination("canary");
    let strategy = match spec.string(r, "strategy").as_deref() {
        None => Some(Strategy::Canary),
        Some("Canary") => Some(Strategy::Canary),
        Some("BlueGreen") => Some(Strategy::BlueGreen),
        Some("ABTesting") => Some(Strategy::ABTesting),
        Some(other) => {
            r.push(
                spec.at("strategy"),
                format!("unknown strategy {other:?} (expected Canary, BlueGreen or ABTesting)"),
            );
            None
        }
    };
    let analysis = match (spec.get("analysis"), strategy) {
        (None, _) => {
            r.push(spec.at("analysis"), "required");
            None
        }
        (Some(value), Some(strategy)) => Obj::new(r, "spec.analysis", value, ANALYSIS)
            .and_then(|a| try_analysis(a, strategy, &key.namespace, r)),
        (Some(_), None) => None,
    };
    let controls = controls::try_controls(spec, r);
    Some(Rollout {
        key: key.clone(),
        target: target?,
        stable: stable?,
        canary: canary?,
        strategy: strategy?,
        analysis: analysis?,
        controls,
    })
}

fn try_target(spec: Obj<'_, '_>, namespace: &str, r: &mut Report) -> Option<ResourceKey> {
    let Some(value) = spec.get("target") else {
        r.push(spec.at("target"), "required");
        return None;
    };
    let target = Obj::new(r, "spec.target", value, TARGET)?;
    let kind = target.required_string(r, "kind");
    let kind = kind.and_then(|kind| match kind.as_str() {
        "VirtualService" => Some(Kind::VirtualService),
        "HTTPRoute" => Some(Kind::HttpRoute),
        _ => {
            r.push(
                target.at("kind"),
                format!("unsupported target kind {kind:?} (expected VirtualService or HTTPRoute)"),
            );
            None
        }
    });
    let name = target.required_string(r, "name");
    let namespace = target
        .string(r, "namespace")
        .filter(|ns| !ns.is_empty())
        .unwrap_or_else(|| namespace.to_string());
    Some(ResourceKey::new(kind?, namespace, name?))
}

fn try_analysis(
    a: Obj<'_, '_>,
    strategy: Strategy,
    namespace: &str,
    r: &mut Report,
) -> Option<Analysis> {
    let interval = a.duration(r, "interval").unwrap_or(DEFAULT_INTERVAL);
    if interval.is_zero() {
        r.push(a.at("interval"), "must be longer than 0");
    }
    let threshold = a
        .uint(r, "threshold", 1, u32::MAX)
        .unwrap_or(DEFAULT_THRESHOLD);
    let canary_only = [
        "stepWeight",
        "stepWeights",
        "maxWeight",
        "stepWeightPromotion",
    ];
    let iterations = match strategy {
        Strategy::Canary => {
            if a.has("iterations") {
                r.push(
                    a.at("iterations"),
                    "applies to BlueGreen and ABTesting only",
                );
            }
            if a.has("match") {
                r.push(a.at("match"), "applies to BlueGreen and ABTesting only");
            }
            0
        }
        Strategy::BlueGreen | Strategy::ABTesting => {
            for key in canary_only.into_iter().filter(|k| a.has(k)) {
                r.push(a.at(key), "applies to Canary only");
            }
            if !a.has("iterations") {
                r.push(a.at("iterations"), format!("required for {strategy}"));
            }
            a.uint(r, "iterations", 1, u32::MAX).unwrap_or(1)
        }
    };
    let steps = match strategy {
        Strategy::Canary => try_steps(a, r),
        _ => Vec::new(),
    };
    let step_weight_promotion = a
        .get("stepWeightPromotion")
        .and_then(|value| try_step_weight(&a.at("stepWeightPromotion"), value, r));
    let matches = try_matches(a, r);
    if strategy == Strategy::ABTesting && matches.is_empty() {
        r.push(a.at("match"), "ABTesting requires at least one match");
    }
    let metrics = try_metrics(a, interval, namespace, r);
    let webhooks = try_webhooks(a, r);
    let session_affinity = try_session_affinity(a, strategy, r);
    let mirror = try_mirror(a, strategy, r);
    let alerts = alerts::try_alerts(a, namespace, r);
    Some(Analysis {
        interval,
        threshold,
        steps,
        iterations,
        matches,
        metrics,
        webhooks,
        session_affinity,
        mirror,
        alerts,
        step_weight_promotion,
    })
}

/// A weight in percent, over 0 and up to 100, with at most four decimals.
fn try_step_weight(path: &str, value: &Value, r: &mut Report) -> Option<Weight> {
    let weight = value.as_f64().and_then(Weight::from_percent);
    match weight {
        Some(w) if w > Weight::ZERO => Some(w),
        _ => {
            r.push(
                path,
                "must be a number over 0 and at most 100, with at most 4 decimals",
            );
            None
        }
    }
}

/// Canary steps: `stepWeights` as given (increasing, none over `maxWeight` when that is
/// set), or `stepWeight`, twice it, ... while under `maxWeight` (default 50), then
/// `maxWeight` itself.
fn try_steps(a: Obj<'_, '_>, r: &mut Report) -> Vec<Weight> {
    let weight_at = |r: &mut Report, key: &str| {
        a.get(key)
            .and_then(|value| try_step_weight(&a.at(key), value, r))
    };
    let max = weight_at(r, "maxWeight");
    let step = weight_at(r, "stepWeight");
    let listed = a.list(r, "stepWeights");
    match (step, listed.is_empty()) {
        (Some(_), false) => {
            r.push(
                a.at("stepWeights"),
                "stepWeight and stepWeights are mutually exclusive",
            );
            Vec::new()
        }
        (Some(step), true) => {
            let max = max.unwrap_or(DEFAULT_MAX_WEIGHT);
            let mut steps = Vec::new();
            let mut weight = step.units();
            while weight < max.units() {
                steps.push(Weight::from_units(weight));
                weight += step.units();
            }
            steps.push(max);
            steps
        }
        (None, false) => {
            let mut steps: Vec<Weight> = Vec::new();
            for (path, value) in listed {
                let Some(weight) = try_step_weight(&path, value, r) else {
                    continue;
                };
                if steps.last().is_some_and(|last| *last >= weight) {
                    r.push(&path, "weights must increase");
                } else if max.is_some_and(|max| weight > max) {
                    r.push(&path, "must not be over maxWeight");
                }
                steps.push(weight);
            }
            steps
        }
        (None, true)
            if a.has("stepWeights") && a.get("stepWeights").is_some_and(Value::is_array) =>
        {
            r.push(a.at("stepWeights"), "must not be empty");
            Vec::new()
        }
        (None, true) if a.has("stepWeight") || a.has("stepWeights") => Vec::new(),
        (None, true) => {
            r.push(
                a.at("stepWeight"),
                "Canary requires stepWeight or stepWeights",
            );
            Vec::new()
        }
    }
}

/// `templateRef` (`name`, `namespace` defaulting to the Rollout's) and
/// `templateVariables`, as a metric source.
fn try_template_ref(m: Obj<'_, '_>, namespace: &str, r: &mut Report) -> Option<MetricSource> {
    let path = m.at("templateRef");
    let template = Obj::new(r, &path, m.get("templateRef")?, TEMPLATE_REF)?;
    let name = template.required_string(r, "name")?;
    let ns = template
        .string(r, "namespace")
        .unwrap_or_else(|| namespace.to_string());
    Some(MetricSource::Template {
        template: format!("{ns}/{name}"),
        variables: m.string_map(r, "templateVariables"),
    })
}

fn try_metrics(a: Obj<'_, '_>, interval: Duration, namespace: &str, r: &mut Report) -> Vec<Metric> {
    let mut names = BTreeSet::new();
    let mut out = Vec::new();
    for (path, value) in a.list(r, "metrics") {
        let Some(m) = Obj::new(r, &path, value, METRIC) else {
            continue;
        };
        let name = m.required_string(r, "name");
        if let Some(name) = &name {
            if !names.insert(name.clone()) {
                r.push(m.at("name"), format!("metric {name:?} is listed twice"));
            }
        }
        let threshold_range = try_range(m, r);
        let window = m.duration(r, "interval").unwrap_or(interval);
        let query = m.string(r, "query");
        let provider = m
            .get("provider")
            .and_then(|p| try_provider(&m.at("provider"), p, r));
        let builtin = name.as_deref().and_then(BuiltinMetric::from_name);
        let template = try_template_ref(m, namespace, r);
        if template.is_some() && (m.has("provider") || m.has("query")) {
            r.push(
                m.at("templateRef"),
                "either templateRef or provider and query, not both",
            );
        }
        if m.has("templateVariables") && !m.has("templateRef") {
            r.push(m.at("templateVariables"), "only with templateRef");
        }
        let source = match (provider, query, builtin) {
            _ if template.is_some() => template,
            (Some(address), Some(query), _) => Some(MetricSource::Prometheus { address, query }),
            (None, None, Some(builtin)) => Some(MetricSource::Builtin(builtin)),
            (Some(_), None, _) => {
                r.push(m.at("query"), "required with provider");
                None
            }
            (None, Some(_), _) => {
                r.push(m.at("provider"), "required with query");
                None
            }
            (None, None, None) if m.has("provider") || m.has("templateRef") => None,
            (None, None, None) => {
                r.push(
                    m.at("provider"),
                    "required: the metric is not built in (request-success-rate, \
                     request-duration), so it needs a provider and a query, or a templateRef",
                );
                None
            }
        };
        let min_samples = m.get("minSamples").and_then(|value| match value.as_u64() {
            Some(n) => Some(n),
            None => {
                r.push(m.at("minSamples"), "must be a non-negative integer");
                None
            }
        });
        if min_samples.is_some() && matches!(source, Some(MetricSource::Prometheus { .. })) {
            r.push(
                m.at("minSamples"),
                "applies to built-in metrics only (a provider's \"no data\" is an empty result)",
            );
        }
        let inconclusive_limit = m.uint(r, "inconclusiveLimit", 1, u32::MAX);
        let dry_run = m.boolean(r, "dryRun").unwrap_or(false);
        let (Some(name), Some(source), Some(threshold_range)) = (name, source, threshold_range)
        else {
            continue;
        };
        // A template may be the built-in source: its minimum applies then (a Prometheus
        // result counts no requests, so none applies to it).
        let min_samples = match source {
            MetricSource::Builtin(_) | MetricSource::Template { .. } => {
                min_samples.unwrap_or(DEFAULT_MIN_SAMPLES)
            }
            MetricSource::Prometheus { .. } => 0,
        };
        out.push(Metric {
            name,
            source,
            threshold_range,
            interval: window,
            min_samples,
            inconclusive_limit: inconclusive_limit.unwrap_or(DEFAULT_INCONCLUSIVE_LIMIT),
            dry_run,
        });
    }
    out
}

fn try_range(m: Obj<'_, '_>, r: &mut Report) -> Option<ThresholdRange> {
    let Some(value) = m.get("thresholdRange") else {
        r.push(m.at("thresholdRange"), "required");
        return None;
    };
    let path = m.at("thresholdRange");
    let range = Obj::new(r, &path, value, RANGE)?;
    let min = range.number(r, "min");
    let max = range.number(r, "max");
    match (min, max) {
        (None, None) if !range.has("min") && !range.has("max") => {
            r.push(&path, "one of min or max is required");
            None
        }
        (Some(min), Some(max)) if min > max => {
            r.push(&path, "min must not be over max");
            None
        }
        (None, None) => None,
        (min, max) => Some(ThresholdRange { min, max }),
    }
}

fn try_provider(path: &str, value: &Value, r: &mut Report) -> Option<String> {
    let p = Obj::new(r, path, value, PROVIDER)?;
    let kind = p.required_string(r, "type");
    if kind.as_deref().is_some_and(|k| k != "prometheus") {
        r.push(
            p.at("type"),
            "unsupported provider type (expected prometheus)",
        );
    }
    let address = p.required_string(r, "address");
    let address = address.filter(|address| check_url(r, &p.at("address"), address));
    kind.filter(|k| k == "prometheus").and(address)
}

fn check_url(r: &mut Report, path: &str, url: &str) -> bool {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    let ok = rest.is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'));
    if !ok {
        r.push(path, format!("{url:?} is not an http:// or https:// URL"));
    }
    ok
}

fn try_webhooks(a: Obj<'_, '_>, r: &mut Report) -> Vec<Webhook> {
    let mut out = Vec::new();
    let mut names = BTreeSet::new();
    for (path, value) in a.list(r, "webhooks") {
        let Some(w) = Obj::new(r, &path, value, WEBHOOK) else {
            continue;
        };
        let name = w.required_string(r, "name");
        if let Some(name) = name.as_ref().filter(|n| !names.insert(n.to_string())) {
            r.push(w.at("name"), format!("webhook {name:?} is listed twice"));
        }
        let kind = match w.string(r, "type") {
            None => Some(WebhookType::Rollout),
            Some(kind) => WebhookType::from_name(&kind).or_else(|| {
                let names: Vec<&str> = WebhookType::ALL.iter().map(|t| t.as_str()).collect();
                let expected = names.join(", ");
                r.push(
                    w.at("type"),
                    format!("unknown type {kind:?} (expected {expected})"),
                );
                None
            }),
        };
        let url = w.required_string(r, "url");
        let url = url.filter(|url| check_url(r, &w.at("url"), url));
        let timeout = w.duration(r, "timeout").unwrap_or(DEFAULT_WEBHOOK_TIMEOUT);
        if timeout.is_zero() {
            r.push(w.at("timeout"), "must be longer than 0");
        }
        let retries = w.uint(r, "retries", 0, 100).unwrap_or(0);
        let metadata = w.string_map(r, "metadata");
        if let (Some(name), Some(kind), Some(url)) = (name, kind, url) {
            out.push(Webhook {
                name,
                kind,
                url,
                timeout,
                retries,
                metadata,
            });
        }
    }
    out
}
