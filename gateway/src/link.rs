//! The gateway's one connection to its node, kept up with reconnects.
//!
//! A [`Connector`] makes a connection: QUIC to a node run as its own
//! process ([`QuicConnector`]: ALPN `confab-client/1`, the node's key
//! pinned), or a channel pair inside the node process. The [`Link`] sends
//! requests with ids of its own, matches replies to waiting callers, hands
//! pushes to the gateway, and redials with capped back-off when the
//! connection ends. Requests in flight when it ends fail with `unavailable`.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use confab_wire::client::{
    AccessToken, CLIENT_ALPN, CLIENT_PROTOCOL_VERSION, ClientError, ClientHello, ClientRequest,
    ErrorCode, NodeWelcome, Push, Request, Response, SessionId,
};
use confab_wire::endpoint::tls::{self, PinSet};
use confab_wire::fed::TraceId;
use confab_wire::{ClientMessage, FrameDecoder, NodeId, NodeKey, decode_client_frame};
use tokio::sync::{mpsc, oneshot, watch};

/// How long a request may wait for its reply.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// First redial delay.
pub const BACKOFF_MIN_MS: u64 = 200;
/// Longest redial delay.
pub const BACKOFF_MAX_MS: u64 = 5_000;
/// Requests queued towards the node.
pub const REQUEST_QUEUE_DEPTH: usize = 4096;
/// Messages from the node queued for the gateway.
pub const MESSAGE_QUEUE_DEPTH: usize = 65_536;

/// A live connection to the node.
#[derive(Debug)]
pub struct NodeConn {
    /// The node's welcome.
    pub welcome: NodeWelcome,
    /// Requests to the node.
    pub requests: mpsc::Sender<ClientRequest>,
    /// Replies and pushes from the node; ends when the connection does.
    pub messages: mpsc::Receiver<ClientMessage>,
}

/// A connection attempt.
pub type Connecting = Pin<Box<dyn Future<Output = Result<NodeConn, String>> + Send>>;

/// Makes connections to the node.
pub trait Connector: Send + Sync + 'static {
    /// Connects once.
    fn connect(&self) -> Connecting;
}

/// What the gateway does with what the node says unasked.
pub trait PushSink: Send + Sync + 'static {
    /// A push from the node.
    fn push(&self, push: Push);
    /// The connection came up (with the node's welcome) or went down
    /// (`None`): sessions of the old connection cannot resume on the new
    /// one by themselves.
    fn link_changed(&self, welcome: Option<&NodeWelcome>);
}

type Pending = HashMap<u64, oneshot::Sender<Result<Response, ClientError>>>;

#[derive(Debug)]
struct Inner {
    requests: Mutex<Option<mpsc::Sender<ClientRequest>>>,
    pending: Mutex<Pending>,
    next_id: AtomicU64,
    welcome: RwLock<Option<NodeWelcome>>,
    up: watch::Sender<bool>,
    stop: watch::Sender<bool>,
}

/// The connection to the node, redialled as needed. Cloning shares it.
#[derive(Debug, Clone)]
pub struct Link {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn unavailable(message: &str) -> ClientError {
    ClientError::new(ErrorCode::Unavailable, message)
}

impl Link {
    /// Starts keeping a connection with `connector`; pushes go to `sink`.
    pub fn start(connector: impl Connector, sink: Arc<dyn PushSink>) -> Link {
        let inner = Arc::new(Inner {
            requests: Mutex::new(None),
            pending: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            welcome: RwLock::new(None),
            up: watch::channel(false).0,
            stop: watch::channel(false).0,
        });
        let link = Link { inner };
        let l = link.clone();
        tokio::spawn(async move { l.run(connector, sink).await });
        link
    }

