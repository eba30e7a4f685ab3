//! The command line (SPEC section 2): argument types and dispatch to each command.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::bootstrap::{self, BootstrapOptions};
use crate::serve::{self, ServeOptions};

#[derive(Debug, Parser)]
#[command(
    name = "coalmine",
    version,
    about = "An Envoy xDS control plane for safe releases"
)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the control plane.
    Serve(ServeArgs),
    /// Print an Envoy bootstrap (YAML) that points a proxy at this control plane.
    Bootstrap(BootstrapArgs),
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address of the xDS gRPC server (ADS).
    #[arg(long, env = "COALMINE_XDS_ADDR", default_value = "127.0.0.1:18000")]
    pub xds_addr: SocketAddr,
    /// Address of the admin REST API.
    #[arg(long, env = "COALMINE_ADMIN_ADDR", default_value = "127.0.0.1:18080")]
    pub admin_addr: SocketAddr,
    /// Folder of the durable state.
    #[arg(long, env = "COALMINE_DATA_DIR", default_value = "./coalmine-data")]
    pub data_dir: PathBuf,
    /// A YAML file or folder of resources, re-read whenever it changes.
    #[arg(long, env = "COALMINE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Pause after a change before pushing (e.g. 10ms).
    #[arg(long, default_value = "10ms", value_parser = parse_duration)]
    pub debounce: Duration,
    /// The longest a push may wait while changes keep coming.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub debounce_max: Duration,
}

#[derive(Debug, clap::Args)]
pub struct BootstrapArgs {
    /// The proxy's node id.
    #[arg(long)]
    pub node_id: String,
    /// The proxy's cluster.
    #[arg(long, default_value = "coalmine")]
    pub cluster: String,
    /// A label the proxy declares (Gateway selectors match these), as key=value.
    #[arg(long = "label", value_parser = parse_label)]
    pub labels: Vec<(String, String)>,
    /// Where the proxy reaches coalmine's xDS server.
    #[arg(long, env = "COALMINE_XDS_ADDR", default_value = "127.0.0.1:18000")]
    pub xds_addr: String,
    /// The proxy's admin port (0 picks a free one).
    #[arg(long, default_value_t = 9901)]
    pub admin_port: u16,
    /// Use Delta ADS instead of State of the World.
    #[arg(long)]
    pub delta: bool,
}

pub fn run(args: Args) -> ExitCode {
    match args.command {
        Command::Serve(a) => run_serve(a),
        Command::Bootstrap(a) => {
            print!("{}", bootstrap::render(&to_bootstrap_options(a)));
            ExitCode::SUCCESS
        }
    }
}

fn run_serve(a: ServeArgs) -> ExitCode {
    init_tracing();
    let opts = ServeOptions {
        xds_addr: a.xds_addr,
        config: a.config,
        debounce: a.debounce,
        debounce_max: a.debounce_max,
    };
    let runtime = tokio::runtime::Runtime::new().expect("start the tokio runtime");
    match runtime.block_on(serve::run(opts)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

fn to_bootstrap_options(a: BootstrapArgs) -> BootstrapOptions {
    BootstrapOptions {
        node_id: a.node_id,
        cluster: a.cluster,
        labels: a.labels.into_iter().collect(),
        xds_addr: a.xds_addr,
        admin_port: a.admin_port,
        delta: a.delta,
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("COALMINE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

fn parse_label(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected key=value, got {s:?}")),
    }
}

/// Durations as `500ms`, `2s`, `1m`.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let (digits, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("invalid duration {s:?}"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        _ => Err(format!("invalid duration {s:?}: use ms, s or m")),
    }
}
