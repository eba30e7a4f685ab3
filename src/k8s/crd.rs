//! coalmine's own CustomResourceDefinitions (`coalmine.dev`), generated here and
//! printed by `coalmine crdgen`; `deploy/crds/` holds the output, and a test fails
//! when it is not current.
//!
//! The schema is written out below as Rust (the model types are read by hand from
//! JSON in `rollout_kind`, so there is nothing to derive it from). It names every
//! field the reader knows, and every object keeps unknown fields
//! (`x-kubernetes-preserve-unknown-fields`): the API server must not prune a field
//! coalmine does not support, because coalmine reports such a field in the resource's
//! status instead of silently dropping it.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::{json, Map, Value};

/// Every CRD of coalmine's, as one multi-document YAML text.
pub fn to_yaml() -> String {
    let crds = [rollout()];
    let docs: Vec<String> = crds
        .iter()
        .map(|crd| {
            let value = serde_json::to_value(crd).expect("a CRD always serializes");
            crate::yaml11::to_string(&value)
        })
        .collect();
    docs.join("---\n")
}

/// `rollouts.coalmine.dev`, `v1alpha1`, namespaced, with the status subresource.
pub fn rollout() -> CustomResourceDefinition {
    let destination = obj(
        &[
            ("host", string("A Service or ServiceEntry host.")),
            ("subset", string("A DestinationRule subset.")),
            ("port", obj(&[("number", int("The port."))], &["number"])),
        ],
        &["host"],
    );
    let range = obj(
        &[
            ("min", num("Lowest passing value.")),
            ("max", num("Highest passing value.")),
        ],
        &[],
    );
    let metric = obj(
        &[
            (
                "name",
                string("request-success-rate, request-duration, or any name with a query."),
            ),
            ("thresholdRange", range),
            ("interval", string("Window of the query, e.g. 1m.")),
            (
                "provider",
                obj(
                    &[
                        ("type", string("prometheus.")),
                        ("address", string("Prometheus URL.")),
                    ],
                    &[],
                ),
            ),
            ("query", string("PromQL, for a metric through a provider.")),
            (
                "templateRef",
                obj(
                    &[
                        ("name", string("A Flagger MetricTemplate's name.")),
                        (
                            "namespace",
                            string("Its namespace; the Rollout's by default."),
                        ),
                    ],
                    &["name"],
                ),
            ),
            (
                "templateVariables",
                json!({"type": "object", "additionalProperties": {"type": "string"},
                       "description": "Values of the template's {{ variables.NAME }}."}),
            ),
            ("minSamples", int("Requests needed for a verdict.")),
            (
                "inconclusiveLimit",
                int("Inconclusive checks in a row that count as a failure."),
            ),
            (
                "dryRun",
                boolean("Judged and shown in status, never failing or holding the release."),
            ),
        ],
        &["name"],
    );
    let webhook = obj(
        &[
            ("name", string("Webhook name.")),
            ("type", string("pre-rollout, rollout, confirm-rollout, confirm-promotion, post-rollout, rollback or event.")),
            ("url", string("URL called.")),
            ("timeout", string("e.g. 10s.")),
            ("retries", int("Retries on failure.")),
            ("metadata", json!({"type": "object", "additionalProperties": {"type": "string"}})),
        ],
        &["name", "url"],
    );
    let alert = obj(
        &[
            ("name", string("The alert's name.")),
            ("severity", string("info (every event), warn or error.")),
            (
                "providerRef",
                obj(
                    &[
                        ("name", string("A Flagger AlertProvider's name.")),
                        (
                            "namespace",
                            string("Its namespace; the Rollout's by default."),
                        ),
                    ],
                    &["name"],
                ),
            ),
        ],
        &["name", "providerRef"],
    );
    let analysis = obj(
        &[
            ("interval", string("Time between steps, e.g. 30s.")),
            ("threshold", int("Failed checks before rollback.")),
            (
                "stepWeight",
                num("Weight added per step (percent, may be fractional)."),
            ),
            (
                "stepWeights",
                json!({"type": "array", "items": {"type": "number"}}),
            ),
            ("maxWeight", num("Canary weight to promote at.")),
            (
                "stepWeightPromotion",
                num("Weight added per step of a gradual promotion (Canary)."),
            ),
            (
                "iterations",
                int("Checks before promotion (BlueGreen, ABTesting)."),
            ),
            (
                "match",
                json!({"type": "array", "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}),
            ),
            ("metrics", json!({"type": "array", "items": metric})),
            ("webhooks", json!({"type": "array", "items": webhook})),
            (
                "sessionAffinity",
                obj(
                    &[
                        ("cookieName", string("The canary side's cookie.")),
                        (
                            "maxAge",
                            int("The cookies' Max-Age in seconds; 86400 by default."),
                        ),
                        (
                            "primaryCookieName",
                            string("The stable side's cookie; <cookieName>-primary by default."),
                        ),
                    ],
                    &["cookieName"],
                ),
            ),
            (
                "mirror",
                json!({"type": "boolean",
                       "description": "Mirror stable traffic to the canary before the first weight."}),
            ),
            (
                "mirrorWeight",
                num("Percent of stable traffic mirrored; 100 by default."),
            ),
            ("alerts", json!({"type": "array", "items": alert})),
        ],
        &[],
    );
    let spec = obj(
        &[
            (
                "target",
                obj(
                    &[
                        (
                            "kind",
                            json!({"type": "string", "enum": ["VirtualService", "HTTPRoute"],
                                   "description": "The kind of the route: VirtualService or HTTPRoute."}),
                        ),
                        ("name", string("The route the rollout drives.")),
                        ("namespace", string("Defaults to the rollout's.")),
                    ],
                    &["kind", "name"],
                ),
            ),
            ("stable", destination.clone()),
            ("canary", destination),
            (
                "strategy",
                json!({"type": "string", "enum": ["Canary", "BlueGreen", "ABTesting"]}),
            ),
            ("analysis", analysis),
            (
                "skipAnalysis",
                boolean("Promote without metric checks, still step by step on ACKs."),
            ),
            (
                "progressDeadlineSeconds",
                int("A step not ACKed within this fails the release (default 600)."),
            ),
            (
                "onFailure",
                json!({"type": "string", "enum": ["Rollback", "Pause"],
                       "description": "At the failed-check threshold: roll back (default) or pause."}),
            ),
        ],
        &["target", "stable", "canary", "analysis"],
    );
    let column =
        |name: &str, ty: &str, path: &str| json!({"name": name, "type": ty, "jsonPath": path});
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "rollouts.coalmine.dev"},
        "spec": {
            "group": "coalmine.dev",
            "names": {"kind": "Rollout", "listKind": "RolloutList", "plural": "rollouts",
                      "singular": "rollout", "categories": ["coalmine"]},
            "scope": "Namespaced",
            "versions": [{
                "name": "v1alpha1",
                "served": true,
                "storage": true,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [
                    column("Phase", "string", ".status.phase"),
                    column("Weight", "number", ".status.canaryWeight"),
                    column("Accepted", "string", ".status.conditions[?(@.type==\"Accepted\")].status"),
                    column("Age", "date", ".metadata.creationTimestamp"),
                ],
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "description": "Moves traffic for one route from a stable destination to a canary, step by step, checking metrics at every step.",
                    "properties": {
                        "apiVersion": {"type": "string"},
                        "kind": {"type": "string"},
                        "metadata": {"type": "object"},
                        "spec": spec,
                        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                    },
                    "required": ["spec"],
                }},
            }],
        },
    });
    serde_json::from_value(crd).expect("the Rollout CRD matches the CRD type")
}

