//! The gRPC edge: `envoy.service.metrics.v3.MetricsService`, served on the xDS port.

use std::sync::Arc;
use std::time::Instant;

use envoy_types::pb::envoy::service::metrics::v3::metrics_service_server::MetricsService;
use envoy_types::pb::envoy::service::metrics::v3::{StreamMetricsMessage, StreamMetricsResponse};
use tonic::{Request, Response, Status, Streaming};
use tracing::debug;

use super::{ingest, Stats};

#[derive(Debug, Clone)]
pub struct StatsService {
    stats: Arc<Stats>,
}

impl StatsService {
    pub fn new(stats: Arc<Stats>) -> Self {
        Self { stats }
    }
}

#[tonic::async_trait]
impl MetricsService for StatsService {
    async fn stream_metrics(
        &self,
        request: Request<Streaming<StreamMetricsMessage>>,
    ) -> Result<Response<StreamMetricsResponse>, Status> {
        let mut stream = request.into_inner();
        // Only the first message of a stream identifies the proxy.
        let mut node = String::new();
        while let Some(message) = stream.message().await? {
            if let Some(id) = message.identifier.as_ref().and_then(|i| i.node.as_ref()) {
                node = id.id.clone();
            }
            let samples = ingest::samples(&message.envoy_metrics, Instant::now());
            debug!(node, clusters = samples.len(), "stats report");
            self.stats.record(&node, samples);
        }
        Ok(Response::new(StreamMetricsResponse {}))
    }
}