    async fn run(self, connector: impl Connector, sink: Arc<dyn PushSink>) {
        let mut stop = self.inner.stop.subscribe();
        let mut backoff = BACKOFF_MIN_MS;
        loop {
            if *stop.borrow() {
                return;
            }
            let attempt = tokio::select! {
                c = connector.connect() => c,
                _ = stop.changed() => return,
            };
            match attempt {
                Ok(mut conn) => {
                    backoff = BACKOFF_MIN_MS;
                    tracing::info!(node = %conn.welcome.node.short(), name = %conn.welcome.name, "connected to the node");
                    *lock(&self.inner.requests) = Some(conn.requests.clone());
                    *self
                        .inner
                        .welcome
                        .write()
                        .unwrap_or_else(|p| p.into_inner()) = Some(conn.welcome.clone());
                    sink.link_changed(Some(&conn.welcome));
                    self.inner.up.send_replace(true);
                    loop {
                        let msg = tokio::select! {
                            m = conn.messages.recv() => m,
                            _ = stop.changed() => None,
                        };
                        match msg {
                            Some(ClientMessage::Reply(r)) => {
                                if let Some(w) = lock(&self.inner.pending).remove(&r.id) {
                                    let _ = w.send(r.result);
                                }
                            }
                            Some(ClientMessage::Push(p)) => {
                                if let Push::Settings(s) = &p
                                    && let Some(w) = self
                                        .inner
                                        .welcome
                                        .write()
                                        .unwrap_or_else(|p| p.into_inner())
                                        .as_mut()
                                {
                                    w.settings = *s;
                                }
                                sink.push(p);
                            }
                            Some(_) => {}
                            None => break,
                        }
                    }
                    self.inner.up.send_replace(false);
                    *lock(&self.inner.requests) = None;
                    let failed: Pending = std::mem::take(&mut *lock(&self.inner.pending));
                    for (_, w) in failed {
                        let _ = w.send(Err(unavailable("the connection to the node was lost")));
                    }
                    sink.link_changed(None);
                    tracing::warn!("lost the connection to the node; redialling");
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_ms = backoff, "cannot reach the node");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(backoff)) => {}
                _ = stop.changed() => return,
            }
            backoff = (backoff * 2).min(BACKOFF_MAX_MS);
        }
    }

    /// True while connected.
    pub fn is_up(&self) -> bool {
        *self.inner.up.borrow()
    }

