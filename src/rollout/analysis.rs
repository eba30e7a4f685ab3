//! Judging metric values: each [`MetricResult`] against its metric's `thresholdRange`
//! and minimum sample, and a whole check round with the inconclusive streaks. Pure; the
//! values themselves come from the IO layer (Envoy stats, Prometheus).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::Metric;

/// One metric's value over its window, as the IO layer measured it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricResult {
    pub name: String,
    /// `None` when there was nothing to compute a value from (no data, empty result).
    pub value: Option<f64>,
    /// Requests in the window (built-in metrics); 0 when the provider cannot tell.
    pub samples: u64,
    /// Whether `samples` counts requests (the built-in source does, Prometheus does
    /// not): only then does the metric's `minSamples` apply.
    #[serde(default)]
    pub counted: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail,
    /// Too little traffic or no value: never a pass.
    Inconclusive,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Inconclusive => "inconclusive",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The last check of one metric: its value next to its verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricCheck {
    pub name: String,
    pub value: Option<f64>,
    pub samples: u64,
    pub verdict: Verdict,
    /// The clock of the check (see [`crate::rollout::machine`]).
    pub checked_at: Duration,
    /// A dry-run metric's check: shown, never counted.
    #[serde(default)]
    pub dry_run: bool,
}

impl fmt::Display for MetricCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.value {
            Some(value) => write!(f, "{} {value} ({}", self.name, self.verdict)?,
            None => write!(f, "{} no value ({}", self.name, self.verdict)?,
        }
        write!(f, ", {} samples", self.samples)?;
        f.write_str(if self.dry_run { ", dry run)" } else { ")" })
    }
}

/// A metric's verdict: no value (or not a number), or fewer counted samples than the
/// metric's `minSamples`, is inconclusive; a value outside `thresholdRange` fails; else
/// it passes.
pub fn evaluate(metric: &Metric, result: Option<&MetricResult>) -> Verdict {
    let Some(result) = result else {
        return Verdict::Inconclusive;
    };
    match result.value {
        Some(value)
            if !value.is_nan() && (!result.counted || result.samples >= metric.min_samples) =>
        {
            if metric.threshold_range.contains(value) {
                Verdict::Pass
            } else {
                Verdict::Fail
            }
        }
        _ => Verdict::Inconclusive,
    }
}

/// What one round of checks decides.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Pass,
    /// One failed check, with why.
    Fail(String),
    /// Neither: hold the step and check again after another interval.
    Inconclusive(String),
}

