//! One browser WebSocket: `hello`, sign-in state, requests (pipelined to
//! the node), pushes, keep-alive and closing (`gateway/PROTOCOL.md` §2).
//!
//! The socket logic is generic over the frame sink and stream, so it runs
//! the same on axum's socket and in tests.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes};
use confab_wire::client::{
    AccessToken, ClientError, ErrorCode, MAX_PAGE, Request, Response, SessionId,
};
use confab_wire::event::MAX_BODY_LEN;
use confab_wire::fed::TraceId;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use serde_json::{Value, json};

use crate::State;
use crate::render;
use crate::requests::{self, Action, Parsed};
use crate::sessions::Outgoing;

/// The protocol version this gateway speaks.
pub const PROTOCOL_VERSION: u64 = 1;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn random_trace() -> TraceId {
    let mut b = [0u8; 16];
    let _ = getrandom::getrandom(&mut b);
    TraceId(u128::from_le_bytes(b))
}

/// The `hello` push.
pub fn hello(state: &State) -> String {
    let w = state.sessions.welcome();
    let (node, name, registration, max_upload) = match &w {
        Some(w) => (
            w.node.to_string(),
            w.name.clone(),
            w.settings.registration.as_str(),
            w.settings.max_upload_bytes,
        ),
        None => (String::new(), String::new(), "closed", 0),
    };
    json!({
        "push": "hello",
        "protocol": PROTOCOL_VERSION,
        "node": node,
        "node_name": name,
        "registration": registration,
        "limits": {
            "max_message_bytes": MAX_BODY_LEN,
            "max_upload_bytes": max_upload.min(state.max_upload_bytes()),
            "max_ws_message_bytes": state.config.limits.max_ws_message_bytes,
            "max_page": MAX_PAGE,
        },
    })
    .to_string()
}

fn close(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    }))
}

/// How long a socket closed for an oversized frame keeps reading what the
/// client still sends, at most.
const LINGER: Duration = Duration::from_secs(2);
/// Frames read (and dropped) while lingering, at most.
const LINGER_FRAMES: usize = 8;

/// How much bigger than `limits.max_ws_message_bytes` a frame the transport
/// still reads whole may be (see [`too_large`]).
pub const OVERSIZE_READ_FACTOR: usize = 2;

/// Refuses an oversized frame the way PROTOCOL.md §8 says: a `too_large`
/// reply, close 1009, and then a lingering close — reading and dropping what
/// the client still sends until its close frame answers ours (or [`LINGER`]
/// passes). Dropping the connection at once, with the client's data still
/// unread, makes the kernel reset it, and the client then loses the reply
/// and the close frame just sent (it sees 1006). This only works for a
/// frame the transport read whole: the transport's own cap is
/// [`OVERSIZE_READ_FACTOR`] times the limit, and a frame over that is an
/// error after which nothing more can be read (best effort there).
async fn too_large<K, S, E>(sink: &mut K, stream: &mut S)
where
    K: Sink<Message> + Unpin,
    S: Stream<Item = Result<Message, E>> + Unpin,
{
    let reply = render::reply(
        None,
        Err(render::gateway_error(
            "too_large",
            "frames are limited to 64 KiB",
        )),
    );
    let _ = sink.send(Message::Text(reply.into())).await;
    let _ = sink.send(close(1009, "too_large")).await;
    let deadline = tokio::time::Instant::now() + LINGER;
    for _ in 0..LINGER_FRAMES {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(Some(Ok(Message::Close(_))) | Some(Err(_)) | None) | Err(_) => return,
            Ok(Some(Ok(_))) => {}
        }
    }
}

