//! A whole running node, as `confab-node` starts it: store, federation,
//! client service and endpoint, the in-process gateway, the admin service
//! and the operator endpoint; and its graceful shutdown. The binary and
//! the tests that need a full node both start it here.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use confab_wire::{NodeId, NodeKey};

use crate::config::NodeConfig;
use crate::error::{Error, Result};
use crate::federation::driver::Federation;
use crate::identity::NodeIdentity;
use crate::ops::Ops;
use crate::rooms::NodeRooms;
use crate::service::admin::AdminService;
use crate::service::admin_link::AdminEndpoints;
use crate::service::transport::{ClientEndpoint, InProcess};
use crate::service::{ClientService, ServiceSettings};
use crate::store::Store;
use crate::store::admin::PeerChange;
use crate::tls::PinSet;

/// The longest a graceful shutdown may take before the rest is dropped.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

fn startup(what: impl Into<String>, e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::Startup {
        what: what.into(),
        source: Box::new(e),
    }
}

/// The node key (made on first start) and the store. A new store beside an
/// old key means the data was lost: the store is marked recovering.
pub fn open_node(config: &NodeConfig) -> Result<(NodeKey, Store)> {
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

/// Opens the store of the data directory.
pub fn open_store(config: &NodeConfig) -> Result<Store> {
    let path = config.node.data_dir.join("db");
    Store::open(&path).map_err(|e| {
        startup(
            format!(
                "open the store at {} (is the node running? stop it first)",
                path.display()
            ),
            e,
        )
    })
}

/// A node that runs until [`Running::shutdown`].
#[derive(Debug)]
pub struct Running {
    /// Its id.
    pub node: NodeId,
    /// The federation endpoint.
    pub federation_addr: SocketAddr,
    /// The client endpoint (for gateways run apart).
    pub client_addr: SocketAddr,
    /// The in-process gateway's HTTP address.
    pub web_addr: Option<SocketAddr>,
    /// The operator endpoint (`/metrics`, `/health/*`).
    pub ops_addr: Option<SocketAddr>,
    /// The admin socket.
    pub admin_socket: Option<PathBuf>,
    /// The admin QUIC endpoint.
    pub admin_addr: Option<SocketAddr>,
    /// Peers configured now.
    pub peers: usize,
    ops: Ops,
    stop_ops: tokio::sync::oneshot::Sender<()>,
    admin: AdminEndpoints,
    gateway: Option<confab_gateway::Gateway>,
    client: ClientEndpoint,
    federation: Federation,
    service: ClientService,
    store: Store,
}

/// Starts every part of a node from its configuration (logging is the
/// caller's).
pub async fn start(config: &NodeConfig) -> Result<Running> {
    let (key, store) = open_node(config)?;
    tracing::info!(rooms = store.rooms()?.len(), "store open");
    // The peers: the config file's, changed by admins at run time.
    let mut peers: BTreeMap<NodeId, String> = config
        .federation
        .peers
        .iter()
        .map(|p| (p.node, p.addr.clone()))
        .collect();
    for (node, change) in store.peer_changes()? {
        match change {
            PeerChange::Added(addr) => {
                peers.insert(node, addr);
            }
            PeerChange::Removed => {
                peers.remove(&node);
            }
        }
    }
    let pins: PinSet = peers.keys().copied().collect();
    let rooms = Arc::new(Mutex::new(NodeRooms::open(store.clone(), key.node_id())?));
    let mut registry = prometheus_client::registry::Registry::default();
    rooms
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .metrics()
        .register(&mut registry);
    store.register_metrics(&mut registry);
    let service = ClientService::new(
        key.clone(),
        &config.node.name,
        rooms.clone(),
        ServiceSettings::from_config(config),
        Some(&config.node.data_dir.join("uploads")),
    )?;
    service.register_metrics(&mut registry);
    let ops = Ops::new(registry);
    let (stop_ops, ops_stopped) = tokio::sync::oneshot::channel::<()>();
    let ops_addr = if config.metrics.enabled {
        let stop = async {
            let _ = ops_stopped.await;
        };
        Some(
            ops.clone()
                .serve(config.metrics.listen, stop)
                .await
                .map_err(|e| {
                    startup(
                        format!("bind the metrics endpoint {}", config.metrics.listen),
                        e,
                    )
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
    .map_err(|e| {
        startup(
            format!("bind the federation endpoint {}", config.federation.listen),
            e,
        )
    })?;
    let federation_addr = federation.local_addr()?;
    service.set_federation(federation.clone(), peers.keys().copied());
    for (node, addr) in &peers {
        service.add_peer(*node, addr.clone());
    }
    let admin = AdminService::new(
        service.clone(),
        NodeIdentity::key_path(&config.node.data_dir),
    );
    admin.apply_kept_settings()?;
    let socket_path = config.node.data_dir.join("admin.sock");
    let admin_endpoints = AdminEndpoints::start(
        admin,
        &key,
        config.admin.socket.then_some(socket_path.as_path()),
        config.admin.listen,
        config.admin.keys.iter().copied().collect(),
    )
    .map_err(|e| startup("start the admin service", e))?;
    let gateway_pins: PinSet = config.client.gateways.iter().copied().collect();
    let client = ClientEndpoint::start(service.clone(), &key, config.client.listen, gateway_pins)
        .map_err(|e| {
        startup(
            format!("bind the client endpoint {}", config.client.listen),
            e,
        )
    })?;
    let client_addr = client.local_addr()?;
    let gateway = if config.gateway.enabled {
        let mut gw = confab_gateway::config::GatewayConfig::default();
        gw.gateway.name = "in-process".into();
        gw.gateway.listen = config.gateway.listen;
        gw.limits.max_connections_per_user = config.gateway.max_connections_per_user;
        gw.limits.requests_per_minute = config.gateway.requests_per_minute;
        gw.limits.sign_ins_per_minute_per_address = config.gateway.sign_ins_per_minute_per_address;
        gw.http.max_connections_per_address = config.gateway.max_connections_per_address;
        gw.http.trusted_proxies = config.gateway.trusted_proxies.clone();
        gw.log.level.clone_from(&config.log.level);
        // Its metrics are served with the node's, on `[metrics] listen`.
        gw.metrics.enabled = false;
        let g = confab_gateway::Gateway::start(gw, InProcess(service.clone()))
            .await
            .map_err(|e| {
                startup(
                    format!("start the gateway on {}", config.gateway.listen),
                    std::io::Error::other(e.to_string()),
                )
            })?;
        ops.add(g.state().registry.clone());
        Some(g)
    } else {
        None
    };
    for (node, addr) in &peers {
        match tokio::net::lookup_host(addr).await {
            Ok(mut addrs) => match addrs.next() {
                Some(a) => federation.connect(*node, a),
                None => tracing::warn!(addr = %addr, "peer address resolves to nothing"),
            },
            Err(e) => tracing::warn!(addr = %addr, error = %e, "cannot resolve peer address"),
        }
    }
    tracing::info!(
        node = %key.node_id(),
        name = %config.node.name,
        federation = %federation_addr,
        peers = peers.len(),
        "node started"
    );
    ops.set_ready(true);
    Ok(Running {
        node: key.node_id(),
        federation_addr,
        client_addr,
        web_addr: gateway.as_ref().map(confab_gateway::Gateway::local_addr),
        ops_addr,
        admin_socket: admin_endpoints.socket_path().map(PathBuf::from),
        admin_addr: admin_endpoints.quic_addr(),
        peers: peers.len(),
        ops,
        stop_ops,
        admin: admin_endpoints,
        gateway,
        client,
        federation,
        service,
        store,
    })
}

impl Running {
    /// Stops in order, within [`SHUTDOWN_GRACE`]: not ready; no new admin,
    /// browser or gateway connections (open sockets are closed with 1001
    /// after in-flight requests are answered); everything flushed; peers
    /// closed with a reason. Returns false if the grace ran out.
    pub async fn shutdown(self) -> bool {
        let Running {
            ops,
            stop_ops,
            admin,
            gateway,
            client,
            federation,
            service,
            store,
            ..
        } = self;
        ops.set_ready(false);
        let steps = async move {
            admin.shutdown();
            if let Some(g) = gateway {
                g.shutdown().await;
            }
            client.shutdown().await;
            service.shutdown();
            // Requests still running finish on the blocking pool; what
            // they wrote is made durable before the peers are told.
            let flushed = tokio::task::spawn_blocking(move || store.wait_durable()).await;
            match flushed {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "final flush failed"),
                Err(e) => tracing::error!(error = %e, "final flush did not run"),
            }
            federation.shutdown().await;
        };
        let finished = tokio::time::timeout(SHUTDOWN_GRACE, steps).await.is_ok();
        if !finished {
            tracing::warn!(grace_s = SHUTDOWN_GRACE.as_secs(), "shutdown grace ran out");
        }
        let _ = stop_ops.send(());
        finished
    }
}