/// Judges a round: every metric's verdict (a metric without a result is
/// inconclusive), with the inconclusive streaks kept per metric in `streaks`.
///
/// - any metric failing fails the round;
/// - a metric inconclusive `inconclusiveLimit` times in a row fails the round (and its
///   streak starts again), so a canary without traffic is eventually rolled back;
/// - otherwise any inconclusive metric makes the round inconclusive (never a pass);
/// - otherwise the round passes. A passing or failing value ends a streak.
///
/// A `dryRun` metric is evaluated and its check returned (marked dry run), but its
/// verdict never fails nor holds the round, and it keeps no streak.
pub fn assess(
    metrics: &[Metric],
    results: &[MetricResult],
    streaks: &mut BTreeMap<String, u32>,
    now: Duration,
) -> (Outcome, Vec<MetricCheck>) {
    let mut checks = Vec::new();
    let mut failed = Vec::new();
    let mut inconclusive = Vec::new();
    for metric in metrics {
        let result = results.iter().find(|r| r.name == metric.name);
        let verdict = evaluate(metric, result);
        let check = MetricCheck {
            name: metric.name.clone(),
            value: result.and_then(|r| r.value),
            samples: result.map_or(0, |r| r.samples),
            verdict,
            checked_at: now,
            dry_run: metric.dry_run,
        };
        match verdict {
            _ if metric.dry_run => {}
            Verdict::Pass => {
                streaks.remove(&metric.name);
            }
            Verdict::Fail => {
                streaks.remove(&metric.name);
                failed.push(format!("{check} outside {}", metric.threshold_range));
            }
            Verdict::Inconclusive => {
                let streak = streaks.entry(metric.name.clone()).or_default();
                *streak += 1;
                if *streak >= metric.inconclusive_limit {
                    failed.push(format!("{check}: inconclusive {} times in a row", *streak));
                    streaks.remove(&metric.name);
                } else {
                    inconclusive.push(format!(
                        "{check}: at least {} samples needed",
                        metric.min_samples
                    ));
                }
            }
        }
        checks.push(check);
    }
    let outcome = if !failed.is_empty() {
        Outcome::Fail(failed.join("; "))
    } else if !inconclusive.is_empty() {
        Outcome::Inconclusive(inconclusive.join("; "))
    } else {
        Outcome::Pass
    };
    (outcome, checks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{BuiltinMetric, MetricSource, ThresholdRange};

    fn mk_metric(name: &str, min: Option<f64>, max: Option<f64>) -> Metric {
        Metric {
            name: name.into(),
            source: MetricSource::Builtin(BuiltinMetric::RequestSuccessRate),
            threshold_range: ThresholdRange { min, max },
            interval: Duration::from_secs(60),
            min_samples: 10,
            inconclusive_limit: 2,
            dry_run: false,
        }
    }

    fn mk_result(name: &str, value: Option<f64>, samples: u64) -> MetricResult {
        MetricResult {
            name: name.into(),
            value,
            samples,
            counted: true,
        }
    }

    #[test]
    fn verdicts() {
        let m = mk_metric("request-success-rate", Some(99.0), None);
        let eval = |value, samples| evaluate(&m, Some(&mk_result(&m.name, value, samples)));
        assert_eq!(eval(Some(99.5), 100), Verdict::Pass);
        assert_eq!(eval(Some(99.0), 10), Verdict::Pass);
        assert_eq!(eval(Some(98.9), 100), Verdict::Fail);
        assert_eq!(eval(Some(100.0), 9), Verdict::Inconclusive);
        assert_eq!(eval(None, 100), Verdict::Inconclusive);
        assert_eq!(eval(Some(f64::NAN), 100), Verdict::Inconclusive);
        assert_eq!(evaluate(&m, None), Verdict::Inconclusive);
        let d = mk_metric("request-duration", None, Some(500.0));
        assert_eq!(
            evaluate(&d, Some(&mk_result("d", Some(501.0), 50))),
            Verdict::Fail
        );
    }

    #[test]
    fn inconclusive_counts_as_failure_after_the_limit() {
        let metrics = vec![mk_metric("sr", Some(99.0), None)];
        let quiet = vec![mk_result("sr", None, 0)];
        let mut streaks = BTreeMap::new();
        let now = Duration::from_secs(1);
        let (first, checks) = assess(&metrics, &quiet, &mut streaks, now);
        assert!(matches!(first, Outcome::Inconclusive(_)), "{first:?}");
        assert_eq!(checks[0].verdict, Verdict::Inconclusive);
        let (second, _) = assess(&metrics, &quiet, &mut streaks, now);
        assert!(matches!(second, Outcome::Fail(_)), "{second:?}");
        // The streak starts again, and a value in between ends it.
        let (third, _) = assess(&metrics, &quiet, &mut streaks, now);
        assert!(matches!(third, Outcome::Inconclusive(_)));
        let ok = vec![mk_result("sr", Some(100.0), 50)];
        assert_eq!(assess(&metrics, &ok, &mut streaks, now).0, Outcome::Pass);
        assert!(streaks.is_empty());
    }

    #[test]
    fn a_failure_outweighs_an_inconclusive_metric() {
        let metrics = vec![
            mk_metric("sr", Some(99.0), None),
            mk_metric("lat", None, Some(500.0)),
        ];
        let results = vec![mk_result("sr", Some(50.0), 100)];
        let (outcome, checks) = assess(&metrics, &results, &mut BTreeMap::new(), Duration::ZERO);
        let Outcome::Fail(reason) = outcome else {
            panic!("expected a failure");
        };
        assert_eq!(reason, "sr 50 (fail, 100 samples) outside >= 99");
        assert_eq!(checks[1].verdict, Verdict::Inconclusive);
        assert_eq!(checks[1].value, None);
    }

    #[test]
    fn a_dry_run_metric_is_shown_but_never_counted() {
        let mut lat = mk_metric("lat", None, Some(500.0));
        lat.dry_run = true;
        let metrics = vec![mk_metric("sr", Some(99.0), None), lat];
        let mut streaks = BTreeMap::new();
        for lat_value in [Some(900.0), None] {
            let results = vec![
                mk_result("sr", Some(100.0), 50),
                mk_result("lat", lat_value, 50),
            ];
            let (outcome, checks) = assess(&metrics, &results, &mut streaks, Duration::ZERO);
            assert_eq!(outcome, Outcome::Pass, "{lat_value:?}");
            assert!(checks[1].dry_run);
            assert_ne!(checks[1].verdict, Verdict::Pass);
        }
        assert!(streaks.is_empty(), "a dry run keeps no streak");
        let (_, checks) = assess(&metrics, &[], &mut streaks, Duration::ZERO);
        assert_eq!(
            checks[1].to_string(),
            "lat no value (inconclusive, 0 samples, dry run)"
        );
    }

    #[test]
    fn serializes_verdicts_lowercase() {
        assert_eq!(
            serde_json::to_value(Verdict::Inconclusive).unwrap(),
            serde_json::json!("inconclusive")
        );
    }
}
