//! `filament`: one binary, one subcommand per role.
//!
//! - `filament up`   the all-in-one controller (config API + schema transformer + control node)
//! - `filament api`  only the config API (port 8082)
//! - `filament schema run|check`  the schema transformer on its own, or a check
//! - `filament bench api|schema|xmpp|agent`  figures
//! - `filament control`, `route show|summary`, `neighbors`  the control node and its views
//! - `filament agent`, `port`, `flow`, `vrouter run|dump|dropstats`  a compute host
//! - `filament demo`, `status`  a lab on this machine, and every role's state
//!
//! Every command that fails prints one line, `filament: error: ...`, and exits 1 (clap's
//! usage errors exit 2).

mod agent;
mod bench;
mod bench_agent;
mod bench_schema;
mod bench_xmpp;
mod control;
mod demo;
mod schema;
mod status;
mod vrouter;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use filament_store::{SqliteStore, Store};

#[derive(Parser)]
#[command(
    name = "filament",
    version,
    about = "Multi-tenant virtual networking for VMs and containers"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the all-in-one controller in the foreground (config API + schema transformer + control node, embedded store).
    Up(UpArgs),
    /// Run only the config REST API.
    Api(ServeArgs),
    /// The schema transformer as its own process (`run`), or a consistency check (`check`).
    #[command(subcommand)]
    Schema(schema::SchemaCmd),
    /// Benchmarks that print figures (`api`, `schema`, `xmpp`, `agent`).
    #[command(subcommand)]
    Bench(bench::BenchCmd),
    /// Run the control node alone (XMPP server for agents, BGP speaker).
    Control(control::ControlArgs),
    /// Routes held by a control node (`show`, `summary`).
    #[command(subcommand)]
    Route(control::RouteCmd),
    /// BGP and XMPP peers of a control node.
    Neighbors(control::NeighborsArgs),
    /// Run the vRouter agent of this host (with its forwarder).
    Agent(agent::AgentArgs),
    /// Add, delete or list workload ports on the local agent.
    #[command(subcommand)]
    Port(agent::PortCmd),
    /// Flows of the local vRouter.
    #[command(subcommand)]
    Flow(agent::FlowCmd),
    /// The forwarder: run it standalone with static tables, or inspect its tables.
    #[command(subcommand)]
    Vrouter(vrouter::VrouterCmd),
    /// A lab on this machine: a controller and two compute hosts with workloads (root).
    Demo(demo::DemoArgs),
    /// One line per role and host: state, sessions, route and flow counts.
    Status(status::StatusArgs),
}

#[derive(Args, Clone)]
struct ServeArgs {
    /// Directory of the embedded store (created if missing).
    #[arg(long, env = "FILAMENT_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Address of the config API.
    #[arg(long, default_value = "0.0.0.0:8082")]
    listen: SocketAddr,
}

#[derive(Args, Clone)]
struct UpArgs {
    #[command(flatten)]
    serve: ServeArgs,
    /// Do not run the control node (XMPP, introspect) inside `up`.
    #[arg(long)]
    no_control: bool,
    #[command(flatten)]
    control: control::ControlListen,
}

pub(crate) fn default_data_dir() -> PathBuf {
    dirs::data_dir()
        .unwrap_or_else(|| PathBuf::from("."))
        .join("filament")
}

/// Errors end the process with one line on stderr (`filament: <what>: <cause>: ...`) and
/// exit code 1; never anyhow's multi-line report or a backtrace (RUST_BACKTRACE=1 or not).
fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("filament: error: {}", one_line(&e));
            std::process::ExitCode::FAILURE
        }
    }
}

/// An error and its causes on one line, `: `-joined, leaving out a cause that its parent's
/// message already ends with (error types that print their source and also return it).
fn one_line(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let msg = cause.to_string();
        if out.ends_with(&msg) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&msg);
    }
    out.replace('\n', " ")
}

