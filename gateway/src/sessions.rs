//! The gateway's sockets: who is signed in on which, which rooms each
//! follows, and fan-out of the node's pushes to them.
//!
//! Each socket has a bounded outbound queue. A push is rendered to JSON
//! once and the same text is queued for every socket that should see it;
//! a socket whose queue is full is dropped (closed with 4029, the client
//! reconnects and resumes), so one slow browser never holds up the rest.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use confab_wire::client::{AccessToken, NodeWelcome, Push, SessionId};
use confab_wire::fed::Signal;
use confab_wire::{RoomId, UserId};
use serde_json::json;
use tokio::sync::mpsc;

use crate::link::PushSink;
use crate::metrics::GatewayMetrics;
use crate::render;

/// Messages queued for one socket before it is dropped as too slow.
pub const SOCKET_QUEUE_DEPTH: usize = 1024;

/// What a socket task is told to send.
#[derive(Debug, Clone)]
pub enum Outgoing {
    /// A text frame.
    Text(Arc<str>),
    /// Close with a code and reason.
    Close(u16, &'static str),
}

/// A signed-in socket's credentials.
#[derive(Debug, Clone)]
pub struct Auth {
    /// The user.
    pub user: UserId,
    /// Their current access token.
    pub token: AccessToken,
}

#[derive(Debug)]
struct Sock {
    out: mpsc::Sender<Outgoing>,
    auth: Option<Auth>,
    rooms: HashSet<RoomId>,
    /// Its own `logout`/`logout_all` is in flight: a `revoked` push that
    /// request causes is not sent to it (it gets the reply instead).
    signing_out: bool,
}

#[derive(Debug, Default)]
struct Tables {
    sockets: HashMap<SessionId, Sock>,
    by_room: HashMap<RoomId, HashSet<SessionId>>,
    by_user: HashMap<UserId, HashSet<SessionId>>,
    next: u64,
}

impl Tables {
    fn unlink_rooms(&mut self, id: SessionId) {
        let Some(s) = self.sockets.get_mut(&id) else {
            return;
        };
        for r in s.rooms.drain() {
            if let Some(set) = self.by_room.get_mut(&r) {
                set.remove(&id);
                if set.is_empty() {
                    self.by_room.remove(&r);
                }
            }
        }
    }

    fn unlink_user(&mut self, id: SessionId) {
        let Some(user) = self
            .sockets
            .get_mut(&id)
            .and_then(|s| s.auth.take())
            .map(|a| a.user)
        else {
            return;
        };
        if let Some(set) = self.by_user.get_mut(&user) {
            set.remove(&id);
            if set.is_empty() {
                self.by_user.remove(&user);
            }
        }
    }
}

/// Why a socket could not be signed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyConnections;

/// All sockets of this gateway.
#[derive(Debug)]
pub struct Sessions {
    tables: Mutex<Tables>,
    metrics: GatewayMetrics,
    /// The node's welcome, for `hello` (updated on reconnects and settings).
    welcome: Mutex<Option<NodeWelcome>>,
}

impl Sessions {
    /// No sockets yet.
    pub fn new(metrics: GatewayMetrics) -> Sessions {
        Sessions {
            tables: Mutex::new(Tables::default()),
            metrics,
            welcome: Mutex::new(None),
        }
    }

