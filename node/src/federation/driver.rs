//! The thin I/O layer: one tokio task per quinn connection moves frames
//! between a bidirectional stream and a [`PeerSync`], and timers. All
//! replication decisions are the state machine's.
//!
//! One connection per pair of nodes: only the node with the smaller id
//! dials (the other accepts), so two nodes never hold two connections.
//! The dialer reconnects with capped exponential backoff and jitter.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use confab_wire::fed::FED_ALPN;
use confab_wire::{FedMessage, FrameDecoder, NodeId, NodeKey, RoomId, SignedEvent};
use tokio::sync::mpsc;

use super::replica::NodeRooms;
use super::sync::{self, PeerSync};
use crate::error::{Error, Result};
use crate::local::now_ms;
use crate::tls::{self, PinSet};

/// Pushes waiting for one connection task.
pub const PEER_QUEUE_DEPTH: usize = 4096;
/// First reconnect delay.
pub const BACKOFF_MIN_MS: u64 = 100;
/// Longest reconnect delay.
pub const BACKOFF_MAX_MS: u64 = 30_000;

#[derive(Debug)]
struct Shared {
    key: NodeKey,
    name: String,
    rooms: Arc<Mutex<NodeRooms>>,
    peers: Mutex<HashMap<NodeId, mpsc::Sender<(RoomId, SignedEvent)>>>,
    /// Turns true once on shutdown; every task watches it.
    stopping: tokio::sync::watch::Sender<bool>,
}

/// A node's federation: its endpoint, its peers' connection tasks, and the
/// rooms they replicate.
#[derive(Debug, Clone)]
pub struct Federation {
    shared: Arc<Shared>,
    endpoint: quinn::Endpoint,
}

