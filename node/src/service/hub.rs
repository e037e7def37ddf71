//! Who listens: the gateways attached to the node, their browser sessions,
//! and which rooms each session follows. The node sends each room event
//! once per gateway that has a session in the room; the gateway fans it
//! out to its sockets.
//!
//! Every gateway has one bounded outbound queue. A gateway that lets it
//! fill up is dropped (its transport closes); it reconnects and its
//! sessions resume with `Subscribe { after }`, so a slow gateway costs
//! itself a reconnect, never the node memory or other gateways their pushes.

use std::collections::{HashMap, HashSet};

use confab_wire::client::SessionId;
use confab_wire::{ClientMessage, RoomId, UserId};
use tokio::sync::mpsc;

/// Messages queued for one gateway before it is dropped as too slow.
pub const GATEWAY_QUEUE_DEPTH: usize = 65_536;

/// A gateway attached to this node (one connection).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GatewayId(pub u64);

#[derive(Debug)]
struct Session {
    user: UserId,
    family: u64,
    rooms: HashSet<RoomId>,
}

#[derive(Debug)]
struct Gateway {
    name: String,
    out: mpsc::Sender<ClientMessage>,
    sessions: HashMap<SessionId, Session>,
    rooms: HashMap<RoomId, HashSet<SessionId>>,
    /// Sessions ended lately, never bound again: the node runs a
    /// session's requests on many threads, so one sent before the end
    /// (an aborted download's last chunk) may be served after it, and must
    /// not bring the session back (its user would stay online for good).
    /// Gateways never reuse a session id.
    ended: HashSet<SessionId>,
    ended_order: std::collections::VecDeque<SessionId>,
}

/// Ended sessions remembered per gateway (the oldest is forgotten first;
/// a request is never that late).
pub(crate) const ENDED_REMEMBERED: usize = 4096;

/// The table of gateways and sessions.
#[derive(Debug, Default)]
pub(crate) struct Hub {
    gateways: HashMap<GatewayId, Gateway>,
    next: u64,
}

/// What ending a session changed.
#[derive(Debug, Default)]
pub(crate) struct Ended {
    /// Users who have no session left on any gateway.
    pub(crate) gone: Vec<UserId>,
}

impl Hub {
    /// Attaches a gateway; its messages go to the returned receiver.
    pub(crate) fn attach(&mut self, name: &str) -> (GatewayId, mpsc::Receiver<ClientMessage>) {
        self.next += 1;
        let id = GatewayId(self.next);
        let (out, rx) = mpsc::channel(GATEWAY_QUEUE_DEPTH);
        self.gateways.insert(
            id,
            Gateway {
                name: name.to_string(),
                out,
                sessions: HashMap::new(),
                rooms: HashMap::new(),
                ended: HashSet::new(),
                ended_order: std::collections::VecDeque::new(),
            },
        );
        (id, rx)
    }

    /// Detaches a gateway and ends its sessions.
    pub(crate) fn detach(&mut self, gw: GatewayId) -> Ended {
        let Some(g) = self.gateways.remove(&gw) else {
            return Ended::default();
        };
        let users: HashSet<UserId> = g.sessions.into_values().map(|s| s.user).collect();
        Ended {
            gone: users.into_iter().filter(|u| !self.has_user(u)).collect(),
        }
    }

    fn has_user(&self, user: &UserId) -> bool {
        self.gateways
            .values()
            .any(|g| g.sessions.values().any(|s| &s.user == user))
    }

    /// Number of attached gateways.
    pub(crate) fn gateway_count(&self) -> usize {
        self.gateways.len()
    }

    /// Sessions on all gateways.
    pub(crate) fn session_count(&self) -> usize {
        self.gateways.values().map(|g| g.sessions.len()).sum()
    }

    /// Binds a session to an authenticated user. A session that changes
    /// user loses its subscriptions. Returns true if the user had no
    /// session anywhere before (they just came online).
    pub(crate) fn bind(&mut self, gw: GatewayId, s: SessionId, user: &UserId, family: u64) -> bool {
        let fresh = !self.has_user(user);
        let Some(g) = self.gateways.get_mut(&gw) else {
            return false;
        };
        if g.ended.contains(&s) {
            return false;
        }
        match g.sessions.get_mut(&s) {
            Some(sess) if &sess.user == user => sess.family = family,
            _ => {
                if let Some(old) = g.sessions.remove(&s) {
                    unlink(&mut g.rooms, s, &old.rooms);
                }
                g.sessions.insert(
                    s,
                    Session {
                        user: user.clone(),
                        family,
                        rooms: HashSet::new(),
                    },
                );
            }
        }
        fresh
    }

