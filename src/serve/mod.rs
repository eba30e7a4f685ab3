//! The wiring of `coalmine serve`: store, sources, snapshots, the xDS and admin servers,
//! and shutdown.
//!
//! Changes (REST applies, `--config` file edits) become revisions in [`Desired`]; a
//! debounced publisher turns the latest revision into a [`Snapshot`] and hands it to
//! every ADS stream through a `watch` channel. Nothing here decides what a config
//! means; it only moves validated sets around and does the IO.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{info, warn};

use crate::admin::{self, AdminState};
use crate::controller::Controller;
use crate::desired::{self, Desired, Published};
use crate::ledger::Ledger;
use crate::listen::http::CallLimits;
use crate::listen::{self, ListenOptions, Serving};
use crate::metrics::{Metrics, Port};
use crate::snapshot::Snapshot;
use crate::source;
use crate::stats::service::StatsService;
use crate::stats::Stats;
use crate::store::Store;
use tasks::Tasks;

mod tasks;
use crate::xds::csds::service::{Access, CsdsService};
use crate::xds::{AdsService, XdsState};
use envoy_types::pb::envoy::service::metrics::v3::metrics_service_server::MetricsServiceServer;
use envoy_types::pb::envoy::service::status::v3::client_status_discovery_service_server::ClientStatusDiscoveryServiceServer;

/// How long streams get to close on shutdown before the process exits anyway.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// HTTP/2's connection preface (`PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`): a client must send
/// it within the handshake timeout.
const HTTP2_PREFACE: usize = 24;

/// How often the config path is checked for changes.
const WATCH_INTERVAL: Duration = Duration::from_millis(200);

#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub xds_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub data_dir: PathBuf,
    pub config: Option<PathBuf>,
    pub debounce: Duration,
    pub debounce_max: Duration,
    /// The bearer token every `/api/` call must carry, when set.
    pub admin_token: Option<String>,
    /// Allow a non-loopback admin address without a token.
    pub insecure_admin: bool,
    /// Revisions kept in the store.
    pub retention: usize,
    /// Discover services from Kubernetes (in-cluster config or `KUBECONFIG`).
    pub kubernetes: bool,
    /// TLS, client identity and connection limits of both ports.
    pub listen: ListenOptions,
}

