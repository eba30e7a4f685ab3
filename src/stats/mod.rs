//! Envoy's own stats, pushed to coalmine over the metrics service, reduced to
//! per-cluster request windows for built-in analysis (no Prometheus needed).
//!
//! Envoy reports cumulative counters and histograms per proxy; [`Stats`] keeps a short
//! history of them per (proxy, cluster) and answers "how many requests, how many 5xx,
//! and what p99 latency did this cluster see over the last interval, across every
//! proxy". [`ingest`] reads Envoy's metric families; [`service`] is the gRPC edge.

pub mod ingest;
pub mod service;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How much history is kept per series: longer than any analysis interval in use.
const RETENTION: Duration = Duration::from_secs(30 * 60);

/// The most (proxy, cluster) series one proxy may hold, and all proxies together:
/// reports beyond them are dropped (and counted), never grown into.
pub const MAX_SERIES_PER_PROXY: usize = 20_000;
pub const MAX_SERIES: usize = 200_000;

/// One report of one cluster's cumulative stats from one proxy.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub at: Instant,
    /// Completed upstream requests, cumulative.
    pub requests: u64,
    /// Upstream 5xx responses, cumulative.
    pub errors: u64,
    /// Request duration histogram, cumulative: (upper bound in ms, count at or below).
    pub latency: Vec<(f64, u64)>,
}

/// What one cluster saw over a window, summed over every proxy.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Window {
    pub requests: u64,
    pub errors: u64,
    /// Merged latency buckets of the window: (upper bound ms, count at or below).
    pub latency: Vec<(f64, u64)>,
}

impl Window {
    /// Share of non-5xx responses in percent, or `None` without requests.
    pub fn success_rate(&self) -> Option<f64> {
        (self.requests > 0).then(|| 100.0 * (1.0 - self.errors as f64 / self.requests as f64))
    }

    /// The 99th percentile latency in ms, interpolated within its bucket as
    /// Prometheus' `histogram_quantile` does; `None` without samples.
    pub fn p99_ms(&self) -> Option<f64> {
        quantile(0.99, &self.latency)
    }
}

/// Every proxy's recent samples, per cluster.
#[derive(Debug, Default)]
pub struct Stats {
    series: Mutex<HashMap<(String, String), VecDeque<Sample>>>,
    /// Series per proxy, to bound them.
    per_node: Mutex<HashMap<String, usize>>,
}

impl Stats {
    /// Records one proxy's report: its samples per cluster. Returns how many clusters
    /// were dropped because a bound ([`MAX_SERIES_PER_PROXY`], [`MAX_SERIES`]) was
    /// reached.
    pub fn record(&self, node: &str, samples: BTreeMap<String, Sample>) -> usize {
        let mut series = self.series.lock().expect("stats poisoned");
        let mut per_node = self.per_node.lock().expect("stats poisoned");
        let mut dropped = 0;
        for (cluster, sample) in samples {
            let key = (node.to_string(), cluster);
            if !series.contains_key(&key) {
                let count = per_node.entry(node.to_string()).or_default();
                if *count >= MAX_SERIES_PER_PROXY || series.len() >= MAX_SERIES {
                    dropped += 1;
                    continue;
                }
                *count += 1;
            }
            let queue = series.entry(key).or_default();
            let cutoff = sample.at.checked_sub(RETENTION);
            while queue
                .front()
                .is_some_and(|s| cutoff.is_some_and(|c| s.at < c))
            {
                queue.pop_front();
            }
            // A counter that went down means the proxy restarted: start over.
            if queue
                .back()
                .is_some_and(|last| sample.requests < last.requests)
            {
                queue.clear();
            }
            queue.push_back(sample);
        }
        dropped
    }

    /// Drops every series of a proxy (its last ADS stream ended).
    pub fn forget(&self, node: &str) {
        let mut series = self.series.lock().expect("stats poisoned");
        series.retain(|(n, _), _| n != node);
        self.per_node.lock().expect("stats poisoned").remove(node);
    }

    /// How many (proxy, cluster) series are held.
    pub fn series(&self) -> usize {
        self.series.lock().expect("stats poisoned").len()
    }

    /// What `cluster` saw between `now - interval` and `now`, over every proxy.
    pub fn window(&self, cluster: &str, interval: Duration, now: Instant) -> Window {
        let since = now.checked_sub(interval);
        let series = self.series.lock().expect("stats poisoned");
        let mut total = Window::default();
        for ((_, c), queue) in series.iter() {
            if c != cluster {
                continue;
            }
            let Some(last) = queue.iter().rev().find(|s| s.at <= now) else {
                continue;
            };
            // The newest sample at or before the window's start is the baseline; a
            // series that began inside the window counts from zero.
            let base = queue
                .iter()
                .rev()
                .find(|s| since.is_some_and(|t| s.at <= t));
            let (requests, errors, latency) = match base {
                Some(b) => (
                    last.requests.saturating_sub(b.requests),
                    last.errors.saturating_sub(b.errors),
                    delta(&last.latency, &b.latency),
                ),
                None => (last.requests, last.errors, last.latency.clone()),
            };
            // Counters are the proxies' word: huge ones saturate rather than wrap.
            total.requests = total.requests.saturating_add(requests);
            total.errors = total.errors.saturating_add(errors);
            total.latency = merge(&total.latency, &latency);
        }
        total
    }
}

fn delta(last: &[(f64, u64)], base: &[(f64, u64)]) -> Vec<(f64, u64)> {
    last.iter()
        .map(|(bound, count)| {
            let before = base.iter().find(|(b, _)| b == bound).map_or(0, |(_, c)| *c);
            (*bound, count.saturating_sub(before))
        })
        .collect()
}

