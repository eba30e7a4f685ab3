//! The tonic edge of CSDS on the xDS port: `FetchClientStatus` answers one request,
//! `StreamClientStatus` one response per request until the client ends the stream or
//! coalmine shuts down.
//!
//! Who may ask ([`Access`]): CSDS shows every proxy's configuration, so xDS access
//! (a proxy's client certificate under mutual TLS) never grants it. With an admin token
//! set, a call must carry `authorization: Bearer <token>`. Without one it is open only
//! where the admin API is open without one by default: on a loopback xDS address with
//! no client certificates, where anyone who can reach it can read the same through
//! `/api/v1/proxies` and `/api/v1/config_dump`. Anywhere else it is refused.

use std::pin::Pin;
use std::sync::Arc;

use envoy_types::pb::envoy::service::status::v3::client_status_discovery_service_server::ClientStatusDiscoveryService;
use envoy_types::pb::envoy::service::status::v3::{ClientStatusRequest, ClientStatusResponse};
use futures::{Stream, StreamExt};
use tokio::sync::watch;
use tonic::{Request, Response, Status, Streaming};
use tracing::{debug, warn};

use super::matcher::NodeFilter;
use crate::ledger::Ledger;
use crate::listen::{bearer, Peer};
use crate::node::Client;
use crate::snapshot::Snapshot;

/// Who may call CSDS.
#[derive(Debug, Clone)]
pub enum Access {
    /// Callers carrying this bearer token (the admin token).
    Token(Arc<str>),
    /// Anyone who reaches the port: no token set, loopback xDS, no client certificates.
    Open,
    /// Nobody: no token set, and the port is reachable from elsewhere (or proxies
    /// authenticate with certificates, which are not admin credentials).
    Closed,
}

impl Access {
    /// The rule of [`Access`] for a `coalmine serve`.
    pub fn of(token: Option<Arc<str>>, loopback: bool, mutual_tls: bool) -> Access {
        match token {
            Some(token) => Access::Token(token),
            None if loopback && !mutual_tls => Access::Open,
            None => Access::Closed,
        }
    }

    /// Whether a call with this `authorization` metadata may ask; why not otherwise.
    pub fn check(&self, authorization: Option<&str>) -> Result<(), Status> {
        match self {
            Access::Open => Ok(()),
            Access::Token(token) if bearer::carries(authorization, token) => Ok(()),
            Access::Token(_) => Err(Status::unauthenticated(
                "CSDS shows every proxy's configuration: send the admin token as gRPC \
                 metadata `authorization: Bearer <token>`",
            )),
            Access::Closed => Err(Status::unauthenticated(
                "CSDS shows every proxy's configuration and no admin token is set: set \
                 COALMINE_ADMIN_TOKEN (or --admin-token-file) and send it as gRPC metadata \
                 `authorization: Bearer <token>` (without a token CSDS is served only on a \
                 loopback xDS address without client certificates)",
            )),
        }
    }
}

#[derive(Debug, Clone)]
pub struct CsdsService {
    snapshots: watch::Receiver<Arc<Snapshot>>,
    ledger: Arc<Ledger>,
    shutdown: watch::Receiver<bool>,
    access: Access,
}

impl CsdsService {
    pub fn new(
        snapshots: watch::Receiver<Arc<Snapshot>>,
        ledger: Arc<Ledger>,
        shutdown: watch::Receiver<bool>,
        access: Access,
    ) -> Self {
        Self {
            snapshots,
            ledger,
            shutdown,
            access,
        }
    }

    fn authorize<T>(&self, request: &Request<T>) -> Result<(), Status> {
        let authorization = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        self.access.check(authorization).inspect_err(|status| {
            let addr = request.extensions().get::<Peer>().map(|p| p.addr);
            warn!(?addr, "CSDS call refused: {}", status.message());
        })
    }

    /// The answer to one request: every proxy it selects, by node id.
    fn answer(&self, req: &ClientStatusRequest) -> Result<ClientStatusResponse, Status> {
        let filter = NodeFilter::try_new(&req.node_matchers)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let snapshot = self.snapshots.borrow().clone();
        let config = self
            .ledger
            .proxies()
            .iter()
            .filter(|p| filter.matches(&p.node.id))
            .map(|p| {
                let view = match p.node.client {
                    Client::Envoy => Some(p.node.view_of(&snapshot)),
                    Client::Grpc => None,
                };
                let mut config = super::client_config(p, view.as_deref());
                if req.exclude_resource_contents {
                    super::drop_contents(&mut config);
                }
                config
            })
            .collect::<Vec<_>>();
        debug!(proxies = config.len(), "CSDS answered");
        Ok(ClientStatusResponse { config })
    }
}

type ResponseStream = Pin<Box<dyn Stream<Item = Result<ClientStatusResponse, Status>> + Send>>;

#[tonic::async_trait]
impl ClientStatusDiscoveryService for CsdsService {
    type StreamClientStatusStream = ResponseStream;

    async fn stream_client_status(
        &self,
        request: Request<Streaming<ClientStatusRequest>>,
    ) -> Result<Response<ResponseStream>, Status> {
        self.authorize(&request)?;
        let service = self.clone();
        let mut shutdown = self.shutdown.clone();
        let stopped = async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        };
        let answers = request
            .into_inner()
            .take_until(Box::pin(stopped))
            .map(move |req| req.and_then(|req| service.answer(&req)));
        Ok(Response::new(Box::pin(answers)))
    }

    async fn fetch_client_status(
        &self,
        request: Request<ClientStatusRequest>,
    ) -> Result<Response<ClientStatusResponse>, Status> {
        self.authorize(&request)?;
        self.answer(request.get_ref()).map(Response::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    #[test]
    fn a_token_is_required_once_set_and_nothing_else_grants_csds() {
        let token = Access::of(Some("s3cret".into()), true, false);
        assert!(token.check(Some("Bearer s3cret")).is_ok());
        for wrong in [None, Some("Bearer nope"), Some("s3cret")] {
            let status = token.check(wrong).unwrap_err();
            assert_eq!(status.code(), Code::Unauthenticated, "{wrong:?}");
            assert!(status.message().contains("Bearer <token>"), "{status:?}");
        }
        // Under mutual TLS the token still decides; a certificate alone is not enough.
        let mtls = Access::of(Some("s3cret".into()), false, true);
        assert!(mtls.check(None).is_err());
        assert!(mtls.check(Some("Bearer s3cret")).is_ok());
    }

    #[test]
    fn without_a_token_csds_is_open_only_on_plain_loopback() {
        assert!(Access::of(None, true, false).check(None).is_ok());
        for (loopback, mutual_tls) in [(false, false), (true, true), (false, true)] {
            let status = Access::of(None, loopback, mutual_tls)
                .check(Some("Bearer anything"))
                .unwrap_err();
            assert_eq!(status.code(), Code::Unauthenticated);
            assert!(
                status.message().contains("COALMINE_ADMIN_TOKEN"),
                "{status:?}"
            );
        }
    }
}