/// Serves one socket, opened in [`crate::sessions::Sessions`] as `sid`
/// with its queue `out`, until it closes.
pub async fn serve<S, E>(
    state: Arc<State>,
    socket: S,
    ip: IpAddr,
    (sid, mut out): (SessionId, tokio::sync::mpsc::Receiver<Outgoing>),
) where
    S: Stream<Item = Result<Message, E>> + Sink<Message> + Unpin + Send + 'static,
    E: std::fmt::Display,
{
    let (mut sink, mut stream) = socket.split();
    if sink
        .send(Message::Text(hello(&state).into()))
        .await
        .is_err()
    {
        state.sessions.close(sid);
        return;
    }
    let heartbeat = Duration::from_secs(u64::from(state.config.limits.heartbeat_secs.max(1)));
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
    let mut last_heard = Instant::now();
    let mut stopping = state.stopping.subscribe();
    let max_frame = state.config.limits.max_ws_message_bytes as usize;
    // Requests of this socket still being answered (a stop waits for them).
    let in_flight = Arc::new(InFlight::default());
    loop {
        tokio::select! {
            frame = stream.next() => {
                let msg = match frame {
                    Some(Ok(m)) => m,
                    Some(Err(e)) => {
                        // Frames over the transport's cap end here
                        // (axum enforces it); see `too_large`.
                        let text = e.to_string();
                        if text.contains("too long") || text.contains("too big") || text.contains("Space limit") {
                            let _ = sink.send(Message::Text(
                                render::reply(None, Err(render::gateway_error("too_large", "frames are limited to 64 KiB"))).into(),
                            )).await;
                            let _ = sink.send(close(1009, "too_large")).await;
                        }
                        break;
                    }
                    None => break,
                };
                last_heard = Instant::now();
                match msg {
                    Message::Text(t) if t.len() > max_frame => {
                        too_large(&mut sink, &mut stream).await;
                        break;
                    }
                    Message::Text(t) => on_text(&state, sid, ip, t.as_str(), &in_flight),
                    Message::Binary(_) => {
                        let _ = sink.send(close(1003, "binary")).await;
                        break;
                    }
                    Message::Close(_) => break,
                    Message::Ping(_) | Message::Pong(_) => {}
                }
            }
            o = out.recv() => match o {
                Some(Outgoing::Text(t)) => {
                    if sink.send(Message::Text(Utf8Bytes::from(t.as_ref()))).await.is_err() {
                        break;
                    }
                }
                Some(Outgoing::Close(code, reason)) => {
                    let _ = sink.send(close(code, reason)).await;
                    break;
                }
                None => {
                    // Dropped by the fan-out: this socket fell behind.
                    state.metrics.limited("slow_socket");
                    let _ = sink.send(close(4029, "too_slow")).await;
                    break;
                }
            },
            _ = ticks.tick() => {
                if last_heard.elapsed() > heartbeat * 2 {
                    let _ = sink.send(close(4011, "dead")).await;
                    break;
                }
                if sink.send(Message::Ping(Default::default())).await.is_err() {
                    break;
                }
            }
            _ = stopping.changed() => {
                // No new requests; the answers to those in flight still go
                // out (for a bounded time), then the socket closes.
                let drain = async {
                    loop {
                        // A reply is queued before its request stops
                        // counting, so at zero every reply is in `out`.
                        let idle = in_flight.done.notified();
                        if in_flight.n.load(std::sync::atomic::Ordering::Acquire) == 0 {
                            while let Ok(Outgoing::Text(t)) = out.try_recv() {
                                if sink.send(Message::Text(Utf8Bytes::from(t.as_ref()))).await.is_err() {
                                    return;
                                }
                            }
                            return;
                        }
                        tokio::select! {
                            o = out.recv() => match o {
                                Some(Outgoing::Text(t)) => {
                                    if sink.send(Message::Text(Utf8Bytes::from(t.as_ref()))).await.is_err() {
                                        return;
                                    }
                                }
                                _ => return,
                            },
                            () = idle => {}
                        }
                    }
                };
                let _ = tokio::time::timeout(DRAIN_MAX, drain).await;
                let _ = sink.send(close(1001, "going_away")).await;
                break;
            }
        }
    }
    // Tell the node whether or not the socket was signed in here: the node
    // binds a session as soon as it accepts the credentials, and the gateway
    // may then have refused the socket (4008), so a session it never signed
    // in would otherwise stay on the node for good (and keep the user
    // "online"). Ending an unknown session is a no-op on the node.
    state.sessions.close(sid);
    state.link.notify(sid, Request::EndSession);
}