fn merge(a: &[(f64, u64)], b: &[(f64, u64)]) -> Vec<(f64, u64)> {
    if a.is_empty() {
        return b.to_vec();
    }
    a.iter()
        .map(|(bound, count)| {
            let other = b.iter().find(|(x, _)| x == bound).map_or(0, |(_, c)| *c);
            (*bound, count.saturating_add(other))
        })
        .collect()
}

/// The q-quantile of cumulative buckets, linearly interpolated inside its bucket.
fn quantile(q: f64, buckets: &[(f64, u64)]) -> Option<f64> {
    let total = buckets.last()?.1;
    if total == 0 {
        return None;
    }
    let rank = q * total as f64;
    let mut prev = (0.0, 0u64);
    for &(bound, count) in buckets {
        if count as f64 >= rank {
            if bound.is_infinite() {
                return Some(prev.0);
            }
            let in_bucket = (count - prev.1) as f64;
            let fraction = if in_bucket > 0.0 {
                (rank - prev.1 as f64) / in_bucket
            } else {
                1.0
            };
            return Some(prev.0 + (bound - prev.0) * fraction);
        }
        prev = (bound, count);
    }
    Some(prev.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mk_sample(at: Instant, requests: u64, errors: u64, fast: u64) -> Sample {
        Sample {
            at,
            requests,
            errors,
            latency: vec![(10.0, fast), (100.0, requests), (f64::INFINITY, requests)],
        }
    }

    #[test]
    fn window_is_the_delta_over_the_interval_summed_over_proxies() {
        let stats = Stats::default();
        let t0 = Instant::now();
        let c = "outbound|80|v2|petstore".to_string();
        stats.record(
            "a",
            BTreeMap::from([(c.clone(), mk_sample(t0, 100, 1, 100))]),
        );
        stats.record("b", BTreeMap::from([(c.clone(), mk_sample(t0, 50, 0, 50))]));
        let t1 = t0 + Duration::from_secs(10);
        stats.record(
            "a",
            BTreeMap::from([(c.clone(), mk_sample(t1, 200, 11, 150))]),
        );
        stats.record(
            "b",
            BTreeMap::from([(c.clone(), mk_sample(t1, 150, 0, 150))]),
        );
        let w = stats.window(&c, Duration::from_secs(10), t1);
        assert_eq!(w.requests, 200);
        assert_eq!(w.errors, 10);
        assert_eq!(w.success_rate(), Some(95.0));
        // 150 of 200 under 10 ms, the rest under 100 ms: p99 falls in the second bucket.
        let p99 = w.p99_ms().unwrap();
        assert!(p99 > 10.0 && p99 <= 100.0, "{p99}");
        assert_eq!(
            stats.window("other", Duration::from_secs(10), t1),
            Window::default()
        );
    }

    #[test]
    fn no_requests_means_no_rate_and_no_latency() {
        let w = Window::default();
        assert_eq!(w.success_rate(), None);
        assert_eq!(w.p99_ms(), None);
    }

    #[test]
    fn series_are_bounded_per_proxy_and_dropped_with_it() {
        let stats = Stats::default();
        let now = Instant::now();
        let many: BTreeMap<String, Sample> = (0..MAX_SERIES_PER_PROXY + 5)
            .map(|i| (format!("c{i}"), mk_sample(now, 1, 0, 1)))
            .collect();
        assert_eq!(stats.record("a", many.clone()), 5);
        assert_eq!(stats.series(), MAX_SERIES_PER_PROXY);
        // Known series still take new samples; another proxy has its own bound.
        assert_eq!(stats.record("a", many.clone()), 5);
        assert_eq!(
            stats.record(
                "b",
                BTreeMap::from([("c0".into(), mk_sample(now, 1, 0, 1))])
            ),
            0
        );
        stats.forget("a");
        assert_eq!(stats.series(), 1);
        assert_eq!(stats.window("c0", Duration::from_secs(60), now).requests, 1);
    }

    #[test]
    fn a_restarted_proxy_starts_its_series_over() {
        let stats = Stats::default();
        let t0 = Instant::now();
        let c = "c".to_string();
        stats.record(
            "a",
            BTreeMap::from([(c.clone(), mk_sample(t0, 1000, 0, 1000))]),
        );
        let t1 = t0 + Duration::from_secs(1);
        stats.record("a", BTreeMap::from([(c.clone(), mk_sample(t1, 5, 0, 5))]));
        assert_eq!(stats.window(&c, Duration::from_secs(60), t1).requests, 5);
    }

    #[test]
    fn counters_near_u64_max_from_two_proxies_saturate() {
        // Found by the stats fuzz target: the sum over proxies overflowed.
        let stats = Stats::default();
        let now = Instant::now();
        let c = "c".to_string();
        for node in ["a", "b"] {
            let huge = mk_sample(now, u64::MAX - 1, u64::MAX - 1, u64::MAX - 1);
            stats.record(node, BTreeMap::from([(c.clone(), huge)]));
        }
        let w = stats.window(&c, Duration::from_secs(60), now);
        assert_eq!((w.requests, w.errors), (u64::MAX, u64::MAX));
        assert!(w.latency.iter().all(|(_, count)| *count == u64::MAX));
    }

    #[test]
    fn quantile_interpolates_inside_the_bucket() {
        let buckets = vec![(10.0, 50), (20.0, 100)];
        assert_eq!(quantile(0.5, &buckets), Some(10.0));
        assert_eq!(quantile(0.75, &buckets), Some(15.0));
    }
}
