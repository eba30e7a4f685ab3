//! End-to-end tests of reading a set: text in (every dialect), Config or field errors out.

use std::collections::BTreeMap;
use std::time::Duration;

use super::*;
use crate::ingest::*;
use crate::model::*;

mod check;
mod kinds;
mod rollout;
mod rollout_controls;

pub(super) const FULL: &str = r#"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: public, labels: {team: web}, resourceVersion: "7", uid: abc}
spec:
  selector: {app: edge}
  servers:
    - port: {number: 80, name: http, protocol: HTTP}
      hosts: ["*/web.example.com"]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: web}
spec:
  hosts: [web.default.svc.cluster.local]
  location: MESH_INTERNAL
  ports: [{number: 8080, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints:
    - {address: 10.0.0.1, labels: {version: v1}}
    - {address: 10.0.0.2, labels: {version: v2}, ports: {http: 9090}, weight: 3}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: web}
spec:
  host: web
  trafficPolicy:
    loadBalancer: {simple: LEAST_CONN}
    connectionPool:
      tcp: {maxConnections: 100, connectTimeout: 2s}
      http: {http1MaxPendingRequests: 10, http2MaxRequests: 100, maxRequestsPerConnection: 5, maxRetries: 3, idleTimeout: 1m}
    outlierDetection: {consecutive5xxErrors: 5, consecutiveGatewayErrors: 2, interval: 10s, baseEjectionTime: 30s, maxEjectionPercent: 50, minHealthPercent: 20}
  subsets:
    - {name: v1, labels: {version: v1}}
    - name: v2
      labels: {version: v2}
      trafficPolicy: {loadBalancer: {simple: RANDOM}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web}
spec:
  hosts: [web.example.com]
  gateways: [public, mesh]
  http:
    - name: canary
      match:
        - headers: {X-Canary: {exact: "true"}}
      route:
        - destination: {host: web, subset: v2}
      headers:
        response: {set: {x-served-by: canary}, remove: [server]}
    - name: split
      route:
        - destination: {host: web.default, subset: v1, port: {number: 8080}}
          weight: 99.99
          headers: {request: {add: {x-subset: v1}}}
        - destination: {host: web.default.svc.cluster.local, subset: v2}
          weight: 0.01
      timeout: 1.5s
      retries: {attempts: 3, perTryTimeout: 500ms, retryOn: "5xx,reset"}
      fault:
        delay: {fixedDelay: 1s, percentage: {value: 0.5}}
      mirror: {host: web, subset: v2}
      mirrorPercentage: {value: 10}
      corsPolicy:
        allowOrigins: [{exact: "https://example.com"}, {regex: "https://.*\\.example\\.com"}]
        allowMethods: [GET, POST]
        allowHeaders: [x-a]
        exposeHeaders: [x-b]
        maxAge: 24h
        allowCredentials: true
      rewrite: {uri: /v2, authority: web.internal}
    - name: old
      match: [{uri: {prefix: /old}}]
      redirect: {uri: /new, authority: other.example.com, scheme: https, port: 8443, redirectCode: 308}
    - name: broken
      match: [{uri: {exact: /broken}}]
      fault:
        abort: {httpStatus: 503, percentage: {value: 100}}
"#;

pub(super) fn mk_config(text: &str) -> Result<Config> {
    build_config(&parse_documents(text)?, &BTreeMap::new())
}

/// The errors as (resource, field, message).
pub(super) fn mk_errors(text: &str) -> Vec<(String, String, String)> {
    let errors = mk_config(text).expect_err("should be rejected");
    assert!(!errors.0.is_empty());
    errors
        .0
        .into_iter()
        .map(|e| (e.resource, e.field, e.message))
        .collect()
}

fn dest(host: &str, subset: &str, port: u32) -> Destination {
    Destination {
        host: host.into(),
        subset: Some(subset.into()),
        port,
    }
}

const WEB: &str = "web.default.svc.cluster.local";

#[test]
fn reads_a_full_example_of_each_kind() {
    let config = mk_config(FULL).unwrap();
    let gateway = &config.gateways[0];
    assert_eq!(
        gateway.key,
        ResourceKey::new(Kind::Gateway, "default", "public")
    );
    assert_eq!(
        gateway.servers[0].hosts,
        vec!["web.example.com".to_string()]
    );

    let service = &config.services[WEB];
    assert_eq!(service.resolution, Resolution::Static);
    assert_eq!(service.ports[0].protocol, "HTTP");
    assert_eq!(service.endpoints[0].weight, 1);
    assert_eq!(service.endpoints[0].health, EndpointHealth::Healthy);
    assert_eq!(service.endpoints[1].port_for(&service.ports[0]), 9090);
    assert_eq!(service.endpoints[1].weight, 3);

    let rule = &config.destination_rules[0];
    assert_eq!(rule.host, WEB, "short host resolved");
    let policy = rule.traffic_policy.as_ref().unwrap();
    assert_eq!(policy.load_balancer, Some(LoadBalancer::LeastRequest));
    let pool = policy.connection_pool.as_ref().unwrap();
    assert_eq!(pool.connect_timeout, Some(Duration::from_secs(2)));
    assert_eq!(pool.idle_timeout, Some(Duration::from_secs(60)));
    assert_eq!(pool.max_retries, Some(3));
    let outlier = policy.outlier_detection.as_ref().unwrap();
    assert_eq!(outlier.min_health_percent, Some(20));
    assert_eq!(rule.subset("v2").unwrap().labels["version"], "v2");

    let vs = &config.virtual_services[0];
    assert_eq!(
        vs.gateways,
        vec!["default/public".to_string(), "mesh".into()]
    );
    let [canary, split, old, broken] = vs.http.as_slice() else {
        panic!("four routes expected");
    };
    assert_eq!(
        canary.action,
        RouteAction::Route(vec![WeightedDestination {
            destination: dest(WEB, "v2", 8080),
            weight: Weight::FULL,
            headers: Headers::default(),
        }])
    );
    assert!(canary.matches[0].headers.contains_key("x-canary"));
    assert_eq!(canary.headers.response.remove, vec!["server".to_string()]);
    let RouteAction::Route(split_to) = &split.action else {
        panic!("split routes");
    };
    assert_eq!(split_to[0].destination, dest(WEB, "v1", 8080));
    assert_eq!(split_to[0].weight.units(), 999_900);
    assert_eq!(split_to[0].headers.request.add["x-subset"], "v1");
    assert_eq!(split_to[1].weight.units(), 100);
    assert_eq!(split.timeout, Some(Duration::from_millis(1500)));
    let retries = split.retries.as_ref().unwrap();
    assert_eq!(retries.per_try_timeout, Some(Duration::from_millis(500)));
    assert_eq!(
        split
            .fault
            .as_ref()
            .unwrap()
            .delay
            .as_ref()
            .unwrap()
            .percent,
        Some(0.5)
    );
    let mirror = split.mirror.as_ref().unwrap();
    assert_eq!(
        (mirror.destination.clone(), mirror.percent),
        (dest(WEB, "v2", 8080), Some(10.0))
    );
    let cors = split.cors.as_ref().unwrap();
    assert_eq!(cors.allow_origins.len(), 2);
    assert_eq!(cors.max_age, Some(Duration::from_secs(86400)));
    assert_eq!(split.rewrite.as_ref().unwrap().uri.as_deref(), Some("/v2"));
    let RouteAction::Redirect(redirect) = &old.action else {
        panic!("redirect");
    };
    assert_eq!((redirect.status, redirect.port), (308, Some(8443)));
    assert_eq!(broken.action, RouteAction::None);
}

#[test]
fn api_versions_mean_the_same() {
    let v1 = mk_config(FULL).unwrap();
    for version in ["v1beta1", "v1alpha3"] {
        let text = FULL.replace(
            "networking.istio.io/v1\n",
            &format!("networking.istio.io/{version}\n"),
        );
        assert!(text.contains(version));
        assert_eq!(mk_config(&text).unwrap(), v1, "{version}");
    }
}

#[test]
fn reads_json_objects_arrays_and_lists() {
    let yaml_docs = parse_documents(FULL).unwrap();
    let values: Vec<serde_json::Value> = yaml_docs.iter().map(|d| d.value.clone()).collect();
    let array = serde_json::to_string_pretty(&values).unwrap();
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": values}).to_string();
    let one_by_one: Vec<String> = values.iter().map(|v| v.to_string()).collect();
    let flow_yaml =
        "{apiVersion: networking.istio.io/v1, kind: Gateway, metadata: {name: g}, spec: {}}";
    assert_eq!(parse_documents(flow_yaml).unwrap()[0].key.name, "g");
    for text in [array, list, one_by_one.join("\n")] {
        assert_eq!(parse_documents(&text).unwrap(), yaml_docs);
    }
}

#[test]
fn splits_multi_document_yaml_skipping_empty_ones() {
    let text = "---\n# nothing\n---\napiVersion: networking.istio.io/v1beta1\nkind: Gateway\n\
                metadata: {name: a, namespace: edge}\nspec: {}\nstatus: {x: 1}\n---\n---\n\
                apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: b}\nspec: {}\n";
    let docs = parse_documents(text).unwrap();
    let keys: Vec<String> = docs.iter().map(|d| d.key.to_string()).collect();
    assert_eq!(keys, vec!["Gateway edge/a", "Gateway default/b"]);
    assert_eq!(docs[0].api_version, "networking.istio.io/v1beta1");
    assert_eq!(docs[1].value["metadata"]["namespace"], "default");
    assert!(docs[0].value.get("status").is_none());
    assert_eq!(parse_documents("").unwrap(), vec![]);
}

#[test]
fn names_envelope_errors_by_document_until_named() {
    let text = "apiVersion: networking.istio.io/v2\nkind: Gateway\nmetadata: {name: a}\nspec: {}\n\
                ---\nkind: TCPRoute\nmetadata: {name: b}\nspec: {}\nextra: 1\n\
                ---\napiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: Bad_Name}\n\
                ---\n- 1\n";
    let errors = parse_documents(text).unwrap_err();
    let got: Vec<(&str, &str)> = errors
        .0
        .iter()
        .map(|e| (e.resource.as_str(), e.field.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("Gateway default/a", "apiVersion"),
            ("document 2", "extra"),
            ("document 2", "kind"),
            ("document 2", "apiVersion"),
            ("document 3", "metadata.name"),
            ("document 3", "spec"),
            ("document 4", ""),
        ]
    );
    assert_eq!(
        errors.0[0].message,
        "unsupported apiVersion \"networking.istio.io/v2\" (expected networking.istio.io/v1, \
         v1beta1 or v1alpha3)"
    );
    assert!(errors
        .to_string()
        .starts_with("Gateway default/a: apiVersion: unsupported"));
}

#[test]
fn an_unsupported_kind_of_a_known_group_is_no_api_version_error() {
    // Real-world YAML: a TLSRoute next to what coalmine reads.
    let text = "apiVersion: gateway.networking.k8s.io/v1\nkind: TLSRoute\n\
                metadata: {name: grpc}\nspec: {parentRefs: [{name: edge}]}\n\
                ---\napiVersion: networking.istio.io/v1\nkind: Sidecar\n\
                metadata: {name: default}\nspec: {}\n";
    let found = mk_errors(text);
    assert_eq!(
        found,
        vec![
            (
                "document 1".to_string(),
                "kind".to_string(),
                "unsupported kind \"TLSRoute\" of gateway.networking.k8s.io \
                 (supported: Gateway, HTTPRoute, ReferenceGrant, GRPCRoute)"
                    .to_string()
            ),
            (
                "document 2".to_string(),
                "kind".to_string(),
                "unsupported kind \"Sidecar\" of networking.istio.io (supported: Gateway, \
                 VirtualService, DestinationRule, ServiceEntry)"
                    .to_string()
            ),
        ]
    );
}

#[test]
fn reports_syntax_errors() {
    let errors = parse_documents("kind: [unclosed\n").unwrap_err();
    assert_eq!(errors.0[0].resource, "document 1");
    assert!(errors.0[0].message.starts_with("invalid YAML"), "{errors}");
    let errors = parse_documents("{\"kind\": [}").unwrap_err();
    assert!(errors.0[0].message.starts_with("invalid JSON"), "{errors}");
}

#[test]
fn non_finite_numbers_are_errors_naming_the_field() {
    for bad in [".inf", "-.inf", ".nan"] {
        let text = format!(
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: web}}\n\
             spec:\n  hosts: [web]\n  http:\n  - route:\n    - destination: {{host: web}}\n      weight: {bad}\n"
        );
        let errors = parse_documents(&text).unwrap_err();
        assert_eq!(errors.0[0].resource, "document 1", "{errors}");
        assert!(
            errors.0[0]
                .message
                .contains("spec.http[0].route[0].weight: not a finite number"),
            "{errors}"
        );
    }
}

