//! Listeners: `0.0.0.0_PORT`, filter chains (one per TLS setting, chosen by SNI) with
//! an HTTP connection manager that takes its routes over RDS (`http.PORT`).

use envoy_types::pb::envoy::config::core::v3::{
    address, socket_address::PortSpecifier, Address, SocketAddress,
};
use envoy_types::pb::envoy::config::listener::v3::{
    filter, listener_filter, Filter, FilterChain, FilterChainMatch, Listener, ListenerFilter,
};
use envoy_types::pb::envoy::extensions::filters::http::cors::v3::Cors;
use envoy_types::pb::envoy::extensions::filters::http::fault::v3::HttpFault;
use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
use envoy_types::pb::envoy::extensions::filters::listener::tls_inspector::v3::TlsInspector;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    http_connection_manager::RouteSpecifier, http_filter, HttpConnectionManager, HttpFilter, Rds,
};
use envoy_types::pb::google::protobuf::{Any, BoolValue};
use envoy_types::util::pack_any;

use super::ads_config_source;
use super::chains::ChainPlan;
use super::route::{route_config_name, FiltersUsed};
use super::route_filter::{CORS_FILTER, FAULT_FILTER, ROUTER_FILTER};
use super::tls::to_transport_socket;

pub(super) fn listener_name(port: u32) -> String {
    format!("0.0.0.0_{port}")
}

/// The listener for one port, a filter chain per [`ChainPlan`] (chains with server
/// names are picked by SNI, which the TLS inspector reads); `filters` says which
/// optional HTTP filters its routes use.
pub(super) fn to_listener(port: u32, chains: &[ChainPlan<'_>], filters: FiltersUsed) -> Listener {
    let name = listener_name(port);
    let hcm = Filter {
        name: "envoy.filters.network.http_connection_manager".into(),
        config_type: Some(filter::ConfigType::TypedConfig(pack_any(
            to_http_connection_manager(&name, port, filters),
        ))),
    };
    let filter_chains: Vec<FilterChain> = chains
        .iter()
        .map(|chain| FilterChain {
            filter_chain_match: (!chain.server_names.is_empty()).then(|| FilterChainMatch {
                server_names: chain.server_names.clone(),
                ..Default::default()
            }),
            filters: vec![hcm.clone()],
            transport_socket: chain.tls.map(to_transport_socket),
            ..Default::default()
        })
        .collect();
    let sni = chains.iter().any(|c| !c.server_names.is_empty());
    Listener {
        name: name.clone(),
        address: Some(to_address("0.0.0.0", port)),
        filter_chains,
        listener_filters: match sni {
            true => vec![tls_inspector()],
            false => Vec::new(),
        },
        ..Default::default()
    }
}

fn tls_inspector() -> ListenerFilter {
    ListenerFilter {
        name: "envoy.filters.listener.tls_inspector".into(),
        config_type: Some(listener_filter::ConfigType::TypedConfig(pack_any(
            TlsInspector::default(),
        ))),
        ..Default::default()
    }
}

pub(super) fn to_address(host: &str, port: u32) -> Address {
    Address {
        address: Some(address::Address::SocketAddress(SocketAddress {
            address: host.to_string(),
            port_specifier: Some(PortSpecifier::PortValue(port)),
            ..Default::default()
        })),
    }
}

fn to_http_connection_manager(
    stat_prefix: &str,
    port: u32,
    filters: FiltersUsed,
) -> HttpConnectionManager {
    let mut http_filters = filters.security;
    if filters.fault {
        http_filters.push(to_http_filter(FAULT_FILTER, pack_any(HttpFault::default())));
    }
    if filters.cors {
        http_filters.push(to_http_filter(CORS_FILTER, pack_any(Cors {})));
    }
    http_filters.push(to_http_filter(ROUTER_FILTER, pack_any(Router::default())));
    HttpConnectionManager {
        stat_prefix: stat_prefix.to_string(),
        route_specifier: Some(RouteSpecifier::Rds(Rds {
            config_source: Some(ads_config_source()),
            route_config_name: route_config_name(port),
        })),
        http_filters,
        use_remote_address: Some(BoolValue { value: true }),
        ..Default::default()
    }
}

pub(super) fn to_http_filter(name: &str, config: Any) -> HttpFilter {
    HttpFilter {
        name: name.to_string(),
        config_type: Some(http_filter::ConfigType::TypedConfig(config)),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    fn plain() -> ChainPlan<'static> {
        ChainPlan {
            server_names: Vec::new(),
            tls: None,
        }
    }

    fn hcm_of(listener: &Listener) -> HttpConnectionManager {
        let filter = &listener.filter_chains[0].filters[0];
        let Some(filter::ConfigType::TypedConfig(any)) = &filter.config_type else {
            panic!("no typed config");
        };
        assert_eq!(
            any.type_url,
            "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
        );
        HttpConnectionManager::decode(any.value.as_slice()).unwrap()
    }

    #[test]
    fn router_is_last_and_optional_filters_only_when_used() {
        let names = |filters| -> Vec<String> {
            let hcm = hcm_of(&to_listener(8080, &[plain()], filters));
            hcm.http_filters.into_iter().map(|f| f.name).collect()
        };
        assert_eq!(names(FiltersUsed::default()), [ROUTER_FILTER]);
        assert_eq!(
            names(FiltersUsed {
                fault: true,
                cors: true,
                ..FiltersUsed::default()
            }),
            [FAULT_FILTER, CORS_FILTER, ROUTER_FILTER]
        );
    }

    #[test]
    fn rds_names_the_port_route_config() {
        let listener = to_listener(8080, &[plain()], FiltersUsed::default());
        assert_eq!(listener.name, "0.0.0.0_8080");
        let Some(RouteSpecifier::Rds(rds)) = hcm_of(&listener).route_specifier else {
            panic!("no rds");
        };
        assert_eq!(rds.route_config_name, "http.8080");
        assert_eq!(rds.config_source, Some(ads_config_source()));
    }
}