    fn t(&self) -> std::sync::MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The node's welcome as last heard.
    pub fn welcome(&self) -> Option<NodeWelcome> {
        self.welcome
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Registers a new socket; its frames arrive on the receiver.
    pub fn open(&self) -> (SessionId, mpsc::Receiver<Outgoing>) {
        let (out, rx) = mpsc::channel(SOCKET_QUEUE_DEPTH);
        let mut t = self.t();
        t.next += 1;
        let id = SessionId(t.next);
        t.sockets.insert(
            id,
            Sock {
                out,
                auth: None,
                rooms: HashSet::new(),
                signing_out: false,
            },
        );
        self.metrics.sockets.set(t.sockets.len() as i64);
        (id, rx)
    }

    /// Forgets a closed socket; returns whether it was signed in.
    pub fn close(&self, id: SessionId) -> bool {
        let mut t = self.t();
        let rooms: Vec<RoomId> = t
            .sockets
            .get(&id)
            .map(|s| s.rooms.iter().copied().collect())
            .unwrap_or_default();
        t.unlink_rooms(id);
        let authed = t.sockets.get(&id).is_some_and(|s| s.auth.is_some());
        t.unlink_user(id);
        t.sockets.remove(&id);
        self.metrics.sockets.set(t.sockets.len() as i64);
        for r in rooms {
            self.room_gauge(&t, &r);
        }
        authed
    }

    fn room_gauge(&self, t: &Tables, room: &RoomId) {
        let n = t.by_room.get(room).map_or(0, HashSet::len);
        self.metrics.set_room_sockets(room, n);
    }

    /// Signs a socket in as `user` (at most `max` sockets per user). A
    /// socket that changes user loses its subscriptions.
    pub fn sign_in(
        &self,
        id: SessionId,
        user: &UserId,
        token: AccessToken,
        max: usize,
    ) -> Result<(), TooManyConnections> {
        let mut t = self.t();
        let same = t
            .sockets
            .get(&id)
            .and_then(|s| s.auth.as_ref())
            .is_some_and(|a| &a.user == user);
        if !same {
            let others = t.by_user.get(user).map_or(0, HashSet::len);
            if others >= max {
                return Err(TooManyConnections);
            }
            t.unlink_rooms(id);
            t.unlink_user(id);
            t.by_user.entry(user.clone()).or_default().insert(id);
        }
        if let Some(s) = t.sockets.get_mut(&id) {
            s.auth = Some(Auth {
                user: user.clone(),
                token,
            });
        }
        Ok(())
    }

    /// Signs a socket out (its subscriptions end).
    pub fn sign_out(&self, id: SessionId) {
        let mut t = self.t();
        t.unlink_rooms(id);
        t.unlink_user(id);
    }

    /// Marks (or unmarks) a socket whose own logout is in flight.
    pub fn set_signing_out(&self, id: SessionId, on: bool) {
        if let Some(s) = self.t().sockets.get_mut(&id) {
            s.signing_out = on;
        }
    }

    /// The socket's credentials, if signed in.
    pub fn auth(&self, id: SessionId) -> Option<Auth> {
        self.t().sockets.get(&id).and_then(|s| s.auth.clone())
    }

    /// The socket follows `room`.
    pub fn subscribe(&self, id: SessionId, room: RoomId) {
        let mut t = self.t();
        if let Some(s) = t.sockets.get_mut(&id) {
            s.rooms.insert(room);
            t.by_room.entry(room).or_default().insert(id);
            self.room_gauge(&t, &room);
        }
    }

    /// The socket stops following `room`.
    pub fn unsubscribe(&self, id: SessionId, room: &RoomId) {
        let mut t = self.t();
        if let Some(s) = t.sockets.get_mut(&id) {
            s.rooms.remove(room);
        }
        if let Some(set) = t.by_room.get_mut(room) {
            set.remove(&id);
            if set.is_empty() {
                t.by_room.remove(room);
            }
        }
        self.room_gauge(&t, room);
    }

    /// Queues a frame for one socket.
    pub fn send(&self, id: SessionId, msg: Outgoing) {
        let mut t = self.t();
        Self::deliver(&mut t, id, msg);
    }

    /// Queues; a full queue drops the socket (its task then closes it).
    fn deliver(t: &mut Tables, id: SessionId, msg: Outgoing) -> bool {
        let Some(s) = t.sockets.get(&id) else {
            return false;
        };
        match s.out.try_send(msg) {
            Ok(()) => true,
            Err(_) => {
                // Dropping the sender ends the socket task's queue.
                t.unlink_rooms(id);
                t.unlink_user(id);
                t.sockets.remove(&id);
                false
            }
        }
    }

    /// Closes every socket (the node connection was lost or the gateway
    /// stops): clients reconnect and resume.
    pub fn close_all(&self, code: u16, reason: &'static str) {
        let t = self.t();
        for s in t.sockets.values() {
            let _ = s.out.try_send(Outgoing::Close(code, reason));
        }
    }

    /// Number of open sockets.
    pub fn len(&self) -> usize {
        self.t().sockets.len()
    }

    /// True if no socket is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn fan_out(&self, targets: impl IntoIterator<Item = SessionId>, text: Arc<str>) -> u64 {
        let mut t = self.t();
        let mut n = 0;
        for id in targets.into_iter().collect::<Vec<_>>() {
            if Self::deliver(&mut t, id, Outgoing::Text(text.clone())) {
                n += 1;
            }
        }
        n
    }

