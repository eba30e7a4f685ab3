//! Prometheus metrics of the control plane: pushes, ACKs, NACKs, connected proxies,
//! push latency and the current revision, rendered in the text exposition format.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crate::snapshot::TypeKind;

/// Upper bounds of the push latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

#[derive(Debug, Default)]
pub struct Metrics {
    pushes: [AtomicU64; TypeKind::COUNT],
    acks: [AtomicU64; TypeKind::COUNT],
    nacks: [AtomicU64; TypeKind::COUNT],
    connected: AtomicI64,
    /// ADS streams ended because a request was invalid (undecodable, oversized,
    /// compressed).
    rejected: AtomicU64,
    /// Stats reports dropped: from a node id with no ADS stream open, and clusters
    /// over the series bounds.
    stats_unknown: AtomicU64,
    stats_over_limit: AtomicU64,
    stats_series: AtomicU64,
    revision: AtomicU64,
    latency: Histogram,
    /// Connections closed at accept, by port (xDS, admin) and reason (limit, tls).
    refused: [[AtomicU64; 2]; 2],
    /// xDS and stats streams refused: the node id is not the client certificate's.
    identity_refused: AtomicU64,
}

/// A listening port, for [`Metrics::refused`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    Xds = 0,
    Admin = 1,
}

impl Port {
    pub fn name(self) -> &'static str {
        match self {
            Port::Xds => "xds",
            Port::Admin => "admin",
        }
    }
}

/// Why a connection was closed as it was accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// At the port's `--max-connections`.
    Limit = 0,
    /// The TLS handshake failed or took longer than the handshake timeout.
    Tls = 1,
}

#[derive(Debug, Default)]
struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    /// Sum in microseconds.
    sum_us: AtomicU64,
}

