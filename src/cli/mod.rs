//! The command line (SPEC section 2): argument types and dispatch to each command.
//!
//! Exit status: 0 on success, 1 on a rejected request (the reason printed), 2 on bad
//! usage (clap's own errors exit 2 as well).

mod client;
mod commands;
mod listen_args;
mod output;
mod rollout;

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::bootstrap::{self, BootstrapOptions};
use crate::serve::{self, ServeOptions};
use client::Client;
use commands::Failure;
use output::Format;

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

/// Where client commands find the admin API.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// The admin API of a running coalmine.
    #[arg(
        long,
        env = "COALMINE_SERVER",
        default_value = "http://127.0.0.1:18080",
        global = true
    )]
    pub server: String,
    /// The admin bearer token.
    #[arg(
        long,
        env = "COALMINE_ADMIN_TOKEN",
        hide_env_values = true,
        global = true
    )]
    pub token: Option<String>,
    /// A PEM CA bundle to trust for an `https://` --server (the admin API's
    /// --admin-tls-cert), beside the system's roots.
    #[arg(long, env = "COALMINE_CA", global = true)]
    pub ca: Option<std::path::PathBuf>,
    /// Output format.
    #[arg(
        short = 'o',
        long = "output",
        value_enum,
        default_value = "table",
        global = true
    )]
    pub output: Format,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the control plane.
    Serve(Box<ServeArgs>),
    /// Print an Envoy bootstrap (YAML), or with `--grpc` a gRPC xDS bootstrap (JSON),
    /// that points a client at this control plane.
    Bootstrap(BootstrapArgs),
    /// Print coalmine's CustomResourceDefinitions (YAML), as in deploy/crds/.
    Crdgen,
    /// Apply YAML/JSON documents (a file, a folder, or - for stdin) as one revision.
    Apply {
        #[arg(short = 'f', long = "filename")]
        file: String,
        /// Print what would change for Envoy; apply nothing.
        #[arg(long)]
        dry_run: bool,
        /// Return once every connected proxy the change reaches has ACKed it.
        #[arg(long)]
        wait: bool,
        /// How long --wait waits.
        #[arg(long, default_value = "60s")]
        timeout: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Remove resources (those in -f, or KIND NAME) as one revision.
    Delete {
        #[arg(short = 'f', long = "filename", conflicts_with_all = ["kind", "name"])]
        file: Option<String>,
        kind: Option<String>,
        name: Option<String>,
        #[arg(short = 'n', long, default_value = "default")]
        namespace: String,
        #[arg(long)]
        wait: bool,
        #[arg(long, default_value = "60s")]
        timeout: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// List or show resources, with their status.
    Get {
        kind: String,
        name: Option<String>,
        #[arg(short = 'n', long)]
        namespace: Option<String>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// What applying would change, resource by resource, in Envoy's terms.
    Diff {
        #[arg(short = 'f', long = "filename")]
        file: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Connected proxies and their ACK/NACK ledger.
    Proxies {
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Revisions of the stored configuration, oldest first.
    History {
        #[command(flatten)]
        server: ServerArgs,
    },
    /// A release's progress, or drive it by hand.
    Rollout {
        #[command(subcommand)]
        command: RolloutCommand,
    },
    /// Make a new revision equal to a stored one.
    Restore {
        revision: u64,
        #[arg(long)]
        wait: bool,
        #[arg(long, default_value = "60s")]
        timeout: String,
        #[command(flatten)]
        server: ServerArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum RolloutCommand {
    /// Phase, weight and analysis; live with a progress bar under --watch.
    Status {
        name: String,
        #[arg(short = 'n', long, default_value = "default")]
        namespace: String,
        /// Follow until the release succeeds or fails.
        #[arg(short = 'w', long)]
        watch: bool,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Skip the remaining steps and gates, and promote.
    Promote(RolloutTarget),
    /// Send all traffic back to stable.
    Abort(RolloutTarget),
    /// Hold the current weight.
    Pause(RolloutTarget),
    /// Carry on after a pause.
    Resume(RolloutTarget),
}

#[derive(Debug, clap::Args)]
pub struct RolloutTarget {
    name: String,
    #[arg(short = 'n', long, default_value = "default")]
    namespace: String,
    #[command(flatten)]
    server: ServerArgs,
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
    /// A YAML file or folder of resources, re-read on change; each change is a revision
    /// and the files' set replaces the stored one.
    #[arg(long, env = "COALMINE_CONFIG")]
    pub config: Option<PathBuf>,
    /// A file holding the admin bearer token.
    #[arg(long)]
    pub admin_token_file: Option<PathBuf>,
    /// The admin bearer token itself (used when no token file is given).
    #[arg(
        long = "admin-token",
        env = "COALMINE_ADMIN_TOKEN",
        hide_env_values = true,
        hide = true
    )]
    pub admin_token: Option<String>,
    /// Serve the admin API on a non-loopback address without a token.
    #[arg(long)]
    pub insecure_admin: bool,
    /// Quiet period that ends a burst of changes before it is pushed (e.g. 10ms); a
    /// change after a quiet period is pushed at once.
    #[arg(long, default_value = "10ms", value_parser = humantime::parse_duration)]
    pub debounce: Duration,
    /// The longest a push may wait while changes keep coming.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub debounce_max: Duration,
    /// How many revisions the store keeps.
    #[arg(long, default_value_t = 1000)]
    pub retention: usize,
    /// Also discover endpoints from Kubernetes (EndpointSlices, and pod labels for
    /// subsets), with the in-cluster config or KUBECONFIG.
    #[arg(long, env = "COALMINE_KUBERNETES")]
    pub kubernetes: bool,
    #[command(flatten)]
    pub listen: listen_args::ListenArgs,
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
    /// Print a gRPC xDS bootstrap (JSON, for `GRPC_XDS_BOOTSTRAP`) for a proxyless
    /// gRPC client instead of an Envoy bootstrap.
    #[arg(long, conflicts_with = "delta")]
    pub grpc: bool,
    /// The Envoy bootstrap's format: YAML (strings quoted wherever YAML 1.1, as Envoy
    /// reads it, would take them for booleans or numbers) or JSON.
    #[arg(short = 'o', long = "output", value_enum, default_value = "yaml")]
    pub output: BootstrapFormat,
    /// xDS over TLS: the PEM CA that coalmine's certificate chains to (a path on the
    /// proxy's host). The certificate must name the --xds-addr host.
    #[arg(long)]
    pub xds_ca: Option<String>,
    /// The proxy's PEM certificate chain, for coalmine's --xds-client-ca (mutual TLS).
    #[arg(long, requires_all = ["xds_key", "xds_ca"])]
    pub xds_cert: Option<String>,
    /// The private key of --xds-cert.
    #[arg(long, requires = "xds_cert")]
    pub xds_key: Option<String>,
}

/// How `coalmine bootstrap` prints an Envoy bootstrap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BootstrapFormat {
    Yaml,
    Json,
}

pub fn run(args: Args) -> ExitCode {
    let result = match args.command {
        Command::Serve(a) => return run_serve(*a),
        Command::Bootstrap(a) => bootstrap_command(a),
        Command::Crdgen => {
            print!("{}", crate::k8s::crd::to_yaml());
            Ok(())
        }
        client_command => block_on(run_client(client_command)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Rejected(reason)) => {
            eprintln!("error: {reason}");
            ExitCode::from(1)
        }
        Err(Failure::Usage(reason)) => {
            eprintln!("error: {reason}");
            ExitCode::from(2)
        }
    }
}

async fn run_client(command: Command) -> commands::Outcome {
    let mk = |s: &ServerArgs| -> Result<(Client, Format), Failure> {
        let ca = match &s.ca {
            Some(path) => Some(client::read_ca(path).map_err(Failure::Usage)?),
            None => None,
        };
        Ok((Client::new(&s.server, s.token.clone(), ca), s.output))
    };
    match command {
        Command::Apply {
            file,
            dry_run,
            wait,
            timeout,
            server,
        } => {
            let (c, o) = mk(&server)?;
            commands::apply(&c, &file, dry_run, wait, &timeout, o).await
        }
        Command::Delete {
            file,
            kind,
            name,
            namespace,
            wait,
            timeout,
            server,
        } => {
            let (c, o) = mk(&server)?;
            match (file, kind, name) {
                (Some(file), _, _) => commands::delete_file(&c, &file, wait, &timeout, o).await,
                (None, Some(kind), Some(name)) => {
                    commands::delete_one(&c, &kind, &name, &namespace, o).await
                }
                _ => Err(Failure::Usage("delete needs -f PATH or KIND NAME".into())),
            }
        }
        Command::Get {
            kind,
            name,
            namespace,
            server,
        } => {
            let (c, o) = mk(&server)?;
            commands::get(&c, &kind, name.as_deref(), namespace.as_deref(), o).await
        }
        Command::Diff { file, server } => {
            let (c, o) = mk(&server)?;
            commands::diff(&c, &file, o).await
        }
        Command::Proxies { server } => {
            let (c, o) = mk(&server)?;
            commands::proxies(&c, o).await
        }
        Command::History { server } => {
            let (c, o) = mk(&server)?;
            commands::history(&c, o).await
        }
        Command::Restore {
            revision,
            wait,
            timeout,
            server,
        } => {
            let (c, o) = mk(&server)?;
            commands::restore(&c, revision, wait, &timeout, o).await
        }
        Command::Rollout { command } => {
            let (verb, target) = match command {
                RolloutCommand::Status {
                    name,
                    namespace,
                    watch,
                    server,
                } => {
                    let (c, o) = mk(&server)?;
                    return rollout::status(&c, &name, &namespace, watch, o).await;
                }
                RolloutCommand::Promote(t) => ("promote", t),
                RolloutCommand::Abort(t) => ("abort", t),
                RolloutCommand::Pause(t) => ("pause", t),
                RolloutCommand::Resume(t) => ("resume", t),
            };
            let (c, o) = mk(&target.server)?;
            rollout::command(&c, &target.name, &target.namespace, verb, o).await
        }
        Command::Serve(_) | Command::Bootstrap(_) | Command::Crdgen => {
            unreachable!("handled by run")
        }
    }
}

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("start the tokio runtime")
        .block_on(f)
}

fn bootstrap_command(a: BootstrapArgs) -> commands::Outcome {
    let opts = BootstrapOptions {
        node_id: a.node_id,
        cluster: a.cluster,
        labels: a.labels.into_iter().collect(),
        xds_addr: a.xds_addr,
        admin_port: a.admin_port,
        delta: a.delta,
        tls: a.xds_ca.map(|ca| bootstrap::ClientTls {
            ca,
            cert: a.xds_cert,
            key: a.xds_key,
        }),
    };
    opts.validate().map_err(|e| Failure::Usage(e.to_string()))?;
    match (a.grpc, a.output) {
        (true, _) => print!("{}", bootstrap::render_grpc(&opts)),
        (false, BootstrapFormat::Yaml) => print!("{}", bootstrap::render(&opts)),
        (false, BootstrapFormat::Json) => print!("{}", bootstrap::render_json(&opts)),
    }
    Ok(())
}

fn run_serve(a: ServeArgs) -> ExitCode {
    init_tracing();
    // A token nobody can send (blank, or a blank file) is refused, not served open or
    // locked; an empty variable counts as unset.
    let token = match (&a.admin_token_file, a.admin_token) {
        (Some(path), _) => match std::fs::read_to_string(path) {
            Ok(t) if t.trim().is_empty() => {
                tracing::error!("--admin-token-file {} is blank", path.display());
                return ExitCode::from(2);
            }
            Ok(t) => Some(t.trim().to_string()),
            Err(e) => {
                tracing::error!("cannot read --admin-token-file {}: {e}", path.display());
                return ExitCode::from(2);
            }
        },
        (None, Some(t)) if t.is_empty() => None,
        (None, Some(t)) if t.trim().is_empty() => {
            tracing::error!("the admin token (--admin-token or COALMINE_ADMIN_TOKEN) is blank");
            return ExitCode::from(2);
        }
        (None, token) => token.map(|t| t.trim().to_string()),
    };
    let opts = ServeOptions {
        xds_addr: a.xds_addr,
        admin_addr: a.admin_addr,
        data_dir: a.data_dir,
        config: a.config,
        debounce: a.debounce,
        debounce_max: a.debounce_max,
        admin_token: token,
        insecure_admin: a.insecure_admin,
        retention: a.retention,
        kubernetes: a.kubernetes,
        listen: a.listen.options(),
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
    bootstrap::try_parse_label(s).map_err(|e| e.to_string())
}
