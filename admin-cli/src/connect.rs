//! The two ways to reach a node's admin service, and one request over
//! either.
//!
//! - The node's Unix socket (`<data_dir>/admin.sock`): file permissions
//!   decide who may use it.
//! - QUIC (ALPN `confab-admin/1`): the admin presents the key in `--key`,
//!   which the node must pin in `[admin] keys`, and accepts only the node
//!   named by `--node-id`.
//!
//! On either, [`Session::open`] sends `Hello` and waits for `Welcome`;
//! [`Session::request`] sends one `Request` and hands each `Reply` with its
//! id to the caller until one says `more: false`. A session carries one
//! request: confabctl runs one command per process. Failing to reach the
//! node, or the node going away mid-answer, is [`Kind::Unavailable`]
//! (exit 6), with a message naming the socket or address and what to check.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use confab_wire::admin::{
    ADMIN_ALPN, ADMIN_PROTOCOL_VERSION, AdminHello, AdminMessage, AdminOutput, AdminRequest,
    AdminWelcome, decode_admin_frame,
};
use confab_wire::endpoint::{keyfile, tls};
use confab_wire::{FrameDecoder, NodeId, NodeKey};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::error::{Failure, Kind, Result, error_line};

/// The socket's path when neither `--socket` nor `CONFAB_ADMIN_SOCKET`
/// names one: the default data directory's.
pub(crate) const DEFAULT_SOCKET: &str = "./data/admin.sock";
/// Longest wait for the QUIC handshake.
pub(crate) const CONNECT_WAIT_MAX: Duration = Duration::from_secs(10);
/// Longest wait for the node's welcome.
pub(crate) const WELCOME_WAIT_MAX: Duration = Duration::from_secs(10);
/// Longest silence while waiting for a reply (or the next backup chunk).
pub(crate) const REPLY_WAIT_MAX: Duration = Duration::from_secs(120);
/// How long closing waits for the QUIC close to reach the node.
const CLOSE_WAIT_MAX: Duration = Duration::from_secs(1);
/// Bytes read from the connection at a time.
const READ_BUF_BYTES: usize = 64 * 1024;
/// TLS alert a server sends when it offers none of the client's ALPNs.
const ALERT_NO_APPLICATION_PROTOCOL: u8 = 120;

/// Where the node's admin service is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// The node's Unix socket.
    Socket(PathBuf),
    /// QUIC to `addr` (`host:port`), pinned to `node`, presenting the key
    /// in the file `key`.
    Quic {
        /// `host:port`.
        addr: String,
        /// The node's id.
        node: NodeId,
        /// The admin's key file.
        key: PathBuf,
    },
}

impl Target {
    /// The socket path or address, for messages.
    pub(crate) fn describe(&self) -> String {
        match self {
            Target::Socket(p) => p.display().to_string(),
            Target::Quic { addr, .. } => addr.clone(),
        }
    }
}

/// A connection that has been welcomed.
pub(crate) struct Session {
    /// The node's welcome: its id and name.
    pub(crate) welcome: AdminWelcome,
    reader: Box<dyn AsyncRead + Unpin>,
    writer: Box<dyn AsyncWrite + Unpin>,
    decoder: FrameDecoder,
    buf: Vec<u8>,
    /// Kept so the connection lives as long as its stream, closes
    /// cleanly, and can say why it ended.
    quic: Option<Quic>,
    target: String,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("welcome", &self.welcome)
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Connects, says hello and waits for the welcome.
    pub(crate) async fn open(target: &Target) -> Result<Session> {
        let (reader, writer, quic) = match target {
            Target::Socket(path) => {
                let (r, w) = open_socket(path).await?;
                (r, w, None)
            }
            Target::Quic { addr, node, key } => {
                let key = load_key(key)?;
                let (endpoint, conn, send, recv) = open_quic(addr, *node, &key).await?;
                let r: Box<dyn AsyncRead + Unpin> = Box::new(recv);
                let w: Box<dyn AsyncWrite + Unpin> = Box::new(send);
                let quic = Quic {
                    endpoint,
                    conn,
                    addr: addr.clone(),
                    node: *node,
                    me: key.node_id(),
                };
                (r, w, Some(quic))
            }
        };
        let mut session = Session {
            welcome: AdminWelcome {
                version: 0,
                node: placeholder_node(),
                name: String::new(),
            },
            reader,
            writer,
            decoder: FrameDecoder::default(),
            buf: vec![0; READ_BUF_BYTES],
            quic,
            target: target.describe(),
        };
        session
            .send(&AdminMessage::Hello(AdminHello {
                version: ADMIN_PROTOCOL_VERSION,
                client: format!("confabctl {}", env!("CARGO_PKG_VERSION")),
            }))
            .await?;
        let welcome = match session.next(WELCOME_WAIT_MAX).await? {
            AdminMessage::Welcome(w) => w,
            AdminMessage::Reply(r) => {
                let why = match r.result {
                    Err(e) => Failure::new(e.code.into(), e.message),
                    Ok(_) => Failure::internal("an answer before any request"),
                };
                return Err(Failure::new(
                    why.kind,
                    format!(
                        "the node at {} refused the connection: {}",
                        session.target, why
                    ),
                ));
            }
            other => {
                return Err(Failure::internal(format!(
                    "the node at {} answered hello with {}, not a welcome",
                    session.target,
                    other.name()
                )));
            }
        };
        if welcome.version != ADMIN_PROTOCOL_VERSION {
            return Err(Failure::unavailable(format!(
                "the node at {} speaks admin protocol version {}, this confabctl speaks {}: use \
                 the confabctl that came with the node",
                session.target, welcome.version, ADMIN_PROTOCOL_VERSION
            )));
        }
        session.welcome = welcome;
        Ok(session)
    }

