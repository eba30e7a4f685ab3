//! Fuzz target: bytes as the messages of one or more proxies' metrics streams
//! (`envoy.service.metrics.v3.StreamMetricsMessage`), read as the metrics service
//! does (`stats::ingest::samples`, then `Stats::record` under the stream's node id),
//! then every cluster's window, success rate and p99 as a release's analysis asks.
//!
//! The input is a sequence of frames (see `coalmine_fuzz::frames`), one message each,
//! ten seconds apart. A message that does not decode ends the stream, as it would.
#![no_main]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use coalmine::stats::{ingest, Stats};
use coalmine_fuzz::frames;
use envoy_types::pb::envoy::service::metrics::v3::StreamMetricsMessage;
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let stats = Stats::default();
    let start = Instant::now();
    let mut now = start;
    let mut node = String::new();
    let (mut nodes, mut clusters) = (BTreeSet::new(), BTreeSet::new());
    for frame in frames(data) {
        let Ok(message) = StreamMetricsMessage::decode(frame) else {
            break;
        };
        // Only a message with an identifier names the proxy; later ones keep it.
        if let Some(id) = message.identifier.as_ref().and_then(|i| i.node.as_ref()) {
            node = id.id.clone();
        }
        let samples = ingest::samples(&message.envoy_metrics, now);
        clusters.extend(samples.keys().cloned());
        nodes.insert(node.clone());
        stats.record(&node, samples);
        now += Duration::from_secs(10);
    }
    for cluster in &clusters {
        for interval in [10, 60, 3600] {
            let window = stats.window(cluster, Duration::from_secs(interval), now);
            let _ = (window.success_rate(), window.p99_ms());
        }
    }
    for node in &nodes {
        stats.forget(node);
    }
    assert_eq!(stats.series(), 0, "every series goes with its proxy");
});
