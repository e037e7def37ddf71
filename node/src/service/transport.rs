//! The client protocol's transports: QUIC for gateways run as their own
//! processes (ALPN `confab-client/1`, gateway keys pinned in the node's
//! config), and a channel pair for the gateway inside the node process.
//! Both only move messages; [`ClientService`] decides everything.
//!
//! A connection opens with the gateway's `Hello`; the node answers
//! `Welcome` (or an error reply and a close when no version is shared).
//! Requests run on the blocking pool, at most [`IN_FLIGHT_MAX`] per
//! gateway (then reading waits); replies and pushes leave through the
//! gateway's queue in the hub, in the order they were queued.

use std::net::SocketAddr;
use std::sync::Arc;

use confab_wire::client::{
    CLIENT_ALPN, CLIENT_PROTOCOL_VERSION, ClientError, ClientRequest, ErrorCode, NodeWelcome,
    Reply, SessionId, decode_client_frame, request_session,
};
use confab_wire::{ClientMessage, FrameDecoder, NodeKey};
use tokio::sync::{Semaphore, mpsc};

use super::{ClientService, GatewayId};
use crate::error::{Error, Result};
use crate::tls::{self, PinSet};

/// Requests of one gateway being handled at once.
pub const IN_FLIGHT_MAX: usize = 256;
/// Requests queued from the in-process gateway.
pub const LOCAL_QUEUE_DEPTH: usize = 4096;

/// The node's QUIC endpoint for gateways.
#[derive(Debug, Clone)]
pub struct ClientEndpoint {
    endpoint: quinn::Endpoint,
}

impl ClientEndpoint {
    /// Binds `listen` and serves gateways whose keys are in `pins`.
    pub fn start(
        service: ClientService,
        key: &NodeKey,
        listen: SocketAddr,
        pins: PinSet,
    ) -> Result<ClientEndpoint> {
        let server = tls::server_config(key, pins, &[CLIENT_ALPN])?;
        let endpoint = quinn::Endpoint::server(server, listen).map_err(|e| Error::Io {
            path: listen.to_string().into(),
            source: e,
        })?;
        let accepting = endpoint.clone();
        tokio::spawn(async move {
            while let Some(incoming) = accepting.accept().await {
                let svc = service.clone();
                tokio::spawn(async move {
                    let conn = match incoming.await {
                        Ok(c) => c,
                        Err(e) => {
                            tracing::warn!(error = %e, "gateway handshake failed");
                            return;
                        }
                    };
                    let Some(peer) = tls::peer_node_id(&conn) else {
                        return;
                    };
                    match conn.accept_bi().await {
                        Ok((send, recv)) => serve(svc, conn, send, recv).await,
                        Err(e) => {
                            tracing::debug!(gateway = %peer.short(), error = %e, "gateway opened no stream")
                        }
                    }
                });
            }
        });
        Ok(ClientEndpoint { endpoint })
    }

    /// The bound address.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        self.endpoint.local_addr().map_err(|e| Error::Io {
            path: "client endpoint".into(),
            source: e,
        })
    }

    /// Closes every gateway connection and waits until they are gone.
    pub async fn shutdown(&self) {
        self.endpoint.close(0u32.into(), b"node shutting down");
        self.endpoint.wait_idle().await;
    }
}

fn refusal(id: u64, session: SessionId, code: ErrorCode, message: &str) -> ClientMessage {
    ClientMessage::Reply(Reply {
        id,
        session,
        result: Err(ClientError::new(code, message)),
    })
}

/// Runs one request on the blocking pool, holding a slot of the gateway's
/// in-flight budget.
async fn run(svc: &ClientService, gw: GatewayId, req: ClientRequest, slots: &Arc<Semaphore>) {
    let Ok(permit) = slots.clone().acquire_owned().await else {
        return;
    };
    let svc = svc.clone();
    tokio::task::spawn_blocking(move || {
        svc.handle(gw, req);
        drop(permit);
    });
}