    /// Sends `request` and hands every output for it to `each`, with
    /// whether more follow. A node error ends it with that error.
    pub(crate) async fn request(
        &mut self,
        request: AdminRequest,
        mut each: impl FnMut(AdminOutput, bool) -> Result<()>,
    ) -> Result<()> {
        let id = request.id;
        self.send(&AdminMessage::Request(request)).await?;
        loop {
            match self.next(REPLY_WAIT_MAX).await? {
                AdminMessage::Reply(reply) if reply.id == id => {
                    let output = reply.result.map_err(Failure::from)?;
                    each(output, reply.more)?;
                    if !reply.more {
                        return Ok(());
                    }
                }
                AdminMessage::Reply(reply) => {
                    // The node answers a request it could not read with
                    // that request's id; any other id is not ours.
                    if let Err(e) = reply.result {
                        return Err(e.into());
                    }
                    return Err(Failure::internal(format!(
                        "the node answered request {} while this one was {id}",
                        reply.id
                    )));
                }
                other => {
                    return Err(Failure::internal(format!(
                        "the node sent {} instead of a reply",
                        other.name()
                    )));
                }
            }
        }
    }

    /// Ends the session politely: the stream finished, the QUIC
    /// connection closed and its close sent.
    pub(crate) async fn close(mut self) {
        let _ = self.writer.shutdown().await;
        if let Some(q) = self.quic.take() {
            q.conn.close(0u32.into(), b"done");
            let _ = tokio::time::timeout(CLOSE_WAIT_MAX, q.endpoint.wait_idle()).await;
        }
    }

    /// Why the QUIC connection ended, if it did: a refused key shows only
    /// once the first bytes are read.
    fn closed(&self) -> Option<Failure> {
        let q = self.quic.as_ref()?;
        let reason = q.conn.close_reason()?;
        Some(quic_error(&q.addr, &q.node, &q.me, &reason))
    }

    async fn send(&mut self, msg: &AdminMessage) -> Result<()> {
        let bytes = msg
            .to_frame_bytes()
            .map_err(|e| Failure::usage(format!("cannot send the command: {e}")))?;
        self.writer
            .write_all(&bytes)
            .await
            .and(self.writer.flush().await)
            .map_err(|e| {
                self.closed().unwrap_or_else(|| {
                    Failure::unavailable(format!(
                        "the connection to the node at {} failed while sending: {e}",
                        self.target
                    ))
                })
            })
    }