/// Runs until SIGTERM or SIGINT, then closes every stream and returns.
pub async fn run(opts: ServeOptions) -> anyhow::Result<()> {
    if !opts.admin_addr.ip().is_loopback() && opts.admin_token.is_none() && !opts.insecure_admin {
        anyhow::bail!(
            "refusing to serve the admin API on non-loopback {} without a token: set --admin-token-file or COALMINE_ADMIN_TOKEN, or pass --insecure-admin",
            opts.admin_addr
        );
    }
    if !opts.xds_addr.ip().is_loopback() && !opts.listen.mutual_tls() && !opts.listen.insecure_xds {
        anyhow::bail!(
            "refusing to serve xDS on non-loopback {} without client certificates (any client could claim any proxy's node id): set --xds-tls-cert, --xds-tls-key and --xds-client-ca, or pass --insecure-xds",
            opts.xds_addr
        );
    }
    let xds_tls = match &opts.listen.xds_tls {
        Some(files) => Some(listen::tls::server_config(files, false).context("xDS TLS")?),
        None => None,
    };
    let admin_tls = match &opts.listen.admin_tls {
        Some(files) => Some(listen::tls::server_config(files, true).context("admin TLS")?),
        None => None,
    };
    let store = Store::open(&opts.data_dir, opts.retention)
        .with_context(|| format!("cannot open the store in {}", opts.data_dir.display()))?;
    let discovered = match opts.kubernetes {
        true => Some(discover_kubernetes().await?),
        false => None,
    };
    let initial = discovered
        .as_ref()
        .map(|d| {
            (
                d.services.borrow().clone(),
                d.cluster.borrow().namespaces.clone(),
            )
        })
        .unwrap_or_default();
    let desired = Desired::open(store, initial.0, initial.1);
    let desired = Arc::new(desired.context("cannot load the stored configuration")?);
    // --kubernetes: route resources from the cluster and the Lease election.
    let cluster_leader = match &discovered {
        Some(d) => Some(crate::k8s::resources::serve(desired.clone(), d.clone()).await?),
        None => None,
    };
    let mut tasks = Tasks::default();
    if let Some(discovery) = discovered {
        let desired = desired.clone();
        tasks.worker(
            "kubernetes discovery",
            crate::k8s::follow(discovery.services, move |services| {
                let desired = desired.clone();
                async move {
                    let stored = desired::blocking(move || desired.set_discovered(services));
                    if let Err(e) = stored.await {
                        warn!("discovered services rejected, keeping the last good set: {e}");
                    }
                }
            }),
        );
    }
    let ledger = Arc::new(Ledger::default());
    let metrics = Arc::new(Metrics::default());
    let stats = Arc::new(Stats::default());
    let published = desired.published();
    info!(revision = published.revision, data_dir = %opts.data_dir.display(), "store loaded");
    // What proxies may still hold from before a restart (a change in flight): the
    // previous revision, so a reconnecting proxy's versions are recognised.
    let first = match desired.previous_config() {
        Some(previous) => Snapshot::after(previous, published.config, published.revision),
        None => Snapshot::new(published.config, published.revision),
    };
    let (snapshot_tx, snapshot_rx) = watch::channel(Arc::new(first));
    metrics.set_revision(published.revision);
    let (shutdown_tx, shutdown_rx) = watch::channel(false);

    if let Some(path) = opts.config.clone() {
        let desired = desired.clone();
        tasks.worker(
            "config watcher",
            source::watch(path, WATCH_INTERVAL, move |docs| {
                let desired = desired.clone();
                desired::blocking(move || accept(&desired, docs))
            }),
        );
    }
    tasks.worker(
        "publisher",
        publish(
            desired.subscribe(),
            snapshot_tx,
            metrics.clone(),
            opts.debounce,
            opts.debounce_max,
        ),
    );

    let xds_listener = TcpListener::bind(opts.xds_addr)
        .await
        .with_context(|| format!("cannot listen for xDS on {}", opts.xds_addr))?;
    let admin_listener = TcpListener::bind(opts.admin_addr)
        .await
        .with_context(|| format!("cannot listen for the admin API on {}", opts.admin_addr))?;
    info!(addr = %xds_listener.local_addr()?, "xds listening");
    info!(addr = %admin_listener.local_addr()?, "admin listening");

    let mutual_tls = opts.listen.mutual_tls();
    let csds = CsdsService::new(
        snapshot_rx.clone(),
        ledger.clone(),
        shutdown_rx.clone(),
        Access::of(
            opts.admin_token.as_deref().map(Arc::from),
            opts.xds_addr.ip().is_loopback(),
            mutual_tls,
        ),
    );
    let ads = AdsService::new(XdsState {
        snapshots: snapshot_rx.clone(),
        shutdown: shutdown_rx.clone(),
        ledger: ledger.clone(),
        metrics: metrics.clone(),
        stats: stats.clone(),
        mutual_tls,
    });
    let xds_incoming = listen::incoming(
        xds_listener,
        Serving {
            port: Port::Xds,
            tls: xds_tls,
            limits: opts.listen.xds,
            first_bytes: HTTP2_PREFACE,
        },
        metrics.clone(),
    );
    let mut stop = shutdown_rx.clone();
    tasks.server(
        "xDS server",
        tonic::transport::Server::builder()
            .http2_keepalive_interval(Some(opts.listen.keepalive_interval))
            .http2_keepalive_timeout(Some(opts.listen.keepalive_timeout))
            .max_concurrent_streams(Some(opts.listen.max_streams))
            .add_service(ads)
            .add_service(MetricsServiceServer::new(StatsService::new(
                stats.clone(),
                ledger.clone(),
                metrics.clone(),
                mutual_tls,
            )))
            .add_service(ClientStatusDiscoveryServiceServer::new(csds))
            .serve_with_incoming_shutdown(xds_incoming, async move {
                let _ = stop.wait_for(|s| *s).await;
            }),
    );

    // Release work runs on the leader only; one process is always its own leader.
    let (_leader_tx, own_leader) = watch::channel(true);
    let leader_rx = cluster_leader.unwrap_or(own_leader);
    let mut controller = Controller::new(desired.clone(), ledger.clone(), stats.clone());
    if opts.kubernetes {
        // The cluster is the source of truth: release steps are patched into it.
        let client = kube::Client::try_default()
            .await
            .context("cannot configure the Kubernetes client (in-cluster or KUBECONFIG)")?;
        let identity = crate::k8s::leader::LeaseConfig::from_env().identity;
        controller = controller.with_cluster(client, identity);
    }
    let rollouts = Arc::new(controller);
    tasks.worker(
        "release controller",
        rollouts.clone().run(desired.subscribe(), leader_rx),
    );

    let ready = Arc::new(AtomicBool::new(false));
    let admin_token = opts.admin_token.clone();
    let router = admin::router(AdminState {
        desired: desired.clone(),
        rollouts,
        ledger,
        metrics: metrics.clone(),
        snapshots: snapshot_rx,
        token: opts.admin_token.map(Arc::from),
        ready: ready.clone(),
    });
    let router = match opts.kubernetes {
        true => admin::cluster_read_only(router, admin_token),
        false => router,
    };
    let admin_incoming = listen::incoming(
        admin_listener,
        Serving {
            port: Port::Admin,
            tls: admin_tls,
            limits: opts.listen.admin,
            // A request line's start: `GET / HTTP/1.1` (or HTTP/2's preface).
            first_bytes: 16,
        },
        metrics,
    );
    let call_limits = CallLimits {
        header_timeout: opts.listen.admin.handshake_timeout,
        max_streams: opts.listen.max_streams,
        keepalive_interval: opts.listen.keepalive_interval,
        keepalive_timeout: opts.listen.keepalive_timeout,
    };
    let mut stop = shutdown_rx.clone();
    let admin = listen::http::serve(admin_incoming, router, call_limits, async move {
        let _ = stop.wait_for(|s| *s).await;
    });
    tasks.server("admin server", async move {
        admin.await;
        anyhow::Ok(())
    });
    // The store is loaded and both ports listen.
    ready.store(true, Ordering::SeqCst);

    // A task that ends before SIGTERM is a failure: stop serving (unready first) and
    // exit non-zero rather than go on with a stale snapshot.
    let failure = tokio::select! {
        _ = shutdown_signal() => None,
        e = tasks.failure() => Some(e),
    };
    ready.store(false, Ordering::SeqCst);
    match &failure {
        None => info!("shutting down: closing xDS streams"),
        Some(_) => info!("shutting down after a failure"),
    }
    let _ = shutdown_tx.send(true);
    if !tasks.drain(DRAIN_TIMEOUT).await {
        warn!("streams did not close within {DRAIN_TIMEOUT:?}; exiting anyway");
    }
    failure.map_or(Ok(()), Err)
}