    /// Ends a session (its socket closed).
    pub(crate) fn end_session(&mut self, gw: GatewayId, s: SessionId) -> Ended {
        let Some(g) = self.gateways.get_mut(&gw) else {
            return Ended::default();
        };
        if g.ended.insert(s) {
            g.ended_order.push_back(s);
            if g.ended_order.len() > ENDED_REMEMBERED
                && let Some(oldest) = g.ended_order.pop_front()
            {
                g.ended.remove(&oldest);
            }
        }
        let Some(old) = g.sessions.remove(&s) else {
            return Ended::default();
        };
        unlink(&mut g.rooms, s, &old.rooms);
        let gone = if self.has_user(&old.user) {
            Vec::new()
        } else {
            vec![old.user]
        };
        Ended { gone }
    }

    /// Subscribes a bound session to a room.
    pub(crate) fn subscribe(&mut self, gw: GatewayId, s: SessionId, room: RoomId) {
        if let Some(g) = self.gateways.get_mut(&gw)
            && let Some(sess) = g.sessions.get_mut(&s)
        {
            sess.rooms.insert(room);
            g.rooms.entry(room).or_default().insert(s);
        }
    }

    /// Ends a session's subscription.
    pub(crate) fn unsubscribe(&mut self, gw: GatewayId, s: SessionId, room: &RoomId) {
        if let Some(g) = self.gateways.get_mut(&gw)
            && let Some(sess) = g.sessions.get_mut(&s)
        {
            sess.rooms.remove(room);
            unlink(&mut g.rooms, s, &HashSet::from([*room]));
        }
    }

    /// Drops a user's subscriptions in a room (they left or were removed).
    pub(crate) fn unsubscribe_user(&mut self, user: &UserId, room: &RoomId) {
        for g in self.gateways.values_mut() {
            let ids: Vec<SessionId> = g
                .sessions
                .iter()
                .filter(|(_, s)| &s.user == user && s.rooms.contains(room))
                .map(|(id, _)| *id)
                .collect();
            for id in ids {
                if let Some(sess) = g.sessions.get_mut(&id) {
                    sess.rooms.remove(room);
                }
                unlink(&mut g.rooms, id, &HashSet::from([*room]));
            }
        }
    }

    /// Ends the sessions of a user's revoked login (`None`: every login);
    /// returns the gateways that had any, to tell them.
    pub(crate) fn revoke(&mut self, user: &UserId, family: Option<u64>) -> Vec<GatewayId> {
        let mut out = Vec::new();
        for (id, g) in &mut self.gateways {
            let ended: Vec<SessionId> = g
                .sessions
                .iter()
                .filter(|(_, s)| &s.user == user && family.is_none_or(|f| f == s.family))
                .map(|(id, _)| *id)
                .collect();
            if ended.is_empty() {
                continue;
            }
            for s in ended {
                if let Some(old) = g.sessions.remove(&s) {
                    unlink(&mut g.rooms, s, &old.rooms);
                }
            }
            out.push(*id);
        }
        out
    }

    /// Gateways with a session subscribed to `room`.
    pub(crate) fn room_gateways(&self, room: &RoomId) -> Vec<GatewayId> {
        self.gateways
            .iter()
            .filter(|(_, g)| g.rooms.get(room).is_some_and(|s| !s.is_empty()))
            .map(|(id, _)| *id)
            .collect()
    }

    /// Rooms some session follows.
    pub(crate) fn followed_rooms(&self) -> HashSet<RoomId> {
        self.gateways
            .values()
            .flat_map(|g| g.rooms.iter())
            .filter(|(_, s)| !s.is_empty())
            .map(|(r, _)| *r)
            .collect()
    }

    /// Gateways with a session of `user`.
    pub(crate) fn user_gateways(&self, user: &UserId) -> Vec<GatewayId> {
        self.gateways
            .iter()
            .filter(|(_, g)| g.sessions.values().any(|s| &s.user == user))
            .map(|(id, _)| *id)
            .collect()
    }

    /// For each gateway, which of `users` have a session on it.
    pub(crate) fn users_by_gateway(
        &self,
        users: &HashSet<UserId>,
    ) -> HashMap<GatewayId, Vec<UserId>> {
        let mut out: HashMap<GatewayId, Vec<UserId>> = HashMap::new();
        for (id, g) in &self.gateways {
            let mut on: Vec<UserId> = g
                .sessions
                .values()
                .map(|s| &s.user)
                .filter(|u| users.contains(*u))
                .cloned()
                .collect();
            on.sort();
            on.dedup();
            if !on.is_empty() {
                out.insert(*id, on);
            }
        }
        out
    }