    /// The next message the node sends. Messages of a newer protocol are
    /// skipped: the stream stays in sync past them.
    async fn next(&mut self, wait: Duration) -> Result<AdminMessage> {
        loop {
            match self.decoder.next_frame() {
                Ok(Some(frame)) => match decode_admin_frame(&frame) {
                    Ok(msg) => return Ok(msg),
                    Err(confab_wire::Error::UnknownMessageType { .. }) => continue,
                    Err(e) => {
                        return Err(Failure::internal(format!(
                            "the node at {} sent a message this confabctl cannot read ({e}); \
                             are they the same version?",
                            self.target
                        )));
                    }
                },
                Ok(None) => {}
                Err(e) => {
                    return Err(Failure::internal(format!(
                        "bad framing from the node at {}: {e}",
                        self.target
                    )));
                }
            }
            let read = tokio::time::timeout(wait, self.reader.read(&mut self.buf)).await;
            match read {
                Err(_) => {
                    return Err(Failure::unavailable(format!(
                        "the node at {} did not answer within {} s (is it overloaded or stuck? \
                         see its log)",
                        self.target,
                        wait.as_secs()
                    )));
                }
                Ok(Ok(0)) => {
                    if let Some(f) = self.closed() {
                        return Err(f);
                    }
                    return Err(Failure::unavailable(format!(
                        "the node at {} closed the connection before it answered (did it stop \
                         or restart? see its log)",
                        self.target
                    )));
                }
                Ok(Ok(n)) => self.decoder.push(&self.buf[..n]),
                Ok(Err(e)) => {
                    if let Some(f) = self.closed() {
                        return Err(f);
                    }
                    return Err(Failure::unavailable(format!(
                        "the connection to the node at {} failed: {}",
                        self.target,
                        error_line(&e)
                    )));
                }
            }
        }
    }
}

/// A QUIC connection and what its errors are explained with.
struct Quic {
    endpoint: quinn::Endpoint,
    conn: quinn::Connection,
    addr: String,
    node: NodeId,
    me: NodeId,
}

/// A valid node id to stand in until the welcome names the real one.
fn placeholder_node() -> NodeId {
    NodeKey::from_secret(&[1; 32]).node_id()
}

#[cfg(unix)]
async fn open_socket(
    path: &Path,
) -> Result<(Box<dyn AsyncRead + Unpin>, Box<dyn AsyncWrite + Unpin>)> {
    match tokio::net::UnixStream::connect(path).await {
        Ok(stream) => {
            let (r, w) = stream.into_split();
            Ok((Box::new(r), Box::new(w)))
        }
        Err(e) => Err(socket_error(path, &e)),
    }
}

#[cfg(not(unix))]
async fn open_socket(
    path: &Path,
) -> Result<(Box<dyn AsyncRead + Unpin>, Box<dyn AsyncWrite + Unpin>)> {
    Err(Failure::usage(format!(
        "cannot use the admin socket {} on this system: connect over QUIC with --node, \
         --node-id and --key",
        path.display()
    )))
}

/// Says why the socket could not be opened, and what to check.
pub(crate) fn socket_error(path: &Path, e: &std::io::Error) -> Failure {
    let p = path.display();
    let message = match e.kind() {
        ErrorKind::NotFound => format!(
            "no admin socket at {p}: is the node running, with [admin] socket = true in its \
             node.toml? The socket is <data_dir>/admin.sock; point at it with --socket PATH or \
             CONFAB_ADMIN_SOCKET, or connect over QUIC with --node, --node-id and --key"
        ),
        ErrorKind::ConnectionRefused => format!(
            "nothing answers on the admin socket {p}: the node is not running (the file is left \
             from an earlier run), or it is starting; start the node, or check its log"
        ),
        ErrorKind::PermissionDenied => format!(
            "not allowed to open the admin socket {p}: it is mode 0600, so run confabctl as the \
             user the node runs as (or root)"
        ),
        _ => format!(
            "cannot connect to the admin socket {p}: {e}; is the node running, with [admin] \
             socket = true?"
        ),
    };
    Failure::unavailable(message)
}

/// The directory and file name of a key file path.
pub(crate) fn split_key_path(path: &Path) -> Result<(PathBuf, String)> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| {
            Failure::usage(format!(
                "--key {}: name a key file, like ~/.config/confab/admin.key",
                path.display()
            ))
        })?
        .to_string();
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    Ok((dir, name))
}

/// Loads the admin's key, or makes it if it does not exist (`id`).
pub(crate) fn load_or_create_key(path: &Path) -> Result<NodeKey> {
    let (dir, name) = split_key_path(path)?;
    keyfile::load_or_create(&dir, &name).map_err(|e| Failure::usage(error_line(&e)))
}

/// Loads the admin's key for a connection; a missing file is an error
/// (a new key would not be pinned by the node).
fn load_key(path: &Path) -> Result<NodeKey> {
    if std::fs::symlink_metadata(path).is_err() {
        return Err(Failure::usage(format!(
            "no key file at {p}: make one with `confabctl id --key {p}` and pin the id it \
             prints in the node's node.toml: [admin] keys = [\"<id>\"]",
            p = path.display()
        )));
    }
    load_or_create_key(path)
}