#[test]
fn the_same_resource_twice_in_one_body_names_both_documents() {
    let doc = "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: web}\n\
               spec: {hosts: [web.example], ports: [{number: 80, name: http, protocol: HTTP}], \
               resolution: DNS}\n";
    let errors = parse_documents(&format!("{doc}---\n{doc}")).unwrap_err();
    assert_eq!(errors.0.len(), 1, "{errors}");
    assert!(errors.0[0].resource.contains("web"), "{errors}");
    assert!(
        errors.0[0].message.contains("documents 1 and 2"),
        "{errors}"
    );
}

#[test]
fn rejects_unknown_fields_anywhere() {
    let text = FULL
        .replace(
            "    - name: old\n",
            "    - name: old\n      mirrorPolicy: {}\n",
        )
        .replace("  host: web\n", "  host: web\n  tls: {mode: SIMPLE}\n");
    let errors = mk_errors(&text);
    assert_eq!(
        errors,
        vec![
            (
                "VirtualService default/web".into(),
                "spec.http[2].mirrorPolicy".into(),
                "unknown field".into()
            ),
            (
                "DestinationRule default/web".into(),
                "spec.tls".into(),
                "unknown field".into()
            ),
        ]
    );
    let text = FULL.replace("kind: Gateway\n", "kind: Gateway\nspecs: {}\n");
    let errors = parse_documents(&text).unwrap_err();
    assert_eq!(
        errors.to_string(),
        "Gateway default/public: specs: unknown field"
    );
}

#[test]
fn reports_every_error_not_just_the_first() {
    let text = FULL
        .replace("weight: 99.99", "weight: 99.5")
        .replace("timeout: 1.5s", "timeout: soon")
        .replace("{simple: RANDOM}", "{simple: MAGLEV}")
        .replace("resolution: STATIC", "resolution: NONE");
    let errors = mk_errors(&text);
    let fields: Vec<(&str, &str)> = errors
        .iter()
        .map(|(r, f, _)| (r.as_str(), f.as_str()))
        .collect();
    assert_eq!(
        fields,
        vec![
            ("VirtualService default/web", "spec.http[1].route"),
            ("VirtualService default/web", "spec.http[1].timeout"),
            (
                "DestinationRule default/web",
                "spec.subsets[1].trafficPolicy.loadBalancer.simple"
            ),
            ("ServiceEntry default/web", "spec.resolution"),
        ]
    );
    assert_eq!(errors[0].2, "weights add up to 99.51, must be 100");
}
