//! Clusters: one per destination (host, port, subset), EDS for static services and
//! STRICT_DNS for DNS ones, with the destination rule's traffic policy (the subset's
//! overriding the rule's, field by field).

use std::collections::HashMap;

use envoy_types::pb::envoy::config::cluster::v3::{
    circuit_breakers::Thresholds,
    cluster::{
        ClusterDiscoveryType, CommonLbConfig, DiscoveryType, DnsLookupFamily, EdsClusterConfig,
        LbPolicy,
    },
    CircuitBreakers, Cluster, OutlierDetection as EnvoyOutlierDetection,
};
use envoy_types::pb::envoy::config::core::v3::{
    Http1ProtocolOptions, Http2ProtocolOptions, HttpProtocolOptions as CommonHttpProtocolOptions,
};
use envoy_types::pb::envoy::extensions::upstreams::http::v3::{
    http_protocol_options::{
        explicit_http_config::ProtocolConfig, ExplicitHttpConfig, UpstreamProtocolOptions,
    },
    HttpProtocolOptions,
};
use envoy_types::pb::envoy::r#type::v3::Percent;
use envoy_types::pb::google::protobuf::UInt32Value;
use envoy_types::util::pack_any;

use super::{ads_config_source, cluster_name, endpoint, to_duration};
use crate::model::{
    Config, ConnectionPool, Destination, LoadBalancer, OutlierDetection, Resolution, TrafficPolicy,
};

/// Istio's connect timeout when the connection pool sets none.
const DEFAULT_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
const HTTP_PROTOCOL_OPTIONS: &str = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";

pub(super) fn is_eds(cluster: &Cluster) -> bool {
    cluster.cluster_discovery_type == Some(ClusterDiscoveryType::Type(DiscoveryType::Eds as i32))
}

pub(super) fn to_cluster(config: &Config, d: &Destination) -> Cluster {
    let name = cluster_name(d);
    let service = config.services.get(&d.host);
    let policy = traffic_policy(config, d);
    let pool = policy.connection_pool.clone().unwrap_or_default();
    let mut cluster = Cluster {
        name: name.clone(),
        connect_timeout: Some(to_duration(
            pool.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT),
        )),
        lb_policy: to_lb_policy(policy.load_balancer) as i32,
        circuit_breakers: to_circuit_breakers(&pool),
        outlier_detection: policy.outlier_detection.as_ref().map(to_outlier_detection),
        common_lb_config: policy
            .outlier_detection
            .as_ref()
            .and_then(|o| o.min_health_percent)
            .map(|p| CommonLbConfig {
                healthy_panic_threshold: Some(Percent {
                    value: f64::from(p),
                }),
                ..Default::default()
            }),
        ..Default::default()
    };
    let protocol = service
        .and_then(|s| s.port(d.port))
        .map(|p| p.protocol.as_str())
        .unwrap_or("HTTP");
    if let Some(options) = to_http_protocol_options(&pool, protocol) {
        cluster.typed_extension_protocol_options =
            HashMap::from([(HTTP_PROTOCOL_OPTIONS.to_string(), pack_any(options))]);
    }
    match service.map(|s| s.resolution) {
        Some(Resolution::Dns) => {
            cluster.cluster_discovery_type =
                Some(ClusterDiscoveryType::Type(DiscoveryType::StrictDns as i32));
            cluster.dns_lookup_family = DnsLookupFamily::V4Preferred as i32;
            cluster.load_assignment = Some(endpoint::to_cluster_load_assignment(config, d));
        }
        Some(Resolution::Static) | None => {
            cluster.cluster_discovery_type =
                Some(ClusterDiscoveryType::Type(DiscoveryType::Eds as i32));
            cluster.eds_cluster_config = Some(EdsClusterConfig {
                eds_config: Some(ads_config_source()),
                service_name: name,
            });
        }
    }
    cluster
}

/// The destination rule's policy for the host, with the subset's fields (load
/// balancer, connection pool, outlier detection) replacing the rule's where set.
fn traffic_policy(config: &Config, d: &Destination) -> TrafficPolicy {
    let Some(rule) = config.destination_rules.iter().find(|r| r.host == d.host) else {
        return TrafficPolicy::default();
    };
    let base = rule.traffic_policy.clone().unwrap_or_default();
    let subset = d
        .subset
        .as_deref()
        .and_then(|name| rule.subset(name))
        .and_then(|s| s.traffic_policy.clone())
        .unwrap_or_default();
    TrafficPolicy {
        load_balancer: subset.load_balancer.or(base.load_balancer),
        connection_pool: subset.connection_pool.or(base.connection_pool),
        outlier_detection: subset.outlier_detection.or(base.outlier_detection),
    }
}