async fn open_quic(
    addr: &str,
    node: NodeId,
    key: &NodeKey,
) -> Result<(
    quinn::Endpoint,
    quinn::Connection,
    quinn::SendStream,
    quinn::RecvStream,
)> {
    let remote: SocketAddr = tokio::net::lookup_host(addr)
        .await
        .map_err(|e| Failure::unavailable(format!("cannot resolve {addr}: {e}")))?
        .next()
        .ok_or_else(|| Failure::unavailable(format!("{addr} resolves to no address")))?;
    let pins: tls::PinSet = [node].into_iter().collect();
    let config = tls::client_config(key, pins, &[ADMIN_ALPN])
        .map_err(|e| Failure::internal(error_line(&e)))?;
    let bind: SocketAddr = if remote.is_ipv6() {
        SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 0))
    } else {
        SocketAddr::from((std::net::Ipv4Addr::UNSPECIFIED, 0))
    };
    let mut endpoint = quinn::Endpoint::client(bind)
        .map_err(|e| Failure::internal(format!("cannot open a UDP socket on {bind}: {e}")))?;
    endpoint.set_default_client_config(config);
    let connecting = endpoint
        .connect(remote, &tls::server_name(&node))
        .map_err(|e| Failure::internal(format!("cannot dial {addr}: {e}")))?;
    let conn = match tokio::time::timeout(CONNECT_WAIT_MAX, connecting).await {
        Err(_) => {
            return Err(Failure::unavailable(format!(
                "no answer from {addr} ({remote}) within {} s: is the node running, with this \
                 address as its [admin] listen and at least one key in [admin] keys (the QUIC \
                 endpoint runs only then), and does the firewall let UDP through?",
                CONNECT_WAIT_MAX.as_secs()
            )));
        }
        Ok(Err(e)) => return Err(quic_error(addr, &node, &key.node_id(), &e)),
        Ok(Ok(conn)) => conn,
    };
    let (send, recv) = conn
        .open_bi()
        .await
        .map_err(|e| quic_error(addr, &node, &key.node_id(), &e))?;
    Ok((endpoint, conn, send, recv))
}