/// How long a stopping gateway waits for a socket's requests in flight.
const DRAIN_MAX: Duration = Duration::from_secs(3);

/// A socket's requests being answered.
#[derive(Debug, Default)]
struct InFlight {
    n: std::sync::atomic::AtomicUsize,
    done: tokio::sync::Notify,
}

fn on_text(state: &Arc<State>, sid: SessionId, ip: IpAddr, text: &str, in_flight: &Arc<InFlight>) {
    let parsed = requests::parse(text);
    // Every frame takes a token, read or not: malformed and unknown
    // requests cost the sender as much as good ones (PROTOCOL.md §8).
    let key = match state.sessions.auth(sid) {
        Some(a) => format!("u:{}", a.user),
        None => format!("ip:{ip}"),
    };
    if let Err(ms) = state.requests.take(&key, Instant::now()) {
        let id = match &parsed {
            Ok(p) => Some(p.id),
            Err((id, _)) => *id,
        };
        let reply = render::reply(id, Err(render::error_body(&limited(state, "requests", ms))));
        state.sessions.send(sid, Outgoing::Text(reply.into()));
        return;
    }
    let parsed = match parsed {
        Ok(p) => p,
        Err((id, r)) => {
            let reply = render::reply(id, Err(render::gateway_error(r.code, &r.message)));
            state.sessions.send(sid, Outgoing::Text(reply.into()));
            return;
        }
    };
    let state = state.clone();
    let in_flight = in_flight.clone();
    in_flight
        .n
        .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    tokio::spawn(async move {
        let started = Instant::now();
        let kind = parsed.kind;
        let id = parsed.id;
        let result = handle(&state, sid, ip, parsed).await;
        state
            .metrics
            .request_seconds
            .get_or_create(&crate::metrics::TypeLabel {
                r#type: kind.to_string(),
            })
            .observe(started.elapsed().as_secs_f64());
        match result {
            Ok(Some(v)) => {
                state
                    .sessions
                    .send(sid, Outgoing::Text(render::reply(Some(id), Ok(v)).into()));
            }
            Ok(None) => {}
            Err(e) => {
                state.sessions.send(
                    sid,
                    Outgoing::Text(render::reply(Some(id), Err(render::error_body(&e))).into()),
                );
            }
        }
        in_flight
            .n
            .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
        in_flight.done.notify_waiters();
    });
}

fn unauthenticated(message: &str) -> ClientError {
    ClientError::new(ErrorCode::Unauthenticated, message)
}

fn limited(state: &State, what: &str, wait_ms: u64) -> ClientError {
    state.metrics.limited(what);
    let mut e = ClientError::new(ErrorCode::RateLimited, "too many requests; slow down");
    e.retry_after_ms = Some(wait_ms);
    e
}

/// Checks an access token without the node: signature, issuer, expiry.
pub fn check_token(state: &State, text: &str) -> Result<AccessToken, ClientError> {
    let token =
        AccessToken::from_text(text).map_err(|_| unauthenticated("that is not an access token"))?;
    let Some(w) = state.sessions.welcome() else {
        return Err(ClientError::new(
            ErrorCode::Unavailable,
            "the gateway is not connected to its node",
        ));
    };
    let now = now_ms();
    if token.claims.expires <= now && token.check(&w.node, token.claims.issued).is_ok() {
        return Err(ClientError::new(
            ErrorCode::TokenExpired,
            "the access token has expired; refresh it",
        ));
    }
    token
        .check(&w.node, now)
        .map_err(|_| unauthenticated("invalid access token"))?;
    Ok(token)
}

