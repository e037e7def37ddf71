//! Events parked while their ancestors are fetched. Everything here came
//! from peers, so it is bounded: in bytes per room, per peer and in all,
//! and in time (an event whose ancestors never come expires). Parked
//! events are indexed by the ancestors they wait for, so what an arrival
//! releases is found without scanning the rest.

use std::collections::{HashMap, HashSet, VecDeque};

use confab_wire::{EventId, NodeId, RoomId, VerifiedEvent};

/// Most bytes of events parked for one room.
pub const PARKED_BYTES_PER_ROOM: usize = 16 * 1024 * 1024;
/// Most bytes of events parked that one peer sent.
pub const PARKED_BYTES_PER_PEER: usize = 32 * 1024 * 1024;
/// Most bytes of events parked in all.
pub const PARKED_BYTES_MAX: usize = 128 * 1024 * 1024;
/// How long an event waits for its ancestors before it is dropped (the
/// peer offers it again on a later round if it still matters).
pub const PARKED_TTL_MS: u64 = 10 * 60_000;
/// Most rooms not held here whose events one peer has parked while their
/// create event is awaited (an invitation that came before its room).
pub const PENDING_ROOMS_PER_PEER: usize = 64;

#[derive(Debug)]
struct Entry {
    ev: VerifiedEvent,
    from: NodeId,
    len: usize,
}

#[derive(Debug, Default)]
struct RoomParking {
    events: HashMap<EventId, Entry>,
    /// An ancestor → the parked events that wait for it.
    waiting: HashMap<EventId, Vec<EventId>>,
    bytes: usize,
}

/// The node's parked events.
#[derive(Debug, Default)]
pub(crate) struct Parking {
    rooms: HashMap<RoomId, RoomParking>,
    by_peer: HashMap<NodeId, usize>,
    /// Per peer, the rooms whose create event its parked events await.
    pending: HashMap<NodeId, HashSet<RoomId>>,
    bytes: usize,
    /// Parking order, for expiry; entries taken since are skipped.
    order: VecDeque<(u64, RoomId, EventId)>,
    /// Peers told about (logged) once for going over a limit.
    warned: HashSet<NodeId>,
}

