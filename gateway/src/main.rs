//! `confab-gateway`: serves browsers for one node.
//!
//! Today it loads and checks its configuration; the HTTP/WebSocket service
//! and the web UI arrive with the gateway issue.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use confab_gateway::config::GatewayConfig;

/// Runs a Confab gateway against one node.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Configuration file (see config/gateway.toml); without it the
    /// embedded defaults apply.
    #[arg(long, short)]
    config: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let config = match GatewayConfig::load(args.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("confab-gateway: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "confab-gateway {}: configuration valid (listen {}, node {})",
        config.gateway.name, config.gateway.listen, config.node.addr
    );
    eprintln!(
        "confab-gateway: serving browsers is not available in this version; \
         use the gateway built into confab-node"
    );
    ExitCode::FAILURE
}
