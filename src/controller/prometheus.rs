//! The Prometheus metric provider: a PromQL query, with Flagger's template variables,
//! against Prometheus' HTTP API.

use std::time::Duration;

use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("prometheus query failed: {0}")]
    Http(#[from] reqwest::Error),
    #[error("prometheus answered {status}: {body}")]
    Status { status: u16, body: String },
    #[error("prometheus answered something unexpected: {0}")]
    Shape(String),
}

/// The values Flagger's metric templates may use.
#[derive(Debug, Clone)]
pub struct Vars<'a> {
    pub namespace: &'a str,
    /// The rollout's target (the VirtualService's name).
    pub target: &'a str,
    pub interval: Duration,
    /// A template's `templateVariables`, as `{{ variables.NAME }}`.
    pub variables: &'a std::collections::BTreeMap<String, String>,
}

/// Replaces `{{ namespace }}`, `{{ target }}`, `{{ interval }}` and
/// `{{ variables.NAME }}` (spaces optional) in a query, as Flagger's templates write
/// them. The interval is written as Prometheus writes durations (`30s`, `1m`).
pub fn render(query: &str, vars: &Vars<'_>) -> String {
    let interval = prom_duration(vars.interval);
    let mut out = query.to_string();
    let fixed = [
        ("namespace".to_string(), vars.namespace),
        ("target".to_string(), vars.target),
        ("interval".to_string(), interval.as_str()),
    ];
    let variables = vars
        .variables
        .iter()
        .map(|(k, v)| (format!("variables.{k}"), v.as_str()));
    for (name, value) in fixed.into_iter().chain(variables) {
        for pattern in [format!("{{{{ {name} }}}}"), format!("{{{{{name}}}}}")] {
            out = out.replace(&pattern, value);
        }
    }
    out
}

fn prom_duration(d: Duration) -> String {
    let secs = d.as_secs().max(1);
    if secs.is_multiple_of(3600) {
        format!("{}h", secs / 3600)
    } else if secs.is_multiple_of(60) {
        format!("{}m", secs / 60)
    } else {
        format!("{secs}s")
    }
}

/// Runs an instant query; the first sample's value, or `None` when the result is
/// empty (no data: an inconclusive check, never a pass).
pub async fn query(
    client: &reqwest::Client,
    address: &str,
    promql: &str,
    timeout: Duration,
) -> Result<Option<f64>, Error> {
    let url = format!("{}/api/v1/query", address.trim_end_matches('/'));
    let resp = client
        .get(&url)
        .query(&[("query", promql)])
        .timeout(timeout)
        .send()
        .await?;
    let status = resp.status();
    let body = resp.text().await?;
    if !status.is_success() {
        return Err(Error::Status {
            status: status.as_u16(),
            body,
        });
    }
    parse(&body)
}

/// Reads the value out of a `/api/v1/query` answer (vector or scalar).
pub fn parse(body: &str) -> Result<Option<f64>, Error> {
    let v: Value = serde_json::from_str(body).map_err(|e| Error::Shape(e.to_string()))?;
    if v["status"] != "success" {
        return Err(Error::Shape(body.to_string()));
    }
    let data = &v["data"];
    let sample = match data["resultType"].as_str() {
        Some("vector") => match data["result"].as_array().and_then(|r| r.first()) {
            Some(first) => &first["value"],
            None => return Ok(None),
        },
        Some("scalar") => &data["result"],
        other => return Err(Error::Shape(format!("result type {other:?}"))),
    };
    let text = sample[1]
        .as_str()
        .ok_or_else(|| Error::Shape(sample.to_string()))?;
    let value: f64 = text.parse().map_err(|_| Error::Shape(text.to_string()))?;
    Ok(value.is_finite().then_some(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_flagger_variables() {
        let variables = std::collections::BTreeMap::from([("code".to_string(), "5..".to_string())]);
        let vars = Vars {
            namespace: "shop",
            target: "petstore",
            interval: Duration::from_secs(60),
            variables: &variables,
        };
        let q = r#"sum(rate(errors{namespace="{{ namespace }}",app="{{target}}",code=~"{{ variables.code }}"}[{{ interval }}]))"#;
        assert_eq!(
            render(q, &vars),
            r#"sum(rate(errors{namespace="shop",app="petstore",code=~"5.."}[1m]))"#
        );
    }

    #[test]
    fn parses_vector_scalar_and_empty_results() {
        let vector = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000.1,"0.25"]}]}}"#;
        assert_eq!(parse(vector).unwrap(), Some(0.25));
        let scalar =
            r#"{"status":"success","data":{"resultType":"scalar","result":[1700000000.1,"3"]}}"#;
        assert_eq!(parse(scalar).unwrap(), Some(3.0));
        let empty = r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
        assert_eq!(parse(empty).unwrap(), None);
        let nan = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"NaN"]}]}}"#;
        assert_eq!(parse(nan).unwrap(), None);
        assert!(parse(r#"{"status":"error","error":"bad query"}"#).is_err());
    }
}
