//! The node's rooms as replication sees them, over the store.

use std::collections::{BTreeMap, HashMap};

use confab_wire::event::{Content, EventKind};
use confab_wire::fed::{OriginHead, OriginSince};
use confab_wire::{EventId, NodeId, NodeKey, RoomId, SignedEvent, UserId, VerifiedEvent};

use super::sync::{Received, Rooms};
use crate::engine::{Admission, EventMeta, Refusal};
use crate::error::{Error, Result};
use crate::store::{Room, Store};

/// Most events parked per room while their ancestors are fetched.
pub const PARKED_MAX: usize = 50_000;

/// Every room of a node, open for replication and local posting.
#[derive(Debug)]
pub struct NodeRooms {
    store: Store,
    rooms: HashMap<RoomId, Room>,
    /// Verified events whose ancestors have not arrived yet.
    parked: HashMap<RoomId, BTreeMap<EventId, VerifiedEvent>>,
    /// Events from peers refused or rejected, by reason (for metrics).
    rejections: BTreeMap<String, u64>,
}

impl NodeRooms {
    /// Opens every room in the store.
    pub fn open(store: Store) -> Result<NodeRooms> {
        let mut rooms = HashMap::new();
        for id in store.rooms()? {
            if let Some(r) = store.open_room(&id)? {
                rooms.insert(id, r);
            }
        }
        Ok(NodeRooms {
            store,
            rooms,
            parked: HashMap::new(),
            rejections: BTreeMap::new(),
        })
    }

    /// Events from peers that were refused (bad signature, malformed,
    /// wrong room, broken structure) or rejected by the room's rules,
    /// counted by reason.
    pub fn rejections(&self) -> &BTreeMap<String, u64> {
        &self.rejections
    }

    fn count(&mut self, reason: impl Into<String>) {
        *self.rejections.entry(reason.into()).or_default() += 1;
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// A room.
    pub fn room(&self, id: &RoomId) -> Option<&Room> {
        self.rooms.get(id)
    }

    /// Creates a room from its create event (durable on return).
    pub fn create_room(&mut self, create: &VerifiedEvent) -> Result<()> {
        let room = self.store.create_room(create)?;
        self.store.wait_durable()?;
        self.rooms.insert(create.room(), room);
        Ok(())
    }

    /// Signs and submits an event of a local user; returns it (to push to
    /// peers) once durable, whatever the room's verdict.
    pub fn post(
        &mut self,
        key: &NodeKey,
        author: &UserId,
        room: &RoomId,
        kind: EventKind,
        content: &Content,
        now: u64,
    ) -> Result<VerifiedEvent> {
        let r = self
            .rooms
            .get_mut(room)
            .ok_or(Error::NotFound { what: "room" })?;
        crate::local::submit_local(&self.store, r, key, author, kind, content, now)
            .map(|(ev, _)| ev)
    }

    fn record(&self, id: &EventId) -> Option<SignedEvent> {
        self.store.event(id).ok().flatten().map(|s| s.signed)
    }

    fn metas(
        &self,
        room: &Room,
        ids: impl IntoIterator<Item = EventId>,
    ) -> Vec<std::sync::Arc<EventMeta>> {
        let mut metas: Vec<_> = ids
            .into_iter()
            .filter_map(|id| room.engine().meta(&id))
            .collect();
        metas.sort_by_key(|m| m.position());
        metas.dedup_by_key(|m| m.id);
        metas
    }

    /// Submits parked events whose ancestors are now present.
    fn unpark(
        &mut self,
        room_id: &RoomId,
        now: u64,
        accepted: &mut Vec<SignedEvent>,
    ) -> Result<()> {
        loop {
            let Some(parked) = self.parked.get_mut(room_id) else {
                return Ok(());
            };
            let Some(room) = self.rooms.get_mut(room_id) else {
                return Ok(());
            };
            let ready: Vec<EventId> = parked
                .values()
                .filter(|e| {
                    let h = e.header();
                    h.prev
                        .iter()
                        .chain(h.origin_prev.iter())
                        .all(|p| room.engine().contains(p))
                })
                .map(|e| e.id())
                .collect();
            if ready.is_empty() {
                return Ok(());
            }
            let mut evs: Vec<VerifiedEvent> =
                ready.iter().filter_map(|id| parked.remove(id)).collect();
            evs.sort_by_key(|e| (e.header().depth, e.id()));
            for ev in evs {
                if let Ok(Admission::Applied { .. }) = room.submit(&ev, now)? {
                    accepted.push(ev.into_signed());
                }
            }
        }
    }
}

impl Rooms for NodeRooms {
    fn shared_rooms(&self, peer: &NodeId) -> Vec<RoomId> {
        let mut out: Vec<RoomId> = self
            .rooms
            .iter()
            .filter(|(_, r)| {
                let e = r.engine();
                e.version_vector().contains_key(peer)
                    || e.state().members.keys().any(|u| u.node() == peer)
            })
            .map(|(id, _)| *id)
            .collect();
        out.sort();
        out
    }