    /// Users with a session on some gateway.
    pub(crate) fn online_users(&self) -> HashSet<UserId> {
        self.gateways
            .values()
            .flat_map(|g| g.sessions.values().map(|s| s.user.clone()))
            .collect()
    }

    /// Queues a message for every gateway.
    pub(crate) fn broadcast(&mut self, msg: &ClientMessage) {
        let ids: Vec<GatewayId> = self.gateways.keys().copied().collect();
        for gw in ids {
            self.send(gw, msg.clone());
        }
    }

    /// Queues a message for a gateway. A full queue drops the gateway
    /// (see the module docs); returns false then.
    pub(crate) fn send(&mut self, gw: GatewayId, msg: ClientMessage) -> bool {
        let Some(g) = self.gateways.get(&gw) else {
            return false;
        };
        match g.out.try_send(msg) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.gateways.remove(&gw);
                false
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(gateway = %g.name, "gateway is not keeping up; dropping it (it will resume)");
                self.gateways.remove(&gw);
                false
            }
        }
    }
}

fn unlink(rooms: &mut HashMap<RoomId, HashSet<SessionId>>, s: SessionId, of: &HashSet<RoomId>) {
    for r in of {
        if let Some(set) = rooms.get_mut(r) {
            set.remove(&s);
            if set.is_empty() {
                rooms.remove(r);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use confab_wire::NodeKey;
    use confab_wire::client::Push;

    fn user(name: &str) -> UserId {
        UserId::new(NodeKey::from_secret(&[1; 32]).node_id(), name).unwrap()
    }

    #[test]
    fn an_ended_session_is_never_bound_again() {
        let mut hub = Hub::default();
        let (a, _ra) = hub.attach("a");
        let alice = user("alice");
        hub.bind(a, SessionId(5), &alice, 10);
        assert_eq!(hub.end_session(a, SessionId(5)).gone, vec![alice.clone()]);
        // A request of that session served after its end.
        assert!(!hub.bind(a, SessionId(5), &alice, 10));
        assert_eq!(hub.session_count(), 0);
        // An end that overtakes the session's first request too.
        hub.end_session(a, SessionId(6));
        hub.bind(a, SessionId(6), &alice, 10);
        assert_eq!(hub.session_count(), 0);
        // Only the latest ends are remembered.
        for i in 0..ENDED_REMEMBERED as u64 {
            hub.end_session(a, SessionId(1000 + i));
        }
        assert!(hub.bind(a, SessionId(5), &alice, 10));
    }

    #[test]
    fn subscriptions_follow_sessions_and_users() {
        let mut hub = Hub::default();
        let (a, _ra) = hub.attach("a");
        let (b, _rb) = hub.attach("b");
        let room = RoomId([7; 32]);
        let alice = user("alice");
        assert!(hub.bind(a, SessionId(1), &alice, 10));
        assert!(!hub.bind(b, SessionId(1), &alice, 11), "already online");
        hub.subscribe(a, SessionId(1), room);
        hub.subscribe(b, SessionId(1), room);
        assert_eq!(hub.room_gateways(&room).len(), 2);
        // Revoking one login ends only its sessions.
        assert_eq!(hub.revoke(&alice, Some(10)), vec![a]);
        assert_eq!(hub.room_gateways(&room), vec![b]);
        // A session rebound to another user loses its subscriptions.
        hub.bind(b, SessionId(1), &user("bob"), 12);
        assert!(hub.room_gateways(&room).is_empty());
        let ended = hub.end_session(b, SessionId(1));
        assert_eq!(ended.gone, vec![user("bob")]);
        assert_eq!(hub.session_count(), 0);
    }

    #[test]
    fn a_gateway_that_does_not_read_is_dropped() {
        let mut hub = Hub::default();
        let (a, rx) = hub.attach("slow");
        let push = || {
            ClientMessage::Push(Push::Revoked {
                user: user("x"),
                family: None,
            })
        };
        for _ in 0..GATEWAY_QUEUE_DEPTH {
            assert!(hub.send(a, push()));
        }
        assert!(!hub.send(a, push()));
        assert_eq!(hub.gateway_count(), 0);
        drop(rx);
    }
}