    /// Waits until connected (or `timeout` passes); returns whether it is.
    pub async fn wait_up(&self, timeout: Duration) -> bool {
        let mut up = self.inner.up.subscribe();
        tokio::time::timeout(timeout, up.wait_for(|u| *u))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// The node's welcome from the current (or last) connection.
    pub fn welcome(&self) -> Option<NodeWelcome> {
        self.inner
            .welcome
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Sends a request and waits for its reply.
    pub async fn request(
        &self,
        session: SessionId,
        trace: TraceId,
        auth: Option<AccessToken>,
        body: Request,
    ) -> Result<Response, ClientError> {
        let Some(tx) = lock(&self.inner.requests).clone() else {
            return Err(unavailable(
                "the gateway is not connected to its node; try again shortly",
            ));
        };
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let (w, r) = oneshot::channel();
        lock(&self.inner.pending).insert(id, w);
        let req = ClientRequest {
            id,
            session,
            trace,
            auth,
            body,
        };
        if tx.send(req).await.is_err() {
            lock(&self.inner.pending).remove(&id);
            return Err(unavailable("the connection to the node was lost"));
        }
        match tokio::time::timeout(REQUEST_TIMEOUT, r).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(unavailable("the connection to the node was lost")),
            Err(_) => {
                lock(&self.inner.pending).remove(&id);
                Err(unavailable("the node did not answer in time"))
            }
        }
    }

    /// Tells the node without waiting for an answer (a session ended). A
    /// full queue does not drop it: it is sent once there is room, or the
    /// session would stay on the node for good.
    pub fn notify(&self, session: SessionId, body: Request) {
        if let Some(tx) = lock(&self.inner.requests).clone() {
            let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
            let request = ClientRequest {
                id,
                session,
                trace: TraceId::default(),
                auth: None,
                body,
            };
            if let Err(mpsc::error::TrySendError::Full(request)) = tx.try_send(request)
                && let Ok(runtime) = tokio::runtime::Handle::try_current()
            {
                runtime.spawn(async move {
                    let _ = tx.send(request).await;
                });
            }
        }
    }

    /// Stops redialling and drops the connection.
    pub fn stop(&self) {
        self.inner.stop.send_replace(true);
    }
}

/// Dials a node over QUIC with the gateway's key, accepting only the
/// node's pinned key.
#[derive(Debug, Clone)]
pub struct QuicConnector {
    endpoint: quinn::Endpoint,
    node: NodeId,
    addr: String,
    name: String,
}

impl QuicConnector {
    /// A connector for the node `node` at `addr` (`host:port`).
    pub fn new(key: &NodeKey, node: NodeId, addr: &str, name: &str) -> crate::Result<Self> {
        let pins: PinSet = [node].into_iter().collect();
        let config = tls::client_config(key, pins, &[CLIENT_ALPN])?;
        let bind: SocketAddr = if addr.starts_with('[') {
            "[::]:0"
        } else {
            "0.0.0.0:0"
        }
        .parse()
        .map_err(|_| crate::Error::Bind {
            addr: "0.0.0.0:0".into(),
            reason: "bad address".into(),
        })?;
        let mut endpoint = quinn::Endpoint::client(bind).map_err(|e| crate::Error::Bind {
            addr: bind.to_string(),
            reason: e.to_string(),
        })?;
        endpoint.set_default_client_config(config);
        Ok(QuicConnector {
            endpoint,
            node,
            addr: addr.to_string(),
            name: name.to_string(),
        })
    }
}

impl Connector for QuicConnector {
    fn connect(&self) -> Connecting {
        let this = self.clone();
        Box::pin(async move {
            let addr = tokio::net::lookup_host(&this.addr)
                .await
                .map_err(|e| format!("{}: {e}", this.addr))?
                .next()
                .ok_or_else(|| format!("{} resolves to nothing", this.addr))?;
            let conn = this
                .endpoint
                .connect(addr, &tls::server_name(&this.node))
                .map_err(|e| e.to_string())?
                .await
                .map_err(|e| e.to_string())?;
            let (mut send, mut recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
            let hello = ClientMessage::Hello(ClientHello {
                version_min: CLIENT_PROTOCOL_VERSION,
                version_max: CLIENT_PROTOCOL_VERSION,
                name: this.name.clone(),
            });
            send.write_all(&hello.to_frame_bytes().map_err(|e| e.to_string())?)
                .await
                .map_err(|e| e.to_string())?;
            let mut decoder = FrameDecoder::default();
            let mut buf = vec![0u8; 64 * 1024];
            let welcome = loop {
                if let Some(frame) = decoder.next_frame().map_err(|e| e.to_string())? {
                    match decode_client_frame(&frame).map_err(|e| e.to_string())? {
                        ClientMessage::Welcome(w) => break w,
                        ClientMessage::Reply(r) => {
                            let why = r.result.err().map(|e| e.message).unwrap_or_default();
                            return Err(format!("the node refused the connection: {why}"));
                        }
                        _ => return Err("the node did not welcome the gateway".into()),
                    }
                }
                match recv.read(&mut buf).await.map_err(|e| e.to_string())? {
                    Some(n) => decoder.push(&buf[..n]),
                    None => return Err("the node closed the connection".into()),
                }
            };
            let (req_tx, mut req_rx) = mpsc::channel::<ClientRequest>(REQUEST_QUEUE_DEPTH);
            let (msg_tx, msg_rx) = mpsc::channel::<ClientMessage>(MESSAGE_QUEUE_DEPTH);
            let writer_conn = conn.clone();
            tokio::spawn(async move {
                let mut bytes = Vec::with_capacity(64 * 1024);
                while let Some(req) = req_rx.recv().await {
                    bytes.clear();
                    let _ = ClientMessage::Request(req).encode(&mut bytes);
                    while bytes.len() < 256 * 1024 {
                        match req_rx.try_recv() {
                            Ok(r) => {
                                let _ = ClientMessage::Request(r).encode(&mut bytes);
                            }
                            Err(_) => break,
                        }
                    }
                    if send.write_all(&bytes).await.is_err() {
                        break;
                    }
                }
                writer_conn.close(0u32.into(), b"gateway stopping");
            });
            tokio::spawn(async move {
                loop {
                    loop {
                        match decoder.next_frame() {
                            Ok(Some(frame)) => match decode_client_frame(&frame) {
                                Ok(m) => {
                                    if msg_tx.send(m).await.is_err() {
                                        return;
                                    }
                                }
                                Err(e) => {
                                    tracing::debug!(error = %e, "skipping a frame from the node")
                                }
                            },
                            Ok(None) => break,
                            Err(e) => {
                                tracing::warn!(error = %e, "bad framing from the node");
                                conn.close(2u32.into(), b"bad framing");
                                return;
                            }
                        }
                    }
                    match recv.read(&mut buf).await {
                        Ok(Some(n)) => decoder.push(&buf[..n]),
                        _ => return,
                    }
                }
            });
            Ok(NodeConn {
                welcome,
                requests: req_tx,
                messages: msg_rx,
            })
        })
    }
}
