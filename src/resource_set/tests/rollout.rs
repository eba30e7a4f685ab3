//! Rollout documents: defaults, field errors by path, and the cross checks against
//! the target VirtualService.

use std::time::Duration;

use super::{mk_config, mk_errors};
use crate::model::*;

pub(super) const BASE: &str = "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: petstore}
spec:
  hosts: [petstore.default.svc.cluster.local]
  ports: [{number: 80, name: http}]
  resolution: STATIC
  endpoints: [{address: 10.0.0.1, labels: {v: '1'}}, {address: 10.0.0.2, labels: {v: '2'}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: petstore}
spec:
  host: petstore
  subsets: [{name: v1, labels: {v: '1'}}, {name: v2, labels: {v: '2'}}, {name: v3, labels: {v: '3'}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: petstore}
spec:
  hosts: [petstore.example.com]
  http: [{route: [{destination: {host: petstore, subset: v1}}]}]
";

pub(super) fn rollout(name: &str, spec: &str) -> String {
    format!(
        "---\napiVersion: coalmine.dev/v1alpha1\nkind: Rollout\nmetadata: {{name: {name}}}\n\
         spec:\n  target: {{kind: VirtualService, name: petstore}}\n{spec}"
    )
}

pub(super) const DESTS: &str =
    "  stable: {host: petstore, subset: v1}\n  canary: {host: petstore, subset: v2}\n";

/// (resource, field, message) of each error of BASE plus these Rollouts.
pub(super) fn errors(rollouts: &[String]) -> Vec<(String, String, String)> {
    mk_errors(&format!("{BASE}{}", rollouts.concat()))
}

pub(super) fn error(resource: &str, field: &str, message: &str) -> (String, String, String) {
    (resource.into(), field.into(), message.into())
}

#[test]
fn reads_a_rollout_with_defaults() {
    let spec = format!(
        "{DESTS}  analysis:\n    stepWeight: 20\n    metrics:\n      \
         - {{name: request-success-rate, thresholdRange: {{min: 99}}}}\n      \
         - {{name: errors, thresholdRange: {{max: 1}}, query: 'sum(x)', \
         provider: {{type: prometheus, address: 'http://prom:9090'}}}}\n    \
         webhooks: [{{name: load, url: 'http://load/'}}]\n"
    );
    let config = mk_config(&format!("{BASE}{}", rollout("petstore", &spec))).unwrap();
    let ro = &config.rollouts[0];
    assert_eq!(
        ro.key,
        ResourceKey::new(Kind::Rollout, "default", "petstore")
    );
    assert_eq!(
        ro.target,
        ResourceKey::new(Kind::VirtualService, "default", "petstore")
    );
    assert_eq!(ro.stable.host, "petstore.default.svc.cluster.local");
    assert_eq!(ro.canary.port, 80);
    assert_eq!(ro.strategy, Strategy::Canary);
    let a = &ro.analysis;
    assert_eq!(a.interval, Duration::from_secs(60));
    assert_eq!(a.threshold, 5);
    let steps: Vec<f64> = a.steps.iter().map(|w| w.percent()).collect();
    assert_eq!(steps, vec![20.0, 40.0, 50.0]);
    assert_eq!(a.metrics[0].min_samples, 10);
    assert_eq!(a.metrics[0].inconclusive_limit, 3);
    assert_eq!(a.metrics[0].interval, Duration::from_secs(60));
    assert_eq!(
        a.metrics[0].source,
        MetricSource::Builtin(BuiltinMetric::RequestSuccessRate)
    );
    assert_eq!(a.metrics[1].min_samples, 0);
    assert!(matches!(
        a.metrics[1].source,
        MetricSource::Prometheus { .. }
    ));
    assert_eq!(a.webhooks[0].kind, WebhookType::Rollout);
    assert_eq!(a.webhooks[0].timeout, Duration::from_secs(10));
    assert_eq!(a.webhooks[0].retries, 0);
}

#[test]
fn names_bad_fields() {
    let spec = "  stable: {host: petstore, subset: v1}\n  canary: {host: petstore, subset: v2}\n  \
                analysis:\n    stepWeights: [1, 10, 5, 0.00001]\n    threshold: 0\n    \
                metrics: [{name: errors, thresholdRange: {min: 5, max: 1}}]\n    \
                webhooks: [{name: a, type: later, url: 'ftp://x'}]\n    primaryReadyThreshold: 99\n";
    let found = errors(&[rollout("petstore", spec)]);
    let r = "Rollout default/petstore";
    assert_eq!(
        found,
        vec![
            error(r, "spec.analysis.primaryReadyThreshold", "not supported"),
            error(
                r,
                "spec.analysis.threshold",
                "must be an integer between 1 and 4294967295"
            ),
            error(r, "spec.analysis.stepWeights[2]", "weights must increase"),
            error(
                r,
                "spec.analysis.stepWeights[3]",
                "must be a number over 0 and at most 100, with at most 4 decimals"
            ),
            error(
                r,
                "spec.analysis.metrics[0].thresholdRange",
                "min must not be over max"
            ),
            error(
                r,
                "spec.analysis.metrics[0].provider",
                "required: the metric is not built in (request-success-rate, request-duration), \
                 so it needs a provider and a query, or a templateRef"
            ),
            error(
                r,
                "spec.analysis.webhooks[0].type",
                "unknown type \"later\" (expected confirm-rollout, pre-rollout, rollout, \
                 confirm-promotion, post-rollout, rollback, event)"
            ),
            error(
                r,
                "spec.analysis.webhooks[0].url",
                "\"ftp://x\" is not an http:// or https:// URL"
            ),
        ]
    );
}

#[test]
fn strategies_take_their_own_fields() {
    let target = "  target: {kind: Deployment, name: petstore}\n";
    let bad_target = rollout("a", &format!("{DESTS}  analysis: {{stepWeight: 10}}\n"))
        .replace("  target: {kind: VirtualService, name: petstore}\n", target);
    let ab = rollout(
        "b",
        &format!("{DESTS}  strategy: ABTesting\n  analysis: {{stepWeight: 10}}\n"),
    );
    let canary = rollout("c", &format!("{DESTS}  analysis: {{iterations: 3}}\n"));
    let found = errors(&[bad_target, ab, canary]);
    let fields: Vec<(&str, &str, &str)> = found
        .iter()
        .map(|(r, f, m)| (r.as_str(), f.as_str(), m.as_str()))
        .collect();
    assert_eq!(
        fields,
        vec![
            (
                "Rollout default/a",
                "spec.target.kind",
                "unsupported target kind \"Deployment\" (expected VirtualService or HTTPRoute)"
            ),
            (
                "Rollout default/b",
                "spec.analysis.stepWeight",
                "applies to Canary only"
            ),
            (
                "Rollout default/b",
                "spec.analysis.iterations",
                "required for ABTesting"
            ),
            (
                "Rollout default/b",
                "spec.analysis.match",
                "ABTesting requires at least one match"
            ),
            (
                "Rollout default/c",
                "spec.analysis.iterations",
                "applies to BlueGreen and ABTesting only"
            ),
            (
                "Rollout default/c",
                "spec.analysis.stepWeight",
                "Canary requires stepWeight or stepWeights"
            ),
        ]
    );
}

#[test]
fn cross_checks_the_target() {
    let analysis = "  analysis: {stepWeight: 10}\n";
    let ok = rollout("a", &format!("{DESTS}{analysis}"));
    let twice = rollout("b", &format!("{DESTS}{analysis}"));
    let missing = rollout("c", &format!("{DESTS}{analysis}"))
        .replace("name: petstore}\n", "name: nothing}\n");
    let unrouted = rollout(
        "d",
        &format!("  stable: {{host: petstore, subset: v3}}\n  canary: {{host: petstore, subset: v2}}\n{analysis}"),
    );
    let unknown = rollout(
        "e",
        &format!("  stable: {{host: petstore, subset: v1}}\n  canary: {{host: petstore, subset: v9}}\n{analysis}"),
    );
    let found = errors(&[ok, twice, missing, unrouted, unknown]);
    let fields: Vec<(&str, &str, &str)> = found
        .iter()
        .map(|(r, f, m)| (r.as_str(), f.as_str(), m.as_str()))
        .collect();
    assert_eq!(
        fields,
        vec![
            ("Rollout default/b", "spec.target", "VirtualService default/petstore is already the target of Rollout default/a"),
            ("Rollout default/c", "spec.target.name", "VirtualService default/nothing is not defined"),
            ("Rollout default/d", "spec.target", "VirtualService default/petstore has no http route to the stable or the canary destination"),
            ("Rollout default/d", "spec.target", "VirtualService default/petstore is already the target of Rollout default/a"),
            ("Rollout default/e", "spec.canary.subset", "subset \"v9\" is not defined by a DestinationRule for host \"petstore.default.svc.cluster.local\""),
            ("Rollout default/e", "spec.target", "VirtualService default/petstore is already the target of Rollout default/a"),
        ]
    );
}

#[test]
fn the_target_route_may_only_send_to_stable_and_canary() {
    let vs = BASE.replace(
        "http: [{route: [{destination: {host: petstore, subset: v1}}]}]",
        "http: [{route: [{destination: {host: petstore, subset: v1}, weight: 90}, \
         {destination: {host: petstore, subset: v3}, weight: 10}]}]",
    );
    let text = format!(
        "{vs}{}",
        rollout("a", &format!("{DESTS}  analysis: {{stepWeight: 10}}\n"))
    );
    let found = mk_errors(&text);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].1, "spec.target");
    assert!(
        found[0].2.starts_with(
            "spec.http[0].route[1] of VirtualService default/petstore sends traffic to host"
        ),
        "{}",
        found[0].2
    );
}