impl Federation {
    /// Binds the endpoint and starts accepting pinned peers.
    pub fn start(
        key: NodeKey,
        name: &str,
        listen: SocketAddr,
        pins: PinSet,
        rooms: Arc<Mutex<NodeRooms>>,
    ) -> Result<Federation> {
        let server = tls::server_config(&key, pins.clone(), &[FED_ALPN])?;
        let mut endpoint = quinn::Endpoint::server(server, listen).map_err(|e| Error::Io {
            path: listen.to_string().into(),
            source: e,
        })?;
        endpoint.set_default_client_config(tls::client_config(&key, pins, &[FED_ALPN])?);
        let fed = Federation {
            shared: Arc::new(Shared {
                key,
                name: name.to_string(),
                rooms,
                peers: Mutex::new(HashMap::new()),
                stopping: tokio::sync::watch::channel(false).0,
            }),
            endpoint,
        };
        let accepting = fed.clone();
        tokio::spawn(async move {
            while let Some(incoming) = accepting.endpoint.accept().await {
                let f = accepting.clone();
                tokio::spawn(async move {
                    match incoming.await {
                        Ok(conn) => {
                            if let Some(peer) = tls::peer_node_id(&conn) {
                                match conn.accept_bi().await {
                                    Ok((send, recv)) => f.serve(peer, conn, send, recv).await,
                                    Err(e) => tracing::debug!(error = %e, "peer opened no stream"),
                                }
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "federation handshake failed"),
                    }
                });
            }
        });
        Ok(fed)
    }

    /// The bound address.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        self.endpoint.local_addr().map_err(|e| Error::Io {
            path: "federation endpoint".into(),
            source: e,
        })
    }

    /// Keeps a connection to `peer` at `addr` (only if this node's id is
    /// the smaller; otherwise the peer dials).
    pub fn connect(&self, peer: NodeId, addr: SocketAddr) {
        if self.shared.key.node_id() >= peer {
            return;
        }
        let f = self.clone();
        let mut stopping = self.shared.stopping.subscribe();
        tokio::spawn(async move {
            let mut backoff = BACKOFF_MIN_MS;
            let mut jitter =
                u64::from_le_bytes(peer.as_bytes()[..8].try_into().unwrap_or([1; 8])) | 1;
            loop {
                let dialed = async {
                    let conn = f
                        .endpoint
                        .connect(addr, &tls::server_name(&peer))
                        .map_err(|e| e.to_string())?
                        .await
                        .map_err(|e| e.to_string())?;
                    let (send, recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
                    Ok::<_, String>((conn, send, recv))
                }
                .await;
                match dialed {
                    Ok((conn, send, recv)) => {
                        backoff = BACKOFF_MIN_MS;
                        f.serve(peer, conn, send, recv).await;
                    }
                    Err(e) => tracing::debug!(peer = %peer.short(), error = %e, "dial failed"),
                }
                jitter ^= jitter << 13;
                jitter ^= jitter >> 7;
                jitter ^= jitter << 17;
                let wait = backoff / 2 + jitter % (backoff / 2 + 1);
                if *stopping.borrow() {
                    return;
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(wait)) => {}
                    _ = stopping.changed() => return,
                }
                backoff = (backoff * 2).min(BACKOFF_MAX_MS);
            }
        });
    }

    /// Sends a new local event to every connected peer.
    pub fn publish(&self, room: RoomId, event: &SignedEvent) {
        let peers = self
            .shared
            .peers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect::<Vec<_>>();
        for p in peers {
            // A full queue drops the push; anti-entropy delivers it later.
            let _ = p.try_send((room, event.clone()));
        }
    }

    /// Stops: closes every connection with a reason, ends every task and
    /// waits until the endpoint is idle (its port is then free again).
    pub async fn shutdown(&self) {
        self.shared.stopping.send_replace(true);
        self.endpoint.close(0u32.into(), b"shutting down");
        self.endpoint.wait_idle().await;
    }

    /// Closes every connection without waiting.
    pub fn close(&self) {
        self.shared.stopping.send_replace(true);
        self.endpoint.close(0u32.into(), b"shutting down");
    }

    async fn serve(
        &self,
        peer: NodeId,
        conn: quinn::Connection,
        mut send: quinn::SendStream,
        mut recv: quinn::RecvStream,
    ) {
        let (tx, mut pushes) = mpsc::channel(PEER_QUEUE_DEPTH);
        self.shared
            .peers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(peer, tx);
        let seed = now_ms() ^ u64::from_le_bytes(peer.as_bytes()[..8].try_into().unwrap_or([7; 8]));
        let mut machine = PeerSync::new(
            sync::hello(self.shared.key.node_id(), &self.shared.name),
            peer,
            now_ms(),
            seed,
        );
        let mut decoder = FrameDecoder::default();
        let mut buf = vec![0u8; 64 * 1024];
        tracing::info!(peer = %peer.short(), remote = %conn.remote_address(), "peer connected");
        loop {
            // Write whatever the machine has to say.
            let mut out = Vec::new();
            while let Some(msg) = machine.poll_transmit() {
                if let Err(e) = msg.encode(&mut out) {
                    tracing::warn!(error = %e, "dropping an unencodable frame");
                }
            }
            if !out.is_empty() && send.write_all(&out).await.is_err() {
                break;
            }
            if let Some(reason) = machine.closed() {
                tracing::warn!(peer = %peer.short(), reason, "closing connection");
                conn.close(1u32.into(), reason.as_bytes());
                break;
            }
            let deadline = machine.poll_timeout().unwrap_or(now_ms() + 60_000);
            let sleep = Duration::from_millis(deadline.saturating_sub(now_ms()));
            tokio::select! {
                read = recv.read(&mut buf) => {
                    let n = match read {
                        Ok(Some(n)) => n,
                        _ => break,
                    };
                    decoder.push(&buf[..n]);
                    loop {
                        match decoder.next_frame() {
                            Ok(Some(frame)) => match FedMessage::decode(&frame) {
                                Ok(msg) => {
                                    let effects = {
                                        let mut rooms = self.shared.rooms.lock().unwrap_or_else(|p| p.into_inner());
                                        machine.handle_message(now_ms(), msg, &mut *rooms)
                                    };
                                    self.forward(&peer, effects.accepted);
                                }
                                Err(e) => tracing::debug!(peer = %peer.short(), error = %e, "skipping a frame"),
                            },
                            Ok(None) => break,
                            Err(e) => {
                                tracing::warn!(peer = %peer.short(), error = %e, "bad framing; closing");
                                conn.close(2u32.into(), b"bad framing");
                                self.drop_peer(&peer);
                                return;
                            }
                        }
                    }
                }
                Some((room, ev)) = pushes.recv() => machine.push(room, ev),
                _ = tokio::time::sleep(sleep) => {
                    let rooms = self.shared.rooms.lock().unwrap_or_else(|p| p.into_inner());
                    machine.handle_timeout(now_ms(), &*rooms);
                }
            }
        }
        self.drop_peer(&peer);
        tracing::info!(peer = %peer.short(), "peer disconnected");
    }

    fn drop_peer(&self, peer: &NodeId) {
        self.shared
            .peers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(peer);
    }

    fn forward(&self, from: &NodeId, accepted: Vec<(RoomId, SignedEvent)>) {
        if accepted.is_empty() {
            return;
        }
        let peers: Vec<(NodeId, mpsc::Sender<(RoomId, SignedEvent)>)> = self
            .shared
            .peers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|(p, _)| *p != from)
            .map(|(p, s)| (*p, s.clone()))
            .collect();
        for (_, p) in peers {
            for (room, ev) in &accepted {
                let _ = p.try_send((*room, ev.clone()));
            }
        }
    }
}
