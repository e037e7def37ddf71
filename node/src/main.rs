//! `confab-node`: runs a Confab node, or works on its rooms locally.
//!
//! Without a subcommand: loads the configuration (or the embedded
//! defaults), makes or loads the node key, opens the store, binds the
//! federation endpoint with mutual TLS pinned to the configured peers,
//! replicates the rooms it shares with them, and runs until SIGINT or
//! SIGTERM. The `room`, `post` and `timeline`
//! subcommands work on the store of a node that is not running.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::sync::{Arc, Mutex};

use confab_node::config::NodeConfig;
use confab_node::federation::driver::Federation;
use confab_node::federation::replica::NodeRooms;
use confab_node::identity::NodeIdentity;
use confab_node::local;
use confab_node::service::transport::ClientEndpoint;
use confab_node::service::transport::InProcess;
use confab_node::service::{ClientService, ServiceSettings};
use confab_node::store::Store;
use confab_node::tls::PinSet;
use confab_wire::event::Visibility;
use confab_wire::{EventId, NodeKey, RoomId, UserId};
use tracing_subscriber::EnvFilter;

/// Runs a Confab node.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Configuration file; without it the embedded defaults apply (data in
    /// ./data, loopback addresses).
    #[arg(long, short, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the node (the default).
    Run,
    /// Print this node's id (making its key on first use): the value
    /// peers pin in their `federation.peers`.
    Id,
    /// Create a room or list the rooms (node stopped).
    #[command(subcommand)]
    Room(RoomCommand),
    /// Post a message to a room as a user of this node (node stopped).
    ///
    /// Example: confab-node post '!abc…' 'hello' --as alice
    Post {
        /// The room id (`!…`).
        room: RoomId,
        /// The message (markdown).
        text: String,
        /// The local user who posts.
        #[arg(long = "as", default_value = "admin")]
        author: String,
    },
    /// Make invite codes for registration in `invite` mode (node stopped).
    #[command(subcommand)]
    Invite(InviteCommand),
    /// Print a room's latest messages (node stopped).
    Timeline {
        /// The room id (`!…`).
        room: RoomId,
        /// How many messages.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Only messages before this event id (`$…`).
        #[arg(long)]
        before: Option<EventId>,
    },
}

#[derive(Debug, Subcommand)]
enum InviteCommand {
    /// Make a code and print it; give it to the person who will register.
    ///
    /// Example: confab-node invite create --uses 5 --days 7
    Create {
        /// How many accounts it may create.
        #[arg(long, default_value_t = 1)]
        uses: u32,
        /// Days until it expires.
        #[arg(long, default_value_t = 7)]
        days: u32,
    },
}

#[derive(Debug, Subcommand)]
enum RoomCommand {
    /// Create a room owned by a local user.
    ///
    /// Example: confab-node room create general --public --as alice
    Create {
        /// The room's name.
        name: String,
        /// Anyone may join (default: invite only).
        #[arg(long)]
        public: bool,
        /// The local user who owns it.
        #[arg(long = "as", default_value = "admin")]
        owner: String,
    },
    /// List the rooms in the store.
    List,
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
    let result = match args.command {
        None | Some(Command::Run) => runtime.block_on(run(args.config)),
        Some(command) => offline(args.config, command),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One line an operator can act on; no backtrace.
            eprintln!("confab-node: {}", error_line(&e));
            std::process::ExitCode::FAILURE
        }
    }
}

/// Subcommands that work on the store directly.
fn offline(config: Option<PathBuf>, command: Command) -> anyhow::Result<()> {
    let config = NodeConfig::load(config.as_deref())?;
    if let Command::Id = command {
        // Only the key: works while the node runs. A key made here is new,
        // so its store is made with it: a later start must not take the
        // empty store beside an existing key for lost data.
        let existed = NodeIdentity::key_path(&config.node.data_dir).exists();
        let key = NodeIdentity::load_or_create(&config.node.data_dir)?;
        if !existed {
            drop(open_store(&config)?);
        }
        println!("{}", key.node_id());
        return Ok(());
    }
    let (key, store) = open_node(&config)?;
    let user = |name: &str| {
        UserId::new(key.node_id(), name).with_context(|| format!("user name {name:?}"))
    };
    match command {
        Command::Run => unreachable!("handled by the caller"),
        Command::Id => unreachable!("handled above"),
        Command::Room(RoomCommand::Create {
            name,
            public,
            owner,
        }) => {
            let visibility = if public {
                Visibility::Public
            } else {
                Visibility::Private
            };
            let room = local::create_room(&store, &key, &user(&owner)?, &name, visibility)?;
            println!("{room}");
        }
        Command::Room(RoomCommand::List) => {
            for room in store.rooms()? {
                if let Some(r) = store.open_room(&room)? {
                    let s = r.engine().state();
                    println!(
                        "{room}  {:<24} {:>4} members  {:>8} events",
                        s.name,
                        s.joined().count(),
                        r.engine().len()
                    );
                }
            }
        }
        Command::Post { room, text, author } => {
            let id = local::post_message(&store, &key, &user(&author)?, &room, &text)?;
            println!("{id}");
        }
        Command::Invite(InviteCommand::Create { uses, days }) => {
            let accounts = confab_node::service::accounts::Accounts::new(key.clone(), store)
                .map_err(|e| anyhow::anyhow!(e.message))?;
            let now = local::now_ms();
            let code = accounts
                .create_invite(uses, now + u64::from(days) * 86_400_000, now)
                .map_err(|e| anyhow::anyhow!(e.message))?;
            println!("{code}");
        }
        Command::Timeline {
            room,
            limit,
            before,
        } => {
            for line in local::timeline(&store, &room, limit, before)? {
                println!("{}  @{}  {}", line.id, line.author.localpart(), line.text);
            }
        }
    }
    Ok(())
}

