//! Per-route HTTP filter configuration: fault injection and CORS, as the typed configs
//! that `typed_per_filter_config` carries, and the filter names the listener uses.

use std::collections::HashMap;

use envoy_types::pb::envoy::extensions::filters::common::fault::v3::{
    fault_delay::FaultDelaySecifier, FaultDelay,
};
use envoy_types::pb::envoy::extensions::filters::http::cors::v3::CorsPolicy as EnvoyCorsPolicy;
use envoy_types::pb::envoy::extensions::filters::http::fault::v3::{
    fault_abort::ErrorType, FaultAbort, HttpFault,
};
use envoy_types::pb::google::protobuf::{Any, BoolValue};
use envoy_types::util::pack_any;

use super::route_match::to_string_matcher;
use super::{to_duration, to_fractional_percent};
use crate::model::{CorsPolicy, Fault};

pub(super) const FAULT_FILTER: &str = "envoy.filters.http.fault";
pub(super) const CORS_FILTER: &str = "envoy.filters.http.cors";
pub(super) const ROUTER_FILTER: &str = "envoy.filters.http.router";

/// A `typed_per_filter_config` map with exactly one entry (so its encoding is stable).
pub(super) fn one_filter_config(filter: &str, config: Any) -> HashMap<String, Any> {
    HashMap::from([(filter.to_string(), config)])
}

/// Istio's fault: a fixed delay and/or an HTTP abort, each for a share of requests
/// (millionths, so 0.01 % stays exact).
pub(super) fn to_http_fault(fault: &Fault) -> Any {
    let delay = fault.delay.as_ref().map(|d| FaultDelay {
        percentage: Some(to_fractional_percent(d.percent)),
        fault_delay_secifier: Some(FaultDelaySecifier::FixedDelay(to_duration(d.fixed))),
    });
    let abort = fault.abort.as_ref().map(|a| FaultAbort {
        percentage: Some(to_fractional_percent(a.percent)),
        error_type: Some(ErrorType::HttpStatus(a.http_status)),
        ..Default::default()
    });
    pack_any(HttpFault {
        delay,
        abort,
        ..Default::default()
    })
}

/// The CORS filter's per-route policy.
pub(super) fn to_cors_policy(cors: &CorsPolicy) -> Any {
    pack_any(EnvoyCorsPolicy {
        allow_origin_string_match: cors.allow_origins.iter().map(to_string_matcher).collect(),
        allow_methods: cors.allow_methods.join(","),
        allow_headers: cors.allow_headers.join(","),
        expose_headers: cors.expose_headers.join(","),
        max_age: cors
            .max_age
            .map(|d| d.as_secs().to_string())
            .unwrap_or_default(),
        allow_credentials: cors.allow_credentials.map(|value| BoolValue { value }),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Abort, Delay};
    use prost::Message;
    use std::time::Duration;

    #[test]
    fn fault_percentages_are_exact_millionths() {
        let fault = Fault {
            delay: Some(Delay {
                fixed: Duration::from_millis(1500),
                percent: Some(0.01),
            }),
            abort: Some(Abort {
                http_status: 503,
                percent: None,
            }),
        };
        let any = to_http_fault(&fault);
        assert_eq!(
            any.type_url,
            "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"
        );
        let decoded = HttpFault::decode(any.value.as_slice()).unwrap();
        let delay = decoded.delay.unwrap();
        assert_eq!(delay.percentage.unwrap().numerator, 100);
        let abort = decoded.abort.unwrap();
        assert_eq!(abort.percentage.unwrap().numerator, 1_000_000);
        assert_eq!(abort.error_type, Some(ErrorType::HttpStatus(503)));
    }
}
