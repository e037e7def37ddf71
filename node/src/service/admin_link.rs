//! The admin protocol's transports: a Unix socket in the data directory
//! (mode 0600, so only the node's OS user and root can connect; the audit
//! log names the connecting uid) and QUIC with the admins' keys pinned
//! (ALPN `confab-admin/1`). Both only move frames; [`AdminService`]
//! decides everything.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use confab_wire::admin::{
    ADMIN_ALPN, ADMIN_PROTOCOL_VERSION, AdminError, AdminErrorCode, AdminMessage, AdminReply,
    decode_admin_frame, request_id,
};
use confab_wire::{FrameDecoder, NodeKey};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use super::admin::{Actor, AdminService};
use crate::error::{Error, Result};
use crate::tls::{self, PinSet};

/// Replies of one backup queued before the reader of the store waits.
const REPLY_QUEUE: usize = 8;
/// How long one reply may take to be written before the admin client is
/// taken for gone (a stalled reader must not hold a job forever).
pub const ADMIN_WRITE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// The admin endpoints of a running node.
#[derive(Debug)]
pub struct AdminEndpoints {
    socket: Option<PathBuf>,
    quic: Option<quinn::Endpoint>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl AdminEndpoints {
    /// Serves `admin` on `socket` (if given) and over QUIC on `listen` for
    /// the `keys` (if any).
    pub fn start(
        admin: AdminService,
        node_key: &NodeKey,
        socket: Option<&Path>,
        listen: SocketAddr,
        keys: PinSet,
    ) -> Result<AdminEndpoints> {
        let mut tasks = Vec::new();
        let socket = match socket {
            Some(path) => {
                let listener = bind_socket(path)?;
                let a = admin.clone();
                tasks.push(tokio::spawn(async move {
                    loop {
                        let Ok((stream, _)) = listener.accept().await else {
                            continue;
                        };
                        let uid = stream.peer_cred().map(|c| c.uid()).ok();
                        let actor = Actor(match uid {
                            Some(uid) => format!("uid {uid} (socket)"),
                            None => "socket".into(),
                        });
                        let a = a.clone();
                        tokio::spawn(async move {
                            let (r, w) = stream.into_split();
                            session(a, actor, r, w).await;
                        });
                    }
                }));
                Some(path.to_path_buf())
            }
            None => None,
        };
        let quic = if keys.is_empty() {
            None
        } else {
            let server = tls::server_config(node_key, keys, &[ADMIN_ALPN])?;
            let endpoint = quinn::Endpoint::server(server, listen).map_err(|e| Error::Io {
                path: listen.to_string().into(),
                source: e,
            })?;
            let accepting = endpoint.clone();
            tasks.push(tokio::spawn(async move {
                while let Some(incoming) = accepting.accept().await {
                    let a = admin.clone();
                    tokio::spawn(async move {
                        let Ok(conn) = incoming.await else { return };
                        let Some(key) = tls::peer_node_id(&conn) else {
                            return;
                        };
                        let Ok((send, recv)) = conn.accept_bi().await else {
                            return;
                        };
                        session(a, Actor(format!("key {}", key.short())), recv, send).await;
                    });
                }
            }));
            Some(endpoint)
        };
        Ok(AdminEndpoints {
            socket,
            quic,
            tasks,
        })
    }

    /// The QUIC endpoint's address, when it runs.
    pub fn quic_addr(&self) -> Option<SocketAddr> {
        self.quic.as_ref().and_then(|e| e.local_addr().ok())
    }

    /// The socket's path, when it runs.
    pub fn socket_path(&self) -> Option<&Path> {
        self.socket.as_deref()
    }

    /// Stops accepting and removes the socket file.
    pub fn shutdown(self) {
        for t in &self.tasks {
            t.abort();
        }
        if let Some(e) = &self.quic {
            e.close(0u32.into(), b"node shutting down");
        }
        if let Some(p) = &self.socket {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Binds the socket; a leftover file from a node that is gone is replaced,
/// one a running node still answers on is not.
fn bind_socket(path: &Path) -> Result<tokio::net::UnixListener> {
    let io = |e: std::io::Error| Error::Io {
        path: path.to_path_buf(),
        source: e,
    };
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(io(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                "another node answers on this admin socket",
            )));
        }
        std::fs::remove_file(path).map_err(io)?;
    }
    let listener = tokio::net::UnixListener::bind(path).map_err(io)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    Ok(listener)
}

async fn write(w: &mut (impl AsyncWrite + Unpin), m: &AdminMessage) -> bool {
    match m.to_frame_bytes() {
        Ok(bytes) => {
            let sent = async { w.write_all(&bytes).await.is_ok() && w.flush().await.is_ok() };
            match tokio::time::timeout(ADMIN_WRITE_TIMEOUT, sent).await {
                Ok(sent) => sent,
                Err(_) => {
                    tracing::warn!(
                        seconds = ADMIN_WRITE_TIMEOUT.as_secs(),
                        "an admin client read nothing for too long; dropping it"
                    );
                    false
                }
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "admin reply not encodable");
            false
        }
    }
}

fn refusal(id: u64, message: impl Into<String>) -> AdminMessage {
    AdminMessage::Reply(AdminReply {
        id,
        more: false,
        result: Err(AdminError::new(AdminErrorCode::BadRequest, message)),
    })
}

/// One CLI connection: hello, then requests one at a time.
async fn session(
    admin: AdminService,
    actor: Actor,
    mut r: impl AsyncRead + Unpin,
    mut w: impl AsyncWrite + Unpin,
) {
    let mut decoder = FrameDecoder::default();
    let mut buf = vec![0u8; 16 * 1024];
    let mut hello = false;
    loop {
        let frame = match decoder.next_frame() {
            Ok(Some(f)) => f,
            Ok(None) => match r.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    decoder.push(&buf[..n]);
                    continue;
                }
            },
            Err(e) => {
                let _ = write(&mut w, &refusal(0, format!("bad frame: {e}"))).await;
                return;
            }
        };
        let msg = match decode_admin_frame(&frame) {
            Ok(m) => m,
            Err(e) => {
                let id = request_id(&frame).unwrap_or(0);
                if !write(&mut w, &refusal(id, format!("bad request: {e}"))).await {
                    return;
                }
                continue;
            }
        };
        match msg {
            AdminMessage::Hello(h) if !hello => {
                if h.version != ADMIN_PROTOCOL_VERSION {
                    let _ = write(
                        &mut w,
                        &refusal(0, format!("this node speaks admin protocol {ADMIN_PROTOCOL_VERSION}; the CLI speaks {}: use a matching confabctl", h.version)),
                    )
                    .await;
                    return;
                }
                hello = true;
                tracing::debug!(actor = %actor.0, client = %h.client, "admin connected");
                if !write(&mut w, &AdminMessage::Welcome(admin.welcome())).await {
                    return;
                }
            }
            AdminMessage::Request(req) if hello => {
                let (tx, mut rx) = mpsc::channel::<AdminReply>(REPLY_QUEUE);
                let (a, who) = (admin.clone(), actor.clone());
                let job = tokio::task::spawn_blocking(move || {
                    a.handle(&who, req, &mut |reply| tx.blocking_send(reply).is_ok());
                });
                let mut open = true;
                while let Some(reply) = rx.recv().await {
                    if open && !write(&mut w, &AdminMessage::Reply(reply)).await {
                        // Keep draining so the job ends (it sees the
                        // closed channel once rx is dropped).
                        open = false;
                        break;
                    }
                }
                drop(rx);
                let _ = job.await;
                if !open {
                    return;
                }
            }
            _ => {
                let _ = write(&mut w, &refusal(0, "expected a hello, then requests")).await;
                return;
            }
        }
    }
}