/// An object schema that also keeps fields it does not name.
fn obj(properties: &[(&str, Value)], required: &[&str]) -> Value {
    let props: Map<String, Value> = properties
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let mut o = json!({"type": "object", "properties": props, "x-kubernetes-preserve-unknown-fields": true});
    if !required.is_empty() {
        o["required"] = json!(required);
    }
    o
}

fn string(description: &str) -> Value {
    json!({"type": "string", "description": description})
}

fn int(description: &str) -> Value {
    json!({"type": "integer", "description": description})
}

fn boolean(description: &str) -> Value {
    json!({"type": "boolean", "description": description})
}

fn num(description: &str) -> Value {
    json!({"type": "number", "description": description})
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMMITTED: &str = include_str!("../../deploy/crds/coalmine.dev.yaml");

    #[test]
    fn the_committed_crds_are_current() {
        assert!(
            COMMITTED == to_yaml(),
            "deploy/crds/coalmine.dev.yaml is stale: run `cargo run -- crdgen > deploy/crds/coalmine.dev.yaml`"
        );
    }

    #[test]
    fn the_rollout_crd_names_the_documented_fields() {
        let yaml = to_yaml();
        for field in [
            "stepWeights",
            "thresholdRange",
            "dryRun",
            "skipAnalysis",
            "progressDeadlineSeconds",
            "onFailure",
            "webhooks",
            "iterations",
            "strategy",
        ] {
            assert!(yaml.contains(field), "{field}");
        }
        let crd = rollout();
        assert_eq!(crd.spec.group, "coalmine.dev");
        assert!(crd.spec.versions[0]
            .subresources
            .as_ref()
            .unwrap()
            .status
            .is_some());
    }
}