/// Connects to Kubernetes (in-cluster config or `KUBECONFIG`) and waits for the first
/// full sync of Services, EndpointSlices, Pods and Namespaces.
async fn discover_kubernetes() -> anyhow::Result<crate::k8s::Discovery> {
    let client = kube::Client::try_default()
        .await
        .context("cannot configure the Kubernetes client (in-cluster or KUBECONFIG)")?;
    info!(
        "kubernetes: waiting for the first sync of services, endpoint slices, pods and namespaces"
    );
    Ok(crate::k8s::discover(client).await?)
}

/// Takes a freshly read config path: its documents replace the stored set as one
/// revision; an invalid set is logged field by field and the last good set stays.
fn accept(desired: &Desired, docs: source::Result<Vec<crate::ingest::Document>>) {
    let result = match docs {
        Ok(docs) => desired.replace_all(docs, "config file change"),
        Err(source::Error::Invalid { path, errors }) => {
            log_rejected(&path.display().to_string(), &errors);
            return;
        }
        Err(e) => {
            warn!("config rejected, keeping the last good set: {e}");
            return;
        }
    };
    match result {
        Ok(outcome) if outcome.changed.is_empty() => {}
        Ok(outcome) => info!(
            revision = outcome.revision,
            changes = outcome.changed.len(),
            "config file applied"
        ),
        Err(desired::Error::Invalid(errors)) => log_rejected("config", &errors),
        Err(e) => warn!("config rejected, keeping the last good set: {e}"),
    }
}

fn log_rejected(source: &str, errors: &crate::ingest::Errors) {
    for e in &errors.0 {
        warn!(
            source,
            "config rejected, keeping the last good set: {}: {}: {}",
            e.resource,
            e.field,
            e.message
        );
    }
}

/// Turns published revisions into snapshots. A change after a quiet period of
/// `debounce` is pushed at once; one that follows a push closer than that is part of a
/// burst: it waits until changes pause for `debounce` (but never longer than `max`),
/// then the latest is pushed. Intermediate revisions are dropped, so bursts never
/// queue work.
async fn publish(
    mut published: watch::Receiver<Published>,
    snapshots: watch::Sender<Arc<Snapshot>>,
    metrics: Arc<Metrics>,
    debounce: Duration,
    max: Duration,
) {
    let mut last_push: Option<Instant> = None;
    while published.changed().await.is_ok() {
        let in_burst = last_push.is_some_and(|at| at.elapsed() < debounce);
        if in_burst && !quiet(&mut published, debounce, Instant::now() + max).await {
            return;
        }
        let latest = published.borrow_and_update().clone();
        // Built from the one served now, re-translating only what changed.
        let snapshot = Snapshot::next(&snapshots.borrow(), latest.config, latest.revision);
        info!(revision = latest.revision, "pushing configuration");
        metrics.set_revision(latest.revision);
        snapshots.send_replace(Arc::new(snapshot));
        last_push = Some(Instant::now());
    }
}

/// Waits until no change has come for `debounce`, or until `deadline`; false once the
/// sender is gone.
async fn quiet(
    published: &mut watch::Receiver<Published>,
    debounce: Duration,
    deadline: Instant,
) -> bool {
    loop {
        let pause = tokio::time::sleep_until((Instant::now() + debounce).min(deadline));
        tokio::select! {
            changed = published.changed() => if changed.is_err() { return false },
            _ = pause => return true,
        }
        if Instant::now() >= deadline {
            return true;
        }
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
