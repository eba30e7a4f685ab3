//! Envoy v3 resources as the proto3 JSON Envoy itself prints in its admin `/config_dump`:
//! snake_case field names, `{"@type": ...}` for `Any` (nested `typed_config` too),
//! durations as `"10s"`, enums by name, unset fields left out.
//!
//! It owns the descriptor pool that `build.rs` compiles from the `.proto` files shipped in
//! `envoy-types`; it only renders, and never builds or changes resources.

use std::sync::OnceLock;

use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, SerializeOptions};
use serde_json::{Map, Value};

static DESCRIPTORS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/envoy_descriptors.bin"));

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unknown message type {0:?}")]
    UnknownType(String),
    #[error("decoding {type_name}: {source}")]
    Decode {
        type_name: String,
        source: prost::DecodeError,
    },
    #[error("rendering {type_name} as json: {source}")]
    Json {
        type_name: String,
        source: serde_json::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The descriptor pool, decoded once (std::sync::OnceLock).
pub fn pool() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| {
        DescriptorPool::decode(DESCRIPTORS).expect("build.rs writes a valid FileDescriptorSet")
    })
}

/// Decodes an encoded google.protobuf.Any (type_url + value bytes) into Envoy-style JSON:
/// `{"@type": "...", ...fields}`.
pub fn any_to_json(any_bytes: &[u8]) -> Result<Value> {
    let any = prost_types::Any::decode(any_bytes).map_err(|source| Error::Decode {
        type_name: "google.protobuf.Any".into(),
        source,
    })?;
    let type_name = any.type_url.rsplit('/').next().unwrap_or_default();
    let fields = bytes_to_json(type_name, &any.value)?;
    let mut out = Map::new();
    out.insert("@type".into(), Value::String(any.type_url));
    match fields {
        Value::Object(fields) => out.extend(fields),
        // Well-known types with a scalar JSON form (Duration, wrappers, ...).
        other => {
            out.insert("value".into(), other);
        }
    }
    Ok(Value::Object(out))
}

/// Encodes any prost message of a known full type name (e.g.
/// "envoy.config.cluster.v3.Cluster") to JSON (the golden tests' rendering).
#[cfg(test)]
pub fn message_to_json<M: Message>(full_name: &str, msg: &M) -> Result<Value> {
    bytes_to_json(full_name, &msg.encode_to_vec())
}

/// [`message_to_json`] for a generated type that knows its own name.
#[cfg(test)]
pub fn to_json<M: prost::Name>(msg: &M) -> Result<Value> {
    message_to_json(&M::full_name(), msg)
}

fn bytes_to_json(type_name: &str, bytes: &[u8]) -> Result<Value> {
    let desc = descriptor(type_name)?;
    let msg = DynamicMessage::decode(desc, bytes).map_err(|source| Error::Decode {
        type_name: type_name.into(),
        source,
    })?;
    let options = SerializeOptions::new()
        .use_proto_field_name(true)
        .skip_default_fields(true);
    msg.serialize_with_options(serde_json::value::Serializer, &options)
        .map_err(|source| Error::Json {
            type_name: type_name.into(),
            source,
        })
}

