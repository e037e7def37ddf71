//! `confab-node`: runs a Confab node.
//!
//! Loads the configuration (or the embedded defaults), makes or loads the
//! node key, binds the federation endpoint with mutual TLS pinned to the
//! configured peers, and runs until SIGINT or SIGTERM.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use confab_node::config::NodeConfig;
use confab_node::identity::NodeIdentity;
use confab_node::tls::{self, PinSet};
use confab_wire::fed::FED_ALPN;
use tracing_subscriber::EnvFilter;

/// Runs a Confab node.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Configuration file; without it the embedded defaults apply (data in
    /// ./data, loopback addresses).
    #[arg(long, short)]
    config: Option<PathBuf>,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("confab-node: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One line an operator can act on; no backtrace.
            eprintln!("confab-node: {}", error_line(&e));
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let config = NodeConfig::load(args.config.as_deref())?;
    init_logging(&config)?;
    let key = NodeIdentity::load_or_create(&config.node.data_dir)?;
    let pins: PinSet = config.federation.peers.iter().map(|p| p.node).collect();
    let server = tls::server_config(&key, pins, &[FED_ALPN])?;
    let endpoint =
        quinn::Endpoint::server(server, config.federation.listen).with_context(|| {
            format!(
                "cannot bind federation endpoint {}",
                config.federation.listen
            )
        })?;
    let addr = endpoint.local_addr()?;
    tracing::info!(
        node = %key.node_id(),
        name = %config.node.name,
        federation = %addr,
        peers = config.federation.peers.len(),
        "node started"
    );
    println!("confab-node {} ({})", config.node.name, key.node_id());
    println!("  federation: quic://{addr} (ALPN confab-fed/1)");
    println!("  data:       {}", config.node.data_dir.display());

    let accept = {
        let endpoint = endpoint.clone();
        tokio::spawn(async move {
            while let Some(incoming) = endpoint.accept().await {
                tokio::spawn(async move {
                    match incoming.await {
                        Ok(conn) => {
                            let peer = tls::peer_node_id(&conn);
                            tracing::info!(peer = ?peer, remote = %conn.remote_address(), "peer connected");
                            // Replication is not served yet: close politely.
                            conn.close(0u32.into(), b"replication not available yet");
                        }
                        Err(e) => tracing::warn!(error = %e, "handshake failed"),
                    }
                });
            }
        })
    };

    shutdown_signal().await;
    tracing::info!("shutting down");
    endpoint.close(0u32.into(), b"shutting down");
    accept.abort();
    endpoint.wait_idle().await;
    Ok(())
}

/// The error and its causes on one line, skipping causes that an outer
/// message already quotes.
fn error_line(e: &anyhow::Error) -> String {
    let mut line = e.to_string();
    for cause in e.chain().skip(1) {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
    }
    line
}

fn init_logging(config: &NodeConfig) -> anyhow::Result<()> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(s) if !s.is_empty() => EnvFilter::try_new(s).context("RUST_LOG")?,
        _ => EnvFilter::try_new(&config.log.level).context("log.level")?,
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if config.log.json {
        builder.json().init();
    } else {
        builder.init();
    }
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