    fn room_targets(&self, room: &RoomId) -> Vec<SessionId> {
        self.t()
            .by_room
            .get(room)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()
    }

    fn user_targets(&self, user: &UserId) -> Vec<SessionId> {
        self.t()
            .by_user
            .get(user)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()
    }
}

impl PushSink for Sessions {
    fn push(&self, push: Push) {
        match push {
            Push::RoomEvent { room, item, trace } => {
                let Some(v) = render::item(&item) else {
                    return;
                };
                if let Some(trace) = trace {
                    tracing::debug!(%trace, event = %item.event.id(), "room event to sockets");
                }
                let text: Arc<str> =
                    json!({"push": "room_event", "room": room.to_string(), "item": v})
                        .to_string()
                        .into();
                let n = self.fan_out(self.room_targets(&room), text);
                self.metrics.messages_out.inc_by(n);
            }
            Push::Ephemeral(e) => {
                let Some(text) = render::ephemeral(&e) else {
                    return;
                };
                let text: Arc<str> = text.into();
                let targets: Vec<SessionId> = match (&e.signal, &e.room) {
                    (Signal::Presence { .. }, _) => {
                        // The node sends presence to gateways of users who
                        // share a room with its user.
                        let t = self.t();
                        t.sockets
                            .iter()
                            .filter(|(_, s)| s.auth.is_some())
                            .map(|(id, _)| *id)
                            .collect()
                    }
                    (Signal::Typing(_), Some(room)) => {
                        // One's own typing is not echoed.
                        let t = self.t();
                        t.by_room
                            .get(room)
                            .map(|set| {
                                set.iter()
                                    .filter(|id| {
                                        t.sockets
                                            .get(id)
                                            .and_then(|s| s.auth.as_ref())
                                            .is_none_or(|a| a.user != e.user)
                                    })
                                    .copied()
                                    .collect()
                            })
                            .unwrap_or_default()
                    }
                    (_, Some(room)) => self.room_targets(room),
                    _ => Vec::new(),
                };
                self.fan_out(targets, text);
            }
            Push::RoomUpdate { user, summary } => {
                let targets = self.user_targets(&user);
                if summary.left {
                    for id in &targets {
                        self.unsubscribe(*id, &summary.room);
                    }
                }
                let text: Arc<str> =
                    json!({"push": "room_update", "summary": render::summary(&summary)})
                        .to_string()
                        .into();
                self.fan_out(targets, text);
            }
            Push::Notice { user, notice } => {
                let text = json!({"push": "notice", "notice": render::notice(&notice)});
                self.fan_out(self.user_targets(&user), text.to_string().into());
            }
            Push::NoticeDismissed { user, notice } => {
                let text = json!({"push": "notice_dismissed", "notice": notice.to_string()});
                self.fan_out(self.user_targets(&user), text.to_string().into());
            }
            Push::Revoked { user, family } => {
                let targets: Vec<SessionId> = {
                    let t = self.t();
                    t.by_user
                        .get(&user)
                        .map(|set| {
                            set.iter()
                                .filter(|id| {
                                    t.sockets.get(id).and_then(|s| s.auth.as_ref()).is_some_and(
                                        |a| family.is_none_or(|f| f == a.token.claims.family),
                                    )
                                })
                                .copied()
                                .collect()
                        })
                        .unwrap_or_default()
                };
                for id in &targets {
                    self.sign_out(*id);
                }
                // Every socket of the login is signed out; the one whose
                // logout caused this learns it from its reply, not a push.
                let told: Vec<SessionId> = {
                    let t = self.t();
                    targets
                        .into_iter()
                        .filter(|id| t.sockets.get(id).is_some_and(|s| !s.signing_out))
                        .collect()
                };
                self.fan_out(told, json!({"push": "revoked"}).to_string().into());
            }
            Push::Settings(s) => {
                if let Some(w) = self
                    .welcome
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .as_mut()
                {
                    w.settings = s;
                }
            }
        }
    }

    fn link_changed(&self, welcome: Option<&NodeWelcome>) {
        match welcome {
            Some(w) => {
                *self.welcome.lock().unwrap_or_else(|p| p.into_inner()) = Some(w.clone());
                self.metrics.node_up.set(1);
            }
            None => {
                self.metrics.node_up.set(0);
                // The node forgot these sockets' subscriptions; they resume
                // by reconnecting.
                self.close_all(1001, "going_away");
            }
        }
    }
}
