//! The gateway's sockets: who is signed in on which, which rooms each
//! follows, and fan-out of the node's pushes to them.
//!
//! Each socket has a bounded outbound queue. A push is rendered to JSON
//! once and the same text is queued for every socket that should see it;
//! a socket whose queue is full is dropped (closed with 4029, the client
//! reconnects and resumes), so one slow browser never holds up the rest.
//!
//! A socket follows a room only once the node has accepted its
//! `subscribe` for that user. Until then the room's events (the catch-up
//! the node pushes before its reply, and live events meant for other
//! sockets) wait in the socket's pending buffer: on acceptance they are
//! queued in order and the socket joins the room's fan-out in the same
//! step; on refusal they are dropped unseen. Nothing of a room reaches a
//! socket the node has not said yes to.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
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
/// Room events held for one socket's pending subscriptions, at most: the
/// node's catch-up (`CATCH_UP_MAX` events and the items they change) plus
/// live traffic. A socket over it is dropped as too slow.
pub const PENDING_EVENTS_MAX: usize = 4 * 2048 + SOCKET_QUEUE_DEPTH;

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
    /// The client's address (behind trusted proxies, the one they name).
    addr: IpAddr,
    auth: Option<Auth>,
    rooms: HashSet<RoomId>,
    /// Rooms whose `subscribe` the node has not answered yet: how many are
    /// in flight, and the room's events meanwhile.
    pending: HashMap<RoomId, Pending>,
    /// Events held in `pending`, over all rooms.
    pending_len: usize,
    /// Its own `logout`/`logout_all` is in flight: a `revoked` push that
    /// request causes is not sent to it (it gets the reply instead).
    signing_out: bool,
}

/// A room a socket asked to follow, not yet answered.
#[derive(Debug, Default)]
struct Pending {
    requests: usize,
    held: Vec<Arc<str>>,
}

#[derive(Debug, Default)]
struct Tables {
    sockets: HashMap<SessionId, Sock>,
    by_room: HashMap<RoomId, HashSet<SessionId>>,
    /// Sockets with a pending `subscribe`, by room.
    pending_by_room: HashMap<RoomId, HashSet<SessionId>>,
    /// Sockets not signed in, by address.
    unauthenticated: HashMap<IpAddr, usize>,
    by_user: HashMap<UserId, HashSet<SessionId>>,
    next: u64,
}

impl Tables {
    fn unlink_rooms(&mut self, id: SessionId) {
        let Some(s) = self.sockets.get_mut(&id) else {
            return;
        };
        let pending: Vec<RoomId> = s.pending.drain().map(|(r, _)| r).collect();
        s.pending_len = 0;
        for r in s.rooms.drain() {
            unlink(&mut self.by_room, &r, id);
        }
        for r in pending {
            unlink(&mut self.pending_by_room, &r, id);
        }
    }

    /// Drops a socket (its task sees its queue end and closes it).
    fn remove(&mut self, id: SessionId) {
        self.unlink_rooms(id);
        self.unlink_user(id);
        if let Some(s) = self.sockets.remove(&id) {
            self.count_unauthenticated(s.addr, false);
        }
    }

    /// Forgets a socket's pending subscription of `room`.
    fn drop_pending(&mut self, id: SessionId, room: &RoomId) {
        if let Some(s) = self.sockets.get_mut(&id)
            && let Some(p) = s.pending.remove(room)
        {
            s.pending_len -= p.held.len();
        }
        unlink(&mut self.pending_by_room, room, id);
    }

    fn count_unauthenticated(&mut self, addr: IpAddr, up: bool) {
        let n = self.unauthenticated.entry(addr).or_default();
        if up {
            *n += 1;
        } else {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.unauthenticated.remove(&addr);
            }
        }
    }

    fn unlink_user(&mut self, id: SessionId) {
        let Some((user, addr)) = self
            .sockets
            .get_mut(&id)
            .and_then(|s| Some((s.auth.take()?.user, s.addr)))
        else {
            return;
        };
        self.count_unauthenticated(addr, true);
        if let Some(set) = self.by_user.get_mut(&user) {
            set.remove(&id);
            if set.is_empty() {
                self.by_user.remove(&user);
            }
        }
    }
}