/// `PASSTHROUGH` (connect to the original destination) has no meaning for a gateway's
/// upstream, so it balances round robin like the default.
fn to_lb_policy(lb: Option<LoadBalancer>) -> LbPolicy {
    match lb {
        Some(LoadBalancer::LeastRequest) => LbPolicy::LeastRequest,
        Some(LoadBalancer::Random) => LbPolicy::Random,
        Some(LoadBalancer::RoundRobin | LoadBalancer::Passthrough) | None => LbPolicy::RoundRobin,
    }
}

fn to_circuit_breakers(pool: &ConnectionPool) -> Option<CircuitBreakers> {
    let value = |v: Option<u32>| v.map(|value| UInt32Value { value });
    let thresholds = Thresholds {
        max_connections: value(pool.max_connections),
        max_pending_requests: value(pool.http1_max_pending_requests),
        max_requests: value(pool.http2_max_requests),
        max_retries: value(pool.max_retries),
        ..Default::default()
    };
    (thresholds != Thresholds::default()).then(|| CircuitBreakers {
        thresholds: vec![thresholds],
        ..Default::default()
    })
}

/// Upstream HTTP options: idle timeout and requests per connection from the pool, and
/// HTTP/2 for `HTTP2` / `GRPC` ports. `None` when nothing differs from Envoy's defaults.
fn to_http_protocol_options(pool: &ConnectionPool, protocol: &str) -> Option<HttpProtocolOptions> {
    let http2 = matches!(protocol, "HTTP2" | "GRPC" | "GRPC-WEB");
    let common = CommonHttpProtocolOptions {
        idle_timeout: pool.idle_timeout.map(to_duration),
        max_requests_per_connection: pool
            .max_requests_per_connection
            .map(|value| UInt32Value { value }),
        ..Default::default()
    };
    if !http2 && common == CommonHttpProtocolOptions::default() {
        return None;
    }
    let protocol_config = if http2 {
        ProtocolConfig::Http2ProtocolOptions(Http2ProtocolOptions::default())
    } else {
        ProtocolConfig::HttpProtocolOptions(Http1ProtocolOptions::default())
    };
    Some(HttpProtocolOptions {
        common_http_protocol_options: (common != CommonHttpProtocolOptions::default())
            .then_some(common),
        upstream_protocol_options: Some(UpstreamProtocolOptions::ExplicitHttpConfig(
            ExplicitHttpConfig {
                protocol_config: Some(protocol_config),
            },
        )),
        ..Default::default()
    })
}

/// Istio's outlier detection: 5xx and gateway-error ejection, success-rate ejection off.
fn to_outlier_detection(o: &OutlierDetection) -> EnvoyOutlierDetection {
    let value = |v: Option<u32>| v.map(|value| UInt32Value { value });
    // Zero errors turns that ejection off; unset keeps Envoy's default.
    let enforcing = |v: Option<u32>| {
        v.map(|n| UInt32Value {
            value: if n > 0 { 100 } else { 0 },
        })
    };
    EnvoyOutlierDetection {
        consecutive_5xx: value(o.consecutive_5xx_errors),
        enforcing_consecutive_5xx: enforcing(o.consecutive_5xx_errors),
        consecutive_gateway_failure: value(o.consecutive_gateway_errors),
        enforcing_consecutive_gateway_failure: enforcing(o.consecutive_gateway_errors),
        enforcing_success_rate: Some(UInt32Value { value: 0 }),
        interval: o.interval.map(to_duration),
        base_ejection_time: o.base_ejection_time.map(to_duration),
        max_ejection_percent: value(o.max_ejection_percent),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_needs_no_protocol_options() {
        assert_eq!(
            to_http_protocol_options(&ConnectionPool::default(), "HTTP"),
            None
        );
        let grpc = to_http_protocol_options(&ConnectionPool::default(), "GRPC").unwrap();
        assert!(grpc.common_http_protocol_options.is_none());
        assert!(matches!(
            grpc.upstream_protocol_options,
            Some(UpstreamProtocolOptions::ExplicitHttpConfig(
                ExplicitHttpConfig {
                    protocol_config: Some(ProtocolConfig::Http2ProtocolOptions(_))
                }
            ))
        ));
    }

    #[test]
    fn empty_pool_sets_no_circuit_breakers() {
        assert_eq!(to_circuit_breakers(&ConnectionPool::default()), None);
        let pool = ConnectionPool {
            max_connections: Some(7),
            ..Default::default()
        };
        let breakers = to_circuit_breakers(&pool).unwrap();
        assert_eq!(
            breakers.thresholds[0].max_connections,
            Some(UInt32Value { value: 7 })
        );
    }
}