#[test]
fn a_rollout_needs_coalmine_api_version() {
    let text = rollout("a", &format!("{DESTS}  analysis: {{stepWeight: 10}}\n"))
        .replace("coalmine.dev/v1alpha1", "networking.istio.io/v1");
    let found = errors(&[text]);
    assert_eq!(found[0].1, "apiVersion");
    assert_eq!(
        found[0].2,
        "unsupported apiVersion \"networking.istio.io/v1\" (expected coalmine.dev/v1alpha1)"
    );
}

#[test]
fn metrics_name_flagger_metric_templates() {
    let spec = "  stable: {host: petstore, subset: v1}\n  canary: {host: petstore, subset: v2}\n  \
                analysis:\n    stepWeights: [50]\n    metrics:\n    \
                - name: error-rate\n      templateRef: {name: error-rate, namespace: istio-system}\n      \
                templateVariables: {code: '5..'}\n      thresholdRange: {max: 1}\n";
    let template = "---\napiVersion: flagger.app/v1beta1\nkind: MetricTemplate\n\
                    metadata: {name: error-rate, namespace: istio-system}\n\
                    spec:\n  provider: {type: prometheus, address: 'http://prometheus:9090'}\n  \
                    query: 'sum(rate(x{code=~\"{{ variables.code }}\"}[{{ interval }}]))'\n";
    let text = format!("{BASE}{}{template}", rollout("petstore", spec));
    let config = mk_config(&text).unwrap();
    let MetricSource::Template {
        template,
        variables,
    } = &config.rollouts[0].analysis.metrics[0].source
    else {
        panic!("{:?}", config.rollouts[0].analysis.metrics[0].source)
    };
    assert_eq!(template, "istio-system/error-rate");
    assert_eq!(variables["code"], "5..");
    let held = &config.metric_templates["istio-system/error-rate"];
    assert!(matches!(&held.source,
        TemplateSource::Prometheus { address, .. } if address == "http://prometheus:9090"));
    // Without the template, the metric names what is missing.
    let found = errors(&[rollout("petstore", spec)]);
    assert_eq!(
        found,
        [error(
            "Rollout default/petstore",
            "spec.analysis.metrics[0].templateRef",
            "metric \"error-rate\": MetricTemplate istio-system/error-rate is not defined"
        )]
    );
}

