//! `DestinationRule` specs into [`model::DestinationRule`](crate::model::DestinationRule): host, subsets and traffic
//! policies. The host comes out as written; [`crate::resource_set`] resolves it.

use serde_json::Value;

use crate::ingest::{Fields, Obj, Report};
use crate::model::{
    ConnectionPool, DestinationRule, LoadBalancer, OutlierDetection, ResourceKey, Subset,
    TrafficPolicy,
};

const SPEC: Fields = Fields {
    known: &["host", "subsets", "trafficPolicy"],
    unsupported: &["exportTo", "workloadSelector"],
};
const SUBSET: Fields = Fields::known(&["name", "labels", "trafficPolicy"]);
const POLICY: Fields = Fields {
    known: &["loadBalancer", "connectionPool", "outlierDetection"],
    unsupported: &["tls", "portLevelSettings", "tunnel", "proxyProtocol"],
};
const LOAD_BALANCER: Fields = Fields {
    known: &["simple"],
    unsupported: &[
        "consistentHash",
        "localityLbSetting",
        "warmupDurationSecs",
        "warmup",
    ],
};
const CONNECTION_POOL: Fields = Fields::known(&["tcp", "http"]);
const TCP: Fields = Fields {
    known: &["maxConnections", "connectTimeout"],
    unsupported: &["tcpKeepalive", "maxConnectionDuration", "idleTimeout"],
};
const HTTP: Fields = Fields {
    known: &[
        "http1MaxPendingRequests",
        "http2MaxRequests",
        "maxRequestsPerConnection",
        "maxRetries",
        "idleTimeout",
    ],
    unsupported: &[
        "h2UpgradePolicy",
        "useClientProtocol",
        "maxConcurrentStreams",
    ],
};
const OUTLIER: Fields = Fields {
    known: &[
        "consecutive5xxErrors",
        "consecutiveGatewayErrors",
        "interval",
        "baseEjectionTime",
        "maxEjectionPercent",
        "minHealthPercent",
    ],
    unsupported: &[
        "consecutiveErrors",
        "splitExternalLocalOriginErrors",
        "consecutiveLocalOriginFailures",
    ],
};

const MAX: u32 = i32::MAX as u32;

/// Reads a DestinationRule spec; every problem goes to `r`.
pub(crate) fn try_destination_rule(
    key: &ResourceKey,
    spec: &Value,
    r: &mut Report,
) -> Option<DestinationRule> {
    let spec = Obj::new(r, "spec", spec, SPEC)?;
    let host = spec.required_string(r, "host");
    if host.as_deref().is_some_and(|h| h.contains('*')) {
        r.push(spec.at("host"), "wildcard hosts are not supported");
    }
    let traffic_policy = try_policy(spec, r);
    let mut subsets: Vec<Subset> = Vec::new();
    for (path, value) in spec.list(r, "subsets") {
        let Some(subset) = try_subset(&path, value, r) else {
            continue;
        };
        if subsets.iter().any(|s| s.name == subset.name) {
            r.push(
                format!("{path}.name"),
                format!("subset {:?} is defined twice", subset.name),
            );
        } else {
            subsets.push(subset);
        }
    }
    Some(DestinationRule {
        key: key.clone(),
        host: host?,
        traffic_policy,
        subsets,
    })
}

fn try_subset(path: &str, value: &Value, r: &mut Report) -> Option<Subset> {
    let subset = Obj::new(r, path, value, SUBSET)?;
    let name = subset.required_string(r, "name");
    let valid = |c: char| c.is_ascii_alphanumeric() || "-_.".contains(c);
    if name.as_deref().is_some_and(|n| !n.chars().all(valid)) {
        r.push(
            subset.at("name"),
            "must be letters, digits, '-', '_' or '.'",
        );
    }
    let labels = subset.string_map(r, "labels");
    if labels.is_empty() {
        r.push(subset.at("labels"), "at least one label is required");
    }
    let traffic_policy = try_policy(subset, r);
    Some(Subset {
        name: name?,
        labels,
        traffic_policy,
    })
}

fn try_policy(parent: Obj<'_, '_>, r: &mut Report) -> Option<TrafficPolicy> {
    let path = parent.at("trafficPolicy");
    let policy = Obj::new(r, &path, parent.get("trafficPolicy")?, POLICY)?;
    let child = |key: &str| policy.get(key).map(|value| (policy.at(key), value));
    let load_balancer = child("loadBalancer").and_then(|(path, value)| {
        let lb = Obj::new(r, &path, value, LOAD_BALANCER)?;
        let simple = lb.required_string(r, "simple")?;
        let parsed = match simple.as_str() {
            "ROUND_ROBIN" => Some(LoadBalancer::RoundRobin),
            "LEAST_REQUEST" | "LEAST_CONN" => Some(LoadBalancer::LeastRequest),
            "RANDOM" => Some(LoadBalancer::Random),
            "PASSTHROUGH" => Some(LoadBalancer::Passthrough),
            _ => None,
        };
        if parsed.is_none() {
            r.push(
                lb.at("simple"),
                format!(
                    "{simple:?} is not supported (ROUND_ROBIN, LEAST_REQUEST, \
                     LEAST_CONN, RANDOM or PASSTHROUGH)"
                ),
            );
        }
        parsed
    });
    let connection_pool = child("connectionPool").and_then(|(path, value)| {
        let pool = Obj::new(r, &path, value, CONNECTION_POOL)?;
        let mut out = ConnectionPool::default();
        let tcp_path = pool.at("tcp");
        if let Some(tcp) = pool.get("tcp").and_then(|v| Obj::new(r, &tcp_path, v, TCP)) {
            out.max_connections = tcp.uint(r, "maxConnections", 1, MAX);
            out.connect_timeout = tcp.duration(r, "connectTimeout");
        }
        let http_path = pool.at("http");
        if let Some(http) = pool
            .get("http")
            .and_then(|v| Obj::new(r, &http_path, v, HTTP))
        {
            out.http1_max_pending_requests = http.uint(r, "http1MaxPendingRequests", 1, MAX);
            out.http2_max_requests = http.uint(r, "http2MaxRequests", 1, MAX);
            out.max_requests_per_connection = http.uint(r, "maxRequestsPerConnection", 0, MAX);
            out.max_retries = http.uint(r, "maxRetries", 0, MAX);
            out.idle_timeout = http.duration(r, "idleTimeout");
        }
        Some(out)
    });
    let outlier_detection = child("outlierDetection").and_then(|(path, value)| {
        let od = Obj::new(r, &path, value, OUTLIER)?;
        Some(OutlierDetection {
            consecutive_5xx_errors: od.uint(r, "consecutive5xxErrors", 0, MAX),
            consecutive_gateway_errors: od.uint(r, "consecutiveGatewayErrors", 0, MAX),
            interval: od.duration(r, "interval"),
            base_ejection_time: od.duration(r, "baseEjectionTime"),
            max_ejection_percent: od.uint(r, "maxEjectionPercent", 0, 100),
            min_health_percent: od.uint(r, "minHealthPercent", 0, 100),
        })
    });
    Some(TrafficPolicy {
        load_balancer,
        connection_pool,
        outlier_detection,
    })
}