fn descriptor(type_name: &str) -> Result<MessageDescriptor> {
    pool()
        .get_message_by_name(type_name)
        .ok_or_else(|| Error::UnknownType(type_name.into()))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use envoy_types::pb::envoy::config::cluster::v3::{
        cluster::{ClusterDiscoveryType, DiscoveryType, EdsClusterConfig},
        Cluster,
    };
    use envoy_types::pb::envoy::config::core::v3::{
        config_source::ConfigSourceSpecifier, AggregatedConfigSource, ConfigSource,
        Http2ProtocolOptions,
    };
    use envoy_types::pb::envoy::config::listener::v3::{filter, Filter, FilterChain, Listener};
    use envoy_types::pb::envoy::config::route::v3::{
        route::Action, route_action::ClusterSpecifier, route_match::PathSpecifier,
        weighted_cluster::ClusterWeight, Route, RouteAction, RouteConfiguration, RouteMatch,
        VirtualHost, WeightedCluster,
    };
    use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
    use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
        http_connection_manager::{CodecType, RouteSpecifier},
        http_filter, HttpConnectionManager, HttpFilter, Rds,
    };
    use envoy_types::pb::envoy::extensions::upstreams::http::v3::{
        http_protocol_options::{
            explicit_http_config::ProtocolConfig, ExplicitHttpConfig, UpstreamProtocolOptions,
        },
        HttpProtocolOptions,
    };
    use envoy_types::pb::google::protobuf::{Any, BoolValue, Duration, UInt32Value};
    use envoy_types::util::pack_any;
    use serde_json::json;

    use super::*;

    const HCM: &str = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
    const HTTP_OPTIONS: &str = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";

    fn mk_ads() -> ConfigSource {
        ConfigSource {
            config_source_specifier: Some(ConfigSourceSpecifier::Ads(AggregatedConfigSource {})),
            resource_api_version: 2, // V3
            ..Default::default()
        }
    }

    fn mk_cluster() -> Cluster {
        let options = HttpProtocolOptions {
            upstream_protocol_options: Some(UpstreamProtocolOptions::ExplicitHttpConfig(
                ExplicitHttpConfig {
                    protocol_config: Some(ProtocolConfig::Http2ProtocolOptions(
                        Http2ProtocolOptions {
                            max_concurrent_streams: Some(UInt32Value { value: 100 }),
                            ..Default::default()
                        },
                    )),
                },
            )),
            ..Default::default()
        };
        Cluster {
            name: "outbound|8080|v1|reviews".into(),
            connect_timeout: Some(Duration {
                seconds: 10,
                nanos: 0,
            }),
            cluster_discovery_type: Some(ClusterDiscoveryType::Type(DiscoveryType::Eds as i32)),
            eds_cluster_config: Some(EdsClusterConfig {
                eds_config: Some(mk_ads()),
                service_name: "outbound|8080|v1|reviews".into(),
            }),
            typed_extension_protocol_options: HashMap::from([(
                HTTP_OPTIONS.to_string(),
                pack_any(options),
            )]),
            ..Default::default()
        }
    }

    fn mk_listener() -> Listener {
        let hcm = HttpConnectionManager {
            stat_prefix: "0.0.0.0_8080".into(),
            codec_type: CodecType::Auto as i32,
            route_specifier: Some(RouteSpecifier::Rds(Rds {
                config_source: Some(mk_ads()),
                route_config_name: "http.8080".into(),
            })),
            http_filters: vec![HttpFilter {
                name: "envoy.filters.http.router".into(),
                config_type: Some(http_filter::ConfigType::TypedConfig(pack_any(Router {
                    suppress_envoy_headers: true,
                    dynamic_stats: Some(BoolValue { value: false }),
                    ..Default::default()
                }))),
                ..Default::default()
            }],
            stream_idle_timeout: Some(Duration {
                seconds: 0,
                nanos: 500_000_000,
            }),
            ..Default::default()
        };
        Listener {
            name: "0.0.0.0_8080".into(),
            filter_chains: vec![FilterChain {
                filters: vec![Filter {
                    name: "envoy.filters.network.http_connection_manager".into(),
                    config_type: Some(filter::ConfigType::TypedConfig(pack_any(hcm))),
                }],
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn mk_route_configuration() -> RouteConfiguration {
        let weighted = |name: &str, weight| ClusterWeight {
            name: name.into(),
            weight: Some(UInt32Value { value: weight }),
            ..Default::default()
        };
        RouteConfiguration {
            name: "http.8080".into(),
            virtual_hosts: vec![VirtualHost {
                name: "reviews:8080".into(),
                domains: vec!["reviews".into(), "reviews:8080".into()],
                routes: vec![Route {
                    r#match: Some(RouteMatch {
                        path_specifier: Some(PathSpecifier::Prefix("/".into())),
                        ..Default::default()
                    }),
                    action: Some(Action::Route(RouteAction {
                        cluster_specifier: Some(ClusterSpecifier::WeightedClusters(
                            WeightedCluster {
                                clusters: vec![
                                    weighted("outbound|8080|v1|reviews", 90),
                                    weighted("outbound|8080|v2|reviews", 10),
                                ],
                                ..Default::default()
                            },
                        )),
                        timeout: Some(Duration {
                            seconds: 15,
                            nanos: 0,
                        }),
                        ..Default::default()
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn cluster_renders_enums_durations_and_nested_any() {
        let json = to_json(&mk_cluster()).unwrap();
        assert_eq!(json["name"], "outbound|8080|v1|reviews");
        assert_eq!(json["type"], "EDS");
        assert_eq!(json["connect_timeout"], "10s");
        assert_eq!(json["eds_cluster_config"]["eds_config"]["ads"], json!({}));
        assert_eq!(
            json["eds_cluster_config"]["eds_config"]["resource_api_version"],
            "V3"
        );
        let options = &json["typed_extension_protocol_options"][HTTP_OPTIONS];
        assert_eq!(
            options["@type"],
            format!("type.googleapis.com/{HTTP_OPTIONS}")
        );
        assert_eq!(
            options["explicit_http_config"]["http2_protocol_options"]["max_concurrent_streams"],
            100
        );
        // Only set fields, as Envoy prints them: lb_policy (ROUND_ROBIN) is the default.
        assert!(json.get("lb_policy").is_none());
        assert!(json.get("load_assignment").is_none());
    }

    #[test]
    fn listener_renders_typed_configs_two_levels_deep() {
        let json = to_json(&mk_listener()).unwrap();
        let hcm = &json["filter_chains"][0]["filters"][0]["typed_config"];
        assert_eq!(hcm["@type"], HCM);
        assert_eq!(hcm["stat_prefix"], "0.0.0.0_8080");
        assert_eq!(hcm["rds"]["route_config_name"], "http.8080");
        assert_eq!(hcm["stream_idle_timeout"], "0.500s");
        assert!(hcm.get("codec_type").is_none(), "AUTO is the default");
        let router = &hcm["http_filters"][0]["typed_config"];
        assert_eq!(
            router["@type"],
            "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
        );
        assert_eq!(router["suppress_envoy_headers"], true);
        // A set wrapper prints even when it holds the default value.
        assert_eq!(router["dynamic_stats"], false);
    }

    #[test]
    fn route_configuration_renders_weighted_clusters() {
        let json = message_to_json(
            "envoy.config.route.v3.RouteConfiguration",
            &mk_route_configuration(),
        )
        .unwrap();
        let route = &json["virtual_hosts"][0]["routes"][0];
        assert_eq!(route["match"]["prefix"], "/");
        assert_eq!(route["route"]["timeout"], "15s");
        assert_eq!(
            route["route"]["weighted_clusters"]["clusters"],
            json!([
                {"name": "outbound|8080|v1|reviews", "weight": 90},
                {"name": "outbound|8080|v2|reviews", "weight": 10},
            ])
        );
    }

    #[test]
    fn any_to_json_puts_type_first() {
        let any = pack_any(mk_listener());
        let json = any_to_json(&any.encode_to_vec()).unwrap();
        let keys: Vec<&String> = json.as_object().unwrap().keys().collect();
        assert_eq!(keys[0], "@type");
        assert_eq!(
            json["@type"],
            "type.googleapis.com/envoy.config.listener.v3.Listener"
        );
        assert_eq!(json["name"], "0.0.0.0_8080");
        assert_eq!(
            json["filter_chains"][0]["filters"][0]["typed_config"]["@type"],
            HCM
        );
    }

    #[test]
    fn any_of_a_well_known_scalar_type_keeps_its_value() {
        let any = pack_any(Duration {
            seconds: 3,
            nanos: 0,
        });
        let json = any_to_json(&any.encode_to_vec()).unwrap();
        assert_eq!(
            json,
            json!({"@type": "type.googleapis.com/google.protobuf.Duration", "value": "3s"})
        );
    }

    #[test]
    fn every_served_resource_type_is_in_the_pool() {
        for name in [
            "envoy.config.cluster.v3.Cluster",
            "envoy.config.endpoint.v3.ClusterLoadAssignment",
            "envoy.config.listener.v3.Listener",
            "envoy.config.route.v3.RouteConfiguration",
            "envoy.extensions.transport_sockets.tls.v3.Secret",
            "envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
            "envoy.extensions.filters.http.fault.v3.HTTPFault",
            "envoy.extensions.filters.http.cors.v3.Cors",
            "envoy.extensions.filters.http.grpc_stats.v3.FilterConfig",
            "envoy.extensions.access_loggers.file.v3.FileAccessLog",
            "envoy.extensions.access_loggers.stream.v3.StdoutAccessLog",
            "envoy.config.bootstrap.v3.Bootstrap",
            "envoy.config.metrics.v3.MetricsServiceConfig",
            "envoy.service.discovery.v3.DiscoveryResponse",
            "envoy.service.load_stats.v3.LoadStatsRequest",
            "envoy.service.metrics.v3.StreamMetricsMessage",
        ] {
            assert!(pool().get_message_by_name(name).is_some(), "{name} missing");
        }
    }

    #[test]
    fn unknown_types_and_bad_bytes_are_errors() {
        let any = Any {
            type_url: "type.googleapis.com/example.v1.Nope".into(),
            value: vec![],
        };
        assert!(matches!(
            any_to_json(&any.encode_to_vec()),
            Err(Error::UnknownType(name)) if name == "example.v1.Nope"
        ));
        assert!(matches!(
            any_to_json(&[0xff, 0xff, 0xff]),
            Err(Error::Decode { .. })
        ));
        let bogus = Any {
            type_url: "type.googleapis.com/envoy.config.cluster.v3.Cluster".into(),
            value: vec![0x0a, 0x05, b'a'], // name: length 5, one byte given
        };
        assert!(matches!(
            any_to_json(&bogus.encode_to_vec()),
            Err(Error::Decode { type_name, .. }) if type_name == "envoy.config.cluster.v3.Cluster"
        ));
    }
}