/// Says why a QUIC connection failed, and what to check.
pub(crate) fn quic_error(
    addr: &str,
    node: &NodeId,
    me: &NodeId,
    e: &quinn::ConnectionError,
) -> Failure {
    use quinn::ConnectionError as E;
    let message = match e {
        E::TimedOut => format!(
            "no answer from {addr}: is the node running, with this address as its [admin] \
             listen and at least one key in [admin] keys, and does the firewall let UDP through?"
        ),
        // Our side gave up the handshake: the server's key is not the
        // node we named.
        E::TransportError(t) => format!(
            "the node at {addr} is not {node}, or not a Confab node ({}): check --node-id \
             (`confab-node id` on that machine prints it)",
            t.reason
        ),
        E::ConnectionClosed(close)
            if close.error_code
                == quinn::TransportErrorCode::crypto(ALERT_NO_APPLICATION_PROTOCOL) =>
        {
            format!(
                "the node at {addr} does not offer the admin protocol there: is this its [admin] \
                 listen address (not its federation or client one)?"
            )
        }
        E::ConnectionClosed(close) => format!(
            "the node at {addr} refused the connection ({close}): is this admin key ({me}) \
             pinned in its node.toml, as [admin] keys = [\"{me}\"]?"
        ),
        E::ApplicationClosed(close) => format!("the node at {addr} closed the connection: {close}"),
        other => format!("cannot connect to {addr}: {other}"),
    };
    Failure::new(Kind::Unavailable, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[tokio::test(flavor = "current_thread")]
    async fn a_missing_socket_says_what_to_check() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin.sock");
        let f = Session::open(&Target::Socket(path.clone()))
            .await
            .unwrap_err();
        assert_eq!(f.kind.exit_code(), 6);
        assert!(f.message.contains(&path.display().to_string()), "{f}");
        assert!(f.message.contains("is the node running"), "{f}");
        assert!(f.message.contains("[admin]"), "{f}");
    }

    #[cfg(unix)]
    #[tokio::test(flavor = "current_thread")]
    async fn a_stale_socket_says_the_node_is_not_running() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin.sock");
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        let f = Session::open(&Target::Socket(path)).await.unwrap_err();
        assert_eq!(f.kind.exit_code(), 6);
        assert!(f.message.contains("not running"), "{f}");
    }

    #[test]
    fn permission_errors_name_the_fix() {
        let e = std::io::Error::from(ErrorKind::PermissionDenied);
        let f = socket_error(Path::new("/srv/confab/admin.sock"), &e);
        assert!(f.message.contains("/srv/confab/admin.sock"), "{f}");
        assert!(f.message.contains("user the node runs as"), "{f}");
        assert!(f.message.contains("0600"), "{f}");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_missing_key_file_is_not_made_for_a_connection() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("admin.key");
        let target = Target::Quic {
            addr: "127.0.0.1:9".into(),
            node: placeholder_node(),
            key: key.clone(),
        };
        let f = Session::open(&target).await.unwrap_err();
        assert_eq!(f.kind.exit_code(), 2);
        assert!(f.message.contains("confabctl id --key"), "{f}");
        assert!(!key.exists());
    }

    #[test]
    fn key_paths_split_into_dir_and_name() {
        assert_eq!(
            split_key_path(Path::new("admin.key")).unwrap(),
            (PathBuf::from("."), "admin.key".into())
        );
        assert_eq!(
            split_key_path(Path::new("/etc/confab/admin.key")).unwrap(),
            (PathBuf::from("/etc/confab"), "admin.key".into())
        );
        assert!(split_key_path(Path::new("/")).is_err());
    }

    /// A node stand-in on a socket pair: answers hello and one request.
    #[cfg(unix)]
    #[tokio::test(flavor = "current_thread")]
    async fn a_request_reads_replies_until_the_last() {
        use confab_wire::admin::{AdminError, AdminErrorCode, AdminReply, Cell};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin.sock");
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        let node = NodeKey::from_secret(&[9; 32]).node_id();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut d = FrameDecoder::default();
            let mut buf = vec![0; 4096];
            let mut msgs = Vec::new();
            while msgs.len() < 2 {
                let n = s.read(&mut buf).await.unwrap();
                d.push(&buf[..n]);
                while let Some(f) = d.next_frame().unwrap() {
                    msgs.push(decode_admin_frame(&f).unwrap());
                    let reply = match msgs.last().unwrap() {
                        AdminMessage::Hello(h) => {
                            assert!(h.client.starts_with("confabctl "));
                            vec![AdminMessage::Welcome(AdminWelcome {
                                version: ADMIN_PROTOCOL_VERSION,
                                node,
                                name: "acme".into(),
                            })]
                        }
                        AdminMessage::Request(r) => vec![
                            AdminMessage::Reply(AdminReply {
                                id: r.id,
                                more: true,
                                result: Ok(AdminOutput::BackupChunk(vec![1, 2])),
                            }),
                            AdminMessage::Reply(AdminReply {
                                id: r.id,
                                more: false,
                                result: Ok(AdminOutput::Record(vec![("a".into(), Cell::Int(1))])),
                            }),
                        ],
                        _ => panic!("unexpected"),
                    };
                    for m in reply {
                        s.write_all(&m.to_frame_bytes().unwrap()).await.unwrap();
                    }
                }
            }
            // A second connection gets an error.
            let (mut s, _) = listener.accept().await.unwrap();
            let n = s.read(&mut buf).await.unwrap();
            assert!(n > 0);
            let refuse = AdminMessage::Reply(AdminReply {
                id: 0,
                more: false,
                result: Err(AdminError::new(AdminErrorCode::Forbidden, "not an admin")),
            });
            s.write_all(&refuse.to_frame_bytes().unwrap())
                .await
                .unwrap();
            msgs
        });
        let target = Target::Socket(path);
        let mut session = Session::open(&target).await.unwrap();
        assert_eq!(session.welcome.node, node);
        let mut got = Vec::new();
        let request = AdminRequest {
            id: 5,
            trace: confab_wire::fed::TraceId(1),
            act_as: None,
            command: confab_wire::admin::AdminCommand::Status,
        };
        session
            .request(request, |out, more| {
                got.push((out, more));
                Ok(())
            })
            .await
            .unwrap();
        session.close().await;
        assert_eq!(got.len(), 2);
        assert!(got[0].1 && !got[1].1);

        let f = Session::open(&target).await.unwrap_err();
        assert_eq!(f.kind.exit_code(), 4);
        assert!(f.message.contains("not an admin"), "{f}");
        let msgs = server.await.unwrap();
        assert!(matches!(&msgs[1], AdminMessage::Request(r) if r.id == 5));
    }

    /// A node stand-in over QUIC: its key, pinning one admin key, offering
    /// `alpn`; answers hello and one request with `Done`.
    fn quic_node(
        node_key: NodeKey,
        admin: NodeId,
        alpn: &'static [u8],
    ) -> (SocketAddr, tokio::task::JoinHandle<()>) {
        use confab_wire::admin::AdminReply;
        let pins: tls::PinSet = [admin].into_iter().collect();
        let config = tls::server_config(&node_key, pins, &[alpn]).unwrap();
        let endpoint = quinn::Endpoint::server(config, "127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = endpoint.local_addr().unwrap();
        let task = tokio::spawn(async move {
            while let Some(incoming) = endpoint.accept().await {
                let Ok(conn) = incoming.await else { continue };
                let Ok((mut send, mut recv)) = conn.accept_bi().await else {
                    continue;
                };
                let mut d = FrameDecoder::default();
                let mut buf = vec![0; 4096];
                loop {
                    let Ok(Some(n)) = recv.read(&mut buf).await else {
                        break;
                    };
                    d.push(&buf[..n]);
                    while let Some(f) = d.next_frame().unwrap() {
                        let answer = match decode_admin_frame(&f).unwrap() {
                            AdminMessage::Hello(_) => AdminMessage::Welcome(AdminWelcome {
                                version: ADMIN_PROTOCOL_VERSION,
                                node: node_key.node_id(),
                                name: "acme".into(),
                            }),
                            AdminMessage::Request(r) => AdminMessage::Reply(AdminReply {
                                id: r.id,
                                more: false,
                                result: Ok(AdminOutput::Done("fine".into())),
                            }),
                            _ => panic!("unexpected"),
                        };
                        send.write_all(&answer.to_frame_bytes().unwrap())
                            .await
                            .unwrap();
                    }
                }
            }
        });
        (addr, task)
    }

    #[tokio::test(flavor = "current_thread")]
    async fn quic_pins_both_ends_and_explains_refusals() {
        let dir = tempfile::tempdir().unwrap();
        let key_path = dir.path().join("admin.key");
        let admin = load_or_create_key(&key_path).unwrap().node_id();
        let node_key = NodeKey::from_secret(&[21; 32]);
        let node = node_key.node_id();
        let (addr, server) = quic_node(node_key.clone(), admin, ADMIN_ALPN);
        let target = |node: NodeId, key: &Path| Target::Quic {
            addr: addr.to_string(),
            node,
            key: key.to_owned(),
        };

        let mut session = Session::open(&target(node, &key_path)).await.unwrap();
        assert_eq!(session.welcome.node, node);
        let mut got = None;
        let request = AdminRequest {
            id: 3,
            trace: confab_wire::fed::TraceId(1),
            act_as: None,
            command: confab_wire::admin::AdminCommand::Status,
        };
        session
            .request(request, |out, _| {
                got = Some(out);
                Ok(())
            })
            .await
            .unwrap();
        session.close().await;
        assert_eq!(got, Some(AdminOutput::Done("fine".into())));

        // Another node answering at the address is refused by us.
        let other = NodeKey::from_secret(&[22; 32]).node_id();
        let f = Session::open(&target(other, &key_path)).await.unwrap_err();
        assert_eq!(f.kind.exit_code(), 6);
        assert!(f.message.contains(&format!("is not {other}")), "{f}");

        // A key the node does not pin is refused by it.
        let stranger = dir.path().join("stranger.key");
        let stranger_id = load_or_create_key(&stranger).unwrap().node_id();
        let f = Session::open(&target(node, &stranger)).await.unwrap_err();
        assert_eq!(f.kind.exit_code(), 6);
        assert!(
            f.message.contains(&format!("keys = [\"{stranger_id}\"]")),
            "{f}"
        );
        server.abort();

        // A QUIC endpoint that is not the admin one.
        let (addr, server) = quic_node(node_key, admin, b"confab-fed/1");
        let t = Target::Quic {
            addr: addr.to_string(),
            node,
            key: key_path.clone(),
        };
        let f = Session::open(&t).await.unwrap_err();
        assert!(
            f.message.contains("does not offer the admin protocol"),
            "{f}"
        );
        server.abort();
    }
}
