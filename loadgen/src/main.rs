//! `coalmine-loadgen`: N simulated Envoys over real gRPC (one HTTP/2 connection each,
//! SotW or Delta ADS), a configuration of S services, endpoint and weight churn, and
//! what it costs coalmine: connect time, per-change convergence, CPU, peak RSS, bytes,
//! and the ratio to a raw loopback TCP fan-out of the same bytes.
//!
//! It talks to coalmine only as a user and an Envoy would (the admin API, ADS); it
//! never reaches into the server's modules (it borrows `coalmine::snapshot::TypeKind`
//! for the type URLs). Progress goes to stderr; the last line of stdout is one JSON
//! object ([`report::Report`]).

mod client;
mod delta;
mod fanout;
mod names;
mod report;
mod server;
mod tracker;
mod workload;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use clap::Parser;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use client::Context;
use names::NameCache;
use report::Report;
use tracker::{Expect, Tracker};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    Sotw,
    Delta,
}

/// Simulates Envoy proxies against coalmine and measures how it keeps up.
#[derive(Debug, clap::Parser)]
#[command(name = "coalmine-loadgen", version)]
pub struct Args {
    /// Simulated proxies, each on its own HTTP/2 connection.
    #[arg(long, default_value_t = 100)]
    pub streams: usize,
    /// Services in the generated configuration.
    #[arg(long, default_value_t = 100)]
    pub services: usize,
    /// Static endpoints per service (alternately subset v1 and v2).
    #[arg(long, default_value_t = 4)]
    pub endpoints: usize,
    #[arg(long, value_enum, default_value_t = Mode::Sotw)]
    pub mode: Mode,
    /// Endpoint changes to measure.
    #[arg(long, default_value_t = 10)]
    pub changes: usize,
    /// Weight changes (VirtualService re-applied), measured the same way.
    #[arg(long, default_value_t = 0)]
    pub weight_changes: usize,
    /// Changes applied per second.
    #[arg(long, default_value_t = 2.0)]
    pub rate: f64,
    /// Start this coalmine binary (`serve` on free ports, temporary data dir).
    #[arg(long, conflicts_with_all = ["xds_addr", "admin_addr"])]
    pub server_bin: Option<PathBuf>,
    /// A running coalmine's xDS address (with --admin-addr).
    #[arg(long, requires = "admin_addr")]
    pub xds_addr: Option<String>,
    /// A running coalmine's admin address, e.g. 127.0.0.1:18080.
    #[arg(long, requires = "xds_addr")]
    pub admin_addr: Option<String>,
    /// The running coalmine's pid, for its CPU and RSS.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Passed to `coalmine serve` as --debounce.
    #[arg(long)]
    pub debounce: Option<String>,
    /// Passed to `coalmine serve` as --debounce-max.
    #[arg(long)]
    pub debounce_max: Option<String>,
    /// Streams connecting (and receiving their first config) at once.
    #[arg(long, default_value_t = 256)]
    pub connect_concurrency: usize,
    /// Seconds to wait for all streams to connect.
    #[arg(long, default_value_t = 240)]
    pub connect_timeout: u64,
    /// Seconds to wait, after the last change, for every stream to converge.
    #[arg(long, default_value_t = 60)]
    pub converge_timeout: u64,
    /// Internal: run as the raw fan-out's reading end (`CONNS:BYTES`).
    #[arg(long, hide = true)]
    pub fanout_sink: Option<String>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    raise_open_files_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if let Some(spec) = &args.fanout_sink {
        return runtime.block_on(fanout::run_sink(spec));
    }
    let report = runtime.block_on(run(args))?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

/// One socket per simulated proxy (and, for the raw fan-out, two per connection): as
/// many open files as allowed. Root may raise the hard limit too; a started server
/// inherits the limit.
fn raise_open_files_limit() {
    const WANTED: u64 = 1 << 20;
    if rlimit::setrlimit(rlimit::Resource::NOFILE, WANTED, WANTED).is_err() {
        if let Err(e) = rlimit::increase_nofile_limit(WANTED) {
            eprintln!("loadgen: could not raise the open-files limit: {e}");
        }
    }
    if let Ok((soft, _)) = rlimit::getrlimit(rlimit::Resource::NOFILE) {
        eprintln!("loadgen: open-files limit {soft}");
    }
}

/// Runs the whole benchmark; progress goes to stderr, the result is returned.
pub async fn run(args: Args) -> anyhow::Result<Report> {
    let started = Instant::now();
    let target = match (&args.server_bin, &args.xds_addr, &args.admin_addr) {
        (Some(bin), _, _) => server::start(bin, &serve_flags(&args)).await?,
        (None, Some(xds), Some(admin)) => server::Target {
            xds_addr: xds.clone(),
            admin_url: format!("http://{admin}"),
            pid: args.server_pid,
            started: None,
        },
        _ => bail!("give --server-bin, or --xds-addr and --admin-addr"),
    };
    let http = reqwest::Client::new();
    for body in workload::initial_batches(args.services, args.endpoints, 500) {
        server::apply(&http, &target.admin_url, body).await?;
    }
    let stats = || target.pid.and_then(server::proc_stats);
    let base = stats();
    eprintln!(
        "loadgen: {} services applied; connecting {} {:?} streams",
        args.services, args.streams, args.mode
    );

    let tracker = Tracker::new(args.streams);
    let ctx = Arc::new(Context {
        xds_url: format!("http://{}", target.xds_addr),
        tracker: tracker.clone(),
        names: NameCache::default(),
        labels: vec![(
            workload::PROXY_LABEL.0.into(),
            workload::PROXY_LABEL.1.into(),
        )],
    });
    let connect_start = tracker.now_ns();
    let mut clients = spawn_clients(&args, &ctx).await;
    let ready_by = Instant::now() + Duration::from_secs(args.connect_timeout);
    while settled(&tracker) < args.streams && Instant::now() < ready_by {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let connected = tracker.ready.load(Ordering::Relaxed);
    let connect_s = (tracker
        .ready_last_ns
        .load(Ordering::Relaxed)
        .saturating_sub(connect_start)) as f64
        / 1e9;
    let after_connect = stats();
    eprintln!(
        "loadgen: {connected}/{} streams ready in {connect_s:.2}s",
        args.streams
    );

    let churn = churn(&args, &http, &target.admin_url, &tracker).await?;
    let after_churn = stats();
    clients.abort_all();
    while clients.join_next().await.is_some() {}
    drop(target);

    let raw = if churn.bytes > 0 {
        Some(fanout::measure(args.streams, churn.bytes, fanout_sink(args.streams)?).await?)
    } else {
        None
    };
    Ok(report::build(report::Inputs {
        args: &args,
        tracker: &tracker,
        connected,
        connect_s,
        churn,
        raw,
        base,
        after_connect,
        after_churn,
        elapsed: started.elapsed(),
    }))
}

/// In this process when the open-files limit holds both ends of every connection,
/// else in a child (this same binary with `--fanout-sink`).
fn fanout_sink(conns: usize) -> anyhow::Result<fanout::Sink> {
    let (soft, _) = rlimit::getrlimit(rlimit::Resource::NOFILE)?;
    if (2 * conns + 512) as u64 <= soft {
        return Ok(fanout::Sink::InProcess);
    }
    let mut command = std::process::Command::new(std::env::current_exe()?);
    command.arg("--fanout-sink");
    Ok(fanout::Sink::Process(command))
}

fn serve_flags(args: &Args) -> Vec<String> {
    let mut flags = Vec::new();
    if let Some(d) = &args.debounce {
        flags.extend(["--debounce".to_string(), d.clone()]);
    }
    if let Some(d) = &args.debounce_max {
        flags.extend(["--debounce-max".to_string(), d.clone()]);
    }
    flags
}

/// Streams that are ready or have failed.
fn settled(tracker: &Tracker) -> usize {
    tracker.ready.load(Ordering::Relaxed) + tracker.failed.load(Ordering::Relaxed)
}

/// Starts every client, at most `connect_concurrency` of them connecting at once: a
/// client holds its permit until its first CDS/EDS/LDS/RDS are ACKed.
async fn spawn_clients(args: &Args, ctx: &Arc<Context>) -> JoinSet<()> {
    let limit = Arc::new(Semaphore::new(args.connect_concurrency.max(1)));
    let mut clients = JoinSet::new();
    for index in 0..args.streams {
        let permit = limit.clone().acquire_owned().await.expect("semaphore open");
        let ctx = ctx.clone();
        let mode = args.mode;
        clients.spawn(async move {
            let tracker = ctx.tracker.clone();
            let result = match mode {
                Mode::Sotw => client::run_sotw(ctx, index, permit).await,
                Mode::Delta => delta::run_delta(ctx, index, permit).await,
            };
            let error = match result {
                Ok(()) => "stream closed by the server".to_string(),
                Err(e) => format!("{e:#}"),
            };
            tracker.mark_failed(format!("stream {index}: {error}"));
        });
    }
    clients
}

/// What the churn phase measured.
#[derive(Debug, Default)]
pub struct Churn {
    /// Bytes received by all streams from the first change until the end.
    pub bytes: u64,
    /// Time during which at least one change was unconverged (union of intervals).
    pub push_s: f64,
    pub apply_ms: Vec<f64>,
}

async fn churn(
    args: &Args,
    http: &reqwest::Client,
    admin_url: &str,
    tracker: &Arc<Tracker>,
) -> anyhow::Result<Churn> {
    let total = args.changes + args.weight_changes;
    let every = if total > 0 && args.weight_changes > 0 {
        (total / args.weight_changes).max(1)
    } else {
        usize::MAX
    };
    let interval = Duration::from_secs_f64(1.0 / args.rate.max(0.001));
    let start = Instant::now();
    let bytes_before = tracker.bytes.load(Ordering::Relaxed);
    let mut apply_ms = Vec::new();
    let (mut endpoint_n, mut weight_n) = (0usize, 0usize);
    for i in 0..total {
        tokio::time::sleep_until((start + interval * i as u32).into()).await;
        let weight =
            (i + 1) % every == 0 && weight_n < args.weight_changes || endpoint_n >= args.changes;
        let (change, body) = if weight {
            let s = (args.services - 1) - weight_n % args.services;
            let w = workload::changed_v2_weight(weight_n / args.services);
            weight_n += 1;
            let expect = Expect::WeightAtLeast {
                cluster: workload::v2_cluster(s),
                weight: w * 10_000,
            };
            let change = tracker.register(workload::route_config(), expect);
            (change, workload::virtual_service(s, w))
        } else {
            let s = endpoint_n % args.services;
            let port = workload::CHANGE_PORT_BASE + endpoint_n as u32;
            endpoint_n += 1;
            let change = tracker.register(workload::v1_cla(s), Expect::PortAtLeast(port));
            (
                change,
                workload::service_entry(s, args.endpoints, Some(port)),
            )
        };
        let sent = Instant::now();
        server::apply(http, admin_url, body).await?;
        apply_ms.push(sent.elapsed().as_secs_f64() * 1e3);
        tracker.accepted(&change);
    }
    let deadline = Instant::now() + Duration::from_secs(args.converge_timeout);
    let changes = tracker.changes();
    while Instant::now() < deadline && !changes.iter().all(|c| tracker.is_converged(c)) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(Churn {
        bytes: tracker.bytes.load(Ordering::Relaxed) - bytes_before,
        push_s: report::busy_seconds(tracker, &changes),
        apply_ms,
    })
}