    fn has_room(&self, room: &RoomId) -> bool {
        self.rooms.contains_key(room)
    }

    fn vector(&self, room: &RoomId) -> Vec<OriginHead> {
        self.rooms.get(room).map_or_else(Vec::new, |r| {
            r.engine()
                .version_vector()
                .into_iter()
                .map(|(origin, (seq, head))| OriginHead { origin, seq, head })
                .collect()
        })
    }

    fn holds(&self, room: &RoomId, id: &EventId) -> bool {
        self.rooms
            .get(room)
            .is_some_and(|r| r.engine().contains(id))
    }

    fn events_after(
        &self,
        room_id: &RoomId,
        since: &[OriginSince],
        limit: usize,
    ) -> Vec<SignedEvent> {
        let Some(room) = self.rooms.get(room_id) else {
            return Vec::new();
        };
        let since: HashMap<NodeId, u64> = since.iter().map(|s| (s.origin, s.after_seq)).collect();
        let mut ids = Vec::new();
        for origin in room.engine().version_vector().keys() {
            let after = since.get(origin).copied().unwrap_or(0);
            ids.extend(room.engine().origin_events_after(origin, after));
        }
        // By depth: a prefix of what the asker lacks is causally closed.
        self.metas(room, ids)
            .into_iter()
            .take(limit)
            .filter_map(|m| self.record(&m.id))
            .collect()
    }

    fn events_by_id(&self, room_id: &RoomId, ids: &[EventId]) -> Vec<SignedEvent> {
        let Some(room) = self.rooms.get(room_id) else {
            return Vec::new();
        };
        self.metas(room, ids.iter().copied())
            .into_iter()
            .filter_map(|m| self.record(&m.id))
            .collect()
    }

    fn receive(
        &mut self,
        now: u64,
        _from: &NodeId,
        room_id: &RoomId,
        events: Vec<SignedEvent>,
    ) -> Received {
        let mut received = Received::default();
        let mut verified = Vec::with_capacity(events.len());
        for e in events {
            match e.verify() {
                Ok(v) if v.room() == *room_id => verified.push(v),
                Ok(_) => {
                    received.invalid += 1;
                    self.count("refused:wrong_room");
                }
                Err(confab_wire::Error::BadSignature) => {
                    received.invalid += 1;
                    self.count("refused:bad_signature");
                }
                Err(_) => {
                    received.invalid += 1;
                    self.count("refused:malformed");
                }
            }
        }
        if !self.rooms.contains_key(room_id) {
            // A room new to this node starts with its create event.
            match verified.iter().position(|e| e.id() == EventId(room_id.0)) {
                Some(i) => {
                    let create = verified.remove(i);
                    if self.create_room(&create).is_err() {
                        received.invalid += 1;
                        return received;
                    }
                    received.accepted.push(create.into_signed());
                }
                None => {
                    received.missing.push(EventId(room_id.0));
                    return received;
                }
            }
        }
        verified.sort_by_key(|e| (e.header().depth, e.id()));
        let mut outcome: Result<()> = Ok(());
        let mut counts: Vec<String> = Vec::new();
        if let Some(room) = self.rooms.get_mut(room_id) {
            for ev in verified {
                match room.submit(&ev, now) {
                    Ok(Ok(Admission::Applied { verdict, .. })) => {
                        if let crate::engine::Verdict::Rejected(r) = verdict {
                            counts.push(format!("rejected:{}", r.code()));
                        }
                        received.accepted.push(ev.into_signed());
                    }
                    Ok(Ok(_)) => {}
                    Ok(Err(Refusal::MissingParents(ids))) => {
                        let parked = self.parked.entry(*room_id).or_default();
                        if parked.len() < PARKED_MAX {
                            for id in ids {
                                if !parked.contains_key(&id) && !received.missing.contains(&id) {
                                    received.missing.push(id);
                                }
                            }
                            parked.insert(ev.id(), ev);
                        }
                    }
                    Ok(Err(refusal)) => {
                        received.invalid += 1;
                        counts.push(format!("refused:{}", refusal.code()));
                    }
                    Err(e) => {
                        outcome = Err(e);
                        break;
                    }
                }
            }
        }
        for c in counts {
            self.count(c);
        }
        if outcome.is_ok() {
            outcome = self.unpark(room_id, now, &mut received.accepted);
        }
        if let Some(room) = self.rooms.get_mut(room_id)
            && outcome.is_ok()
        {
            outcome = room.commit().and_then(|()| self.store.wait_durable());
        }
        if let Err(e) = outcome {
            // Nothing of this batch is acknowledged; anti-entropy resends it.
            tracing::error!(error = %e, "storing events from a peer failed");
            received.accepted.clear();
        }
        // Ancestors we now hold need no fetching.
        if let Some(room) = self.rooms.get(room_id) {
            received.missing.retain(|id| !room.engine().contains(id));
        }
        received
    }
}
