//! The Istio documents the load generator applies: S services, each a ServiceEntry
//! with static endpoints, a DestinationRule with subsets v1 and v2, and a
//! VirtualService splitting traffic between them, all behind one Gateway that selects
//! the simulated proxies; then the changes (an endpoint moved to a new port, a weight
//! shifted), each as the re-applied document.

use std::fmt::Write;

/// The node-metadata label every simulated proxy declares, and the Gateway selects.
pub const PROXY_LABEL: (&str, &str) = ("app", "coalmine-loadgen");
/// The port of the Gateway's HTTP server, hence of the listener and route config.
pub const GATEWAY_PORT: u32 = 8080;
/// Endpoint changes move endpoint 0 of a service to `CHANGE_PORT_BASE + change`.
pub const CHANGE_PORT_BASE: u32 = 20_000;
const ENDPOINT_PORT: u32 = 8080;
const INITIAL_V2_WEIGHT: u32 = 10;

pub fn host(service: usize) -> String {
    format!("svc-{service}")
}

/// The ClusterLoadAssignment that endpoint 0 (subset v1) of a service lands in.
pub fn v1_cla(service: usize) -> String {
    format!("outbound|80|v1|{}", host(service))
}

pub fn v2_cluster(service: usize) -> String {
    format!("outbound|80|v2|{}", host(service))
}

pub fn route_config() -> String {
    format!("http.{GATEWAY_PORT}")
}

/// The initial configuration in batches of at most `batch` services, each batch one
/// multi-document YAML body (the admin API caps a body at a few MB).
pub fn initial_batches(services: usize, endpoints: usize, batch: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut body = gateway();
    for s in 0..services {
        body.push_str(&service_entry(s, endpoints, None));
        body.push_str(&destination_rule(s));
        body.push_str(&virtual_service(s, INITIAL_V2_WEIGHT));
        if (s + 1) % batch == 0 {
            out.push(std::mem::take(&mut body));
        }
    }
    if !body.is_empty() {
        out.push(body);
    }
    out
}

fn gateway() -> String {
    let (k, v) = PROXY_LABEL;
    format!(
        "---\napiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {{name: loadgen}}\n\
         spec:\n  selector: {{{k}: {v}}}\n  servers:\n  \
         - port: {{number: {GATEWAY_PORT}, name: http, protocol: HTTP}}\n    hosts: [\"*\"]\n"
    )
}

/// The ServiceEntry of a service, with endpoint 0 on `moved_port` when given.
pub fn service_entry(service: usize, endpoints: usize, moved_port: Option<u32>) -> String {
    let mut doc = format!(
        "---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: {h}}}\n\
         spec:\n  hosts: [{h}]\n  ports: [{{number: 80, name: http, protocol: HTTP}}]\n  \
         resolution: STATIC\n  endpoints:\n",
        h = host(service)
    );
    for e in 0..endpoints.max(1) {
        let port = match moved_port {
            Some(p) if e == 0 => p,
            _ => ENDPOINT_PORT,
        };
        let version = if e % 2 == 0 { "v1" } else { "v2" };
        let _ = writeln!(
            doc,
            "  - {{address: 10.{}.{}.{}, ports: {{http: {port}}}, labels: {{version: {version}}}}}",
            (service >> 8) & 255,
            service & 255,
            e + 1
        );
    }
    doc
}

fn destination_rule(service: usize) -> String {
    format!(
        "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: {h}}}\n\
         spec:\n  host: {h}\n  subsets:\n  - {{name: v1, labels: {{version: v1}}}}\n  \
         - {{name: v2, labels: {{version: v2}}}}\n",
        h = host(service)
    )
}

/// The VirtualService of a service, sending `v2_weight` percent to subset v2.
pub fn virtual_service(service: usize, v2_weight: u32) -> String {
    format!(
        "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: {h}}}\n\
         spec:\n  hosts: [{h}.example.com]\n  gateways: [loadgen]\n  http:\n  - name: split\n    \
         route:\n    - {{destination: {{host: {h}, subset: v1}}, weight: {w1}}}\n    \
         - {{destination: {{host: {h}, subset: v2}}, weight: {v2_weight}}}\n",
        h = host(service),
        w1 = 100 - v2_weight
    )
}

/// The v2 weight of the `round`-th weight change of a service: rising, so a later
/// change supersedes an earlier one.
pub fn changed_v2_weight(round: usize) -> u32 {
    (INITIAL_V2_WEIGHT + 1 + round as u32).min(99)
}

#[cfg(test)]
mod tests {
    use super::*;
    use coalmine::ingest::parse_documents;
    use coalmine::resource_set::build_config;

    #[test]
    fn the_generated_documents_are_valid() {
        let body = initial_batches(3, 4, 10).concat();
        let docs = parse_documents(&body).expect("parses");
        assert_eq!(docs.len(), 1 + 3 * 3);
        let config = build_config(&docs, &Default::default()).expect("valid");
        assert_eq!(config.virtual_services.len(), 3);
        let moved = service_entry(1, 4, Some(CHANGE_PORT_BASE));
        parse_documents(&moved).expect("parses");
        parse_documents(&virtual_service(1, changed_v2_weight(0))).expect("parses");
    }
}
