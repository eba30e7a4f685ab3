//! Releases as Prometheus series for `/metrics` (Flagger's `flagger_canary_*` as the
//! model): each release's phase, weight, failed checks, iteration, every metric's last
//! value and verdict, and its steps by kind, so that dashboards and alert rules need
//! no log scraping. Pure: rendered from the statuses the controller publishes.

use std::fmt::Write;

use super::analysis::Verdict;
use super::status::{Phase, RolloutStatus};
use crate::model::ResourceKey;

const VERDICTS: [Verdict; 3] = [Verdict::Pass, Verdict::Fail, Verdict::Inconclusive];
const STEP_KINDS: [&str; 3] = ["step", "promote", "rollback"];

/// The series of every release in `statuses`, in the Prometheus text format.
pub fn render(statuses: &[(ResourceKey, RolloutStatus)]) -> String {
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str, lines: &mut dyn FnMut(&mut String)| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        lines(&mut out);
    };
    family(
        "coalmine_rollout_phase",
        "gauge",
        "1 for the release's current phase, 0 for the others.",
        &mut |out| {
            for (key, s) in statuses {
                for phase in Phase::ALL {
                    let on = u8::from(s.phase == phase);
                    let labels = labels(key, &[("phase", phase.as_str())]);
                    let _ = writeln!(out, "coalmine_rollout_phase{labels} {on}");
                }
            }
        },
    );
    let mut gauge = |name: &str, help: &str, value: &dyn Fn(&RolloutStatus) -> f64| {
        family(name, "gauge", help, &mut |out| {
            for (key, s) in statuses {
                let _ = writeln!(out, "{name}{} {}", labels(key, &[]), value(s));
            }
        });
    };
    gauge(
        "coalmine_rollout_canary_weight",
        "Percent of the route's traffic on the canary.",
        &|s| s.canary_weight,
    );
    gauge(
        "coalmine_rollout_failed_checks",
        "Failed checks so far in the release.",
        &|s| f64::from(s.failed_checks),
    );
    gauge(
        "coalmine_rollout_threshold",
        "Failed checks that end the release.",
        &|s| f64::from(s.threshold),
    );
    gauge(
        "coalmine_rollout_iteration",
        "Passing checks so far in the release.",
        &|s| f64::from(s.iteration),
    );
    family(
        "coalmine_rollout_metric_value",
        "gauge",
        "Each metric's last value (absent before a check with data).",
        &mut |out| {
            for (key, s) in statuses {
                for m in &s.metrics {
                    if let Some(value) = m.value.filter(|v| v.is_finite()) {
                        let labels = labels(key, &[("metric", &m.name)]);
                        let _ = writeln!(out, "coalmine_rollout_metric_value{labels} {value}");
                    }
                }
            }
        },
    );
    family(
        "coalmine_rollout_metric_verdict",
        "gauge",
        "1 for each metric's last verdict (pass, fail, inconclusive), 0 for the others.",
        &mut |out| {
            for (key, s) in statuses {
                for m in &s.metrics {
                    for verdict in VERDICTS {
                        let on = u8::from(m.verdict == verdict);
                        let labels =
                            labels(key, &[("metric", &m.name), ("verdict", verdict.as_str())]);
                        let _ = writeln!(out, "coalmine_rollout_metric_verdict{labels} {on}");
                    }
                }
            }
        },
    );
    family(
        "coalmine_rollout_steps_total",
        "counter",
        "The release's traffic decisions by kind: step, promote, rollback.",
        &mut |out| {
            for (key, s) in statuses {
                for kind in STEP_KINDS {
                    let n = s.steps.iter().filter(|st| st.kind == kind).count();
                    let labels = labels(key, &[("kind", kind)]);
                    let _ = writeln!(out, "coalmine_rollout_steps_total{labels} {n}");
                }
            }
        },
    );
    out
}

/// `{namespace="…",name="…",extra…}` with label values escaped.
fn labels(key: &ResourceKey, extra: &[(&str, &str)]) -> String {
    let mut pairs = vec![
        ("namespace", key.namespace.as_str()),
        ("name", key.name.as_str()),
    ];
    pairs.extend_from_slice(extra);
    let body: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    format!("{{{}}}", body.join(","))
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Kind;
    use crate::rollout::machine_tests::{secs, Run, METRICS};

    #[test]
    fn a_release_renders_its_phase_weight_and_metrics() {
        let mut run = Run::canary(&format!("    stepWeights: [10, 50]\n{METRICS}"));
        run.start();
        run.store_and_ack();
        run.wait(secs(30));
        run.checks(Some(42.5), 500);
        let key = ResourceKey::new(Kind::Rollout, "default", "petstore");
        let text = render(&[(key, run.m.status())]);
        let has = |line: &str| text.lines().any(|l| l == line);
        let l = "namespace=\"default\",name=\"petstore\"";
        assert!(
            has(&format!(
                "coalmine_rollout_phase{{{l},phase=\"Progressing\"}} 1"
            )),
            "{text}"
        );
        assert!(has(&format!(
            "coalmine_rollout_phase{{{l},phase=\"Failed\"}} 0"
        )));
        assert!(has(&format!("coalmine_rollout_canary_weight{{{l}}} 10")));
        assert!(has(&format!("coalmine_rollout_failed_checks{{{l}}} 1")));
        let metric = format!("{l},metric=\"request-success-rate\"");
        assert!(has(&format!(
            "coalmine_rollout_metric_value{{{metric}}} 42.5"
        )));
        assert!(has(&format!(
            "coalmine_rollout_metric_verdict{{{metric},verdict=\"fail\"}} 1"
        )));
        assert!(has(&format!(
            "coalmine_rollout_steps_total{{{l},kind=\"step\"}} 1"
        )));
        assert_eq!(escape("a\"b\\"), "a\\\"b\\\\");
    }
}