/// Runs one request; `Ok(None)` means the reply was replaced by a close.
async fn handle(
    state: &Arc<State>,
    sid: SessionId,
    ip: IpAddr,
    p: Parsed,
) -> Result<Option<Value>, ClientError> {
    let now = Instant::now();
    let auth = state.sessions.auth(sid);
    let max = state.config.limits.max_connections_per_user as usize;
    let body = match p.action {
        Action::Ping => return Ok(Some(json!({ "ts": now_ms() }))),
        Action::Authenticate { access_token } => {
            let token = check_token(state, &access_token)?;
            let user = token.claims.user.clone();
            // The node knows about revocations; ask it once per socket.
            state
                .link
                .request(
                    sid,
                    random_trace(),
                    Some(token.clone()),
                    Request::GetProfile { user: user.clone() },
                )
                .await?;
            if state.sessions.sign_in(sid, &user, token, max).is_err() {
                state.metrics.limited("connections");
                state
                    .sessions
                    .send(sid, Outgoing::Close(4008, "too_many_connections"));
                return Ok(None);
            }
            return Ok(Some(json!({ "user": user.to_string() })));
        }
        Action::Node(body) => body,
    };
    let needs_auth = !matches!(
        body,
        Request::Register { .. } | Request::Login { .. } | Request::Refresh { .. }
    );
    let token = match (&auth, needs_auth) {
        (Some(a), _) => Some(a.token.clone()),
        (None, true) => return Err(unauthenticated("sign in first")),
        (None, false) => None,
    };
    if needs_auth
        && let Some(t) = &token
        && t.claims.expires <= now_ms()
    {
        return Err(ClientError::new(
            ErrorCode::TokenExpired,
            "the access token has expired; refresh it",
        ));
    }
    // Sign-in attempts are limited per address here; failures back off on
    // the node, per account and per address (never per name alone: a
    // stranger's attempts must not lock the real user out).
    let mut body = body;
    if let Request::Login { address, .. } | Request::Register { address, .. } = &mut body {
        state
            .logins
            .take(&format!("ip:{ip}"), now)
            .map_err(|ms| limited(state, "logins", ms))?;
        *address = Some(ip);
    }
    if let Request::Send { .. } = &body {
        state.metrics.messages_in.inc();
    }
    // The room's events (the catch-up comes before the reply) are held
    // until the node has said yes for this user (see `sessions`).
    let subscribing = match &body {
        Request::Subscribe { room, .. } => {
            state.sessions.subscribing(sid, *room);
            Some(*room)
        }
        Request::Unsubscribe { room } => {
            state.sessions.unsubscribe(sid, room);
            None
        }
        _ => None,
    };
    let signing_out = matches!(body, Request::Logout { .. } | Request::LogoutAll);
    if signing_out {
        // The node's `Revoked` push for this login comes before the reply;
        // the asking socket gets only the reply (PROTOCOL.md §3).
        state.sessions.set_signing_out(sid, true);
    }
    let trace = random_trace();
    tracing::debug!(%trace, session = sid.0, request = p.kind, "request to the node");
    let result = state.link.request(sid, trace, token, body).await;
    if signing_out {
        state.sessions.set_signing_out(sid, false);
    }
    if let Some(room) = subscribing {
        state.sessions.subscribed(sid, room, result.is_ok());
    }
    let response = result?;
    if let Response::Session(g) = &response
        && state
            .sessions
            .sign_in(sid, &g.user, g.access_token.clone(), max)
            .is_err()
    {
        state.metrics.limited("connections");
        state
            .sessions
            .send(sid, Outgoing::Close(4008, "too_many_connections"));
        return Ok(None);
    }
    if signing_out {
        state.sessions.sign_out(sid);
    }
    Ok(Some(requests::shape(p.kind, &response)))
}