fn run() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.cmd {
        Cmd::Up(a) => rt.block_on(serve(
            a.serve,
            Roles {
                schema: true,
                control: (!a.no_control).then_some(a.control),
            },
        )),
        Cmd::Api(a) => rt.block_on(serve(
            a,
            Roles {
                schema: false,
                control: None,
            },
        )),
        Cmd::Bench(b) => rt.block_on(bench::run(b)),
        Cmd::Schema(c) => rt.block_on(schema::run(c)),
        Cmd::Control(a) => rt.block_on(control::run(a)),
        Cmd::Route(c) => rt.block_on(control::route(c)),
        Cmd::Neighbors(a) => rt.block_on(control::neighbors(a)),
        Cmd::Agent(a) => rt.block_on(agent::run(a)),
        Cmd::Port(c) => rt.block_on(agent::port(c)),
        Cmd::Flow(c) => rt.block_on(agent::flow(c)),
        Cmd::Vrouter(c) => rt.block_on(vrouter::run(c)),
        Cmd::Demo(a) => rt.block_on(demo::run(a)),
        Cmd::Status(a) => rt.block_on(status::run(a)),
    }
}

pub(crate) fn open_store(dir: &Path) -> anyhow::Result<Arc<dyn Store>> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create data dir {}", dir.display()))?;
    let path = dir.join("config.db");
    let store = SqliteStore::open(&path)
        .with_context(|| format!("cannot open store {}", path.display()))?;
    Ok(Arc::new(store))
}

/// Which roles run beside the API.
struct Roles {
    schema: bool,
    /// The control node's flags, when it runs in this process.
    control: Option<control::ControlListen>,
}

async fn serve(a: ServeArgs, roles: Roles) -> anyhow::Result<()> {
    // BGP was asked for (`--bgp-address`): a refused port fails the start, as in
    // `filament control`, instead of a warning in the log of a node that never peers.
    if let Some(c) = roles.control.as_ref().filter(|c| c.bgp_address.is_some()) {
        drop(
            std::net::TcpListener::bind(c.bgp_listen)
                .with_context(|| format!("BGP: cannot listen on {}", c.bgp_listen))?,
        );
    }
    let dir = a.data_dir.unwrap_or_else(default_data_dir);
    let store = open_store(&dir)?;
    let state =
        filament_api::ApiState::open(store.clone()).context("cannot load the config store")?;
    let listener = tokio::net::TcpListener::bind(a.listen)
        .await
        .with_context(|| format!("cannot listen on {}", a.listen))?;
    tracing::info!(
        listen = %a.listen,
        data_dir = %dir.display(),
        revision = store.revision(),
        objects = state.db.read().len(),
        "config API ready"
    );
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let transformer = roles.schema.then(|| {
        let (st, stop) = (state.clone(), stopped(stop_rx.clone()));
        tokio::spawn(async move {
            let r = filament_transformer::shell::run(st, stop, |s| {
                tracing::debug!(
                    events = s.events,
                    writes = s.writes,
                    revision = s.revision,
                    "schema transformer"
                );
            })
            .await;
            if let Err(e) = r {
                tracing::error!(error = %e, "schema transformer stopped");
            }
        })
    });
    let server = tokio::spawn(filament_api::serve(
        listener,
        state,
        stopped(stop_rx.clone()),
    ));
    // The control node follows this API's change feed over HTTP, like a separate process
    // would. A port already taken (another `up` on this machine) leaves the API running.
    let _control = match roles.control {
        Some(c) => {
            let host = if a.listen.ip().is_unspecified() {
                std::net::IpAddr::from([127, 0, 0, 1])
            } else {
                a.listen.ip()
            };
            let api = format!("http://{}", SocketAddr::new(host, a.listen.port()));
            let cfg = control::shell_config(api, &c, false)?;
            match control::start(cfg.clone(), stopped(stop_rx)).await {
                Ok(h) => {
                    // BGP inside `up` only when asked for (an address to speak from):
                    // several `up`s on one machine (tests) must not fight over port 179.
                    if c.bgp_address.is_some() {
                        control::start_bgp(&h, &c, &cfg);
                    }
                    Some(h)
                }
                Err(e) => {
                    tracing::warn!(error = format!("{e:#}"), "control node not started");
                    None
                }
            }
        }
        None => None,
    };
    shutdown_signal().await;
    let _ = stop_tx.send(true);
    if let Some(t) = transformer {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(3), t).await;
    }
    // Open change-feed streams never end by themselves: give requests in
    // flight a moment, then stop regardless. Every write is already durable.
    match tokio::time::timeout(std::time::Duration::from_secs(3), server).await {
        Ok(Ok(r)) => r?,
        Ok(Err(e)) => anyhow::bail!("server task failed: {e}"),
        Err(_) => tracing::info!("closing long-lived connections"),
    }
    drop(store);
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => futures::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = futures::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT: shutting down"),
        () = term => tracing::info!("SIGTERM: shutting down"),
    }
}
