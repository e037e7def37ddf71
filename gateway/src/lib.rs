//! `confab-gateway`: serves browsers for one node.
//!
//! A gateway is a client of one node over the client protocol ([`link`]:
//! QUIC, ALPN `confab-client/1`, authenticated by its own key pinned in the
//! node's config; or a channel pair when it runs inside the node). It
//! serves the web UI, the JSON WebSocket protocol of `gateway/PROTOCOL.md`
//! ([`socket`], [`requests`], [`render`]), uploads and downloads
//! ([`http`]), health and metrics. Its sockets and their subscriptions are
//! [`sessions::Sessions`]; it keeps no other state, so several gateways can
//! serve one node. Start one with [`Gateway::start`].
#![warn(missing_docs, unreachable_pub)]

pub mod client_addr;
pub mod config;
pub mod error;
pub mod http;
pub mod limits;
pub mod link;
pub mod markdown;
pub mod metrics;
pub mod render;
pub mod requests;
pub mod serve;
pub mod sessions;
pub mod socket;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::{HeaderMap, header};
pub use error::{Error, Result};
use prometheus_client::registry::Registry;

use config::GatewayConfig;
use limits::Limiter;
use link::{Connector, Link};
use metrics::GatewayMetrics;
use sessions::Sessions;

/// Image types served inline (every other download is an attachment).
pub const INLINE_IMAGES: [&str; 4] = ["image/png", "image/jpeg", "image/gif", "image/webp"];

/// What every request handler shares.
#[derive(Debug)]
pub struct State {
    /// The configuration.
    pub config: GatewayConfig,
    /// The node connection.
    pub link: Link,
    /// The sockets.
    pub sessions: Arc<Sessions>,
    /// The metrics.
    pub metrics: GatewayMetrics,
    /// Their registry.
    pub registry: Arc<Registry>,
    /// Requests per user (or per address before sign-in).
    pub requests: Limiter,
    /// Sign-in attempts per address (`limits.sign_ins_per_minute_per_address`).
    pub logins: Limiter,
    /// Downloads in progress, by user.
    pub downloads: Arc<std::sync::Mutex<std::collections::HashMap<String, usize>>>,
    /// Turns true when the gateway stops; sockets close with 1001.
    pub stopping: tokio::sync::watch::Sender<bool>,
}

impl State {
    /// The upload limit: the node's.
    pub fn max_upload_bytes(&self) -> u64 {
        self.sessions
            .welcome()
            .map_or(0, |w| w.settings.max_upload_bytes)
    }

    /// A browser's `Origin` is this gateway's own host or allow-listed.
    /// Requests without one (not from a browser) pass.
    pub fn origin_allowed(&self, headers: &HeaderMap) -> bool {
        let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
            return true;
        };
        if self.config.http.cors_allow.iter().any(|a| a == origin) {
            return true;
        }
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
            .is_some_and(|o| o == host)
    }
}

pub(crate) fn socket_trace() -> confab_wire::fed::TraceId {
    let mut b = [0u8; 16];
    let _ = getrandom::getrandom(&mut b);
    confab_wire::fed::TraceId(u128::from_le_bytes(b))
}

/// A running gateway.
#[derive(Debug)]
pub struct Gateway {
    state: Arc<State>,
    addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    server: tokio::task::JoinHandle<()>,
}

async fn bind(addr: SocketAddr) -> Result<(tokio::net::TcpListener, SocketAddr)> {
    let bind_error = |e: std::io::Error| Error::Bind {
        addr: addr.to_string(),
        reason: e.to_string(),
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(bind_error)?;
    let bound = listener.local_addr().map_err(bind_error)?;
    Ok((listener, bound))
}

impl Gateway {
    /// Binds `config.gateway.listen`, connects to the node with
    /// `connector` and serves until [`Gateway::shutdown`].
    pub async fn start(config: GatewayConfig, connector: impl Connector) -> Result<Gateway> {
        let metrics = GatewayMetrics::default();
        let registry = metrics.registry();
        let sessions = Arc::new(Sessions::new(metrics.clone()));
        let link = Link::start(connector, sessions.clone());
        let listen = config.gateway.listen;
        let state = Arc::new(State {
            requests: Limiter::new(config.limits.requests_per_minute),
            logins: Limiter::new(config.limits.sign_ins_per_minute_per_address),
            downloads: Arc::default(),
            config,
            link,
            sessions,
            metrics,
            registry,
            stopping: tokio::sync::watch::channel(false).0,
        });
        let (listener, addr) = bind(listen).await?;
        let metrics_addr = if state.config.metrics.enabled {
            let (listener, bound) = bind(state.config.metrics.listen).await?;
            let app = http::ops_router(state.clone());
            let mut stop = state.stopping.subscribe();
            tokio::spawn(async move {
                let stopped = async move {
                    let _ = stop.wait_for(|s| *s).await;
                };
                if let Err(e) = axum::serve(listener, app)
                    .with_graceful_shutdown(stopped)
                    .await
                {
                    tracing::error!(error = %e, "the gateway's metrics endpoint failed");
                }
            });
            Some(bound)
        } else {
            None
        };
        let app = http::router(state.clone());
        let mut stop = state.stopping.subscribe();
        let server = tokio::spawn(serve::serve(listener, app, state.clone(), async move {
            let _ = stop.wait_for(|s| *s).await;
        }));
        Ok(Gateway {
            state,
            addr,
            metrics_addr,
            server,
        })
    }

    /// The address browsers connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address of `/metrics`, if served (`[metrics]`).
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The shared state (for tests and the embedding node).
    pub fn state(&self) -> &Arc<State> {
        &self.state
    }

    /// Waits until the node connection is up (or `timeout` passes).
    pub async fn wait_ready(&self, timeout: std::time::Duration) -> bool {
        self.state.link.wait_up(timeout).await
    }

    /// Closes every socket (1001), stops serving and drops the node
    /// connection.
    pub async fn shutdown(self) {
        self.state.stopping.send_replace(true);
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), self.server).await;
        self.state.link.stop();
    }
}