fn unlink(index: &mut HashMap<RoomId, HashSet<SessionId>>, room: &RoomId, id: SessionId) {
    if let Some(set) = index.get_mut(room) {
        set.remove(&id);
        if set.is_empty() {
            index.remove(room);
        }
    }
}

/// Why a socket could not be signed in (or opened).
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

    /// Registers a new socket from `addr`; its frames arrive on the
    /// receiver. Refused if `addr` already has `max_unauthenticated`
    /// sockets that are not signed in.
    pub fn open(
        &self,
        addr: IpAddr,
        max_unauthenticated: usize,
    ) -> Result<(SessionId, mpsc::Receiver<Outgoing>), TooManyConnections> {
        let mut t = self.t();
        if t.unauthenticated.get(&addr).copied().unwrap_or(0) >= max_unauthenticated {
            return Err(TooManyConnections);
        }
        let (out, rx) = mpsc::channel(SOCKET_QUEUE_DEPTH);
        t.count_unauthenticated(addr, true);
        t.next += 1;
        let id = SessionId(t.next);
        t.sockets.insert(
            id,
            Sock {
                out,
                addr,
                auth: None,
                rooms: HashSet::new(),
                pending: HashMap::new(),
                pending_len: 0,
                signing_out: false,
            },
        );
        self.metrics.sockets.set(t.sockets.len() as i64);
        Ok((id, rx))
    }

    /// Forgets a closed socket; returns whether it was signed in.
    pub fn close(&self, id: SessionId) -> bool {
        let mut t = self.t();
        let authed = t.sockets.get(&id).is_some_and(|s| s.auth.is_some());
        t.remove(id);
        self.metrics.sockets.set(t.sockets.len() as i64);
        self.room_gauge(&t);
        authed
    }

    /// Rooms followed and subscriptions, as gauges: counts only, never a
    /// room's id (metrics are not access-controlled like rooms are).
    fn room_gauge(&self, t: &Tables) {
        self.metrics.rooms_followed.set(t.by_room.len() as i64);
        self.metrics
            .subscriptions
            .set(t.by_room.values().map(HashSet::len).sum::<usize>() as i64);
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
        let was = t.sockets.get_mut(&id).map(|s| {
            let was = s.auth.is_some();
            s.auth = Some(Auth {
                user: user.clone(),
                token,
            });
            (was, s.addr)
        });
        if let Some((false, addr)) = was {
            t.count_unauthenticated(addr, false);
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

    /// The socket asked to follow `room`: until [`Sessions::subscribed`]
    /// answers, the room's events are held for it, not sent. Returns false
    /// if the socket already follows the room (its events flow as before).
    pub fn subscribing(&self, id: SessionId, room: RoomId) -> bool {
        let mut t = self.t();
        let Some(s) = t.sockets.get_mut(&id) else {
            return false;
        };
        if s.rooms.contains(&room) {
            return false;
        }
        s.pending.entry(room).or_default().requests += 1;
        t.pending_by_room.entry(room).or_default().insert(id);
        true
    }

    /// The node answered a `subscribe` of `room`: on `accepted` the held
    /// events are queued in order and the socket follows the room from
    /// here on, in one step; otherwise they are dropped and the socket
    /// does not follow it.
    pub fn subscribed(&self, id: SessionId, room: RoomId, accepted: bool) {
        let mut t = self.t();
        let Some(s) = t.sockets.get_mut(&id) else {
            return;
        };
        if !accepted {
            let followed = s.rooms.remove(&room);
            let last = s.pending.get_mut(&room).is_some_and(|p| {
                p.requests = p.requests.saturating_sub(1);
                p.requests == 0
            });
            if last {
                t.drop_pending(id, &room);
            }
            if followed {
                unlink(&mut t.by_room, &room, id);
                self.room_gauge(&t);
            }
            return;
        }
        let held = match s.pending.remove(&room) {
            Some(p) => {
                s.pending_len -= p.held.len();
                p.held
            }
            None => Vec::new(),
        };
        unlink(&mut t.pending_by_room, &room, id);
        for text in held {
            if !Self::deliver(&mut t, id, Outgoing::Text(text)) {
                return;
            }
        }
        if let Some(s) = t.sockets.get_mut(&id) {
            s.rooms.insert(room);
            t.by_room.entry(room).or_default().insert(id);
            self.room_gauge(&t);
        }
    }

    /// The socket stops following `room` (and stops waiting to).
    pub fn unsubscribe(&self, id: SessionId, room: &RoomId) {
        let mut t = self.t();
        if let Some(s) = t.sockets.get_mut(&id) {
            s.rooms.remove(room);
        }
        unlink(&mut t.by_room, room, id);
        t.drop_pending(id, room);
        self.room_gauge(&t);
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
                t.remove(id);
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

    /// A room event to the sockets following `room`, and held for those
    /// whose subscription the node has not answered yet.
    fn fan_out_room(&self, room: &RoomId, text: Arc<str>) -> u64 {
        let mut t = self.t();
        let waiting: Vec<SessionId> = t
            .pending_by_room
            .get(room)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default();
        for id in waiting {
            let Some(s) = t.sockets.get_mut(&id) else {
                continue;
            };
            if s.pending_len >= PENDING_EVENTS_MAX {
                // As with a full queue: the socket is too slow to keep.
                t.remove(id);
                continue;
            }
            if let Some(p) = s.pending.get_mut(room) {
                p.held.push(text.clone());
                s.pending_len += 1;
            }
        }
        let targets: Vec<SessionId> = t
            .by_room
            .get(room)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default();
        let mut n = 0;
        for id in targets {
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
                let n = self.fan_out_room(&room, text);
                self.metrics.messages_out.inc_by(n);
            }
            Push::Ephemeral(e) => {
                let Some(text) = render::ephemeral(&e) else {
                    return;
                };
                let text: Arc<str> = text.into();
                let targets: Vec<SessionId> = match (&e.signal, &e.room) {
                    // Presence comes only with the node's audience
                    // (`Push::Presence`); one without it goes nowhere.
                    (Signal::Presence { .. }, _) => Vec::new(),
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
            Push::Presence { presence, audience } => {
                if !matches!(presence.signal, Signal::Presence { .. }) {
                    return;
                }
                let Some(text) = render::ephemeral(&presence) else {
                    return;
                };
                // The node names who shares a room with the user; only
                // their sockets hear it.
                let targets: Vec<SessionId> = {
                    let t = self.t();
                    audience
                        .iter()
                        .filter_map(|u| t.by_user.get(u))
                        .flatten()
                        .copied()
                        .collect()
                };
                self.fan_out(targets, text.into());
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use confab_wire::NodeKey;
    use confab_wire::client::TimelineItem;
    use confab_wire::event::{Content, EventHeader, MessageContent};

    const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    fn item(key: &NodeKey, room: RoomId, body: &str) -> TimelineItem {
        let author = UserId::new(key.node_id(), "alice").unwrap();
        let content = Content::Message(MessageContent {
            body: body.into(),
            ..Default::default()
        });
        let header = EventHeader {
            room: Some(room),
            author,
            kind: confab_wire::EventKind::Message,
            prev: vec![confab_wire::EventId([2; 32])],
            depth: 2,
            origin_seq: 1,
            origin_prev: None,
            ts: 1,
            content_hash: confab_wire::ContentHash([0; 32]),
        };
        TimelineItem {
            event: key.sign_event(header, &content).unwrap().into_signed(),
            rejected: false,
            edited_body: None,
            redacted: None,
            reactions: Vec::new(),
            thread: None,
        }
    }

    fn event(s: &Sessions, key: &NodeKey, room: RoomId, body: &str) {
        s.push(Push::RoomEvent {
            room,
            item: item(key, room, body),
            trace: None,
        });
    }

    fn bodies(rx: &mut mpsc::Receiver<Outgoing>) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(Outgoing::Text(t)) = rx.try_recv() {
            let v: serde_json::Value = serde_json::from_str(&t).unwrap();
            out.push(v["item"]["body"].as_str().unwrap_or("").to_string());
        }
        out
    }

    #[test]
    fn a_room_reaches_a_socket_only_once_the_node_said_yes() {
        let key = NodeKey::from_secret(&[3; 32]);
        let s = Sessions::new(GatewayMetrics::default());
        let room = RoomId([9; 32]);
        let (reader, mut reader_rx) = s.open(LOCAL, 8).unwrap();
        let (asker, mut asker_rx) = s.open(LOCAL, 8).unwrap();
        s.subscribing(reader, room);
        s.subscribed(reader, room, true);
        // The asker waits for its answer while the room talks.
        s.subscribing(asker, room);
        event(&s, &key, room, "one");
        assert_eq!(bodies(&mut reader_rx), ["one"]);
        assert!(bodies(&mut asker_rx).is_empty(), "held, not sent");
        s.subscribed(asker, room, false);
        event(&s, &key, room, "two");
        assert!(bodies(&mut asker_rx).is_empty(), "refused: nothing, ever");
        // Asked again and accepted: what was held comes first, in order,
        // then live events.
        s.subscribing(asker, room);
        event(&s, &key, room, "three");
        event(&s, &key, room, "four");
        assert!(bodies(&mut asker_rx).is_empty());
        s.subscribed(asker, room, true);
        event(&s, &key, room, "five");
        assert_eq!(bodies(&mut asker_rx), ["three", "four", "five"]);
        assert_eq!(bodies(&mut reader_rx), ["two", "three", "four", "five"]);
    }

    #[test]
    fn presence_goes_only_to_its_audience() {
        let key = NodeKey::from_secret(&[3; 32]);
        let s = Sessions::new(GatewayMetrics::default());
        let user = |n: &str| UserId::new(key.node_id(), n).unwrap();
        let token = |u: &UserId| {
            confab_wire::client::AccessToken::issue(
                &key,
                confab_wire::client::TokenClaims {
                    user: u.clone(),
                    family: 1,
                    issued: 0,
                    expires: u64::MAX,
                },
            )
            .unwrap()
        };
        let (a, mut a_rx) = s.open(LOCAL, 8).unwrap();
        let (c, mut c_rx) = s.open(LOCAL, 8).unwrap();
        s.sign_in(a, &user("alice"), token(&user("alice")), 10)
            .unwrap();
        s.sign_in(c, &user("carol"), token(&user("carol")), 10)
            .unwrap();
        let presence = confab_wire::fed::Ephemeral {
            room: None,
            user: user("bob"),
            signal: Signal::Presence {
                state: confab_wire::fed::Presence::Online,
                last_active: 5,
            },
        };
        s.push(Push::Presence {
            presence: presence.clone(),
            audience: vec![user("alice")],
        });
        // Without an audience it goes nowhere.
        s.push(Push::Ephemeral(presence));
        assert!(matches!(a_rx.try_recv(), Ok(Outgoing::Text(t)) if t.contains("presence")));
        assert!(a_rx.try_recv().is_err());
        assert!(c_rx.try_recv().is_err());
    }

    #[test]
    fn sockets_not_signed_in_are_bounded_per_address() {
        let key = NodeKey::from_secret(&[3; 32]);
        let s = Sessions::new(GatewayMetrics::default());
        let other: IpAddr = [192, 0, 2, 9].into();
        let a = s.open(LOCAL, 2).unwrap().0;
        let _b = s.open(LOCAL, 2).unwrap();
        assert!(s.open(LOCAL, 2).is_err());
        assert!(s.open(other, 2).is_ok(), "addresses are apart");
        // Signing in frees the place; signing out takes it again.
        let alice = UserId::new(key.node_id(), "alice").unwrap();
        let token = confab_wire::client::AccessToken::issue(
            &key,
            confab_wire::client::TokenClaims {
                user: alice.clone(),
                family: 1,
                issued: 0,
                expires: u64::MAX,
            },
        )
        .unwrap();
        s.sign_in(a, &alice, token, 10).unwrap();
        let c = s.open(LOCAL, 2).unwrap().0;
        assert!(s.open(LOCAL, 2).is_err());
        s.close(c);
        s.sign_out(a);
        assert!(s.open(LOCAL, 2).is_err());
        s.close(a);
        assert!(s.open(LOCAL, 2).is_ok());
    }
}
