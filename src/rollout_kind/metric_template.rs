//! Flagger's `MetricTemplate` (`flagger.app/v1beta1`) into a [`MetricTemplate`]: a
//! Prometheus provider and a query with Flagger's variables (`{{ namespace }}`,
//! `{{ target }}`, `{{ interval }}`, `{{ variables.NAME }}`), or coalmine's built-in
//! source (`provider: {type: coalmine}`, `query: request-success-rate` or
//! `request-duration`), which Rollout metrics name by `templateRef`.

use serde_json::Value;

use super::try_provider;
use crate::ingest::{Fields, Obj, Report};
use crate::model::{BuiltinMetric, MetricTemplate, ResourceKey, TemplateSource};

const SPEC: Fields = Fields::known(&["provider", "query"]);
const BUILTIN: Fields = Fields::known(&["type"]);

/// The provider type of coalmine's built-in source.
const BUILTIN_TYPE: &str = "coalmine";

/// Reads a MetricTemplate spec; every problem goes to `r`.
pub(crate) fn try_metric_template(
    key: &ResourceKey,
    spec: &Value,
    r: &mut Report,
) -> Option<MetricTemplate> {
    let spec = Obj::new(r, "spec", spec, SPEC)?;
    let Some(provider) = spec.get("provider") else {
        r.push(
            spec.at("provider"),
            "required (type prometheus with an address, or type coalmine)",
        );
        return None;
    };
    let path = spec.at("provider");
    let builtin = provider.get("type").and_then(Value::as_str) == Some(BUILTIN_TYPE);
    let source = if builtin {
        Obj::new(r, &path, provider, BUILTIN)?;
        let query = spec.required_string(r, "query");
        let metric = query.as_deref().and_then(|q| {
            let metric = BuiltinMetric::from_name(q.trim());
            if metric.is_none() {
                r.push(
                    spec.at("query"),
                    format!(
                        "{q:?} is not a built-in metric (request-success-rate, request-duration)"
                    ),
                );
            }
            metric
        });
        TemplateSource::Builtin(metric?)
    } else {
        let address = try_provider(&path, provider, r);
        let query = spec.required_string(r, "query");
        TemplateSource::Prometheus {
            address: address?,
            query: query?,
        }
    };
    Some(MetricTemplate {
        key: key.clone(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Kind;
    use serde_json::json;

    #[test]
    fn reads_flaggers_template_and_names_bad_fields() {
        let key = ResourceKey::new(Kind::MetricTemplate, "istio-system", "error-rate");
        let mut r = Report::new(key.to_string());
        let spec = json!({
            "provider": {"type": "prometheus", "address": "http://prometheus.istio-system:9090"},
            "query": "100 - sum(rate(istio_requests_total{destination_workload=\"{{ target }}\"}[{{ interval }}]))"
        });
        let template = try_metric_template(&key, &spec, &mut r).unwrap();
        assert!(r.is_clean(), "{:?}", r.errors);
        let TemplateSource::Prometheus { address, query } = &template.source else {
            panic!("a Prometheus template");
        };
        assert_eq!(address, "http://prometheus.istio-system:9090");
        assert!(query.contains("{{ target }}"));
        let builtin = json!({"provider": {"type": "coalmine"}, "query": "request-duration"});
        let template = try_metric_template(&key, &builtin, &mut r).unwrap();
        assert!(r.is_clean(), "{:?}", r.errors);
        assert_eq!(
            template.source,
            TemplateSource::Builtin(BuiltinMetric::RequestDuration)
        );
        let wrong =
            json!({"provider": {"type": "coalmine", "address": "http://x"}, "query": "p50"});
        assert!(try_metric_template(&key, &wrong, &mut r).is_none());
        let fields: Vec<&str> = r.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["spec.provider.address", "spec.query"]);
        let mut r = Report::new(key.to_string());
        try_metric_template(&key, &json!({"provider": {"type": "datadog"}}), &mut r);
        let fields: Vec<&str> = r.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["spec.provider.type", "spec.provider.address", "spec.query"]
        );
    }
}