/// The node key (made on first start) and the store. A new store beside an
/// old key means the data was lost: the store is marked recovering.
fn open_node(config: &NodeConfig) -> anyhow::Result<(NodeKey, Store)> {
    let key_existed = NodeIdentity::key_path(&config.node.data_dir).exists();
    let key = NodeIdentity::load_or_create(&config.node.data_dir)?;
    let store = open_store(config)?;
    if key_existed && store.is_fresh() {
        // The key outlived the data: this node's rooms and its own events
        // must come back from peers before it may post again.
        tracing::warn!("the store is new but the key is not: recovering rooms from peers");
        store.set_recovering(true)?;
        store.wait_durable()?;
    }
    Ok((key, store))
}

fn open_store(config: &NodeConfig) -> anyhow::Result<Store> {
    let path = config.node.data_dir.join("db");
    Store::open(&path).with_context(|| {
        format!(
            "cannot open the store at {} (is the node running? stop it first)",
            path.display()
        )
    })
}

async fn run(config: Option<PathBuf>) -> anyhow::Result<()> {
    let config = NodeConfig::load(config.as_deref())?;
    init_logging(&config)?;
    let (key, store) = open_node(&config)?;
    tracing::info!(rooms = store.rooms()?.len(), "store open");
    let pins: PinSet = config.federation.peers.iter().map(|p| p.node).collect();
    let rooms = Arc::new(Mutex::new(NodeRooms::open(store, key.node_id())?));
    let mut registry = prometheus_client::registry::Registry::default();
    rooms
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .metrics()
        .register(&mut registry);
    let ops = confab_node::ops::Ops::new(registry);
    let (stop_ops, ops_stopped) = tokio::sync::oneshot::channel::<()>();
    let ops_addr = if config.metrics.enabled {
        let stop = async {
            let _ = ops_stopped.await;
        };
        Some(
            ops.clone()
                .serve(config.metrics.listen, stop)
                .await
                .with_context(|| {
                    format!("cannot bind metrics endpoint {}", config.metrics.listen)
                })?,
        )
    } else {
        None
    };
    let federation = Federation::start(
        key.clone(),
        &config.node.name,
        config.federation.listen,
        pins,
        rooms.clone(),
    )
    .with_context(|| {
        format!(
            "cannot bind federation endpoint {}",
            config.federation.listen
        )
    })?;
    let addr = federation.local_addr()?;
    let service = ClientService::new(
        key.clone(),
        &config.node.name,
        rooms.clone(),
        ServiceSettings::from_config(&config),
    )?;
    service.set_federation(
        federation.clone(),
        config.federation.peers.iter().map(|p| p.node),
    );
    let gateway_pins: PinSet = config.client.gateways.iter().copied().collect();
    let client =
        ClientEndpoint::start(service.clone(), &key, config.client.listen, gateway_pins)
            .with_context(|| format!("cannot bind client endpoint {}", config.client.listen))?;
    let client_addr = client.local_addr()?;
    let gateway = if config.gateway.enabled {
        let mut gw = confab_gateway::config::GatewayConfig::default();
        gw.gateway.name = "in-process".into();
        gw.gateway.listen = config.gateway.listen;
        gw.limits.max_connections_per_user = config.gateway.max_connections_per_user;
        gw.limits.requests_per_minute = config.gateway.requests_per_minute;
        gw.log.level.clone_from(&config.log.level);
        let g = confab_gateway::Gateway::start(gw, InProcess(service.clone()))
            .await
            .with_context(|| format!("cannot start the gateway on {}", config.gateway.listen))?;
        Some(g)
    } else {
        None
    };
    for peer in &config.federation.peers {
        match tokio::net::lookup_host(&peer.addr).await {
            Ok(mut addrs) => match addrs.next() {
                Some(a) => federation.connect(peer.node, a),
                None => tracing::warn!(addr = %peer.addr, "peer address resolves to nothing"),
            },
            Err(e) => tracing::warn!(addr = %peer.addr, error = %e, "cannot resolve peer address"),
        }
    }
    tracing::info!(
        node = %key.node_id(),
        name = %config.node.name,
        federation = %addr,
        peers = config.federation.peers.len(),
        "node started"
    );
    println!("confab-node {} ({})", config.node.name, key.node_id());
    println!("  federation: quic://{addr} (ALPN confab-fed/1)");
    println!("  gateways:   quic://{client_addr} (ALPN confab-client/1)");
    if let Some(g) = &gateway {
        println!("  web:        http://{}/", g.local_addr());
    }
    println!("  data:       {}", config.node.data_dir.display());
    if let Some(a) = ops_addr {
        println!("  metrics:    http://{a}/metrics (and /health/live, /health/ready)");
    }
    ops.set_ready(true);

    shutdown_signal().await;
    tracing::info!("shutting down");
    ops.set_ready(false);
    if let Some(g) = gateway {
        g.shutdown().await;
    }
    client.shutdown().await;
    federation.shutdown().await;
    let _ = stop_ops.send(());
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
