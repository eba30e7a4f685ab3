//! The wiring of `coalmine serve`: sources, snapshots, the xDS server and shutdown.
//!
//! Configuration flows from the config path (watched) into a debounced publisher,
//! which builds a [`Snapshot`] only for a set that differs from the one served, and
//! hands it to every ADS stream through a `watch` channel. Nothing here decides what a
//! config means; it only moves validated sets around and does the IO.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_stream::wrappers::TcpListenerStream;
use tracing::{info, warn};

use crate::model::Config;
use crate::snapshot::Snapshot;
use crate::source;
use crate::xds::{AdsService, XdsState};

/// How long streams get to close on shutdown before the process exits anyway.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// How often the config path is checked for changes.
const WATCH_INTERVAL: Duration = Duration::from_millis(200);

#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub xds_addr: SocketAddr,
    pub config: Option<PathBuf>,
    pub debounce: Duration,
    pub debounce_max: Duration,
}

/// Runs until SIGTERM or SIGINT, then closes every stream and returns.
pub async fn run(opts: ServeOptions) -> anyhow::Result<()> {
    let (config_tx, config_rx) = watch::channel(Arc::new(Config::default()));
    let (snapshot_tx, snapshot_rx) = watch::channel(Arc::new(Snapshot::new(Arc::default())));
    let (shutdown_tx, shutdown_rx) = watch::channel(false);

    if let Some(path) = opts.config.clone() {
        tokio::spawn(source::watch(path, WATCH_INTERVAL, move |result| {
            accept(&config_tx, result)
        }));
    }
    tokio::spawn(publish(
        config_rx,
        snapshot_tx,
        opts.debounce,
        opts.debounce_max,
    ));

    let listener = TcpListener::bind(opts.xds_addr)
        .await
        .with_context(|| format!("cannot listen for xDS on {}", opts.xds_addr))?;
    info!(addr = %listener.local_addr()?, "xds listening");
    let ads = AdsService::new(XdsState {
        snapshots: snapshot_rx,
        shutdown: shutdown_rx.clone(),
    });
    let mut stop = shutdown_rx.clone();
    let server = tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .add_service(ads)
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async move {
            let _ = stop.wait_for(|s| *s).await;
        });
    let server = tokio::spawn(server);

    shutdown_signal().await;
    info!("shutting down: closing xDS streams");
    let _ = shutdown_tx.send(true);
    match tokio::time::timeout(DRAIN_TIMEOUT, server).await {
        Ok(result) => result??,
        Err(_) => warn!("streams did not close within {DRAIN_TIMEOUT:?}; exiting anyway"),
    }
    Ok(())
}

/// Takes a freshly loaded config set: a valid one goes to the publisher, an invalid one
/// is logged field by field and the last good set stays.
fn accept(config_tx: &watch::Sender<Arc<Config>>, result: source::Result<Config>) {
    match result {
        Ok(config) => {
            config_tx.send_if_modified(|current| {
                let changed = **current != config;
                if changed {
                    *current = Arc::new(config);
                }
                changed
            });
        }
        Err(source::Error::Invalid { path, errors }) => {
            for e in &errors.0 {
                warn!(path = %path.display(), resource = %e.resource, field = %e.field,
                    "config rejected, keeping the last good set: {}: {}: {}", e.resource, e.field, e.message);
            }
        }
        Err(e) => warn!("config rejected, keeping the last good set: {e}"),
    }
}

/// Turns configs into snapshots: waits until changes pause for `debounce` (but never
/// longer than `max` after the first), then publishes the latest. Intermediate configs
/// are dropped, so bursts never queue work.
async fn publish(
    mut configs: watch::Receiver<Arc<Config>>,
    snapshots: watch::Sender<Arc<Snapshot>>,
    debounce: Duration,
    max: Duration,
) {
    while configs.changed().await.is_ok() {
        let deadline = Instant::now() + max;
        loop {
            let quiet = tokio::time::sleep_until((Instant::now() + debounce).min(deadline));
            tokio::select! {
                changed = configs.changed() => if changed.is_err() { return },
                _ = quiet => break,
            }
            if Instant::now() >= deadline {
                break;
            }
        }
        let config = configs.borrow_and_update().clone();
        let snapshot = Snapshot::new(config);
        info!(version = snapshot.version(), "config accepted, pushing");
        snapshots.send_replace(Arc::new(snapshot));
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
