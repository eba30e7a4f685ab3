//! The gRPC edge: `envoy.service.metrics.v3.MetricsService`, served on the xDS port.

use std::sync::Arc;
use std::time::Instant;

use envoy_types::pb::envoy::service::metrics::v3::metrics_service_server::MetricsService;
use envoy_types::pb::envoy::service::metrics::v3::{StreamMetricsMessage, StreamMetricsResponse};
use tonic::{Request, Response, Status, Streaming};
use tracing::{debug, warn};

use super::{ingest, Stats};
use crate::ledger::Ledger;
use crate::listen::{identity, Peer};
use crate::metrics::Metrics;

/// Takes stats only from node ids that have an ADS stream open, and under mutual TLS
/// only for the node ids the client's certificate allows: a client that is not a
/// connected proxy cannot feed a release's analysis.
#[derive(Debug, Clone)]
pub struct StatsService {
    stats: Arc<Stats>,
    ledger: Arc<Ledger>,
    metrics: Arc<Metrics>,
    /// Clients present certificates and may report only for the node ids these allow.
    mutual_tls: bool,
}

impl StatsService {
    pub fn new(
        stats: Arc<Stats>,
        ledger: Arc<Ledger>,
        metrics: Arc<Metrics>,
        mutual_tls: bool,
    ) -> Self {
        Self {
            stats,
            ledger,
            metrics,
            mutual_tls,
        }
    }
}

#[tonic::async_trait]
impl MetricsService for StatsService {
    async fn stream_metrics(
        &self,
        request: Request<Streaming<StreamMetricsMessage>>,
    ) -> Result<Response<StreamMetricsResponse>, Status> {
        let peer = request.extensions().get::<Peer>().cloned();
        let mut stream = request.into_inner();
        // Envoy names its node in the first message; a later identifier (none from
        // Envoy) is checked the same way.
        let mut node = String::new();
        let mut warned = false;
        while let Some(message) = stream.message().await? {
            if let Some(id) = message.identifier.as_ref().and_then(|i| i.node.as_ref()) {
                node = id.id.clone();
                if let Err(why) = identity::check(self.mutual_tls, peer.as_ref(), &node) {
                    warn!(node, "stats stream refused: {why}");
                    self.metrics.identity_refused();
                    return Err(Status::permission_denied(why));
                }
            }
            if !self.ledger.has_node(&node) {
                self.metrics.stats_from_unknown();
                if !std::mem::replace(&mut warned, true) {
                    warn!(
                        node,
                        "stats from a node id with no ADS stream open: dropped"
                    );
                }
                continue;
            }
            let samples = ingest::samples(&message.envoy_metrics, Instant::now());
            debug!(node, clusters = samples.len(), "stats report");
            let dropped = self.stats.record(&node, samples);
            self.metrics.stats_recorded(dropped, self.stats.series());
        }
        Ok(Response::new(StreamMetricsResponse {}))
    }
}
