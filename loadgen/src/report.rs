//! The result of one run: the JSON object printed as the load generator's last line.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::server::ProcStats;
use super::tracker::{Change, Tracker};
use super::{Args, Churn, Mode};

#[derive(Debug, Serialize)]
pub struct Report {
    pub streams: usize,
    pub services: usize,
    pub mode: &'static str,
    pub endpoints_per_service: usize,
    pub changes: usize,
    pub weight_changes: usize,
    /// Streams that ACKed their first CDS, EDS, LDS and RDS.
    pub connected: usize,
    /// Streams that ended early (error or closed by the server).
    pub failed_streams: usize,
    pub first_error: Option<String>,
    /// From the first connection until the last stream was ready.
    pub connect_s: f64,
    pub changes_converged: usize,
    /// From the apply's 200 to the last stream's ACK of a response showing the change.
    pub converge_p50_ms: Option<f64>,
    pub converge_p99_ms: Option<f64>,
    pub converge_max_ms: Option<f64>,
    /// How long `POST /api/v1/apply` took to answer, median.
    pub apply_p50_ms: Option<f64>,
    pub server_peak_rss_mb: Option<f64>,
    /// RSS after the configuration was applied, before any stream connected.
    pub server_base_rss_mb: Option<f64>,
    /// RSS once every stream was ready, before the churn.
    pub server_connected_rss_mb: Option<f64>,
    /// (connected RSS - base RSS) / streams: what one more proxy costs.
    pub server_marginal_kb_per_stream: Option<f64>,
    /// peak RSS / streams.
    pub server_peak_rss_kb_per_stream: Option<f64>,
    pub server_cpu_s: Option<f64>,
    pub server_cpu_connect_s: Option<f64>,
    pub server_cpu_churn_s: Option<f64>,
    /// Encoded responses received by all streams (what the server wrote, less framing).
    pub bytes_sent: u64,
    /// Of which during the churn.
    pub churn_bytes: u64,
    /// Time during which some change was being fanned out: from the first stream
    /// receiving it to the last stream ACKing it (union over changes).
    pub push_s: f64,
    /// Writing `churn_bytes` to `streams` plain loopback TCP connections.
    pub raw_fanout_s: Option<f64>,
    /// coalmine's push throughput / raw fan-out throughput = raw_fanout_s / push_s.
    pub raw_fanout_ratio: Option<f64>,
    pub all_converged: bool,
    pub elapsed_s: f64,
}

pub struct Inputs<'a> {
    pub args: &'a Args,
    pub tracker: &'a Arc<Tracker>,
    pub connected: usize,
    pub connect_s: f64,
    pub churn: Churn,
    pub raw: Option<Duration>,
    pub base: Option<ProcStats>,
    pub after_connect: Option<ProcStats>,
    pub after_churn: Option<ProcStats>,
    pub elapsed: Duration,
}

pub fn build(i: Inputs<'_>) -> Report {
    let t = i.tracker;
    let changes = t.changes();
    let converged: Vec<&Arc<Change>> = changes.iter().filter(|c| t.is_converged(c)).collect();
    let mut times: Vec<f64> = converged
        .iter()
        .map(|c| c.converge_time().as_secs_f64() * 1e3)
        .collect();
    times.sort_by(f64::total_cmp);
    let mut apply = i.churn.apply_ms.clone();
    apply.sort_by(f64::total_cmp);
    let failed = t.failed.load(Ordering::Relaxed);
    let streams = i.args.streams;
    let peak = i.after_churn.map(|s| s.peak_rss_mb);
    let base_rss = i.base.map(|s| s.rss_mb);
    let raw_s = i.raw.map(|d| d.as_secs_f64());
    Report {
        streams,
        services: i.args.services,
        mode: match i.args.mode {
            Mode::Sotw => "sotw",
            Mode::Delta => "delta",
        },
        endpoints_per_service: i.args.endpoints,
        changes: i.args.changes,
        weight_changes: i.args.weight_changes,
        connected: i.connected,
        failed_streams: failed,
        first_error: t.first_error.lock().ok().and_then(|e| e.clone()),
        connect_s: round(i.connect_s, 3),
        changes_converged: converged.len(),
        converge_p50_ms: percentile(&times, 0.50),
        converge_p99_ms: percentile(&times, 0.99),
        converge_max_ms: times.last().map(|v| round(*v, 1)),
        apply_p50_ms: percentile(&apply, 0.50),
        server_peak_rss_mb: peak.map(|v| round(v, 1)),
        server_base_rss_mb: base_rss.map(|v| round(v, 1)),
        server_connected_rss_mb: i.after_connect.map(|s| round(s.rss_mb, 1)),
        server_marginal_kb_per_stream: i
            .after_connect
            .zip(base_rss)
            .map(|(c, b)| round((c.rss_mb - b) * 1024.0 / streams as f64, 1)),
        server_peak_rss_kb_per_stream: peak.map(|p| round(p * 1024.0 / streams as f64, 1)),
        server_cpu_s: i.after_churn.map(|s| round(s.cpu_s, 2)),
        server_cpu_connect_s: i
            .after_connect
            .zip(i.base)
            .map(|(a, b)| round(a.cpu_s - b.cpu_s, 2)),
        server_cpu_churn_s: i
            .after_churn
            .zip(i.after_connect)
            .map(|(a, b)| round(a.cpu_s - b.cpu_s, 2)),
        bytes_sent: t.bytes.load(Ordering::Relaxed),
        churn_bytes: i.churn.bytes,
        push_s: round(i.churn.push_s, 4),
        raw_fanout_s: raw_s.map(|v| round(v, 4)),
        raw_fanout_ratio: raw_s
            .filter(|_| i.churn.push_s > 0.0)
            .map(|r| round(r / i.churn.push_s, 4)),
        all_converged: failed == 0
            && i.connected == streams
            && converged.len() == changes.len()
            && converged
                .iter()
                .all(|c| c.acked.load(Ordering::Relaxed) >= streams),
        elapsed_s: round(i.elapsed.as_secs_f64(), 1),
    }
}

/// The length of the union of [first stream shown, last stream ACKed] over the
/// changes: the time coalmine spent fanning changes out (debounce not included).
pub fn busy_seconds(tracker: &Tracker, changes: &[Arc<Change>]) -> f64 {
    let mut spans: Vec<(u64, u64)> = changes
        .iter()
        .filter(|c| tracker.is_converged(c))
        .map(|c| {
            let to = c.last_ack_ns.load(Ordering::Relaxed);
            (c.first_shown_ns.load(Ordering::Relaxed).min(to), to)
        })
        .collect();
    spans.sort_unstable();
    let (mut total, mut end) = (0u64, 0u64);
    for (from, to) in spans {
        let from = from.max(end);
        if to > from {
            total += to - from;
            end = to;
        }
    }
    total as f64 / 1e9
}

fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len());
    Some(round(sorted[rank - 1], 1))
}

fn round(v: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (v * f).round() / f
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), Some(50.0));
        assert_eq!(percentile(&v, 0.99), Some(99.0));
        assert_eq!(percentile(&[], 0.5), None);
    }
}