#[test]
fn reads_session_affinity_and_mirror_and_names_their_bad_fields() {
    let dests = "  stable: {host: petstore, subset: v1}\n  canary: {host: petstore, subset: v2}\n";
    let good = format!(
        "{dests}  analysis:\n    stepWeight: 10\n    mirror: true\n    \
         sessionAffinity: {{cookieName: flagger-cookie, maxAge: 21600}}\n"
    );
    let config = mk_config(&format!("{BASE}{}", rollout("petstore", &good))).unwrap();
    let a = &config.rollouts[0].analysis;
    let affinity = a.session_affinity.as_ref().unwrap();
    assert_eq!(affinity.cookie_name, "flagger-cookie");
    assert_eq!(affinity.primary_cookie_name, "flagger-cookie-primary");
    assert_eq!(affinity.max_age, Duration::from_secs(21600));
    assert_eq!(a.mirror, Some(Weight::FULL));
    let bad = format!(
        "{dests}  analysis:\n    stepWeight: 10\n    mirrorWeight: 0\n    \
         sessionAffinity: {{cookieName: 'a b', primaryCookieName: p, maxAge: 0, extra: 1}}\n"
    );
    let ab = format!(
        "{dests}  strategy: ABTesting\n  analysis:\n    iterations: 1\n    mirror: true\n    \
         match: [{{headers: {{x-canary: {{exact: 'true'}}}}}}]\n    \
         sessionAffinity: {{cookieName: c}}\n"
    );
    let found = errors(&[rollout("petstore", &bad), rollout("ab", &ab)]);
    let (r, s) = ("Rollout default/petstore", "spec.analysis.sessionAffinity");
    let cookie = "\"a b\" is not a cookie name (letters, digits and !#$%&'*+-.^_`|~)";
    assert_eq!(
        found,
        vec![
            error("Rollout default/ab", s, "applies to Canary only"),
            error(
                "Rollout default/ab",
                "spec.analysis.mirror",
                "applies to Canary and BlueGreen only"
            ),
            error(r, &format!("{s}.extra"), "unknown field"),
            error(r, &format!("{s}.cookieName"), cookie),
            error(
                r,
                &format!("{s}.maxAge"),
                "must be an integer between 1 and 4294967295"
            ),
            error(
                r,
                "spec.analysis.mirrorWeight",
                "must be a number over 0 and at most 100, with at most 4 decimals"
            ),
            error(r, "spec.analysis.mirrorWeight", "only with mirror: true"),
        ]
    );
}