async fn serve(
    svc: ClientService,
    conn: quinn::Connection,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
) {
    let mut decoder = FrameDecoder::default();
    let mut buf = vec![0u8; 64 * 1024];
    // The hello first.
    let hello = loop {
        match decoder.next_frame() {
            Ok(Some(frame)) => break decode_client_frame(&frame),
            Ok(None) => {}
            Err(_) => return,
        }
        match recv.read(&mut buf).await {
            Ok(Some(n)) => decoder.push(&buf[..n]),
            _ => return,
        }
    };
    let name = match hello {
        Ok(ClientMessage::Hello(h))
            if h.version_min <= CLIENT_PROTOCOL_VERSION
                && CLIENT_PROTOCOL_VERSION <= h.version_max =>
        {
            h.name
        }
        _ => {
            let no = refusal(
                0,
                SessionId(0),
                ErrorCode::BadRequest,
                &format!(
                    "expected a hello with client protocol version {CLIENT_PROTOCOL_VERSION}: \
                     run a gateway of this node's release"
                ),
            );
            if let Ok(bytes) = no.to_frame_bytes() {
                let _ = send.write_all(&bytes).await;
            }
            let _ = send.finish();
            conn.close(1u32.into(), b"unsupported version");
            return;
        }
    };
    let welcome = ClientMessage::Welcome(svc.welcome(CLIENT_PROTOCOL_VERSION));
    match welcome.to_frame_bytes() {
        Ok(bytes) if send.write_all(&bytes).await.is_ok() => {}
        _ => return,
    }
    let (gw, mut out) = svc.attach(&name);
    tracing::info!(gateway = %name, remote = %conn.remote_address(), "gateway connected");
    let (pongs, mut pong_rx) = mpsc::channel::<u64>(16);
    let writer = tokio::spawn(async move {
        let mut bytes = Vec::with_capacity(64 * 1024);
        loop {
            tokio::select! {
                msg = out.recv() => {
                    let Some(msg) = msg else { break };
                    bytes.clear();
                    let _ = msg.encode(&mut bytes);
                    // Whatever else is queued goes in the same write.
                    while bytes.len() < 256 * 1024 {
                        match out.try_recv() {
                            Ok(m) => { let _ = m.encode(&mut bytes); }
                            Err(_) => break,
                        }
                    }
                }
                p = pong_rx.recv() => {
                    let Some(p) = p else { break };
                    bytes.clear();
                    let _ = ClientMessage::Pong(p).encode(&mut bytes);
                }
            }
            if send.write_all(&bytes).await.is_err() {
                break;
            }
        }
        let _ = send.finish();
    });
    let slots = Arc::new(Semaphore::new(IN_FLIGHT_MAX));
    'read: loop {
        loop {
            let frame = match decoder.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(gateway = %name, error = %e, "bad framing from gateway; closing");
                    break 'read;
                }
            };
            match decode_client_frame(&frame) {
                Ok(ClientMessage::Request(req)) => run(&svc, gw, req, &slots).await,
                Ok(ClientMessage::Ping(n)) => {
                    let _ = pongs.try_send(n);
                }
                Ok(_) => {}
                Err(confab_wire::Error::BadRequestBody { id, .. }) => {
                    let session = request_session(&frame).unwrap_or_default();
                    svc.send(
                        gw,
                        refusal(
                            id,
                            session,
                            ErrorCode::UnknownRequest,
                            "this node does not know that request",
                        ),
                    );
                }
                Err(e) => tracing::debug!(gateway = %name, error = %e, "skipping a frame"),
            }
        }
        match recv.read(&mut buf).await {
            Ok(Some(n)) => decoder.push(&buf[..n]),
            _ => break,
        }
    }
    svc.detach(gw);
    writer.abort();
    tracing::info!(gateway = %name, "gateway disconnected");
}

/// A gateway inside the node process: requests go in on the sender,
/// replies and pushes come out of the receiver. Dropping the sender
/// detaches the gateway.
#[derive(Debug)]
pub struct LocalLink {
    /// The node's welcome.
    pub welcome: NodeWelcome,
    /// Requests to the node.
    pub requests: mpsc::Sender<ClientRequest>,
    /// Replies and pushes from the node.
    pub messages: mpsc::Receiver<ClientMessage>,
}

impl ClientService {
    /// Attaches an in-process gateway (see [`LocalLink`]). Spawns its
    /// request task on the current runtime.
    pub fn attach_local(&self, name: &str) -> LocalLink {
        let (gw, messages) = self.attach(name);
        let (requests, mut rx) = mpsc::channel::<ClientRequest>(LOCAL_QUEUE_DEPTH);
        let svc = self.clone();
        tokio::spawn(async move {
            let slots = Arc::new(Semaphore::new(IN_FLIGHT_MAX));
            while let Some(req) = rx.recv().await {
                run(&svc, gw, req, &slots).await;
            }
            svc.detach(gw);
        });
        LocalLink {
            welcome: self.welcome(CLIENT_PROTOCOL_VERSION),
            requests,
            messages,
        }
    }
}

/// Connects a gateway inside the node process to the service.
#[derive(Debug, Clone)]
pub struct InProcess(pub ClientService);

impl confab_gateway::link::Connector for InProcess {
    fn connect(&self) -> confab_gateway::link::Connecting {
        let link = self.0.attach_local("in-process");
        Box::pin(async move {
            Ok(confab_gateway::link::NodeConn {
                welcome: link.welcome,
                requests: link.requests,
                messages: link.messages,
            })
        })
    }
}