impl Parking {
    /// Parks `ev` of `room`, sent by `from`, until one of `missing` (its
    /// absent ancestors) arrives. Refused with the limit's name when it
    /// would pass one.
    pub(crate) fn park(
        &mut self,
        room: RoomId,
        ev: VerifiedEvent,
        from: NodeId,
        missing: &[EventId],
        now: u64,
    ) -> Result<(), &'static str> {
        let id = ev.id();
        let len = ev.signed().wire_len();
        let peer = self.by_peer.get(&from).copied().unwrap_or(0);
        let awaits_create = missing.contains(&EventId(room.0));
        let pending = self.pending.get(&from);
        let new_pending = awaits_create && !pending.is_some_and(|p| p.contains(&room));
        let pending_full =
            new_pending && pending.is_some_and(|p| p.len() >= PENDING_ROOMS_PER_PEER);
        let r = self.rooms.entry(room).or_default();
        if r.events.contains_key(&id) {
            return Ok(());
        }
        let full = if pending_full {
            Some("pending_rooms_full")
        } else if r.bytes + len > PARKED_BYTES_PER_ROOM {
            Some("parked_room_full")
        } else if peer + len > PARKED_BYTES_PER_PEER {
            Some("parked_peer_full")
        } else if self.bytes + len > PARKED_BYTES_MAX {
            Some("parked_full")
        } else {
            None
        };
        if let Some(limit) = full {
            if self.warned.insert(from) {
                tracing::warn!(peer = %from.short(), %room, limit, "a peer's events waiting for their ancestors passed a limit; refusing more (logged once per peer)");
            }
            if r.events.is_empty() {
                self.rooms.remove(&room);
            }
            return Err(limit);
        }
        for m in missing {
            let w = r.waiting.entry(*m).or_default();
            if !w.contains(&id) {
                w.push(id);
            }
        }
        if awaits_create {
            self.pending.entry(from).or_default().insert(room);
        }
        r.events.insert(id, Entry { ev, from, len });
        r.bytes += len;
        *self.by_peer.entry(from).or_default() += len;
        self.bytes += len;
        self.order.push_back((now, room, id));
        Ok(())
    }

    /// Takes out the parked events of `room` that wait for any of
    /// `arrived`, each with the peer that sent it; the caller submits them
    /// (and parks again those that still lack an ancestor).
    pub(crate) fn take_waiting(
        &mut self,
        room: &RoomId,
        arrived: &[EventId],
    ) -> Vec<(VerifiedEvent, NodeId)> {
        let Some(r) = self.rooms.get_mut(room) else {
            return Vec::new();
        };
        let ids: Vec<EventId> = arrived
            .iter()
            .filter_map(|a| r.waiting.remove(a))
            .flatten()
            .collect();
        let mut out = Vec::new();
        for id in ids {
            if let Some(e) = self.remove(room, &id) {
                out.push(e);
            }
        }
        out
    }

    /// Drops what waited longer than [`PARKED_TTL_MS`]; returns how many.
    pub(crate) fn expire(&mut self, now: u64) -> usize {
        let mut dropped = 0;
        while let Some((at, room, id)) = self.order.front().copied() {
            if at + PARKED_TTL_MS > now {
                break;
            }
            self.order.pop_front();
            if self.remove(&room, &id).is_some() {
                dropped += 1;
            }
        }
        dropped
    }

    /// True if `id` is parked for `room`.
    pub(crate) fn contains(&self, room: &RoomId, id: &EventId) -> bool {
        self.rooms
            .get(room)
            .is_some_and(|r| r.events.contains_key(id))
    }

    /// Bytes parked in all.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    fn remove(&mut self, room: &RoomId, id: &EventId) -> Option<(VerifiedEvent, NodeId)> {
        let r = self.rooms.get_mut(room)?;
        let e = r.events.remove(id)?;
        let h = e.ev.header();
        for p in h.prev.iter().chain(h.origin_prev.iter()) {
            if let Some(w) = r.waiting.get_mut(p) {
                w.retain(|x| x != id);
                if w.is_empty() {
                    r.waiting.remove(p);
                }
            }
        }
        // The create event, which events of a room not yet held wait for.
        let create = EventId(room.0);
        if let Some(w) = r.waiting.get_mut(&create) {
            w.retain(|x| x != id);
            if w.is_empty() {
                r.waiting.remove(&create);
            }
        }
        r.bytes -= e.len;
        self.bytes -= e.len;
        if let Some(b) = self.by_peer.get_mut(&e.from) {
            *b -= e.len;
            if *b == 0 {
                self.by_peer.remove(&e.from);
            }
        }
        let from = e.from;
        // Still pending for this peer while one of its events awaits the
        // create.
        let keeps_pending = r.waiting.get(&create).is_some_and(|w| {
            w.iter()
                .any(|x| r.events.get(x).is_some_and(|en| en.from == from))
        });
        if r.events.is_empty() {
            self.rooms.remove(room);
        }
        if !keeps_pending {
            self.forget_pending(&from, room);
        }
        Some((e.ev, from))
    }

    fn forget_pending(&mut self, from: &NodeId, room: &RoomId) {
        if let Some(p) = self.pending.get_mut(from) {
            p.remove(room);
            if p.is_empty() {
                self.pending.remove(from);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use confab_wire::event::{Content, CreateRoom, MessageContent, Visibility};
    use confab_wire::{ContentHash, EventHeader, EventKind, NodeKey, UserId};

    use super::*;

    fn key(n: u8) -> NodeKey {
        NodeKey::from_secret(&[n; 32])
    }

    /// A message of `key`'s user whose parent is `parent`, `body_len`
    /// bytes long.
    fn child(
        key: &NodeKey,
        room: RoomId,
        parent: EventId,
        seq: u64,
        body_len: usize,
    ) -> VerifiedEvent {
        let header = EventHeader {
            room: Some(room),
            author: UserId::new(key.node_id(), "u").unwrap(),
            kind: EventKind::Message,
            prev: vec![parent],
            depth: seq,
            origin_seq: seq,
            origin_prev: (seq > 1).then_some(parent),
            ts: 1,
            content_hash: ContentHash([0; 32]),
        };
        let body = Content::Message(MessageContent {
            body: "z".repeat(body_len),
            ..Default::default()
        });
        key.sign_event(header, &body).unwrap()
    }

    fn room_of(key: &NodeKey) -> RoomId {
        let create = CreateRoom::named("r", Visibility::Public, false);
        let header = EventHeader::create(UserId::new(key.node_id(), "u").unwrap(), create, 1);
        key.sign_event(header, &Content::Empty).unwrap().room()
    }

    #[test]
    fn an_arrival_releases_exactly_what_waited_for_it() {
        let k = key(1);
        let room = room_of(&k);
        let mut p = Parking::default();
        let (x, y) = (EventId([1; 32]), EventId([2; 32]));
        let a = child(&k, room, x, 2, 10);
        let b = child(&k, room, y, 2, 11);
        p.park(room, a.clone(), k.node_id(), &[x], 0).unwrap();
        p.park(room, b.clone(), k.node_id(), &[y], 0).unwrap();
        let got = p.take_waiting(&room, &[x]);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0.id(), a.id());
        assert!(p.contains(&room, &b.id()));
        assert!(p.take_waiting(&room, &[x]).is_empty());
        assert_eq!(p.take_waiting(&room, &[y]).len(), 1);
        assert_eq!(p.bytes(), 0);
    }

    #[test]
    fn parking_is_bounded_per_room_per_peer_and_in_time() {
        let (k, other) = (key(1), key(2));
        let mut p = Parking::default();
        let body = confab_wire::event::MAX_BODY_LEN;
        let fill = |p: &mut Parking, room: RoomId, from: NodeId, first: u64| {
            let mut n = 0;
            loop {
                let ev = child(&k, room, EventId([9; 32]), first + n, body);
                match p.park(room, ev, from, &[EventId([9; 32])], first) {
                    Ok(()) => n += 1,
                    Err(limit) => return (n, limit),
                }
            }
        };
        let (r1, r2, r3) = (room_of(&k), room_of(&other), RoomId([3; 32]));
        let (n, limit) = fill(&mut p, r1, k.node_id(), 1);
        assert_eq!(limit, "parked_room_full");
        assert!(p.bytes() <= PARKED_BYTES_PER_ROOM && n > 0);
        // Other rooms take more from the same peer, up to its share.
        let (_, limit) = fill(&mut p, r2, k.node_id(), 100_000);
        assert_eq!(limit, "parked_room_full");
        let (n, limit) = fill(&mut p, RoomId([4; 32]), k.node_id(), 200_000);
        assert_eq!(limit, "parked_peer_full");
        assert!(n < 3, "{n}");
        assert!(p.bytes() <= PARKED_BYTES_PER_PEER);
        // Another peer may still park.
        let ev = child(&k, r3, EventId([9; 32]), 1, 10);
        p.park(r3, ev, other.node_id(), &[EventId([9; 32])], 5)
            .unwrap();
        // Nothing outlives its time.
        assert_eq!(p.expire(PARKED_TTL_MS - 1), 0);
        assert!(p.expire(PARKED_TTL_MS + 100_000) > 0);
        assert_eq!(p.bytes(), 0);
        assert!(p.take_waiting(&r1, &[EventId([9; 32])]).is_empty());
    }

    #[test]
    fn a_peer_has_few_rooms_waiting_for_their_create() {
        let (k, other) = (key(1), key(2));
        let mut p = Parking::default();
        let invite_for = |n: u32| {
            let mut id = [7u8; 32];
            id[..4].copy_from_slice(&n.to_be_bytes());
            let room = RoomId(id);
            let create = EventId(room.0);
            (room, child(&k, room, create, 1, 10), create)
        };
        for n in 0..PENDING_ROOMS_PER_PEER as u32 {
            let (room, ev, create) = invite_for(n);
            p.park(room, ev, k.node_id(), &[create], 0).unwrap();
        }
        let (room, ev, create) = invite_for(9_999);
        assert_eq!(
            p.park(room, ev.clone(), k.node_id(), &[create], 0),
            Err("pending_rooms_full")
        );
        // Another peer is not held to this one's count.
        p.park(room, ev, other.node_id(), &[create], 0).unwrap();
        // A create arriving frees its room's place.
        let (first, _, first_create) = invite_for(0);
        assert_eq!(p.take_waiting(&first, &[first_create]).len(), 1);
        let (room, ev, create) = invite_for(10_000);
        p.park(room, ev, k.node_id(), &[create], 0).unwrap();
    }
}
