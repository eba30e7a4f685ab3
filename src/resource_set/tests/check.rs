//! Cross-resource errors: each names the resource and the field path.

use std::collections::BTreeMap;

use super::{mk_config, mk_errors};
use crate::ingest::parse_documents;
use crate::model::*;
use crate::resource_set::build_config;

/// Services `reviews` (one port) and `ratings` (two ports), a rule with subset v1
/// for reviews, and gateways `gw` and `other` on port 80 for overlapping proxies.
const BASE: &str = r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews}
spec:
  hosts: [reviews.default.svc.cluster.local]
  ports: [{number: 9080, name: http}]
  endpoints: [{address: 10.0.0.1, labels: {version: v1}}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ratings, namespace: shop}
spec:
  hosts: [ratings.example.com]
  ports: [{number: 80, name: http}, {number: 8080, name: http-alt}]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets: [{name: v1, labels: {version: v1}}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  selector: {app: edge}
  servers: [{port: {number: 80, protocol: HTTP}, hosts: ["*"]}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: other, namespace: edge}
spec:
  selector: {zone: a}
  servers: [{port: {number: 80, protocol: HTTP}, hosts: ["*"]}]
"#;

fn vs(name: &str, spec: &str) -> String {
    format!(
        "{BASE}---\napiVersion: networking.istio.io/v1\nkind: VirtualService\n\
         metadata: {{name: {name}}}\nspec:\n{spec}"
    )
}

fn one_error(text: &str) -> (String, String, String) {
    let mut errors = mk_errors(text);
    assert_eq!(errors.len(), 1, "{errors:?}");
    errors.remove(0)
}

fn error(resource: &str, field: &str, message: &str) -> (String, String, String) {
    (resource.into(), field.into(), message.into())
}

#[test]
fn base_is_valid_and_resolves_short_names() {
    let text = vs(
        "a",
        "  hosts: [a.example.com]\n  http:\n  - route:\n    - destination: {host: reviews, subset: v1}\n\
         \x20 - route:\n    - destination: {host: ratings.example.com, port: {number: 8080}}\n",
    );
    let config = mk_config(&text).unwrap();
    let RouteAction::Route(to) = &config.virtual_services[0].http[0].action else {
        panic!("route");
    };
    assert_eq!(to[0].destination.host, "reviews.default.svc.cluster.local");
    assert_eq!(to[0].destination.port, 9080);
    assert_eq!(
        config.destination_rules[0].host,
        "reviews.default.svc.cluster.local"
    );
    assert_eq!(config.services.len(), 2);
}

#[test]
fn undefined_host() {
    let text = vs(
        "a",
        "  hosts: [a]\n  http:\n  - route:\n    - {destination: {host: reviews}, weight: 50}\n\
         \x20   - {destination: {host: details}, weight: 50}\n",
    );
    assert_eq!(
        one_error(&text),
        error(
            "VirtualService default/a",
            "spec.http[0].route[1].destination.host",
            "host \"details\" is not defined by any ServiceEntry or discovered service"
        )
    );
}

#[test]
fn short_names_take_the_virtual_service_namespace() {
    let text = vs(
        "a",
        "  hosts: [a]\n  http:\n  - route:\n    - destination: {host: reviews}\n",
    )
    .replace(
        "metadata: {name: a}",
        "metadata: {name: a, namespace: shop}",
    );
    let (resource, field, _) = one_error(&text);
    assert_eq!(
        (resource.as_str(), field.as_str()),
        (
            "VirtualService shop/a",
            "spec.http[0].route[0].destination.host"
        )
    );
    let text = text.replace("host: reviews}", "host: reviews.default}");
    mk_config(&text).unwrap();
}

#[test]
fn discovered_services_count() {
    let text = vs(
        "a",
        "  hosts: [a]\n  http:\n  - route:\n    - destination: {host: details}\n",
    );
    let host = "details.default.svc.cluster.local";
    let service = Service {
        host: host.into(),
        source: ResourceKey::new(Kind::ServiceEntry, "default", "k8s"),
        ports: vec![ServicePort {
            number: 80,
            name: "http".into(),
            protocol: "HTTP".into(),
            target_port: None,
        }],
        resolution: Resolution::Static,
        endpoints: vec![],
    };
    let discovered = BTreeMap::from([(host.to_string(), service)]);
    let config = build_config(&parse_documents(&text).unwrap(), &discovered).unwrap();
    assert!(config.services.contains_key(host));
}

#[test]
fn undefined_subset() {
    let text = vs(
        "a",
        "  hosts: [a]\n  http:\n  - route:\n    - destination: {host: reviews, subset: v2}\n\
         \x20   mirror: {host: ratings.example.com, subset: v1, port: {number: 80}}\n",
    );
    assert_eq!(
        mk_errors(&text),
        vec![
            error(
                "VirtualService default/a",
                "spec.http[0].route[0].destination.subset",
                "subset \"v2\" is not defined by a DestinationRule for host \
                 \"reviews.default.svc.cluster.local\""
            ),
            error(
                "VirtualService default/a",
                "spec.http[0].mirror.subset",
                "subset \"v1\" is not defined by a DestinationRule for host \"ratings.example.com\""
            ),
        ]
    );
}

#[test]
fn destination_ports() {
    let wrong = vs("a", "  hosts: [a]\n  http:\n  - route:\n    - destination: {host: reviews, port: {number: 80}}\n");
    assert_eq!(
        one_error(&wrong),
        error(
            "VirtualService default/a",
            "spec.http[0].route[0].destination.port.number",
            "port 80 is not a port of host \"reviews.default.svc.cluster.local\" (ports: 9080)"
        )
    );
    let ambiguous = vs(
        "a",
        "  hosts: [a]\n  http:\n  - route:\n    - destination: {host: ratings.example.com}\n",
    );
    assert_eq!(
        one_error(&ambiguous),
        error(
            "VirtualService default/a",
            "spec.http[0].route[0].destination",
            "host \"ratings.example.com\" has several ports (80, 8080): port.number is required"
        )
    );
}

#[test]
fn undefined_gateway() {
    let text = vs(
        "a",
        "  hosts: [a]\n  gateways: [gw, edge/other, mesh, edge/gw]\n  http:\n  - route:\n    - destination: {host: reviews}\n",
    );
    assert_eq!(
        one_error(&text),
        error(
            "VirtualService default/a",
            "spec.gateways[3]",
            "gateway \"edge/gw\" is not defined"
        )
    );
}

#[test]
fn one_host_per_listener() {
    let route = "  http:\n  - route:\n    - destination: {host: reviews}\n";
    let first = vs(
        "a",
        &format!("  hosts: [a.example.com, b.example.com]\n  gateways: [gw]\n{route}"),
    );
    let second = format!(
        "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: b}}\n\
         spec:\n  hosts: [c.example.com, b.example.com]\n  gateways: [edge/other]\n{route}"
    );
    assert_eq!(
        one_error(&format!("{first}{second}")),
        error(
            "VirtualService default/b",
            "spec.hosts[1]",
            "host \"b.example.com\" is already served on gateway port 80 by VirtualService default/a"
        )
    );
    // Selectors that can never pick the same proxy do not collide.
    let apart = format!("{first}{second}").replace("{zone: a}", "{app: other}");
    mk_config(&apart).unwrap();
    // Both on the mesh.
    let mesh = format!("{first}{second}").replace("gateways: [gw]", "gateways: [mesh]");
    let mesh = mesh.replace("gateways: [edge/other]", "");
    assert_eq!(
        one_error(&mesh).2,
        "host \"b.example.com\" is already served on the mesh by VirtualService default/a"
    );
}

#[test]
fn one_rule_and_one_entry_per_host() {
    let text = format!(
        "{BASE}---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\n\
         metadata: {{name: reviews-2}}\nspec: {{host: reviews.default.svc.cluster.local}}\n\
         ---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: again}}\n\
         spec: {{hosts: [x.example.com, ratings.example.com], ports: [{{number: 80, name: http}}], resolution: DNS}}\n"
    );
    assert_eq!(
        mk_errors(&text),
        vec![
            error(
                "ServiceEntry shop/ratings",
                "spec.hosts[0]",
                "host \"ratings.example.com\" is already defined by ServiceEntry default/again"
            ),
            error(
                "DestinationRule default/reviews-2",
                "spec.host",
                "host \"reviews.default.svc.cluster.local\" already has DestinationRule default/reviews"
            ),
        ]
    );
}

#[test]
fn duplicate_documents() {
    let text = format!("{BASE}---\napiVersion: networking.istio.io/v1alpha3\nkind: Gateway\nmetadata: {{name: gw}}\nspec: {{servers: []}}\n");
    assert_eq!(
        one_error(&text),
        error(
            "Gateway default/gw",
            "metadata.name",
            "another document has the same kind, namespace and name (documents 4 and 6)"
        )
    );
}

#[test]
fn references_to_broken_documents_are_not_reported_twice() {
    let text = vs(
        "a",
        "  hosts: [a]\n  gateways: [gw]\n  http:\n  - route:\n    - destination: {host: reviews, subset: v1}\n",
    )
    .replace("resolution: DNS", "resolution: NONE")
    .replace("ports: [{number: 9080, name: http}]", "ports: [{number: 9080}]")
    .replace("{name: v1, labels: {version: v1}}", "{name: v1, labels: {}}")
    .replacen("protocol: HTTP}", "protocol: TCP}", 1);
    let fields: Vec<String> = mk_errors(&text)
        .into_iter()
        .map(|(resource, field, _)| format!("{resource}: {field}"))
        .collect();
    assert_eq!(
        fields,
        vec![
            "Gateway default/gw: spec.servers[0].port.protocol",
            "DestinationRule default/reviews: spec.subsets[0].labels",
            "ServiceEntry default/reviews: spec.ports[0].name",
            "ServiceEntry shop/ratings: spec.resolution",
        ]
    );
}
