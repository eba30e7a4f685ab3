//! Reads Envoy's metric families (as its metrics service sink sends them, without tag
//! extraction) into per-cluster samples.

use std::collections::BTreeMap;
use std::time::Instant;

use envoy_types::pb::io::prometheus::client::MetricFamily;

use super::Sample;

const PREFIX: &str = "cluster.";
const COMPLETED: &str = ".upstream_rq_completed";
const ERRORS: &str = ".upstream_rq_5xx";
const DURATION: &str = ".upstream_rq_time";

/// The samples per cluster in one report. Clusters without a completed-requests
/// counter are left out.
pub fn samples(families: &[MetricFamily], at: Instant) -> BTreeMap<String, Sample> {
    let mut out: BTreeMap<String, Sample> = BTreeMap::new();
    for family in families {
        let Some(name) = family.name.as_deref() else {
            continue;
        };
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let Some(metric) = family.metric.first() else {
            continue;
        };
        if let Some(cluster) = rest.strip_suffix(COMPLETED) {
            entry(&mut out, cluster, at).requests = counter(metric);
        } else if let Some(cluster) = rest.strip_suffix(ERRORS) {
            entry(&mut out, cluster, at).errors = counter(metric);
        } else if let Some(cluster) = rest.strip_suffix(DURATION) {
            if let Some(h) = &metric.histogram {
                let mut buckets: Vec<(f64, u64)> = h
                    .bucket
                    .iter()
                    .map(|b| {
                        (
                            b.upper_bound.unwrap_or(f64::INFINITY),
                            b.cumulative_count.unwrap_or(0),
                        )
                    })
                    .collect();
                buckets.push((f64::INFINITY, h.sample_count.unwrap_or(0)));
                entry(&mut out, cluster, at).latency = buckets;
            }
        }
    }
    out.retain(|_, s| s.requests > 0 || !s.latency.is_empty());
    out
}

fn entry<'a>(out: &'a mut BTreeMap<String, Sample>, cluster: &str, at: Instant) -> &'a mut Sample {
    out.entry(cluster.to_string()).or_insert_with(|| Sample {
        at,
        requests: 0,
        errors: 0,
        latency: Vec::new(),
    })
}

fn counter(metric: &envoy_types::pb::io::prometheus::client::Metric) -> u64 {
    metric
        .counter
        .as_ref()
        .and_then(|c| c.value)
        .or_else(|| metric.gauge.as_ref().and_then(|g| g.value))
        .unwrap_or(0.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::io::prometheus::client::{Bucket, Counter, Histogram, Metric, MetricType};

    fn mk_counter(name: &str, value: f64) -> MetricFamily {
        MetricFamily {
            name: Some(name.into()),
            r#type: Some(MetricType::Counter as i32),
            metric: vec![Metric {
                counter: Some(Counter {
                    value: Some(value),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn reads_counters_and_histograms_of_clusters_whose_names_hold_dots() {
        let cluster = "outbound|80|v2|petstore.default.svc.cluster.local";
        let histogram = MetricFamily {
            name: Some(format!("cluster.{cluster}.upstream_rq_time")),
            r#type: Some(MetricType::Histogram as i32),
            metric: vec![Metric {
                histogram: Some(Histogram {
                    sample_count: Some(10),
                    bucket: vec![
                        Bucket {
                            upper_bound: Some(5.0),
                            cumulative_count: Some(9),
                            ..Default::default()
                        },
                        Bucket {
                            upper_bound: Some(50.0),
                            cumulative_count: Some(10),
                            ..Default::default()
                        },
                    ],
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        };
        let families = vec![
            mk_counter(&format!("cluster.{cluster}.upstream_rq_completed"), 10.0),
            mk_counter(&format!("cluster.{cluster}.upstream_rq_5xx"), 2.0),
            mk_counter("cluster.coalmine_xds.upstream_cx_total", 1.0),
            mk_counter("http.ingress.downstream_rq_total", 10.0),
            histogram,
        ];
        let samples = samples(&families, Instant::now());
        assert_eq!(samples.len(), 1, "{samples:?}");
        let s = &samples[cluster];
        assert_eq!((s.requests, s.errors), (10, 2));
        assert_eq!(s.latency, vec![(5.0, 9), (50.0, 10), (f64::INFINITY, 10)]);
    }
}
