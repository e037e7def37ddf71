//! `confab-node`: runs a Confab node, or works on its rooms locally.
//!
//! Without a subcommand: loads the configuration (or the embedded
//! defaults), makes or loads the node key, opens the store, binds the
//! federation endpoint with mutual TLS pinned to the configured peers,
//! replicates the rooms it shares with them, and runs until SIGINT or
//! SIGTERM. The `room`, `post`, `timeline`, `invite` and `restore`
//! subcommands work on the store of a node that is not running.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use confab_node::config::NodeConfig;
use confab_node::identity::NodeIdentity;
use confab_node::{local, runner};
use confab_wire::event::Visibility;
use confab_wire::{EventId, RoomId, UserId};
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
    /// Restore a backup made by `confabctl backup create` into an empty
    /// data directory (node stopped). The node rebuilds its indexes from
    /// the backup's events when it next starts, then hears from its peers
    /// what it posted after the backup before it posts again.
    ///
    /// Example: confab-node restore /backups/acme.confab --config node.toml
    Restore {
        /// The backup file.
        file: PathBuf,
        /// Where to restore (default: the configured data directory).
        #[arg(long)]
        data_dir: Option<PathBuf>,
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
            drop(runner::open_store(&config)?);
        }
        println!("{}", key.node_id());
        return Ok(());
    }
    if let Command::Restore { file, data_dir } = &command {
        let dir = data_dir.as_ref().unwrap_or(&config.node.data_dir);
        let r = confab_node::store::restore::restore(file, dir)
            .with_context(|| format!("restoring {}", file.display()))?;
        println!(
            "restored node {} ({}) into {}: {} records, {} events; start the node to rebuild its indexes",
            r.header.node,
            r.header.name,
            dir.display(),
            r.entries,
            r.events
        );
        return Ok(());
    }
    let (key, store) = runner::open_node(&config)?;
    let user = |name: &str| {
        UserId::new(key.node_id(), name).with_context(|| format!("user name {name:?}"))
    };
    match command {
        Command::Run => unreachable!("handled by the caller"),
        Command::Id | Command::Restore { .. } => unreachable!("handled above"),
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
            let accounts = confab_node::service::accounts::Accounts::new(
                key.clone(),
                store,
                config.limits.sign_in_failures_per_address,
            )
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

async fn run(config: Option<PathBuf>) -> anyhow::Result<()> {
    let config = NodeConfig::load(config.as_deref())?;
    init_logging(&config)?;
    let node = runner::start(&config).await?;
    println!("confab-node {} ({})", config.node.name, node.node);
    println!(
        "  federation: quic://{} (ALPN confab-fed/1)",
        node.federation_addr
    );
    println!(
        "  gateways:   quic://{} (ALPN confab-client/1)",
        node.client_addr
    );
    if let Some(a) = node.web_addr {
        println!("  web:        http://{a}/");
    }
    println!("  data:       {}", config.node.data_dir.display());
    if let Some(p) = &node.admin_socket {
        println!("  admin:      {} (confabctl)", p.display());
    }
    if let Some(a) = node.admin_addr {
        println!("  admin:      quic://{a} (ALPN confab-admin/1)");
    }
    if let Some(a) = node.ops_addr {
        println!("  metrics:    http://{a}/metrics (and /health/live, /health/ready)");
    }
    shutdown_signal().await;
    tracing::info!("shutting down");
    if node.shutdown().await {
        tracing::info!("stopped");
    }
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
    // Logs go to stderr; stdout carries what the node prints for people.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
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