#[test]
fn alerts_name_flagger_alert_providers_with_addresses_from_secrets() {
    let spec = "  stable: {host: petstore, subset: v1}\n  canary: {host: petstore, subset: v2}\n  \
                analysis:\n    stepWeights: [50]\n    alerts:\n    \
                - {name: on-call, severity: error, providerRef: {name: team}}\n";
    let provider = "---\napiVersion: flagger.app/v1beta1\nkind: AlertProvider\n\
                    metadata: {name: team}\n\
                    spec: {type: slack, channel: releases, secretRef: {name: team-hook}}\n";
    let secret = "---\napiVersion: v1\nkind: Secret\nmetadata: {name: team-hook}\n\
                  stringData: {address: 'http://hooks.example/s'}\n";
    let text = format!("{BASE}{}{provider}{secret}", rollout("petstore", spec));
    let config = mk_config(&text).unwrap();
    assert_eq!(
        config.rollouts[0].analysis.alerts[0].provider,
        "default/team"
    );
    let held = &config.alert_providers["default/team"];
    assert_eq!(held.address, "http://hooks.example/s");
    // Without the Secret, the provider names it; without the provider, the alert does.
    let text = format!("{BASE}{}{provider}", rollout("petstore", spec));
    let message = format!("{:?}", mk_config(&text).unwrap_err());
    assert!(message.contains("spec.secretRef"), "{message}");
    let found = errors(&[rollout("petstore", spec)]);
    assert_eq!(
        found,
        [error(
            "Rollout default/petstore",
            "spec.analysis.alerts[0].providerRef",
            "alert \"on-call\": AlertProvider default/team is not defined"
        )]
    );
}
