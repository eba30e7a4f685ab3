//! The Envoy bootstrap that points a proxy at coalmine over ADS.