impl Metrics {
    pub fn push(&self, kind: TypeKind, latency: Duration) {
        self.pushes[kind.index()].fetch_add(1, Relaxed);
        let secs = latency.as_secs_f64();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                self.latency.buckets[i].fetch_add(1, Relaxed);
            }
        }
        self.latency.count.fetch_add(1, Relaxed);
        self.latency
            .sum_us
            .fetch_add(latency.as_micros() as u64, Relaxed);
    }

    pub fn ack(&self, kind: TypeKind) {
        self.acks[kind.index()].fetch_add(1, Relaxed);
    }

    pub fn nack(&self, kind: TypeKind) {
        self.nacks[kind.index()].fetch_add(1, Relaxed);
    }

    pub fn rejected(&self) {
        self.rejected.fetch_add(1, Relaxed);
    }

    /// A stats report from a node id that has no ADS stream open was dropped.
    pub fn stats_from_unknown(&self) {
        self.stats_unknown.fetch_add(1, Relaxed);
    }

    /// `dropped` clusters of a stats report were over the series bounds; `series` are
    /// held now.
    pub fn stats_recorded(&self, dropped: usize, series: usize) {
        self.stats_over_limit.fetch_add(dropped as u64, Relaxed);
        self.stats_series.store(series as u64, Relaxed);
    }

    pub fn connected(&self, delta: i64) {
        self.connected.fetch_add(delta, Relaxed);
    }

    pub fn refused(&self, port: Port, why: Refusal) {
        self.refused[port as usize][why as usize].fetch_add(1, Relaxed);
    }

    pub fn identity_refused(&self) {
        self.identity_refused.fetch_add(1, Relaxed);
    }

    pub fn set_revision(&self, revision: u64) {
        self.revision.store(revision, Relaxed);
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let per_type =
            |out: &mut String, name: &str, help: &str, values: &[AtomicU64; TypeKind::COUNT]| {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
                for kind in TypeKind::ALL {
                    let v = values[kind.index()].load(Relaxed);
                    let _ = writeln!(out, "{name}{{type=\"{kind}\"}} {v}");
                }
            };
        per_type(
            &mut out,
            "coalmine_xds_pushes_total",
            "Responses pushed to proxies.",
            &self.pushes,
        );
        per_type(
            &mut out,
            "coalmine_xds_acks_total",
            "Responses proxies ACKed.",
            &self.acks,
        );
        per_type(
            &mut out,
            "coalmine_xds_nacks_total",
            "Responses proxies rejected (NACK).",
            &self.nacks,
        );
        let _ = writeln!(
            out,
            "# HELP coalmine_xds_rejected_requests_total ADS streams ended by an invalid request (undecodable, oversized or compressed).\n# TYPE coalmine_xds_rejected_requests_total counter\ncoalmine_xds_rejected_requests_total {}",
            self.rejected.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP coalmine_stats_dropped_total Stats reports dropped: from a node id with no ADS stream open (unknown_node), or clusters over the series bounds (series_limit).\n# TYPE coalmine_stats_dropped_total counter\ncoalmine_stats_dropped_total{{reason=\"unknown_node\"}} {}\ncoalmine_stats_dropped_total{{reason=\"series_limit\"}} {}",
            self.stats_unknown.load(Relaxed),
            self.stats_over_limit.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP coalmine_stats_series (proxy, cluster) stat series held for analysis.\n# TYPE coalmine_stats_series gauge\ncoalmine_stats_series {}",
            self.stats_series.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP coalmine_connected_proxies ADS streams open now.\n# TYPE coalmine_connected_proxies gauge\ncoalmine_connected_proxies {}",
            self.connected.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP coalmine_revision The configuration revision being served.\n# TYPE coalmine_revision gauge\ncoalmine_revision {}",
            self.revision.load(Relaxed)
        );
        let name = "coalmine_connections_refused_total";
        let _ = writeln!(out, "# HELP {name} Connections closed as they were accepted: at the port's connection limit (limit), or a TLS handshake that failed or timed out (tls).\n# TYPE {name} counter");
        for port in [Port::Xds, Port::Admin] {
            for (why, label) in [(Refusal::Limit, "limit"), (Refusal::Tls, "tls")] {
                let v = self.refused[port as usize][why as usize].load(Relaxed);
                let _ = writeln!(
                    out,
                    "{name}{{port=\"{}\",reason=\"{label}\"}} {v}",
                    port.name()
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP coalmine_xds_identity_refused_total ADS and stats streams refused because their node id is not one the client certificate allows.\n# TYPE coalmine_xds_identity_refused_total counter\ncoalmine_xds_identity_refused_total {}",
            self.identity_refused.load(Relaxed)
        );
        let name = "coalmine_xds_push_latency_seconds";
        let _ = writeln!(out, "# HELP {name} From a configuration being published to its response being written to a stream.\n# TYPE {name} histogram");
        for (i, bound) in BUCKETS.iter().enumerate() {
            let v = self.latency.buckets[i].load(Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {v}");
        }
        let count = self.latency.count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.latency.sum_us.load(Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_buckets() {
        let m = Metrics::default();
        m.push(TypeKind::Cluster, Duration::from_millis(3));
        m.push(TypeKind::Route, Duration::from_millis(300));
        m.nack(TypeKind::Route);
        m.connected(2);
        m.set_revision(7);
        let text = m.render();
        assert!(
            text.contains("coalmine_xds_pushes_total{type=\"cds\"} 1"),
            "{text}"
        );
        assert!(text.contains("coalmine_xds_nacks_total{type=\"rds\"} 1"));
        assert!(text.contains("coalmine_connected_proxies 2"));
        assert!(text.contains("coalmine_revision 7"));
        assert!(text.contains("coalmine_xds_push_latency_seconds_bucket{le=\"0.005\"} 1"));
        assert!(text.contains("coalmine_xds_push_latency_seconds_bucket{le=\"0.5\"} 2"));
        assert!(text.contains("coalmine_xds_push_latency_seconds_count 2"));
    }
}
