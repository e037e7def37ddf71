//! Whole nodes in the test process (started as `confab-node` starts them,
//! with their gateways, admin sockets and federation on loopback) and the
//! real `confabctl` binary run against them.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use confab_node::config::{NodeConfig, PeerConfig};
use confab_node::runner::{self, Running};
use confab_tests::web::Ws;
use confab_wire::NodeId;
use serde_json::Value;

/// The binary under test.
pub const CTL: &str = env!("CARGO_BIN_EXE_confabctl");

/// A running node and how to reach it.
pub struct Node {
    pub name: String,
    pub config: NodeConfig,
    pub running: Option<Running>,
    pub id: NodeId,
    pub socket: PathBuf,
    pub web: SocketAddr,
    pub federation: SocketAddr,
}

/// A node's configuration on loopback with free ports, its data in `dir`.
pub fn config(dir: &Path, name: &str, peers: &[(NodeId, SocketAddr)]) -> NodeConfig {
    let mut c = NodeConfig::default();
    c.node.name = name.into();
    c.node.data_dir = dir.join(name);
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    c.federation.listen = any;
    c.federation.peers = peers
        .iter()
        .map(|(node, addr)| PeerConfig {
            node: *node,
            addr: addr.to_string(),
            name: None,
        })
        .collect();
    c.client.listen = any;
    c.gateway.listen = any;
    c.metrics.listen = any;
    c.admin.listen = any;
    c.welcome_bot.enabled = false;
    c.limits.messages_per_minute = 100_000;
    c.gateway.requests_per_minute = 100_000;
    c
}

impl Node {
    /// Makes the key and store (as `confab-node id` does), then starts.
    pub async fn start(dir: &Path, name: &str, peers: &[(NodeId, SocketAddr)]) -> Node {
        let config = config(dir, name, peers);
        drop(runner::open_node(&config).unwrap());
        Self::start_with(name, config).await
    }

    /// Starts on an existing data directory (a restart, or a restore).
    pub async fn start_with(name: &str, config: NodeConfig) -> Node {
        let running = runner::start(&config).await.unwrap();
        Node {
            name: name.into(),
            id: running.node,
            socket: running.admin_socket.clone().unwrap(),
            web: running.web_addr.unwrap(),
            federation: running.federation_addr,
            running: Some(running),
            config,
        }
    }

    /// Stops the node gracefully.
    pub async fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            assert!(
                r.shutdown().await,
                "{} did not stop within the grace",
                self.name
            );
        }
    }

    /// `@name:<this node>`.
    pub fn user(&self, name: &str) -> String {
        format!("@{name}:{}", self.id)
    }

    /// A WebSocket to this node's gateway.
    pub async fn ws(&self) -> Ws {
        Ws::connect(&format!("ws://{}/ws", self.web)).await.unwrap()
    }

    /// Runs `confabctl --socket <this node> ARGS` (off the async threads).
    pub async fn ctl(&self, args: &[&str]) -> Ctl {
        ctl_at(&self.socket, args, None).await
    }

    /// `confabctl` with text on its standard input.
    pub async fn ctl_stdin(&self, args: &[&str], stdin: &str) -> Ctl {
        ctl_at(&self.socket, args, Some(stdin.to_string())).await
    }

    /// `confabctl --json ARGS`, which must succeed; its output parsed.
    pub async fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.ctl(&all).await;
        assert_eq!(
            out.code, 0,
            "confabctl {args:?} failed: {}{}",
            out.stdout, out.stderr
        );
        serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("confabctl {args:?} printed no JSON ({e}): {}", out.stdout))
    }
}

/// What one run of confabctl did.
#[derive(Debug)]
pub struct Ctl {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs confabctl against the socket at `socket`.
pub async fn ctl_at(socket: &Path, args: &[&str], stdin: Option<String>) -> Ctl {
    let mut cmd = Command::new(CTL);
    cmd.arg("--socket").arg(socket).args(args);
    run(cmd, stdin).await
}

/// Runs confabctl with exactly `args` (offline commands, transports).
pub async fn ctl_raw(args: &[&str]) -> Ctl {
    let mut cmd = Command::new(CTL);
    cmd.args(args).env_remove("CONFAB_ADMIN_SOCKET");
    run(cmd, None).await
}

async fn run(mut cmd: Command, stdin: Option<String>) -> Ctl {
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        let mut child = cmd.spawn().unwrap();
        if let Some(text) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
        }
        let out: Output = child.wait_with_output().unwrap();
        Ctl {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    })
    .await
    .unwrap()
}

/// Polls `f` until it holds (replication is asynchronous); gives up after
/// a generous guard so a hang fails instead of waiting forever.
pub async fn until<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    while !f().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up waiting: {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
