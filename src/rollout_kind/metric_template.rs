//! Flagger's `MetricTemplate` (`flagger.app/v1beta1`) into a [`MetricTemplate`]: a
//! Prometheus provider and a query with Flagger's variables (`{{ namespace }}`,
//! `{{ target }}`, `{{ interval }}`, `{{ variables.NAME }}`), which Rollout metrics
//! name by `templateRef`.

use serde_json::Value;

use super::try_provider;
use crate::ingest::{Fields, Obj, Report};
use crate::model::{MetricTemplate, ResourceKey};

const SPEC: Fields = Fields::known(&["provider", "query"]);

/// Reads a MetricTemplate spec; every problem goes to `r`.
pub(crate) fn try_metric_template(
    key: &ResourceKey,
    spec: &Value,
    r: &mut Report,
) -> Option<MetricTemplate> {
    let spec = Obj::new(r, "spec", spec, SPEC)?;
    let address = match spec.get("provider") {
        Some(provider) => try_provider(&spec.at("provider"), provider, r),
        None => {
            r.push(spec.at("provider"), "required (a prometheus provider)");
            None
        }
    };
    let query = spec.required_string(r, "query");
    Some(MetricTemplate {
        key: key.clone(),
        address: address?,
        query: query?,
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
        assert_eq!(template.address, "http://prometheus.istio-system:9090");
        assert!(template.query.contains("{{ target }}"));
        let mut r = Report::new(key.to_string());
        try_metric_template(&key, &json!({"provider": {"type": "datadog"}}), &mut r);
        let fields: Vec<&str> = r.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["spec.provider.type", "spec.provider.address", "spec.query"]
        );
    }
}
