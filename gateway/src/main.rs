//! `confab-gateway`: serves browsers for one node, as its own process.
//!
//! It loads `config/gateway.toml` (or the embedded defaults), makes or
//! loads its key (`<data_dir>/gateway.key`), dials its node over QUIC with
//! the node's key pinned, and serves the web UI and WebSocket until SIGINT
//! or SIGTERM. `confab-gateway id` prints the key's id, which the node's
//! `client.gateways` must list.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use confab_gateway::Gateway;
use confab_gateway::config::GatewayConfig;
use confab_gateway::link::QuicConnector;
use confab_wire::endpoint::keyfile;
use tracing_subscriber::EnvFilter;

/// The gateway's key file inside its data directory.
const KEY_FILE: &str = "gateway.key";

/// Runs a Confab gateway against one node.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Configuration file (see config/gateway.toml); without it the
    /// embedded defaults apply.
    #[arg(long, short, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve browsers (the default).
    Run,
    /// Print this gateway's id (making its key on first use): add it to
    /// the node's `client.gateways`.
    Id,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("confab-gateway: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let mut line = e.to_string();
            for cause in e.chain().skip(1) {
                let text = cause.to_string();
                if !line.contains(&text) {
                    line.push_str(": ");
                    line.push_str(&text);
                }
            }
            eprintln!("confab-gateway: {line}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let config = GatewayConfig::load(args.config.as_deref())?;
    let key = keyfile::load_or_create(&config.gateway.data_dir, KEY_FILE)?;
    if let Some(Command::Id) = args.command {
        println!("{}", key.node_id());
        return Ok(());
    }
    let filter = match std::env::var("RUST_LOG") {
        Ok(s) if !s.is_empty() => EnvFilter::try_new(s).context("RUST_LOG")?,
        _ => EnvFilter::try_new(&config.log.level).context("log.level")?,
    };
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if config.log.json {
        logs.json().init();
    } else {
        logs.init();
    }
    let node = config.node.node_id.context(
        "`node.node_id` is empty: set it to the id the node prints on start \
         (`confab-node --config <its config> id`)",
    )?;
    let connector = QuicConnector::new(&key, node, &config.node.addr, &config.gateway.name)?;
    let name = config.gateway.name.clone();
    let node_addr = config.node.addr.clone();
    let gateway = Gateway::start(config, connector).await?;
    println!("confab-gateway {name} ({})", key.node_id());
    println!("  web:  http://{}/", gateway.local_addr());
    println!("  node: {node_addr} ({})", node.short());
    if let Some(m) = gateway.metrics_addr() {
        println!("  metrics: http://{m}/metrics (and /health/live, /health/ready)");
    }
    println!("  (the node must list this gateway's id in `client.gateways`)");
    shutdown_signal().await;
    tracing::info!("shutting down");
    gateway.shutdown().await;
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
